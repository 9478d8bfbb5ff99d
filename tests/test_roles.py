"""Custom roles: created, changed and deleted by admins (API, page, CLI); built-in roles cannot
be changed or deleted, a role in use cannot be deleted, nobody hands out more than they hold;
the migration keeps users and their tokens."""

from __future__ import annotations

import io
import json

import pytest
from alembic import command
from flask import Flask
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from engine import schema
from engine.db import write_transaction
from engine.models import ApiToken, Role, User
from engine.users import hash_token
from tests.conftest import Db
from tests.test_permissions import user_with
from tests.webapp import PASSWORD, ok, session_client, token_for


def test_custom_role_crud_through_the_api(app: Flask, db: Db) -> None:
    client, admin = app.test_client(), token_for(db, "admin")
    made = ok(client.post("/api/v1/roles", headers=admin, json={
        "name": "analyst", "permissions": ["data.export", "view"]}), 201)
    assert made == {"name": "analyst", "built_in": False, "permissions": ["view", "data.export"],
                    "users": 0}
    listed = ok(client.get("/api/v1/roles", headers=admin))
    assert [r["name"] for r in listed] == ["admin", "marketer", "viewer", "analyst"]
    assert listed[2] == {"name": "viewer", "built_in": True, "users": 1,
                         "permissions": ["view", "data.export", "contacts.view"]}
    # A user with the custom role can read and export, and nothing else.
    ok(client.post("/api/v1/users", headers=admin, json={
        "name": "ana", "role": "analyst", "password": PASSWORD}), 201)
    ana = {"Authorization": f"Bearer {_token(db, 'ana')}"}
    ok(client.get("/api/v1/campaigns", headers=ana))
    refused = ok(client.post("/api/v1/segments", headers=ana, json={}), 403)
    assert refused["error"]["message"] == ("this needs the campaigns.edit permission; your role "
                                           "analyst does not have it")
    # Changing the role changes what its users may do at once.
    changed = ok(client.put("/api/v1/roles/analyst", headers=admin,
                            json={"permissions": ["view", "campaigns.edit"]}))
    assert (changed["permissions"], changed["users"]) == (["view", "campaigns.edit"], 1)
    assert client.post("/api/v1/segments", headers=ana, json={}).status_code == 400
    # In use: not deleted; once nobody holds it, it is.
    in_use = ok(client.delete("/api/v1/roles/analyst", headers=admin), 409)
    assert in_use["error"]["message"] == ("role 'analyst' is held by 1 user(s): ana; give them "
                                          "another role first")
    assert ok(client.patch("/api/v1/users/ana", headers=admin, json={"role": "viewer"}))[
        "role"] == "viewer"
    assert client.delete("/api/v1/roles/analyst", headers=admin).status_code == 204
    assert ok(client.get("/api/v1/roles/analyst", headers=admin), 404)["error"]["message"] == \
        "no role 'analyst'"


def _token(db: Db, user: str) -> str:
    from engine.users import create_token

    with write_transaction(db.engine) as conn:
        return create_token(conn, user)


def test_built_in_roles_cannot_be_changed_or_deleted(app: Flask, db: Db) -> None:
    client, admin = app.test_client(), token_for(db, "admin")
    for name in ("viewer", "marketer", "admin"):
        changed = ok(client.put(f"/api/v1/roles/{name}", headers=admin,
                                json={"permissions": ["view"]}), 400)
        assert changed["error"]["details"] == [
            {"path": "name", "message": f"role {name!r} is built in: it cannot be changed"}]
        deleted = ok(client.delete(f"/api/v1/roles/{name}", headers=admin), 400)
        assert deleted["error"]["details"][0]["message"] == \
            f"role {name!r} is built in: it cannot be deleted"
    assert ok(client.get("/api/v1/roles/viewer", headers=admin))["permissions"] == [
        "view", "data.export", "contacts.view"]


def test_bad_roles_are_refused_with_the_field(app: Flask, db: Db) -> None:
    client, admin = app.test_client(), token_for(db, "admin")
    unknown = ok(client.post("/api/v1/roles", headers=admin, json={
        "name": "x", "permissions": ["view", "fly"]}), 400)
    assert unknown["error"]["details"][0]["path"] == "$.permissions[1]"
    empty = ok(client.post("/api/v1/roles", headers=admin, json={"name": "x",
                                                                 "permissions": []}), 400)
    assert empty["error"]["details"][0]["path"] == "$.permissions"
    bad_name = ok(client.post("/api/v1/roles", headers=admin, json={
        "name": "Big Boss", "permissions": ["view"]}), 400)
    assert bad_name["error"]["details"][0]["path"] == "$.name"
    taken = ok(client.post("/api/v1/roles", headers=admin, json={
        "name": "viewer", "permissions": ["view"]}), 409)
    assert taken["error"]["message"] == "role 'viewer' already exists"
    no_role = ok(client.post("/api/v1/users", headers=admin, json={
        "name": "bo", "role": "ghost", "password": PASSWORD}), 404)
    assert no_role["error"]["message"] == \
        "no role 'ghost' (expected one of admin, marketer, viewer)"
    assert ok(client.patch("/api/v1/users/viewer", headers=admin, json={"role": "ghost"}),
              404)["error"]["code"] == "not_found"
    assert ok(client.patch("/api/v1/users/nobody", headers=admin, json={"role": "viewer"}),
              404)["error"]["message"] == "no user 'nobody'"


def test_nobody_hands_out_more_than_they_hold(app: Flask, db: Db) -> None:
    """users.manage without settings.manage cannot make a role, or give a user a role,
    that holds settings.manage."""
    client = app.test_client()
    keeper = user_with(db, "keeper", {"users.manage", "view"})
    refused = ok(client.post("/api/v1/roles", headers=keeper, json={
        "name": "boss", "permissions": ["settings.manage"]}), 403)
    assert refused["error"]["details"] == [{"path": "permission", "message": "settings.manage"}]
    promote = ok(client.patch("/api/v1/users/keeper", headers=keeper, json={"role": "admin"}),
                 403)
    assert promote["error"]["details"][0]["message"] == "campaigns.edit"
    ok(client.post("/api/v1/users", headers=keeper, json={
        "name": "new-viewer", "role": "keeper", "password": PASSWORD}), 201)
    with db.engine.connect() as conn:
        assert conn.execute(select(User.role).where(User.name == "keeper")).scalar() == "keeper"


def test_roles_page_lists_permissions_and_forms(app: Flask, db: Db) -> None:
    user_with(db, "analyst", {"view", "data.export"})
    client, _ = session_client(app, "admin")
    page = ok(client.get("/roles"))
    assert 'data-api-url="/api/v1/roles/analyst"' in page  # change and delete forms
    assert 'data-api-url="/api/v1/roles/viewer"' not in page  # built in: no forms
    assert page.count('name="permissions" value="contacts.view" data-list') == 2
    users = ok(client.get("/users"))
    assert "<option>analyst</option>" in users and 'href="/roles"' in users
    marketer, _ = session_client(app, "marketer")
    assert marketer.get("/roles").status_code == 403


def test_role_cli(nf, db: Db, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    made = nf("role", "create", "analyst", "--permissions", "view, data.export")
    assert (made.code, made.out) == (0, "role analyst created: view, data.export\n")
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert nf("user", "create", "ana", "--role", "analyst").out == "user ana created (analyst)\n"
    listed = json.loads(nf("role", "list", "--json").out)
    assert listed[-1] == {"name": "analyst", "built_in": False, "users": 1,
                          "permissions": ["view", "data.export"]}
    assert nf("role", "list").out.splitlines()[-1] == \
        "analyst (custom, 1 user(s)): view, data.export"
    bad = nf("role", "create", "x", "--permissions", "view,fly")
    assert bad.code == 2 and bad.err.splitlines()[1:] == [
        "--permissions: unknown permission 'fly' (expected one of view, campaigns.edit, "
        "campaigns.run, datasets.send, messages.cancel, templates.edit, senders.edit, "
        "data.export, contacts.view, customers.edit, settings.manage, users.manage, "
        "points.adjust)"]
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    ghost = nf("user", "create", "bo", "--role", "ghost")
    assert ghost.code == 2 and ghost.err.splitlines()[1:] == [
        "--role: unknown role 'ghost' (expected one of admin, marketer, viewer, analyst)"]
    assert nf("role", "set", "admin", "--permissions", "view").code == 2
    assert nf("role", "delete", "analyst").err == (
        "error: role 'analyst' is held by 1 user(s): ana; give them another role first\n")
    assert nf("user", "set-role", "ana", "viewer").out == "user ana is now viewer\n"
    assert nf("role", "set", "analyst", "--permissions", "view").out == "role analyst: view\n"
    assert nf("role", "delete", "analyst").out == "role analyst deleted\n"
    with db.engine.connect() as conn:
        assert conn.execute(select(Role.name).where(Role.name == "analyst")).first() is None


def test_a_role_in_use_is_protected_by_the_database(db: Db) -> None:
    with write_transaction(db.engine) as conn:
        conn.execute(insert(Role).values(name="temp", permissions=["view"], built_in=False))
        conn.execute(insert(User).values(name="t", role="temp", password_hash="x"))
    with pytest.raises(IntegrityError), db.engine.begin() as conn:
        conn.execute(delete(Role).where(Role.name == "temp"))
    with pytest.raises(IntegrityError), db.engine.begin() as conn:
        conn.execute(insert(User).values(name="u", role="nope", password_hash="x"))


def test_migration_keeps_users_and_their_tokens(empty_db: Db) -> None:
    """0012 rebuilds `users` on SQLite; the API tokens (ON DELETE CASCADE) must survive."""
    engine = empty_db.engine
    cfg = schema.alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0009")
    with engine.begin() as conn:
        conn.execute(insert(User.__table__).values(name="ana", role="marketer",
                                                   password_hash="x"))
        uid = conn.execute(select(User.id)).scalar_one()
        conn.execute(insert(ApiToken.__table__).values(user_id=uid, token_hash=hash_token("t")))
    schema.upgrade(engine)
    schema.check(engine)
    with engine.connect() as conn:
        assert conn.execute(select(User.name, User.role)).one() == ("ana", "marketer")
        assert conn.execute(select(ApiToken.token_hash)).scalars().all() == [hash_token("t")]
        assert conn.execute(select(Role.name).where(Role.built_in).order_by(Role.name)
                            ).scalars().all() == ["admin", "marketer", "viewer"]
