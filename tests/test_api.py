"""The JSON API: every route times every role, the token acceptance flow, CSRF, errors."""

from __future__ import annotations

import copy
import re
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from engine.access.permissions import BUILT_IN
from engine.db import write_transaction
from engine.models import LoginFailure, Message, Template
from tests.campaign_docs import BIRTHDAY, SEGMENTS, TEMPLATES
from tests.conftest import Db
from tests.webapp import PASSWORD, ROLES, birthday_run, ok, session_client, token_for
from web.permissions import needed


def api_routes(app: Flask) -> list[tuple[str, str, str]]:
    fill = {"<key>": "birthday-bonus", "<ext:external_id>": "C1",
            "<int(max=2147483647):version>": "1", "<int(max=2147483647):run_id>": "1",
            "<int(max=2147483647):blast_id>": "1", "<name>": "some-set"}
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        path = rule.rule
        for placeholder, value in fill.items():
            path = path.replace(placeholder, value)
        assert "<" not in path, f"give {rule.rule} a sample parameter"
        out += [(m, path, rule.endpoint) for m in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return out


def call(client: FlaskClient, method: str, path: str, headers: dict[str, str]) -> Any:
    return client.open(path, method=method, headers=headers, json={} if method != "GET" else None)


def test_every_route_times_every_role(app: Flask, db: Db) -> None:
    routes = api_routes(app)
    assert len(routes) >= 25
    anonymous = app.test_client()
    tokens = {role: token_for(db, role) for role in ROLES}
    for method, path, endpoint in routes:
        answer = call(anonymous, method, path, {})
        assert ok(answer, 401)["error"]["code"] == "unauthorized", (method, path)
        for role in ROLES:
            status = call(app.test_client(), method, path, tokens[role]).status_code
            if needed(endpoint, method) not in BUILT_IN[role]:
                assert status == 403, (role, method, path, status)
            else:
                assert status not in (401, 403) and status < 500, (role, method, path, status)


def test_acceptance_with_a_token(app: Flask, db: Db) -> None:
    client, auth = app.test_client(), token_for(db, "marketer")
    ok(client.post("/api/v1/segments", json=SEGMENTS[0], headers=auth), 201)
    for template in TEMPLATES:
        ok(client.post("/api/v1/templates", json=template, headers=auth), 201)
    created = ok(client.post("/api/v1/campaigns", json=BIRTHDAY, headers=auth), 201)
    assert created["version"] == 1
    preview = ok(client.post("/api/v1/campaigns/birthday-bonus/preview",
                             json={"date": "2025-03-10"}, headers=auth))
    assert preview["counts"]["a"] == {"passed": 1}
    assert [s["external_id"] for s in preview["sample"]] == ["C1"]
    ran = ok(client.post("/api/v1/campaigns/birthday-bonus/run", json={"date": "2025-03-10"},
                         headers=auth))
    assert ran["status"] == "completed"
    assert ran["counts"]["a"] == {"awarded": 1, "passed": 1}
    timeline = ok(client.get("/api/v1/customers/C1/activity", headers=auth))
    assert [a["kind"] for a in timeline] == ["bonus_awarded", "message_queued"]
    balance = ok(client.get("/api/v1/customers/C1/balance?date=2025-03-11", headers=auth))
    assert (balance["available"], balance["entries"][0]["expires_at"]) == (100, "2025-04-09")
    runs = ok(client.get("/api/v1/runs", headers=auth))
    assert [(r["campaign"], r["status"]) for r in runs] == [("birthday-bonus", "completed")]
    # Each save is a version; the versions can be listed and fetched.
    changed = {**BIRTHDAY, "graph": {**BIRTHDAY["graph"], "edges": BIRTHDAY["graph"]["edges"]}}
    changed["graph"]["nodes"] = [dict(n) for n in BIRTHDAY["graph"]["nodes"]]
    changed["graph"]["nodes"][2] = {**changed["graph"]["nodes"][2],
                                    "config": {"amount": 150, "lifetime_days": 30}}
    assert ok(client.put("/api/v1/campaigns/birthday-bonus", json=changed,
                         headers=auth))["version"] == 2
    versions = ok(client.get("/api/v1/campaigns/birthday-bonus/versions", headers=auth))
    assert [v["version"] for v in versions] == [1, 2]
    assert ok(client.get("/api/v1/campaigns/birthday-bonus/versions/2",
                         headers=auth))["graph"]["nodes"][2]["config"]["amount"] == 150
    assert ok(client.post("/api/v1/campaigns/birthday-bonus/pause",
                          headers=auth))["status"] == "paused"


def test_errors_name_the_field_or_node(app: Flask, db: Db) -> None:
    client, auth = app.test_client(), token_for(db, "marketer")
    ok(client.post("/api/v1/segments", json=SEGMENTS[0], headers=auth), 201)
    evil = client.post("/api/v1/templates", headers=auth, json={
        "key": "evil", "channel": "sms", "body": "{{ ''.__class__.__mro__ }}"})
    assert ok(evil, 400)["error"]["details"] == [
        {"path": "$.body", "message": "line 1: access to private attribute '__class__' is not "
                                     "allowed"},
        {"path": "$.body", "message": "line 1: access to private attribute '__mro__' is not "
                                     "allowed"}]
    bad = dict(BIRTHDAY, graph={**BIRTHDAY["graph"], "edges": [["t", "s"]]})
    answer = ok(client.post("/api/v1/campaigns/validate", json=bad, headers=auth), 400)
    assert {"path": "$.graph.nodes[2]",
            "message": "node 'a' (Award bonus): not connected to the trigger"} \
        in answer["error"]["details"]
    # A config error names the node and the field in its message too, so it reads whole
    # wherever it is shown (the editor puts it on the node).
    nodes = copy.deepcopy(BIRTHDAY["graph"]["nodes"])
    nodes[3]["config"]["template"] = ""
    empty = ok(client.post("/api/v1/campaigns/validate", headers=auth,
                           json=dict(BIRTHDAY, graph={**BIRTHDAY["graph"], "nodes": nodes})), 400)
    assert empty["error"]["details"] == [
        {"path": "$.graph.nodes[3].config.template",
         "message": "node 'm' (Send message): template: required: choose a template"}]
    strict = ok(client.post("/api/v1/segments/preview", headers=auth,
                            json={"rules": {"all": []}, "limit": 2.5}), 400)
    assert strict["error"]["details"][0]["path"] == "$.limit"
    missing = ok(client.get("/api/v1/campaigns/nope", headers=auth), 404)
    assert missing["error"]["message"] == "no campaign 'nope'"
    not_an_object = ok(client.put("/api/v1/customers/C1", json=["first_name"], headers=auth),
                       400)
    assert not_an_object["error"]["details"][0]["path"] == "$"
    for padded in ("%20C1", "C1%20", "%1C", "C1%09"):  # imports strip: this is not C1
        missing = ok(client.put(f"/api/v1/customers/{padded}", json={"first_name": "X"},
                                headers=auth), 404)
        assert missing["error"]["code"] == "not_found"
    assert ok(client.get("/api/v1/customers/C1", headers=auth))["first_name"] == "<b>Ana</b>"
    taken = ok(client.post("/api/v1/users", headers=token_for(db, "admin"), json={
        "name": "viewer", "role": "viewer", "password": PASSWORD}), 409)
    assert taken["error"] == {"code": "already_exists", "details": [],
                              "message": "user 'viewer' already exists"}


def test_session_writes_need_the_csrf_token(app: Flask) -> None:
    client, csrf = session_client(app, "marketer")
    assert ok(client.get("/api/v1/segments")) == []
    refused = client.post("/api/v1/segments", json=SEGMENTS[0])
    assert ok(refused, 400)["error"]["code"] == "csrf"
    accepted = client.post("/api/v1/segments", json=SEGMENTS[0], headers={"X-CSRFToken": csrf})
    assert ok(accepted, 201)["key"] == "member-1y"


def test_failed_logins_are_limited_across_processes(app: Flask, db: Db) -> None:
    """Five failures per (name, address) in 15 minutes, counted in the database: two web
    processes (two apps here) share the count."""
    from engine.config import Settings
    from web import create_app

    other = create_app({"NUDGEFLOW_SETTINGS": Settings(database_url=db.url, secret_key="k"),
                        "TESTING": True})
    clients = []
    for instance in (app, other):
        client = instance.test_client()
        page = ok(client.get("/login"))
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]  # type: ignore[index]
        clients.append((client, csrf))

    def attempt(i: int, password: str = "wrong") -> int:
        client, csrf = clients[i % 2]
        return int(client.post("/login", data={"name": "admin", "password": password,
                                               "csrf_token": csrf}).status_code)

    assert [attempt(i) for i in range(6)] == [401] * 5 + [429]
    assert attempt(7, PASSWORD) == 429          # even the right password waits
    assert attempt(0, PASSWORD) == 429
    with write_transaction(db.engine) as conn:   # the window passes
        conn.execute(update(LoginFailure).values(at=LoginFailure.at - timedelta(minutes=16)))
    assert attempt(1, PASSWORD) == 302
    other.extensions["nudgeflow_engine"].dispose()


def test_openapi_describes_every_route(app: Flask, db: Db) -> None:
    spec = ok(app.test_client().get("/api/v1/openapi.json", headers=token_for(db, "viewer")))
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    served = {(m, re.sub(r"<(?:(?:int|ext)(?:\(.*?\))?:)?(\w+)>", r"{\1}", p)) for m, p in
              [(m, r.rule) for r in app.url_map.iter_rules() if r.rule.startswith("/api/v1/")
               and "openapi" not in r.rule for m in r.methods - {"HEAD", "OPTIONS"}]}
    assert served <= documented
    [external_id] = spec["paths"]["/api/v1/customers/{external_id}"]["parameters"]
    assert external_id["schema"] == {"type": "string", "pattern": r"^[^\s/](?:[^/]*[^\s/])?$"}
    assert spec["components"]["schemas"]["Error"]["properties"]["error"] == {
        "$ref": "#/components/schemas/ErrorBody"}


def test_records_messages_and_admin(app: Flask, db: Db) -> None:
    client = app.test_client()
    marketer, admin, viewer = (token_for(db, r) for r in ("marketer", "admin", "viewer"))
    bulk = client.post("/api/v1/customers/bulk", headers=marketer, json={"records": [
        {"external_id": "B1", "first_name": "Bo", "phone": "082 123 4567"},
        {"external_id": "B2", "birth_date": "1990-13-01"},
        {"external_id": "B1"}]})
    assert ok(bulk, 400)["error"]["details"] == [
        {"path": "$[1]", "message": "birth_date: expected an ISO date (YYYY-MM-DD), got "
                                    "'1990-13-01'"},
        {"path": "$[2]", "message": "external_id: 'B1' already appears on $[0]"}]
    assert ok(client.get("/api/v1/customers?q=bo", headers=viewer))["total"] == 0
    done = ok(client.post("/api/v1/customers/bulk", headers=marketer, json={"records": [
        {"external_id": "B1", "first_name": "Bo", "phone": "082 123 4567"}]}))
    assert done == {"kind": "customers", "rows": 1, "inserted": 1, "updated": 0, "unchanged": 0,
                    "warnings": {"phones had no country code and were read as ZA numbers": 1}}
    one = ok(client.put("/api/v1/customers/B1", headers=marketer, json={"last_name": "Li"}))
    assert one["updated"] == 1
    got = ok(client.get("/api/v1/customers/B1", headers=viewer))
    assert (got["first_name"], got["last_name"], got["phone"]) == ("Bo", "Li", "+27821234567")
    invoice = ok(client.put("/api/v1/invoices/I1", headers=marketer, json={
        "customer_external_id": "B1", "amount": "10.50", "due_date": "2026-01-31"}))
    assert invoice["inserted"] == 1
    # Settings, credits, users and tokens are the admin's.
    refused = ok(client.put("/api/v1/settings", headers=marketer,
                            json={"consent_mode": "ignore"}), 403)
    assert refused["error"]["code"] == "forbidden"
    assert ok(client.put("/api/v1/settings", headers=admin,
                         json={"consent_mode": "ignore"}))["consent_mode"] == "ignore"
    assert ok(client.get("/api/v1/settings", headers=admin))["consent_mode"] == "ignore"
    assert ok(client.post("/api/v1/settings/credits", headers=admin,
                          json={"channel": "sms", "units": 50})) == {"email": None, "sms": 50}
    made = ok(client.post("/api/v1/users", headers=admin, json={
        "name": "zoe", "role": "viewer", "password": PASSWORD}), 201)
    assert (made["name"], made["role"]) == ("zoe", "viewer") and "password" not in made
    assert [u["name"] for u in ok(client.get("/api/v1/users", headers=admin))] == [
        "admin", "marketer", "viewer", "zoe"]
    token = ok(client.post("/api/v1/tokens", headers=admin, json={"user": "zoe"}), 201)["token"]
    assert ok(client.get("/api/v1/runs", headers={"Authorization": f"Bearer {token}"})) == []


def test_run_export_streams_csv(app: Flask, db: Db) -> None:
    client, auth = app.test_client(), token_for(db, "marketer")
    birthday_run(client, auth)
    [run] = ok(client.get("/api/v1/runs", headers=auth))
    assert ok(client.get(f"/api/v1/runs/{run['id']}", headers=auth))["id"] == run["id"]
    answer = client.get(f"/api/v1/runs/{run['id']}/export.csv", headers=auth)
    lines = ok(answer).splitlines()
    assert answer.mimetype == "text/csv"
    assert lines[0] == ("external_id,first_name,last_name,node_id,occurrence,effect,channel,"
                        "status,skip_reason,points,expires_at")
    assert sorted(lines[1:]) == [
        "C1,<b>Ana</b>,,a,2025-03-10,bonus,,awarded,,100,2025-04-09",
        "C1,<b>Ana</b>,,m,2025-03-10,message,sms,queued,,,",
    ]
    cancelled = ok(client.post("/api/v1/messages/cancel", headers=auth,
                               json={"campaign": "birthday-bonus"}))
    assert cancelled == {"count": 1, "on_their_way": 0}
    assert [m["status"] for m in ok(client.get("/api/v1/messages?campaign=birthday-bonus",
                                               headers=auth))] == ["cancelled"]
    missing = ok(client.get(f"/api/v1/runs/{run['id'] + 1}/export.csv", headers=auth), 404)
    assert missing["error"]["message"] == f"no run {run['id'] + 1}"


def test_template_preview_activity_filters_and_segment_export(app: Flask, db: Db) -> None:
    client, auth = app.test_client(), token_for(db, "marketer")
    ok(client.post("/api/v1/templates", headers=auth, json={
        "key": "hello", "channel": "sms", "transliterate": True,
        "body": "Labas {{ customer.first_name }}! Jūsų {{ bonus.amount }} taškų."}), 201)
    preview = ok(client.post("/api/v1/templates/hello/preview", headers=auth,
                             json={"customer": "C1"}))
    assert preview == {"subject": None, "body": "Labas <b>Ana</b>! Jusu 100 tasku.",
                       "sms_encoding": "gsm7", "sms_parts": 1, "characters": 33}
    missing = ok(client.post("/api/v1/templates/hello/preview", headers=auth,
                             json={"customer": "nobody"}), 404)
    assert missing["error"]["message"] == "no customer with external_id 'nobody'"
    birthday_run(client, auth)
    url = "/api/v1/customers/C1/activity"
    assert [a["kind"] for a in ok(client.get(f"{url}?kind=bonus_awarded", headers=auth))] == [
        "bonus_awarded"]
    assert len(ok(client.get(f"{url}?campaign=birthday-bonus", headers=auth))) == 2
    assert ok(client.get(f"{url}?campaign=other", headers=auth)) == []
    assert ok(client.get(f"{url}?until=2000-01-01", headers=auth)) == []
    assert [a["kind"] for a in ok(client.get(f"{url}?limit=1&offset=1", headers=auth))] == [
        "message_queued"]
    export = client.get("/api/v1/segments/member-1y/export.csv?date=2025-03-10", headers=auth)
    assert ok(export).splitlines() == [
        "external_id,first_name,last_name,email,phone", "C1,<b>Ana</b>,,,+27821234567"]


def test_home_page_and_logout_for_every_role(app: Flask) -> None:
    anonymous = app.test_client().get("/")
    assert anonymous.status_code == 302 and anonymous.headers["Location"] == "/login?next=/"
    for role in ROLES:
        client, csrf = session_client(app, role)
        home = client.get("/")
        assert home.status_code == 302 and home.headers["Location"] == "/campaigns"
        page = ok(client.get("/campaigns"))
        assert f"Logged in as <strong>{role}</strong> ({role})" in page
        assert client.post("/logout", data={"csrf_token": csrf}).status_code == 302
        assert client.get("/").status_code == 302
        assert ok(client.get("/api/v1/campaigns"), 401)["error"]["code"] == "unauthorized"


def test_a_segment_or_template_still_needed_is_not_deleted(app: Flask, db: Db) -> None:
    client, auth = app.test_client(), token_for(db, "marketer")
    birthday_run(client, auth)  # uses member-1y and bday-sms; Ana's SMS waits until 09:00
    segment = client.delete("/api/v1/segments/member-1y", headers=auth)
    assert ok(segment, 409)["error"] == {
        "code": "in_use", "details": [],
        "message": "segment 'member-1y' is still used by campaign 'birthday-bonus'"}
    template = client.delete("/api/v1/templates/bday-sms", headers=auth)
    assert ok(template, 409)["error"]["message"] == (
        "template 'bday-sms' is still used by campaign 'birthday-bonus', "
        "1 message(s) waiting to be sent")
    assert ok(client.get("/api/v1/segments/member-1y", headers=auth))["key"] == "member-1y"
    ok(client.post("/api/v1/campaigns/birthday-bonus/archive", headers=auth))
    assert client.delete("/api/v1/segments/member-1y", headers=auth).status_code == 204
    ok(client.get("/api/v1/segments/member-1y", headers=auth), 404)
    ok(client.delete("/api/v1/templates/bday-sms", headers=auth), 409)
    cancelled = ok(client.post("/api/v1/messages/cancel", json={"campaign": "birthday-bonus"},
                               headers=auth))
    assert cancelled == {"count": 1, "on_their_way": 0}
    with db.engine.connect() as conn:
        template_id = conn.execute(select(Template.id).where(Template.key == "bday-sms")
                                   ).scalar_one()
        kept = conn.execute(select(Message.id, Message.status).where(
            Message.template_id == template_id)).all()
    assert kept and {status for _, status in kept} == {"cancelled"}
    assert client.delete("/api/v1/templates/bday-sms", headers=auth).status_code == 204
    ok(client.get("/api/v1/templates/bday-sms", headers=auth), 404)
    with db.engine.connect() as conn:  # the messages stay, no longer pointing at it
        after = conn.execute(select(Message.id, Message.template_id).where(
            Message.id.in_([m for m, _ in kept]))).all()
    assert sorted(after) == sorted((m, None) for m, _ in kept)
