"""What a saved campaign's messages may be: who an SMS is from (never the workspace's email
sender), templates that read `invoice` only where the trigger has one, and inline SMS that ask
for transliteration."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from engine.campaigns import import_file
from engine.channels.twilio import TwilioChannel
from engine.config import Settings
from engine.db import write_transaction
from engine.errors import ValidationError
from engine.executor import run
from engine.models import Campaign, Message, Template
from engine.outbox import dispatch
from engine.workspace import set_setting
from tests.conftest import Db
from tests.fakes import RecordingChannel, fake_server, twilio_created
from tests.webapp import token_for
from tests.world import customer, insert_world

DAY = date(2025, 6, 2)  # a Monday
NOW = datetime(2025, 6, 2, 12, 0)
SETTINGS = Settings(public_url="https://nf.example", secret_key="test-secret")
WEEKLY = {"kind": "schedule", "every": "week", "weekdays": ["mon"]}


def campaign(key: str, message: dict[str, Any], trigger: dict[str, Any] | None = None,
             status: str = "active") -> dict[str, Any]:
    return {"key": key, "name": key, "status": status, "purpose": "service",
            "graph": {"nodes": [{"id": "t", "type": "trigger", "config": trigger or WEEKLY},
                                {"id": "m", "type": "send-message", "config": message}],
                      "edges": [["t", "m"]]}}


def load(db: Db, tmp_path: Path, templates: list[dict[str, Any]],
         campaigns: list[dict[str, Any]]) -> None:
    path = tmp_path / "doc.json"
    path.write_text(json.dumps({"version": 1, "templates": templates, "campaigns": campaigns}))
    import_file(db.engine, path)


@pytest.fixture
def ona(db: Db) -> Db:
    with write_transaction(db.engine) as conn:
        insert_world(conn, [customer("ona", first_name="Žemaitė", phone="+37061234567",
                                     phone_valid=True, email="ona@example.com",
                                     email_valid=True)])
        set_setting(conn, "sender", "billing@example.com")
    return db


def queued(db: Db) -> dict[str, Any]:
    with db.engine.connect() as conn:
        return {r.node_id + ":" + r.channel: r for r in conn.execute(
            select(Message.node_id, Message.channel, Message.sender, Message.status,
                   Message.body, Message.sms_encoding, Message.sms_parts))}


# ---- who an SMS is from -----------------------------------------------------------------------

SMS = {"key": "hello-sms", "channel": "sms", "body": "Hello {{ customer.first_name }}"}
EMAIL = {"key": "hello-email", "channel": "email", "subject": "Hello", "body": "Hello"}


def test_an_sms_never_carries_the_workspace_email_sender(ona: Db, tmp_path: Path) -> None:
    load(ona, tmp_path, [SMS, EMAIL], [
        campaign("sms", {"template": "hello-sms"}),
        campaign("email", {"template": "hello-email"})])
    for key in ("sms", "email"):
        assert run(ona.engine, key, DAY, now=NOW).status == "completed"
    rows = queued(ona)
    assert rows["m:email"].sender == "billing@example.com"
    assert rows["m:sms"].sender is None  # the provider's own number
    with fake_server(twilio_created(1)) as fake:
        twilio = TwilioChannel("AC123", "token", "+15550001111", base_url=fake.url)
        stats = dispatch(ona.engine, SETTINGS, {"email": RecordingChannel(), "sms": twilio},
                         now=NOW)
    assert stats.sent == 2
    [request] = fake.requests
    assert request["body"]["From"] == "+15550001111"


def test_an_sms_goes_from_the_node_else_the_workspace_sms_sender(ona: Db, tmp_path: Path) -> None:
    with write_transaction(ona.engine) as conn:
        set_setting(conn, "sms_sender", "Nudgeflow")
    load(ona, tmp_path, [SMS], [
        campaign("workspace", {"template": "hello-sms"}),
        campaign("node", {"template": "hello-sms", "sender": "+27821234567"})])
    for key in ("workspace", "node"):
        assert run(ona.engine, key, DAY, now=NOW).status == "completed"
    with ona.engine.connect() as conn:
        senders = dict(conn.execute(select(Campaign.key, Message.sender)
                                    .join(Campaign, Campaign.id == Message.campaign_id)).all())
    assert senders == {"workspace": "Nudgeflow", "node": "+27821234567"}


def test_an_email_address_is_refused_as_an_sms_sender(ona: Db, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        load(ona, tmp_path, [SMS], [campaign("c", {"template": "hello-sms",
                                                   "sender": "billing@example.com"})])
    assert [str(p) for p in caught.value.problems] == [
        "$.campaigns[0].graph.nodes[1].config.sender: node 'm' (Send message): sender: expected "
        "an E.164 number (+27821234567) or up to 11 letters and digits for an SMS, got "
        "'billing@example.com'"]


@pytest.mark.parametrize(("message", "expected"), [
    ({"channel": "sms", "body": "Hi", "sender": "TwelveLetter"},
     "expected an E.164 number (+27821234567) or up to 11 letters and digits for an SMS, got "
     "'TwelveLetter'"),
    ({"channel": "sms", "body": "Hi", "sender": "billing@example.com"},
     "expected an E.164 number (+27821234567) or up to 11 letters and digits for an SMS, got "
     "'billing@example.com'"),
    ({"channel": "email", "subject": "Hi", "body": "Hi", "sender": "+27821234567"},
     "expected an email address for an email, got '+27821234567'"),
])
def test_an_inline_message_sender_is_checked_for_its_channel(ona: Db, tmp_path: Path,
                                                             message: dict[str, Any],
                                                             expected: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load(ona, tmp_path, [], [campaign("c", message)])
    assert [str(p).rsplit("sender: ", 1)[1] for p in caught.value.problems] == [expected]


def test_an_inline_sms_goes_from_its_node_sender(ona: Db, tmp_path: Path) -> None:
    load(ona, tmp_path, [], [campaign("c", {"channel": "sms", "body": "Hi",
                                            "sender": "Nudgeflow"})])
    assert run(ona.engine, "c", DAY, now=NOW).status == "completed"
    sms = RecordingChannel()
    dispatch(ona.engine, SETTINGS, {"email": RecordingChannel(), "sms": sms}, now=NOW)
    assert [(m.to, m.sender, m.body) for m in sms.sent] == [("+37061234567", "Nudgeflow", "Hi")]


def test_the_sms_sender_setting_is_validated(app: Flask, db: Db) -> None:
    client, admin = app.test_client(), token_for(db, "admin")
    bad = client.put("/api/v1/settings", json={"sms_sender": "billing@example.com"},
                     headers=admin)
    assert bad.status_code == 400
    assert bad.json["error"]["details"][0]["path"] == "$.sms_sender"
    assert "E.164" in bad.json["error"]["details"][0]["message"]
    for value in ("TwelveLetter", "+0123456789", "12345"):
        answer = client.put("/api/v1/settings", json={"sms_sender": value}, headers=admin)
        assert answer.status_code == 400, value
    good = client.put("/api/v1/settings", json={"sms_sender": "Nudgeflow1"}, headers=admin)
    assert good.status_code == 200
    assert good.json["sms_sender"] == "Nudgeflow1"
    assert client.get("/api/v1/settings", headers=admin).json["sms_sender"] == "Nudgeflow1"
    page = client.get("/settings", headers=admin)
    assert page.status_code == 200
    assert 'id="sms_sender"' in page.get_data(as_text=True)
    cleared = client.put("/api/v1/settings", json={"sms_sender": None}, headers=admin)
    assert cleared.status_code == 200 and cleared.json["sms_sender"] is None


# ---- a campaign's messages read only what its trigger gives -----------------------------------

DUE_SMS = {"key": "due-sms", "channel": "sms",
           "body": "Invoice {{ invoice.external_id }}: {{ invoice.amount }}"}


def test_a_template_reading_invoice_needs_an_invoice_due_trigger(ona: Db, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        load(ona, tmp_path, [DUE_SMS], [campaign("weekly", {"template": "due-sms"})])
    assert [str(p) for p in caught.value.problems] == [
        "$.campaigns[0].graph.nodes[1].config.template: node 'm' (Send message): template: "
        "'due-sms' reads invoice, which only a campaign triggered by invoice_due has"]
    with ona.engine.connect() as conn:  # nothing stored
        assert conn.execute(select(Template.key)).all() == []
    load(ona, tmp_path, [DUE_SMS], [campaign("due", {"template": "due-sms"},
                                              {"kind": "invoice_due", "offset_days": -3})])


def test_an_inline_body_reading_invoice_needs_an_invoice_due_trigger(ona: Db,
                                                                     tmp_path: Path) -> None:
    inline = {"channel": "sms", "body": "Pay {{ invoice.amount }} now"}
    with pytest.raises(ValidationError) as caught:
        load(ona, tmp_path, [], [campaign("weekly", inline)])
    assert [str(p) for p in caught.value.problems] == [
        "$.campaigns[0].graph.nodes[1].config.body: node 'm' (Send message): body: reads "
        "invoice, which only a campaign triggered by invoice_due has"]


def test_an_inline_body_is_checked_as_a_template_is(ona: Db, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        load(ona, tmp_path, [], [campaign("weekly", {"channel": "sms",
                                                     "body": "Hi {{ customer.nope }} {{ x"})])
    [problem] = caught.value.problems
    assert problem.where == "$.campaigns[0].graph.nodes[1].config.body"
    assert "line 1" in problem.message


def test_saving_a_template_that_breaks_a_campaign_is_refused(app: Flask, db: Db) -> None:
    client, marketer = app.test_client(), token_for(db, "marketer")
    made = client.post("/api/v1/templates", headers=marketer,
                       json={"key": "hello", "channel": "sms", "body": "Hello"})
    assert made.status_code == 201
    saved = client.post("/api/v1/campaigns", headers=marketer,
                        json=campaign("weekly", {"template": "hello"}))
    assert saved.status_code == 201
    changed = {"key": "hello", "channel": "sms", "body": "Pay {{ invoice.amount }}"}
    answer = client.put("/api/v1/templates/hello", headers=marketer, json=changed)
    assert answer.status_code == 400
    assert answer.json["error"]["details"] == [{
        "path": "$", "message": "campaign 'weekly', node 'm' (Send message): template: 'hello' "
                                "reads invoice, which only a campaign triggered by invoice_due has"}]
    assert client.get("/api/v1/templates/hello", headers=marketer).json["body"] == "Hello"
    # An archived campaign does not hold the template back.
    assert client.post("/api/v1/campaigns/weekly/archive", headers=marketer).status_code == 200
    answer = client.put("/api/v1/templates/hello", headers=marketer, json=changed)
    assert answer.status_code == 200
    assert answer.json["body"] == "Pay {{ invoice.amount }}"


def test_a_campaign_file_cannot_break_a_saved_campaign(ona: Db, tmp_path: Path) -> None:
    load(ona, tmp_path, [SMS], [campaign("weekly", {"template": "hello-sms"})])
    with pytest.raises(ValidationError) as caught:
        load(ona, tmp_path, [{**SMS, "body": "{{ invoice.amount }}"}], [])
    assert [str(p) for p in caught.value.problems] == [
        "$.templates[0]: campaign 'weekly', node 'm' (Send message): template: 'hello-sms' "
        "reads invoice, which only a campaign triggered by invoice_due has"]
    with ona.engine.connect() as conn:
        assert conn.execute(select(Template.body)).scalar_one() == SMS["body"]


# ---- inline SMS and transliteration -------------------------------------------------------------

def test_an_inline_sms_can_be_transliterated(ona: Db, tmp_path: Path) -> None:
    body = "Ačiū, {{ customer.first_name }}! Sąskaita apmokėta."
    load(ona, tmp_path, [], [
        campaign("plain", {"channel": "sms", "body": body}),
        campaign("latin", {"channel": "sms", "body": body, "transliterate": True})])
    for key in ("plain", "latin"):
        assert run(ona.engine, key, DAY, now=NOW).status == "completed"
    sms = RecordingChannel()
    dispatch(ona.engine, SETTINGS, {"email": RecordingChannel(), "sms": sms}, now=NOW)
    with ona.engine.connect() as conn:
        rows = {key: (text, encoding) for key, text, encoding in conn.execute(
            select(Campaign.key, Message.body, Message.sms_encoding)
            .join(Campaign, Campaign.id == Message.campaign_id))}
    assert rows == {"plain": ("Ačiū, Žemaitė! Sąskaita apmokėta.", "ucs2"),
                    "latin": ("Aciu, Zemaite! Saskaita apmoketa.", "gsm7")}
    assert sorted(m.body for m in sms.sent) == sorted(text for text, _ in rows.values())


def test_transliterate_is_for_inline_sms_only(ona: Db, tmp_path: Path) -> None:
    email = {"channel": "email", "subject": "Hi", "body": "Hi", "transliterate": True}
    with_template = {"template": "hello-sms", "transliterate": True}
    with pytest.raises(ValidationError) as caught:
        load(ona, tmp_path, [SMS], [campaign("a", email), campaign("b", with_template)])
    assert [str(p) for p in caught.value.problems] == [
        "$.campaigns[0].graph.nodes[1].config.transliterate: node 'm' (Send message): "
        "transliterate: only an SMS can be transliterated",
        "$.campaigns[1].graph.nodes[1].config.template: node 'm' (Send message): template: "
        "give a template key or inline channel/subject/body/transliterate, not both"]


def test_the_editor_round_trips_an_inline_transliterated_sms(app: Flask, db: Db) -> None:
    client, marketer = app.test_client(), token_for(db, "marketer")
    doc = campaign("inline", {"channel": "sms", "body": "Ačiū", "transliterate": True})
    assert client.post("/api/v1/campaigns", headers=marketer, json=doc).status_code == 201
    answer = client.get("/api/v1/campaigns/inline", headers=marketer)
    assert answer.status_code == 200
    assert answer.json["graph"]["nodes"][1]["config"]["transliterate"] is True
