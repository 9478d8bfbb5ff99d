"""Blasts from outside: the API (status codes, idempotency, named errors, STOP) and the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select

from engine.models import Customer, Message
from engine.models.base import utcnow
from tests.conftest import Db
from tests.test_blasts import DAY, messages, sent_to, ws  # noqa: F401  (the fixture)
from tests.webapp import ok, token_for

BODY = {"segment": "past-due", "date": DAY.isoformat(), "template": "overdue"}


def test_api_blast_reaches_the_chosen_rows_once(ws: Db, app: Flask) -> None:  # noqa: F811
    client, auth = app.test_client(), token_for(ws, "marketer")
    once = {**auth, "Idempotency-Key": "form-123"}
    body = {**BODY, "customers": ["A1", "A2"], "send_at": {"mode": "now"}}
    made = ok(client.post("/api/v1/blasts", json=body, headers=once), 201)
    assert (made["key"], made["selection"], made["requested"]) == (
        f"blast-{made['id']}", "list", 2)
    assert made["counts"] == {"recipients": 2, "queued": 2, "skipped": {}}
    assert made["created_by"] == "marketer" and made["template"] == "overdue"
    again = ok(client.post("/api/v1/blasts", json=body, headers=once), 200)
    assert again["id"] == made["id"]
    other = client.post("/api/v1/blasts", json={**body, "customers": ["A3"]}, headers=once)
    assert other.status_code == 409
    assert other.json["error"]["code"] == "idempotency_conflict"
    assert sorted(m.to for m in sent_to(ws, utcnow()).sent) == [
        "ana@example.com", "ben@example.com"]
    assert ok(client.get(f"/api/v1/blasts/{made['id']}", headers=auth))["messages"] == {"sent": 2}
    listed = ok(client.get("/api/v1/blasts", headers=auth))
    assert [b["id"] for b in listed] == [made["id"]]
    runs = ok(client.get(f"/api/v1/runs?campaign={made['key']}", headers=auth))
    assert [(r["campaign"], r["counts"]["send"]["queued"]) for r in runs] == [(made["key"], 2)]
    assert ok(client.get("/api/v1/campaigns", headers=auth)) == []
    assert client.post(f"/api/v1/campaigns/{made['key']}/run", json={},
                       headers=auth).status_code == 404


def _error(answer: Any, status: int) -> list[str]:
    assert answer.status_code == status, answer.get_data(as_text=True)
    return [f"{d['path']}: {d['message']}" for d in answer.json["error"]["details"]]


def test_api_errors_name_the_field(ws: Db, app: Flask) -> None:  # noqa: F811
    client, auth = app.test_client(), token_for(ws, "marketer")

    def post(**kw: Any) -> list[str]:
        return _error(client.post("/api/v1/blasts", json={**BODY, **kw}, headers=auth), 400)

    assert post(customers=["A1"], template="nope") == ["$.template: unknown template 'nope'"]
    assert post(customers=["A1", "ghost"]) == ["$.customers[1]: unknown customer 'ghost'"]
    assert post(customers=["A1"], date="3000-01-01") == [
        "$.date: expected a date from 1900-01-01 to 2999-12-31, got 3000-01-01"]
    assert post(customers=[])[0].startswith("$.customers: empty selection")
    assert post(customers=["B1"])[0].startswith("$.customers: empty selection: none of the 1")
    assert post(customers=["A1"], segment="nope") == ["$.segment: unknown segment 'nope'"]
    assert messages(ws) == []


def test_preview_permissions_and_stop(ws: Db, app: Flask) -> None:  # noqa: F811
    client = app.test_client()
    viewer, marketer = token_for(ws, "viewer"), token_for(ws, "marketer")
    body = {**BODY, "all": True, "send_at": {"mode": "delay", "hours": 2}}
    preview = ok(client.post("/api/v1/blasts/preview", json=body, headers=marketer))
    assert preview["counts"] == {"recipients": 5, "queued": 3,
                                 "skipped": {"no_marketing_consent": 1, "opted_out": 1}}
    assert messages(ws) == []
    assert client.post("/api/v1/blasts", json=body, headers=viewer).status_code == 403
    made = ok(client.post("/api/v1/blasts", json=body, headers=marketer), 201)
    assert client.post(f"/api/v1/blasts/{made['id']}/stop", headers=viewer).status_code == 403
    stopped = ok(client.post(f"/api/v1/blasts/{made['id']}/stop", headers=marketer))
    assert stopped == {"count": 3, "on_their_way": 0}
    assert sorted(s for _, s, _ in messages(ws)) == ["cancelled"] * 3 + ["skipped"] * 2
    assert client.get("/api/v1/blasts/999", headers=viewer).status_code == 404
    spec = ok(client.get("/api/v1/openapi.json", headers=viewer))
    assert {"/api/v1/blasts", "/api/v1/blasts/preview", "/api/v1/blasts/{blast_id}",
            "/api/v1/blasts/{blast_id}/stop"} <= set(spec["paths"])


def test_cli_blast_and_blasts(ws: Db, nf: Any, tmp_path: Path) -> None:  # noqa: F811
    chosen = tmp_path / "rows.csv"
    chosen.write_text("external_id,first_name\nA1,Ana\nB1,Fay\n")
    args = ["blast", "past-due", "--template", "overdue", "--date", DAY.isoformat()]
    dry = nf(*args, "--customers-file", str(chosen), "--dry-run")
    assert dry.code == 0, dry.err
    assert dry.out.splitlines()[0] == (
        "dry run, nothing written: 2 listed; 1 in the data set as of 2025-06-02; queued 1")
    assert messages(ws) == []
    made = nf(*args, "--customers-file", str(chosen), "--token", "t1", "--in", "2")
    assert made.code == 0, made.err
    lines = made.out.splitlines()
    key = lines[0].split()[0]
    assert lines == [
        f"{key} created: 2 listed; 1 in the data set as of 2025-06-02; queued 1",
        "not in the data set as of 2025-06-02, not sent: B1",
        f"stop it with: nudgeflow messages cancel --campaign {key}"]
    again = nf(*args, "--customers-file", str(chosen), "--token", "t1", "--in", "2")
    assert again.out.splitlines()[0].startswith(f"{key} already made with this token")
    listed = nf("blasts")
    assert listed.out.splitlines() == [
        f"{key} 2025-06-02 past-due overdue marketing: 2 listed; 1 in the data set as of "
        "2025-06-02; queued 1; messages: queued 1"]
    bad = nf(*args, "--customers", "A1,ghost")
    assert (bad.code, bad.err.splitlines()[-1]) == (2, "$.customers[1]: unknown customer 'ghost'")
    assert nf(*args).code == 2  # no rows chosen
    cancel = nf("messages", "cancel", "--campaign", key)
    assert cancel.out.startswith("1 message(s) cancelled")
    with ws.engine.connect() as conn:
        assert conn.execute(select(Customer.external_id, Message.status)
                            .join(Customer, Customer.id == Message.customer_id)).all() == [
            ("A1", "cancelled")]


def test_blast_pages_escape_and_need_a_login(ws: Db, app: Flask) -> None:  # noqa: F811
    from tests.webapp import session_client

    client, auth = app.test_client(), token_for(ws, "marketer")
    made = ok(client.post("/api/v1/blasts", json={**BODY, "customers": ["A1"],
                                                  "name": "<b>Dunning</b>"}, headers=auth), 201)
    assert client.get("/blasts").status_code == 302  # to the login
    viewer, _ = session_client(app, "viewer")
    listed = ok(viewer.get("/blasts"))
    assert "&lt;b&gt;Dunning&lt;/b&gt;" in listed and "<b>Dunning" not in listed
    one = ok(viewer.get(f"/blasts/{made['id']}"))
    assert "queued 1" in one and "Stop sending" not in one  # a viewer cannot stop it
    assert viewer.get("/blasts/12345").status_code == 404
    marketer, csrf = session_client(app, "marketer")
    assert "Stop sending" in ok(marketer.get(f"/blasts/{made['id']}"))
    # A session write without the CSRF token is refused; with it, the STOP goes through.
    assert marketer.post(f"/api/v1/blasts/{made['id']}/stop").status_code == 400
    stopped = marketer.post(f"/api/v1/blasts/{made['id']}/stop", headers={"X-CSRFToken": csrf})
    assert ok(stopped) == {"count": 1, "on_their_way": 0}
    page = ok(marketer.get("/segments/past-due/dataset?date=2025-06-02"))
    assert 'aria-label="Choose A1"' in page and 'id="blast-form"' in page
