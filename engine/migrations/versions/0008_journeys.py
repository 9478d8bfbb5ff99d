"""journeys: pairs parked at wait nodes, events, invoice attributes

- journey_waits: a pair parked at a wait node until its release date, under the exactly-once
  key; released or exited once.
- events: what customers did, posted by other systems, unique by the sender's id.
- invoices.attributes: imported columns beyond the known ones (policy number, plate, ...).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('external_id', sa.String(length=100), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('properties', JSON, server_default='{}', nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_events_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events')),
    sa.UniqueConstraint('external_id', name=op.f('uq_events_external_id'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_customer_id_at', ['customer_id', 'at'], unique=False)
        batch_op.create_index('ix_events_name_at', ['name', 'at'], unique=False)

    op.create_table('journey_waits',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('occurrence', sa.String(length=64), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.Column('parked_on', sa.Date(), nullable=False),
    sa.Column('release_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('ended_on', sa.Date(), nullable=True),
    sa.Column('parked_run_id', sa.Integer(), nullable=True),
    sa.Column('ended_run_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("status IN ('waiting', 'released', 'exited')", name=op.f('ck_journey_waits_status')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_journey_waits_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_journey_waits_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ended_run_id'], ['runs.id'], name=op.f('fk_journey_waits_ended_run_id_runs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_journey_waits_invoice_id_invoices'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['parked_run_id'], ['runs.id'], name=op.f('fk_journey_waits_parked_run_id_runs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journey_waits')),
    sa.UniqueConstraint('campaign_id', 'node_id', 'customer_id', 'occurrence', name=op.f('uq_journey_waits_campaign_id_node_id_customer_id_occurrence'))
    )
    with op.batch_alter_table('journey_waits', schema=None) as batch_op:
        batch_op.create_index('ix_journey_waits_customer_id', ['customer_id'], unique=False)
        batch_op.create_index('ix_journey_waits_due', ['campaign_id', 'node_id', 'status', 'release_on'], unique=False)

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attributes', JSON, server_default='{}', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_column('attributes')

    with op.batch_alter_table('journey_waits', schema=None) as batch_op:
        batch_op.drop_index('ix_journey_waits_due')
        batch_op.drop_index('ix_journey_waits_customer_id')

    op.drop_table('journey_waits')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_name_at')
        batch_op.drop_index('ix_events_customer_id_at')

    op.drop_table('events')
