"""The server-rendered pages: who may open which, what they show after a birthday run, and that
customer data is always escaped."""

from __future__ import annotations

import json
import re

import pytest
from flask import Flask

from engine.access.permissions import BUILT_IN
from tests.conftest import Db
from tests.webapp import ROLES, birthday_run, ok, session_client, token_for
from web.permissions import needed

PAGES = ["/campaigns", "/campaigns/new", "/campaigns/birthday-bonus/edit", "/segments",
         "/segments/new", "/segments/member-1y", "/templates", "/templates/new",
         "/templates/bday-sms", "/customers", "/customers?q=ana", "/customers/C1", "/runs",
         "/runs?campaign=birthday-bonus", "/messages", "/messages?campaign=birthday-bonus",
         "/messages?status=queued&campaign=nope", "/settings", "/users"]


def permission_of(app: Flask, path: str) -> str | None:
    endpoint, _ = app.url_map.bind("localhost").match(path.split("?")[0])
    return needed(endpoint, "GET")


def boot_of(page: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="boot">(.*?)</script>',
                                page, re.S)[1])  # type: ignore[index]


def test_every_page_times_every_role(app: Flask, db: Db) -> None:
    birthday_run(app.test_client(), token_for(db, "marketer"))
    for path in PAGES:
        answer = app.test_client().get(path)
        assert answer.status_code == 302, path
        assert answer.headers["Location"].startswith("/login?next=")
    for role in ROLES:
        client, _ = session_client(app, role)
        for path in PAGES:
            answer = client.get(path)
            assert answer.mimetype == "text/html", (role, path)
            permission = permission_of(app, path)
            if permission not in BUILT_IN[role]:
                assert answer.status_code == 403, (role, path)
                assert (f"this needs the {permission} permission; your role {role} does not "
                        "have it") in answer.get_data(as_text=True)
            else:
                assert answer.status_code == 200, (role, path)
        listing = ok(client.get("/campaigns"))
        assert ("New campaign" in listing) == (role != "viewer")
        assert ('href="/settings"' in listing) == (role == "admin")
        editor = boot_of(ok(client.get("/campaigns/birthday-bonus/edit")))
        assert editor["can_write"] == (role != "viewer")


def test_customer_names_are_escaped_in_every_page(app: Flask, db: Db) -> None:
    birthday_run(app.test_client(), token_for(db, "marketer"))
    client, _ = session_client(app, "admin")
    for path in PAGES:
        page = ok(client.get(path))
        assert "<b>Ana</b>" not in page, path
    for path in ("/customers", "/customers?q=ana", "/customers/C1"):
        assert "&lt;b&gt;Ana&lt;/b&gt;" in ok(client.get(path)), path
    # Data for the scripts is JSON inside a script tag, with < escaped as \u003c.
    template_page = ok(client.get("/templates/bday-sms"))
    assert boot_of(template_page)["customers"][0]["first_name"] == "<b>Ana</b>"


def test_the_customer_page_after_a_birthday_run(app: Flask, db: Db) -> None:
    birthday_run(app.test_client(), token_for(db, "marketer"))
    client, _ = session_client(app, "viewer")
    page = ok(client.get("/customers/C1"))
    # Awarded on 2025-03-10 for 30 days: long expired by now.
    balance = page[page.index('id="balance"'):page.index('id="messages"')]
    assert "<strong>0</strong> points available" in balance
    assert "100 expired" in balance
    assert re.search(r"<td>2025-03-10</td><td>100</td><td>2025-04-09</td><td>expired</td>"
                     r"<td>Birthday bonus \(Main\)</td>", balance)
    messages = page[page.index('id="messages"'):page.index('id="timeline"')]
    assert messages.count("<tr>") == 2  # the header and one message
    assert "+27821234567" in messages and "status-queued" in messages
    timeline = page[page.index('id="timeline"'):]
    assert timeline.count('<li class="event') == 2
    assert "Awarded 100 points: Birthday bonus, valid until 2025-04-09" in timeline
    # Activity kinds read as words, on the events and in the filter (engine/labels.py).
    assert '<span class="badge">Bonus awarded</span>' in timeline
    assert '<span class="badge">Message queued</span>' in timeline
    assert re.search(r'value="message_queued"[^>]*> Message queued</label>', timeline)
    assert ">bonus_awarded<" not in timeline and "> bonus_awarded<" not in timeline
    only_awards = ok(client.get("/customers/C1?kind=bonus_awarded"))
    events = only_awards[only_awards.index('id="timeline"'):]
    assert events.count('<li class="event') == 1 and "kind-bonus_awarded" in events
    assert "No activity matches these filters" in ok(client.get(
        "/customers/C1?until=2000-01-01"))
    assert 'class="event' in ok(client.get("/customers/C1?since=not-a-date"))


def test_campaigns_list_and_runs_log_show_the_last_run(app: Flask, db: Db) -> None:
    birthday_run(app.test_client(), token_for(db, "marketer"))
    client, _ = session_client(app, "viewer")
    listing = ok(client.get("/campaigns"))
    row = listing[listing.index("birthday-bonus"):]
    assert "status-active" in row and "2025-03-10" in row and "status-completed" in row
    # Nodes by their titles, as the editor names them, not by their ids.
    assert "Award bonus: passed 1 · awarded 1" in row
    runs = ok(client.get("/runs"))
    assert "<li>Award bonus: passed 1 · awarded 1</li>" in runs
    assert "<li>Send message: bday-sms: passed 1 · queued 1 · created 1</li>" in runs
    assert "<li>Segment select: Members for a year: passed 1</li>" in runs
    csv_link = re.search(r'href="(/api/v1/runs/\d+/export.csv)"', runs)[1]  # type: ignore[index]
    exported = ok(client.get(csv_link)).splitlines()
    assert exported[0].startswith("external_id,first_name")
    assert sorted(line.split(",")[5] for line in exported[1:]) == ["bonus", "message"]


def test_missing_things_are_html_pages(app: Flask) -> None:
    client, _ = session_client(app, "viewer")
    for path, text in (("/campaigns/nope/edit", "no campaign &#39;nope&#39;"),
                       ("/customers/nope", "no customer with external_id &#39;nope&#39;"),
                       ("/segments/nope", "no segment &#39;nope&#39;")):
        answer = client.get(path)
        assert (answer.status_code, answer.mimetype) == (404, "text/html"), path
        assert text in answer.get_data(as_text=True)
    assert ok(client.get("/api/v1/campaigns/nope"), 404)["error"]["code"] == "not_found"


def test_draft_template_preview(app: Flask, db: Db) -> None:
    client, auth = app.test_client(), token_for(db, "marketer")
    draft = {"key": "draft", "channel": "sms", "body": "Hi {{ customer.first_name }}, ąčę!"}
    answer = ok(client.post("/api/v1/templates/preview", headers=auth,
                            json={"template": draft, "customer": "C1"}))
    assert answer == {"subject": None, "body": "Hi <b>Ana</b>, ąčę!", "sms_encoding": "ucs2",
                           "sms_parts": 1, "characters": 19}
    latin = ok(client.post("/api/v1/templates/preview", headers=auth, json={
        "template": {**draft, "transliterate": True}, "customer": "C1"}))
    assert (latin["body"], latin["sms_encoding"]) == ("Hi <b>Ana</b>, ace!", "gsm7")
    escape = client.post("/api/v1/templates/preview", headers=auth, json={
        "template": {**draft, "body": "{{ ''.__class__.__mro__ }}"}, "customer": "C1"})
    assert ok(escape, 400)["error"]["details"] == [
        {"path": "$.template.body", "message": f"line 1: access to private attribute {name!r} "
                                               "is not allowed"} for name in ("__class__", "__mro__")]
    unknown = client.post("/api/v1/templates/preview", headers=auth,
                          json={"template": draft, "customer": "nobody"})
    assert ok(unknown, 404)["error"]["code"] == "not_found"


@pytest.mark.parametrize(("body", "reason"), [
    ("{{ customer.first_name * 10**9 }}", "the template builds a text longer than 100,000 "
                                           "characters"),
    ("{{ 9**(9**9) }}", "the template builds a number larger than 2**4096"),
    ("{{ 100 // (customer.age - customer.age) }}", "ZeroDivisionError: integer division or "
                                                   "modulo by zero"),
    ("{{ customer.email + 1 }}", "TypeError: unsupported operand type(s) for +: "
                                 "'NoneType' and 'int'"),
])
def test_a_preview_that_cannot_render_is_a_400_naming_why(app: Flask, db: Db, body: str,
                                                          reason: str) -> None:
    client, auth = app.test_client(), token_for(db, "marketer")
    answer = client.post("/api/v1/templates/preview", headers=auth, json={
        "template": {"key": "draft", "channel": "sms", "body": body}, "customer": "C1"})
    assert ok(answer, 400)["error"]["details"] == [
        {"path": "$.customer", "message": f"cannot render for this customer: {reason}"}]


def test_the_messages_page_and_its_stop_button(app: Flask, db: Db) -> None:
    birthday_run(app.test_client(), token_for(db, "marketer"))
    viewer, _ = session_client(app, "viewer")
    page = ok(viewer.get("/messages?campaign=birthday-bonus"))
    assert 'href="/customers/C1">C1</a>' in page and "status-queued" in page
    assert "Stop sending" not in page
    marketer, _ = session_client(app, "marketer")
    page = ok(marketer.get("/messages?campaign=birthday-bonus"))
    assert 'data-api-url="/api/v1/messages/cancel"' in page
    assert "Stop sending: cancel the queued and held messages of birthday-bonus" in page
    assert "No messages." in ok(marketer.get("/messages?status=sent"))


def test_pages_carry_security_headers(app: Flask) -> None:
    client, _ = session_client(app, "viewer")
    for path, status in (("/login", 200), ("/campaigns", 200), ("/api/v1/campaigns", 200),
                         ("/campaigns/birthday-bonus/edit", 404)):  # no such campaign here
        answer = client.get(path)
        assert answer.status_code == status, path
        headers = answer.headers
        assert "script-src 'self'" in headers["Content-Security-Policy"], path
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], path
        assert (headers["X-Frame-Options"], headers["X-Content-Type-Options"]) == \
            ("DENY", "nosniff"), path


def test_a_long_timeline_pages_newest_first_and_keeps_its_filters(app: Flask, db: Db) -> None:
    from datetime import datetime, timedelta

    from sqlalchemy import insert, select

    from engine.db import write_transaction
    from engine.models import Activity, Customer

    with write_transaction(db.engine) as conn:
        cid = conn.execute(select(Customer.id).where(Customer.external_id == "C1")).scalar_one()
        start = datetime(2025, 1, 1, 8)
        conn.execute(insert(Activity), [
            {"customer_id": cid, "at": start + timedelta(hours=i), "kind": "unsubscribed",
             "summary": f"event {i}", "details": {}} for i in range(205)])
    client, _ = session_client(app, "viewer")
    first = ok(client.get("/customers/C1?kind=unsubscribed"))
    events = re.findall(r'<span class="summary">event (\d+)</span>', first)
    assert len(events) == 200 and (events[0], events[-1]) == ("204", "5")
    older = re.search(r'href="([^"]+)">Older activity', first)[1].replace("&amp;", "&")  # type: ignore[index]
    assert "kind=unsubscribed" in older and "offset=200" in older
    second = ok(client.get(older))
    assert re.findall(r'<span class="summary">event (\d+)</span>', second) == \
        ["4", "3", "2", "1", "0"]
    assert "Newer activity" in second and "Older activity" not in second


def test_a_bad_request_before_login_gets_its_page(app: Flask) -> None:
    """The error page of a request refused before login (a NUL in the query) renders without
    the menu of a logged-in user, instead of failing with a 500."""
    answer = app.test_client().get("/login?x=%00")
    assert answer.status_code == 400
    assert "Log out" not in answer.get_data(as_text=True)
