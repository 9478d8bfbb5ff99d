"""Events in, by the API and the CLI: all or nothing, stored once by id, each logged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from engine.models import Activity, Event
from tests.conftest import Db
from tests.event_docs import activity, people
from tests.webapp import ok, token_for


def stored(db: Db) -> dict[str, dict[str, Any]]:
    with db.engine.connect() as conn:
        return {r.external_id: {"name": r.name, "at": r.at.isoformat(),
                                "properties": r.properties}
                for r in conn.execute(select(Event.__table__))}


def activities(db: Db) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Activity)
                                .where(Activity.kind == "event_received")).scalar_one())


def test_post_one_event_then_the_same_id_again(app: Flask, db: Db) -> None:
    client, auth = app.test_client(), token_for(db, "marketer")
    event = {"id": "sig-" + "x" * 96, "customer": "C1", "name": "registered",
             "at": "2026-03-02T10:00:00+02:00", "properties": {"plan": "gold", "seats": 3}}
    assert ok(client.post("/api/v1/events", json=event, headers=auth), 201) == {
        "received": 1, "created": 1, "duplicates": 0}
    assert ok(client.post("/api/v1/events", json=[event], headers=auth), 200) == {
        "received": 1, "created": 0, "duplicates": 1}
    assert stored(db) == {event["id"]: {"name": "registered", "at": "2026-03-02T08:00:00",
                                        "properties": {"plan": "gold", "seats": 3}}}
    (logged,) = activity(db, "C1", "event_received")
    assert logged["summary"] == "Event registered received"
    assert logged["details"]["event_id"] == event["id"]


def test_a_list_is_all_or_nothing_and_the_400_names_the_item(app: Flask, db: Db) -> None:
    client, auth = app.test_client(), token_for(db, "admin")
    good = {"id": "e0", "customer": "C1", "name": "registered"}
    answer = ok(client.post("/api/v1/events", headers=auth, json=[
        good,
        {"id": "e1", "customer": "C1", "name": "registered", "at": "2026-03-02T10:00:00"},
        {"id": "e2", "customer": "nobody", "name": "registered"},
    ]), 400)
    assert answer["error"]["code"] == "invalid_input"
    assert answer["error"]["details"] == [
        {"path": "$[1]", "message": "at: expected a date and time with an offset (Z or "
                                    "+02:00), got '2026-03-02T10:00:00'"},
        {"path": "$[2]", "message": "customer: no customer 'nobody'"},
    ]
    assert stored(db) == {} and activities(db) == 0


def test_shape_errors_name_the_index_and_field(app: Flask, db: Db) -> None:
    client, auth = app.test_client(), token_for(db, "marketer")
    answer = ok(client.post("/api/v1/events", headers=auth, json=[
        {"id": "e0", "customer": "C1", "name": "registered"},
        {"id": "", "customer": "C1", "name": "x" * 101, "colour": "red"},
    ]), 400)
    paths = sorted(d["path"] for d in answer["error"]["details"])
    assert paths == ["$[1].colour", "$[1].id", "$[1].name"]
    answer = ok(client.post("/api/v1/events", headers=auth,
                            json=[{"id": f"e{i}", "customer": "C1", "name": "n"}
                                  for i in range(10_001)]), 400)
    assert answer["error"]["details"] == [
        {"path": "$", "message": "expected 1 to 10,000 events, got 10,001"}]
    ok(client.post("/api/v1/events", headers=auth, json=[]), 400)
    answer = ok(client.post("/api/v1/events", headers=auth,
                            data='{"id": "e", "customer": "C1", "name": "n", "properties": '
                                 '{"x": NaN}}', content_type="application/json"), 400)
    assert answer["error"]["details"][0]["path"] == "$"
    assert stored(db) == {}


def test_viewers_may_not_post_events(app: Flask, db: Db) -> None:
    answer = ok(app.test_client().post("/api/v1/events", headers=token_for(db, "viewer"),
                                       json={"id": "e", "customer": "C1", "name": "n"}), 403)
    assert answer["error"]["code"] == "forbidden"
    assert stored(db) == {}


def test_the_openapi_document_describes_events(app: Flask, db: Db) -> None:
    doc = ok(app.test_client().get("/api/v1/openapi.json", headers=token_for(db, "viewer")))
    post = doc["paths"]["/api/v1/events"]["post"]
    assert set(post["responses"]) >= {"200", "201", "400"}
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body["type"] == "array"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_cli_imports_csv_with_properties_columns(nf, db: Db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    people(db, "ana", "ben")
    path = write(tmp_path, "events.csv",
                 "id,customer,name,at,properties.plan,properties.seats\n"
                 "e1,ana,registered,2026-03-02T10:00:00Z,gold,3\n"
                 "e2,ben,registered,2026-03-02T12:00:00+02:00,,\n")
    result = nf("import", "events", str(path))
    assert result.code == 0, result.err
    assert result.out == "events: 2 received, 2 stored, 0 duplicate(s)\n"
    assert stored(db) == {
        "e1": {"name": "registered", "at": "2026-03-02T10:00:00",
               "properties": {"plan": "gold", "seats": 3}},
        "e2": {"name": "registered", "at": "2026-03-02T10:00:00", "properties": {}}}
    result = nf("import", "events", str(path), "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == {"received": 2, "created": 0, "duplicates": 2}
    assert activities(db) == 2


def test_cli_imports_json_lines(nf, db: Db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    people(db, "ana")
    path = write(tmp_path, "events.jsonl", "\n".join(json.dumps(e) for e in [
        {"id": "j1", "customer": "ana", "name": "ordered", "at": "2026-03-02T10:00:00Z",
         "properties": {"total": 12.5, "items": ["a", "b"]}},
        {"id": "j2", "customer": "ana", "name": "ordered", "at": "2026-03-03T10:00:00Z"},
    ]) + "\n")
    result = nf("import", "events", str(path))
    assert result.code == 0, result.err
    assert stored(db)["j1"]["properties"] == {"total": 12.5, "items": ["a", "b"]}
    assert [a["summary"] for a in activity(db, "ana", "event_received")] == [
        "Event ordered received", "Event ordered received"]


def test_cli_a_bad_row_stores_nothing(nf, db: Db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    people(db, "ana")
    path = write(tmp_path, "events.csv",
                 "id,customer,name,at\n"
                 "e1,ana,registered,2026-03-02T10:00:00Z\n"
                 "e2,ghost,registered,2026-03-02T10:00:00Z\n"
                 "e3,ana,registered,yesterday\n")
    result = nf("import", "events", str(path))
    assert result.code == 2
    assert result.err == (f"error: {path}: 2 error(s)\n"
                          f"{path}:3: customer: no customer 'ghost'\n"
                          f"{path}:4: at: expected RFC 3339 with an offset "
                          f"(2025-03-10T09:30:00+02:00), got 'yesterday'\n")
    assert stored(db) == {} and activities(db) == 0


def test_cli_refuses_a_file_that_is_not_utf8(nf, db: Db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    people(db, "ana")
    path = tmp_path / "events.csv"
    path.write_bytes(b"id,customer,name,properties.city\ne1,ana,moved,S\xe3o Paulo\n")
    result = nf("import", "events", str(path))
    assert result.code == 2
    assert "not UTF-8 at line 2 (byte 0xE3): save the file as UTF-8" in result.err
    assert stored(db) == {}


def test_an_event_at_without_offset_or_time_is_refused(nf, db: Db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    people(db, "ana")
    path = write(tmp_path, "events.jsonl", "\n".join(json.dumps(e) for e in [
        {"id": "a", "customer": "ana", "name": "n", "at": "2026-03-02"},
        {"id": "b", "customer": "ana", "name": "n", "at": 1772445600},
        {"id": "c", "customer": "ana", "name": "n", "at": "2026-03-02 10:00:00+02:00"},
        {"id": "d", "customer": "ana", "name": "n", "properties": "gold"},
    ]) + "\n")
    result = nf("import", "events", str(path))
    assert result.code == 2
    assert result.err.splitlines()[1:] == [
        f"{path}:1: at: expected a date and time with an offset (Z or +02:00), got '2026-03-02'",
        f"{path}:2: at: expected RFC 3339 text with an offset, got 1772445600",
        f"{path}:4: properties: expected an object, got str",
    ]
