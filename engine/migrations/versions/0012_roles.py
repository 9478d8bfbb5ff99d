"""roles: named sets of permissions; users.role refers to one

- roles: name, permissions (JSON list), built_in; the built-in viewer, marketer and admin rows
  (their permissions are refreshed from the code by `nudgeflow init`, engine.access.roles).
- users.role: up to 50 characters, a reference to roles.name (RESTRICT: a role in use cannot be
  deleted) instead of the check for the three built-in names.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""
from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
VIEWER = ["view", "data.export", "contacts.view"]
MARKETER = [*VIEWER, "campaigns.edit", "campaigns.run", "datasets.send", "messages.cancel",
            "templates.edit", "senders.edit", "customers.edit"]
ADMIN = ["view", "campaigns.edit", "campaigns.run", "datasets.send", "messages.cancel",
         "templates.edit", "senders.edit", "data.export", "contacts.view", "customers.edit",
         "settings.manage", "users.manage", "points.adjust"]


def upgrade() -> None:
    roles = op.create_table('roles',
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('permissions', JSON, nullable=False),
    sa.Column('built_in', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_roles'))
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    op.bulk_insert(roles, [
        {"name": name, "permissions": perms, "built_in": True, "created_at": now}
        for name, perms in (("viewer", VIEWER), ("marketer", MARKETER), ("admin", ADMIN))])
    _alter_users(lambda batch_op: (
        batch_op.drop_constraint(op.f('ck_users_role'), type_='check'),
        batch_op.alter_column('role', existing_type=sa.String(length=10),
                              type_=sa.String(length=50), existing_nullable=False),
        batch_op.create_foreign_key(op.f('fk_users_role_roles'), 'roles', ['role'], ['name'],
                                    ondelete='RESTRICT')))


def _alter_users(change) -> None:  # type: ignore[no-untyped-def]
    """On SQLite, batch mode rebuilds `users` (copy, drop, rename); with foreign keys on, the
    drop deletes every API token through ON DELETE CASCADE, so they are put back after."""
    bind = op.get_bind()
    tokens = sa.table('api_tokens', sa.column('id'), sa.column('user_id'),
                      sa.column('token_hash'), sa.column('name'), sa.column('created_at'),
                      sa.column('last_used_at'))
    kept = ([dict(r._mapping) for r in bind.execute(sa.select(tokens))]
            if bind.dialect.name == 'sqlite' else [])
    with op.batch_alter_table('users', schema=None) as batch_op:
        change(batch_op)
    if kept and bind.execute(sa.select(sa.func.count()).select_from(tokens)).scalar_one() == 0:
        bind.execute(sa.insert(tokens), kept)


def downgrade() -> None:
    _alter_users(lambda batch_op: (
        batch_op.drop_constraint(op.f('fk_users_role_roles'), type_='foreignkey'),
        batch_op.alter_column('role', existing_type=sa.String(length=50),
                              type_=sa.String(length=10), existing_nullable=False),
        batch_op.create_check_constraint('role', "role IN ('admin', 'marketer', 'viewer')")))
    op.drop_table('roles')
