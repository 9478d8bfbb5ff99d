"""partial indexes: what no query looks up is not indexed

- The claim index (status, send_after, id) leaves out, on PostgreSQL, the two statuses that
  make up nearly every row and that no claim reads: `sent` and `skipped`. A message recorded
  sent then gets no new entry there, and PostgreSQL's claim reads a smaller index. (SQLite
  uses a partial index only for queries that repeat its condition word for word, so there the
  index stays whole.)
- activities.ledger_id is set only on bonus activities; the index leaves out the NULLs of
  every message activity.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

WAITING = sa.text("status IN ('queued', 'sending', 'held', 'failed', 'cancelled')")


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_status_send_after_id')
        batch_op.create_index('ix_messages_status_send_after_id', ['status', 'send_after', 'id'],
                              unique=False, postgresql_where=WAITING)
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_index('ix_activities_ledger_id')
        batch_op.create_index('ix_activities_ledger_id', ['ledger_id'], unique=False,
                              postgresql_where=sa.text('ledger_id IS NOT NULL'),
                              sqlite_where=sa.text('ledger_id IS NOT NULL'))


def downgrade() -> None:
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_index('ix_activities_ledger_id')
        batch_op.create_index('ix_activities_ledger_id', ['ledger_id'], unique=False)
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_status_send_after_id')
        batch_op.create_index('ix_messages_status_send_after_id', ['status', 'send_after', 'id'],
                              unique=False)
