"""claim index: (status, send_after, id), so a claim reads its batch in index order

The dispatcher takes due messages by (send_after, id). With the id in the index, PostgreSQL
reads the first batch of a queue of any length straight from the index instead of sorting
every due message for each batch.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
from __future__ import annotations

from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_status_send_after')
        batch_op.create_index('ix_messages_status_send_after_id', ['status', 'send_after', 'id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_status_send_after_id')
        batch_op.create_index('ix_messages_status_send_after', ['status', 'send_after'],
                              unique=False)
