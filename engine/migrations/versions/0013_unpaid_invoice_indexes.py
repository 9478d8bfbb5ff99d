"""unpaid invoice indexes: "unpaid as of D" read from two small partial indexes

- ix_invoices_unpaid (due_date, customer_id) WHERE paid_at IS NULL: the invoices nobody has
  paid, which alone answer days_past_due >= n (the weekly past-due segment) as an index range
  that covers the query, without reading an invoice row.
- ix_invoices_paid_at (paid_at) WHERE paid_at IS NOT NULL: the invoices paid after D, which
  are unpaid as of D too; none in the common case (D on or after every recorded payment),
  found with one index probe.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

UNPAID = sa.text('paid_at IS NULL')
PAID = sa.text('paid_at IS NOT NULL')


def upgrade() -> None:
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index('ix_invoices_unpaid', ['due_date', 'customer_id'], unique=False,
                              postgresql_where=UNPAID, sqlite_where=UNPAID)
        batch_op.create_index('ix_invoices_paid_at', ['paid_at'], unique=False,
                              postgresql_where=PAID, sqlite_where=PAID)


def downgrade() -> None:
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index('ix_invoices_paid_at')
        batch_op.drop_index('ix_invoices_unpaid')
