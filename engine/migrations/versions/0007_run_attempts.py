"""run attempts: each attempt at a (campaign, date) keeps its figures; skipped dates

- runs.attempts: every attempt, oldest first, with its own counts, status and error; a re-run
  no longer overwrites what the first run did. Existing runs become their one attempt.
- runs.status may be `skipped`: a date beyond NUDGEFLOW_CATCHUP_DAYS that the scheduler will
  not run, with the reason in runs.error.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
RUNS = sa.table('runs', sa.column('id', sa.Integer()), sa.column('version', sa.Integer()),
                sa.column('status', sa.String()), sa.column('counts', JSON),
                sa.column('error', sa.Text()), sa.column('started_at', sa.DateTime()),
                sa.column('finished_at', sa.DateTime()), sa.column('attempts', JSON))


def _stamp(value: object) -> object:
    return value.isoformat() if hasattr(value, 'isoformat') else value


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempts', JSON, nullable=True))
    conn = op.get_bind()
    for row in conn.execute(sa.select(RUNS)).all():
        attempt = {'attempt': 1, 'version': row.version, 'status': row.status,
                   'started_at': _stamp(row.started_at), 'finished_at': _stamp(row.finished_at),
                   'counts': row.counts or {}, 'error': row.error}
        conn.execute(sa.update(RUNS).where(RUNS.c.id == row.id).values(attempts=[attempt]))
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.alter_column('attempts', existing_type=JSON, nullable=False)
        batch_op.drop_constraint(op.f('ck_runs_status'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_runs_status'), sa.text("status IN ('running', 'completed', 'failed', 'skipped')"))


def downgrade() -> None:
    op.execute("DELETE FROM runs WHERE status = 'skipped'")
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_runs_status'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_runs_status'), sa.text("status IN ('running', 'completed', 'failed')"))
        batch_op.drop_column('attempts')
