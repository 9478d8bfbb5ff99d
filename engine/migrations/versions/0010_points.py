"""points beyond accruals: redemptions, adjustments, pending credits

- bonus_allocations: what each redemption took from which credit (accrual or adjustment), so
  the expiry job expires only what remains of a credit.
- bonus_ledger.activates_on: a credit is pending until then (award-bonus activates_after_days).
- bonus_ledger.reference: a manual movement's idempotency key, unique per customer;
  bonus_ledger.created_by: who booked it.
- Sign checks for adjustments (positive) and redemptions (negative). SQLite cannot add a check
  to a table without rebuilding it, and rebuilding bonus_ledger would run its foreign keys'
  ON DELETE actions (activities.ledger_id), so there they come with new databases only.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
CHECKS = {'ck_bonus_ledger_adjustment_positive': "kind != 'adjustment' OR amount > 0",
          'ck_bonus_ledger_redemption_negative': "kind != 'redemption' OR amount < 0"}


def upgrade() -> None:
    op.create_table('bonus_allocations',
    sa.Column('id', ID, nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('redemption_id', ID, nullable=False),
    sa.Column('credit_id', ID, nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_bonus_allocations_amount_positive')),
    sa.ForeignKeyConstraint(['credit_id'], ['bonus_ledger.id'], name=op.f('fk_bonus_allocations_credit_id_bonus_ledger'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_bonus_allocations_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['redemption_id'], ['bonus_ledger.id'], name=op.f('fk_bonus_allocations_redemption_id_bonus_ledger'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bonus_allocations')),
    sa.UniqueConstraint('redemption_id', 'credit_id', name=op.f('uq_bonus_allocations_redemption_id_credit_id'))
    )
    op.create_index('ix_bonus_allocations_credit_id', 'bonus_allocations', ['credit_id'])
    op.create_index('ix_bonus_allocations_customer_id', 'bonus_allocations', ['customer_id'])
    with op.batch_alter_table('bonus_ledger', schema=None) as batch_op:
        batch_op.add_column(sa.Column('activates_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('reference', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('created_by', sa.String(length=100), nullable=True))
    op.create_index('uq_bonus_ledger_customer_id_reference', 'bonus_ledger',
                    ['customer_id', 'reference'], unique=True)
    if op.get_bind().dialect.name != 'sqlite':
        for name, check in CHECKS.items():
            op.create_check_constraint(op.f(name), 'bonus_ledger', check)


def downgrade() -> None:
    if op.get_bind().dialect.name != 'sqlite':
        for name in CHECKS:
            op.drop_constraint(op.f(name), 'bonus_ledger', type_='check')
    op.drop_index('uq_bonus_ledger_customer_id_reference', table_name='bonus_ledger')
    with op.batch_alter_table('bonus_ledger', schema=None) as batch_op:
        batch_op.drop_column('created_by')
        batch_op.drop_column('reference')
        batch_op.drop_column('activates_on')
    op.drop_index('ix_bonus_allocations_customer_id', table_name='bonus_allocations')
    op.drop_index('ix_bonus_allocations_credit_id', table_name='bonus_allocations')
    op.drop_table('bonus_allocations')
