"""Helpers for tests of the web app: users of every role, logins, tokens, a birthday run."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from engine.db import write_transaction
from engine.users import create_token
from tests.campaign_docs import BIRTHDAY, SEGMENTS, TEMPLATES
from tests.conftest import Db

PASSWORD = "a long enough password"
ROLES = ("viewer", "marketer", "admin")


def token_for(db: Db, role: str) -> dict[str, str]:
    with write_transaction(db.engine) as conn:
        return {"Authorization": f"Bearer {create_token(conn, role)}"}


def session_client(app: Flask, role: str) -> tuple[FlaskClient, str]:
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]  # type: ignore[index]
    answer = client.post("/login", data={"name": role, "password": PASSWORD,
                                         "csrf_token": csrf})
    assert answer.status_code == 302
    return client, csrf


def birthday_run(client: FlaskClient, auth: dict[str, str]) -> None:
    """Save the birthday campaign with its segment and templates, and run it on C1's birthday."""
    ok(client.post("/api/v1/segments", json=SEGMENTS[0], headers=auth), 201)
    for template in TEMPLATES:
        ok(client.post("/api/v1/templates", json=template, headers=auth), 201)
    ok(client.post("/api/v1/campaigns", json=BIRTHDAY, headers=auth), 201)
    answer = ok(client.post("/api/v1/campaigns/birthday-bonus/run", json={"date": "2025-03-10"},
                            headers=auth))
    assert answer["status"] == "completed"


def ok(answer: TestResponse, status: int = 200) -> Any:
    """The status code first (with the body in the failure message), then the answer's JSON, or
    its text when it is not JSON."""
    assert answer.status_code == status, (answer.status_code, answer.get_data(as_text=True)[:800])
    return answer.json if answer.is_json else answer.get_data(as_text=True)
