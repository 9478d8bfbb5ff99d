"""Open and click tracking: a send-message node asks for it, and it reaches SendGrid's
tracking_settings for that node's emails only (checked on what the real sendgrid client posted
to a local fake server), next to the custom_args that name our message."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.campaigns import import_file
from engine.channels.sendgrid import SendGridChannel
from engine.db import write_transaction
from engine.errors import ValidationError
from engine.models import Customer, Message
from engine.outbox import dispatch
from tests.conftest import Db
from tests.fakes import RecordingChannel, Reply, fake_server
from tests.test_messaging import DOC, NOW, PEOPLE, SETTINGS, run_on
from tests.world import insert_world

OFF = {"open_tracking": {"enable": False},
       "click_tracking": {"enable": False, "enable_text": False}}
ON = {"open_tracking": {"enable": True},
      "click_tracking": {"enable": True, "enable_text": True}}


def load(db: Db, tmp_path: Path, tracking: dict[str, bool] | None) -> None:
    doc = copy.deepcopy(DOC)
    if tracking is not None:
        doc["campaigns"][0]["graph"]["nodes"][2]["config"]["tracking"] = tracking
    with write_transaction(db.engine) as conn:
        insert_world(conn, PEOPLE)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    import_file(db.engine, path)


@pytest.mark.parametrize(("tracking", "expected"), [
    (None, OFF),
    ({"opens": True, "clicks": True}, ON),
    ({"opens": True}, {**OFF, "open_tracking": {"enable": True}}),
])
def test_the_node_decides_what_sendgrid_tracks(db: Db, tmp_path: Path,
                                               tracking: dict[str, bool] | None,
                                               expected: dict[str, object]) -> None:
    load(db, tmp_path, tracking)
    run_on(db, "past-due")
    with fake_server(Reply(202, "", {"X-Message-Id": "sg-1"})) as fake:
        stats = dispatch(db.engine, SETTINGS, {"email": SendGridChannel("SG.k", host=fake.url),
                                               "sms": RecordingChannel()}, now=NOW)
    assert stats.sent == 2
    with db.engine.connect() as conn:
        ids = dict(conn.execute(select(Message.address, Message.id).join(
            Customer, Customer.id == Message.customer_id)).all())
    for request in fake.requests:
        body = request["body"]
        assert body["tracking_settings"] == expected
        [person] = body["personalizations"]
        address = person["to"][0]["email"]
        assert person["custom_args"] == {"nudgeflow_message_id": str(ids[address])}


def test_an_sms_cannot_track(db: Db, tmp_path: Path) -> None:
    doc = copy.deepcopy(DOC)
    doc["campaigns"][1]["graph"]["nodes"][1]["config"]["tracking"] = {"clicks": True}
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValidationError) as caught:
        import_file(db.engine, path)
    assert [str(p) for p in caught.value.problems] == [
        "$.campaigns[1].graph.nodes[1].config.tracking: node 'm' (Send message): tracking: only "
        "an email can track opens and clicks"]
