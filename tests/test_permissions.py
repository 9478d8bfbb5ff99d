"""Permissions per action: every route needs one (an unmapped route is refused), a role that
holds exactly a route's permission may call it and a role lacking only that one may not."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from engine.access.permissions import BUILT_IN, PERMISSIONS
from engine.access.roles import create_role
from engine.db import write_transaction
from engine.users import create_token, create_user
from tests.conftest import Db
from tests.webapp import PASSWORD, ok
from web.auth import PUBLIC_ENDPOINTS
from web.permissions import ENDPOINTS, LOGGED_IN, needed

SAMPLE = {"<key>": "nope", "<name>": "nope", "<ext:external_id>": "C1", "<external_id>": "C1",
          "<int(max=2147483647):version>": "1", "<int(max=2147483647):run_id>": "1",
          "<int(max=2147483647):blast_id>": "1"}
SKIP = {"HEAD", "OPTIONS"}


def routes(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, path with sample parameters) of every non-public route."""
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        path = rule.rule
        for placeholder, value in SAMPLE.items():
            path = path.replace(placeholder, value)
        assert "<" not in path, f"give {rule.rule} a sample parameter in SAMPLE"
        out += [(rule.endpoint, m, path) for m in sorted(rule.methods - SKIP)]
    return out


def user_with(db: Db, name: str, permissions: set[str] | frozenset[str]) -> dict[str, str]:
    """A user whose custom role holds exactly `permissions`, and their token's header."""
    with write_transaction(db.engine) as conn:
        create_role(conn, name, sorted(permissions))
        create_user(conn, name, name, PASSWORD)
        return {"Authorization": f"Bearer {create_token(conn, name)}"}


def call(app: Flask, method: str, path: str, headers: dict[str, str]) -> Any:
    """One request, its body read and the response closed (as a WSGI server does: a streamed
    export holds its request context until then)."""
    answer = app.test_client().open(path, method=method, headers=headers,
                                    json=None if method == "GET" else {})
    answer.get_data()
    answer.close()
    return answer


def test_every_route_is_mapped_to_a_permission(app: Flask) -> None:
    found = routes(app)
    assert len(found) >= 60
    for endpoint, method, path in found:
        permission = needed(endpoint, method)
        assert permission == LOGGED_IN or permission in PERMISSIONS, (endpoint, method, path)
    # ...and the map names no endpoint that does not exist (a typo would leave a route open
    # to nobody, and its line to rot).
    assert set(ENDPOINTS) <= {r.endpoint for r in app.url_map.iter_rules()}


def test_a_route_missing_from_the_map_is_refused(app: Flask, db: Db) -> None:
    app.add_url_rule("/api/v1/forgotten", "forgotten_api", lambda: {"secret": 1})
    app.add_url_rule("/forgotten", "forgotten_page", lambda: "secret")
    admin = {"Authorization": f"Bearer {_token(db, 'admin')}"}
    api = app.test_client().get("/api/v1/forgotten", headers=admin)
    assert ok(api, 403)["error"]["message"] == "GET /api/v1/forgotten is not open to any role"
    page = app.test_client().get("/forgotten", headers=admin)
    assert page.status_code == 403 and page.mimetype == "text/html"
    assert "secret" not in page.get_data(as_text=True)
    # Still a login first, and an unknown address is still 404.
    assert app.test_client().get("/api/v1/forgotten").status_code == 401
    assert app.test_client().get("/api/v1/nothing-here", headers=admin).status_code == 404


def _token(db: Db, user: str) -> str:
    with write_transaction(db.engine) as conn:
        return create_token(conn, user)


def test_each_route_with_and_without_its_permission(app: Flask, db: Db) -> None:
    """Table-driven over app.url_map: a role with exactly the route's permission gets past the
    gate (any answer but 401/403, never 5xx); a role with every other permission gets 403,
    naming the missing permission (JSON under /api/, the HTML error page otherwise)."""
    having = {p: user_with(db, f"only-{p}", {p}) for p in PERMISSIONS}
    lacking = {p: user_with(db, f"not-{p}", set(PERMISSIONS) - {p}) for p in PERMISSIONS}
    checked = 0
    for endpoint, method, path in routes(app):
        permission = needed(endpoint, method)
        if permission == LOGGED_IN:
            continue
        assert permission is not None
        answer = call(app, method, path, having[permission])
        assert answer.status_code not in (401, 403) and answer.status_code < 500, (
            endpoint, method, path, answer.status_code, answer.get_data(as_text=True)[:300])
        refused = call(app, method, path, lacking[permission])
        assert refused.status_code == 403, (endpoint, method, path, refused.status_code)
        text = (f"this needs the {permission} permission; your role not-{permission} does "
                "not have it")
        if path.startswith("/api/"):
            assert refused.json["error"] == {  # type: ignore[index]
                "code": "forbidden", "message": text,
                "details": [{"path": "permission", "message": permission}]}, (endpoint, method)
        else:
            assert refused.mimetype == "text/html", (endpoint, method)
            assert text in refused.get_data(as_text=True), (endpoint, method)
        checked += 1
    assert checked >= 60


def test_built_in_roles_keep_their_abilities() -> None:
    assert BUILT_IN["viewer"] == {"view", "data.export", "contacts.view"}
    assert BUILT_IN["marketer"] == BUILT_IN["viewer"] | {
        "campaigns.edit", "campaigns.run", "datasets.send", "messages.cancel", "templates.edit",
        "senders.edit", "customers.edit", "points.adjust"}
    assert BUILT_IN["admin"] == set(PERMISSIONS)


@pytest.mark.parametrize("as_", ["token", "session"])
def test_logout_needs_only_a_login(app: Flask, db: Db, as_: str) -> None:
    headers = user_with(db, "bare", {"points.adjust"})
    if as_ == "token":
        assert app.test_client().post("/logout", headers=headers).status_code == 302
        # ...and nothing else: the home page needs view.
        assert app.test_client().get("/", headers=headers).status_code == 403
        return
    from tests.webapp import session_client

    client, csrf = session_client(app, "bare")
    assert client.get("/campaigns").status_code == 403
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 302
