"""log references: messages and activities without foreign keys

A daily run writes hundreds of thousands of messages and activities; each foreign key checked
its parent row on every insert (on PostgreSQL a trigger and a row lock per key and row: 10 of
the 31 s of a run at 1M customers). Their parents are never deleted under them (customers,
campaigns and runs are not deleted; a template only with no message waiting, and that clears
the reference; prune removes a message's activities with it), so the keys are dropped and the
columns kept, with their indexes.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""
from __future__ import annotations

from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

KEYS = {
    'messages': [('campaign_id', 'campaigns', 'CASCADE'), ('customer_id', 'customers', 'CASCADE'),
                 ('run_id', 'runs', 'SET NULL'), ('invoice_id', 'invoices', 'SET NULL'),
                 ('template_id', 'templates', 'SET NULL')],
    'activities': [('customer_id', 'customers', 'CASCADE'), ('campaign_id', 'campaigns', 'SET NULL'),
                   ('run_id', 'runs', 'SET NULL'), ('message_id', 'messages', 'SET NULL'),
                   ('ledger_id', 'bonus_ledger', 'SET NULL')],
}


def _name(table: str, column: str, parent: str) -> str:
    return f'fk_{table}_{column}_{parent}'


def upgrade() -> None:
    # activities first: on SQLite its rebuild must not find messages half rebuilt
    for table in ('activities', 'messages'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, parent, _ in KEYS[table]:
                batch_op.drop_constraint(_name(table, column, parent), type_='foreignkey')


def downgrade() -> None:
    for table in ('messages', 'activities'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, parent, action in KEYS[table]:
                batch_op.create_foreign_key(_name(table, column, parent), parent, [column], ['id'],
                                            ondelete=action)
