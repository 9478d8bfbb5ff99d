"""blasts: one-off sends to a data set's rows

- campaigns.kind: 'campaign' or 'blast'. A blast is stored as a campaign of its own kind, so
  its messages, run, activities, caps, quiet hours, credits and STOP are the campaigns'.
- blasts: what only a blast has (idempotency key, as-of date, data set, selection).
- blast_recipients: the customers chosen for a blast of selected rows.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

KIND_CHECK = "kind IN ('campaign', 'blast')"
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    # In place, never by copying the table: on SQLite a batch copy drops `campaigns`, and with
    # foreign keys on that deletes every run and message of every campaign (ON DELETE CASCADE).
    if op.get_bind().dialect.name == 'sqlite':
        op.execute("ALTER TABLE campaigns ADD COLUMN kind VARCHAR(10) DEFAULT 'campaign' "
                   f"NOT NULL CONSTRAINT ck_campaigns_kind CHECK ({KIND_CHECK})")
    else:
        op.add_column('campaigns', sa.Column('kind', sa.String(length=10),
                                             server_default='campaign', nullable=False))
        op.create_check_constraint(op.f('ck_campaigns_kind'), 'campaigns', KIND_CHECK)

    op.create_table('blasts',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('client_token', sa.String(length=100), nullable=True),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('source', JSON, nullable=False),
    sa.Column('selection', sa.String(length=10), nullable=False),
    sa.Column('requested', sa.Integer(), nullable=False),
    sa.Column('not_members', JSON, nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("selection IN ('all', 'list')", name=op.f('ck_blasts_selection')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_blasts_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', name=op.f('pk_blasts')),
    sa.UniqueConstraint('client_token', name=op.f('uq_blasts_client_token'))
    )
    op.create_table('blast_recipients',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_blast_recipients_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_blast_recipients_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', 'customer_id', name=op.f('pk_blast_recipients'))
    )


def downgrade() -> None:
    op.drop_table('blast_recipients')
    op.drop_table('blasts')
    if op.get_bind().dialect.name != 'sqlite':
        op.drop_constraint(op.f('ck_campaigns_kind'), 'campaigns', type_='check')
    op.execute("ALTER TABLE campaigns DROP COLUMN kind")
