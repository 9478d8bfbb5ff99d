"""messaging: credits, inline templates, sender; run timings; foreign-key indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('channel_credits',
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('balance', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('balance >= 0', name=op.f('ck_channel_credits_balance_not_negative')),
    sa.PrimaryKeyConstraint('channel', name=op.f('pk_channel_credits'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sender', sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column('inline_template', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))
        batch_op.create_index('ix_messages_run_id', ['run_id'], unique=False)
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('timings', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))
    # Foreign keys that deletes and audits follow.
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.create_index('ix_activities_message_id', ['message_id'], unique=False)
        batch_op.create_index('ix_activities_ledger_id', ['ledger_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('timings')
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_index('ix_activities_ledger_id')
        batch_op.drop_index('ix_activities_message_id')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_run_id')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('inline_template')
        batch_op.drop_column('sender')

    op.drop_table('channel_credits')
