"""Fuzz: hostile values (huge and negative numbers, NaN and infinities, NUL, lone surrogates,
long text, deep nesting, long lists) placed anywhere in segment rules, import rows and API
bodies, on SQLite and PostgreSQL. Every answer is a success, or a 4xx whose details name a
path (a CLI exit 2 naming the line); never a 5xx or a traceback, and a refused import changes
nothing.

A few dozen examples per property in CI; NUDGEFLOW_FUZZ_EXAMPLES=500 (`make fuzz`) for more.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from engine.models import Customer, Invoice
from tests.campaign_docs import BIRTHDAY, SEGMENTS, TEMPLATES
from tests.conftest import Db
from tests.webapp import token_for

EXAMPLES = int(os.environ.get("NUDGEFLOW_FUZZ_EXAMPLES", "30"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


def _nest(depth: int, leaf: Any) -> Any:
    for i in range(depth):
        leaf = {"not": leaf} if i % 2 else [leaf]
    return leaf


NUMBERS = st.one_of(
    st.integers(),
    st.sampled_from([2**31, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30, -(10**30), -1, 0]),
    st.floats(allow_nan=True, allow_infinity=True),
)
TEXTS = st.one_of(
    st.text(max_size=20),
    st.text(st.characters(codec="utf-8", categories=("Cs", "Cc", "Lu", "Nd")), max_size=8),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfff", "1e999", "NaN", "-0",
                     "2999-12-31", "9999-12-31", "0001-01-01", "x" * 101, "9" * 60]),
    st.integers(10_000, 200_000).map(lambda n: "y" * n),
)
SCALARS = st.one_of(NUMBERS, TEXTS, st.booleans(), st.none())
HOSTILE = st.one_of(
    SCALARS,
    st.builds(_nest, st.sampled_from([33, 63, 64, 65, 100, 500]), SCALARS),
    st.lists(SCALARS, max_size=5),
    st.builds(lambda n, v: [v] * n, st.sampled_from([1000, 1001, 70_000]), SCALARS),
    st.dictionaries(TEXTS, SCALARS, max_size=3),
)


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document (the document itself, each member, each item)."""
    out = [at]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*at, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += _paths(item, (*at, i))
    return out


@st.composite
def mutated(draw: Any, base: Any) -> Any:
    """`base` with one place (or a new member of an object) replaced by a hostile value."""
    doc = copy.deepcopy(base)
    where = draw(st.sampled_from(_paths(doc)))
    value = draw(HOSTILE)
    if not where:
        return value
    parent = doc
    for step in where[:-1]:
        parent = parent[step]
    key = where[-1]
    if isinstance(parent, dict) and draw(st.booleans()):
        key = draw(st.sampled_from(["value", "op", "field", "extra", "x" * 101, "\x00"]))
    parent[key] = value
    return doc


def assert_answer(answer: Any) -> None:
    """A success, or a 4xx in our error shape whose details name where the problem is."""
    assert answer.status_code < 500, answer.get_data(as_text=True)[:2000]
    if answer.status_code < 400:
        return
    error = answer.json["error"]
    assert error["code"] and error["message"]
    if answer.status_code == 400:
        assert error["details"], error
        for detail in error["details"]:
            assert detail["path"] and detail["message"], detail


@pytest.fixture
def api(app: Flask, db: Db) -> tuple[FlaskClient, dict[str, str]]:
    client, auth = app.test_client(), token_for(db, "admin")
    assert client.post("/api/v1/segments", json=SEGMENTS[0], headers=auth).status_code == 201
    for template in TEMPLATES:
        assert client.post("/api/v1/templates", json=template, headers=auth).status_code == 201
    return client, auth


RULES = {"all": [{"field": "age", "op": "between", "value": [18, 65]},
                 {"any": [{"field": "attributes.score", "op": "in", "value": [1, 2]},
                          {"not": {"field": "first_name", "op": "starts_with", "value": "A"}},
                          {"segment": "member-1y"}]}]}


def test_fuzz_segment_rules(api: Any) -> None:
    client, auth = api

    @FUZZ
    @given(rules=mutated(RULES), date=st.sampled_from([None, "2026-01-31", "2999-12-31"]))
    def check(rules: Any, date: str | None) -> None:
        preview = client.post("/api/v1/segments/preview", headers=auth,
                              json={"rules": rules, **({"date": date} if date else {})})
        assert_answer(preview)
        saved = client.post("/api/v1/segments", headers=auth,
                            json={"key": "fuzzed", "name": "Fuzzed", "rules": rules})
        assert_answer(saved)
        assert (preview.status_code == 200) == (saved.status_code == 201), (preview.json,
                                                                            saved.json)

    check()


CUSTOMER = {"first_name": "Ana", "last_name": "Dube", "email": "ana@example.com",
            "phone": "+27821234567", "birth_date": "1990-03-10", "marketing_consent": True,
            "score": 7, "tier": "gold"}
INVOICE = {"customer_external_id": "C1", "amount": "100.50", "currency": "ZAR",
           "due_date": "2026-01-31", "paid_at": None}
TEMPLATE = {"key": "fuzz-sms", "name": "Fuzz", "channel": "sms", "transliterate": True,
            "body": "Hi {{ customer.first_name }}"}


def test_fuzz_api_bodies(api: Any) -> None:
    client, auth = api
    targets = [("PUT", "/api/v1/customers/F1", CUSTOMER),
               ("POST", "/api/v1/customers/bulk", {"records": [{"external_id": "F2",
                                                                **CUSTOMER}]}),
               ("PUT", "/api/v1/invoices/FI1", INVOICE),
               ("POST", "/api/v1/templates", TEMPLATE),
               ("POST", "/api/v1/campaigns", BIRTHDAY),
               ("POST", "/api/v1/campaigns/validate", BIRTHDAY),
               ("POST", "/api/v1/settings/credits", {"channel": "sms", "units": 5}),
               ("POST", "/api/v1/messages/cancel", {"campaign": "birthday-bonus", "run_id": 1}),
               ("POST", "/api/v1/campaigns/birthday-bonus/preview", {"date": "2026-03-10"})]

    @FUZZ
    @given(target=st.sampled_from(targets), data=st.data())
    def check(target: tuple[str, str, Any], data: Any) -> None:
        method, url, base = target
        body = data.draw(mutated(base))
        assert_answer(client.open(url, method=method, json=body, headers=auth))

    check()


def _csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    columns = list(dict.fromkeys(k for row in rows for k in row))
    writer = csv.DictWriter(out, columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: v if isinstance(v, str) else json.dumps(v) for k, v in row.items()})
    # Lone surrogates cannot be UTF-8: written as the bytes a careless exporter would write.
    return out.getvalue().encode("utf-8", "surrogatepass")


def _contents(db: Db) -> list[Any]:
    with db.engine.connect() as conn:
        return [sorted(map(tuple, conn.execute(select(Customer.__table__)))),
                sorted(map(tuple, conn.execute(select(Invoice.__table__))))]


def test_fuzz_import_rows(nf: Any, db: Db, tmp_path: Path) -> None:
    seed = tmp_path / "seed.csv"
    seed.write_text("external_id,first_name\nC1,Ana\n", encoding="utf-8")
    assert nf("import", "customers", str(seed)).code == 0
    files = {"customers": [{"external_id": "F1", **CUSTOMER}, {"external_id": "F2"}],
             "invoices": [{"external_id": "I1", **INVOICE}]}

    @FUZZ
    @given(kind=st.sampled_from(sorted(files)), suffix=st.sampled_from([".csv", ".jsonl"]),
           data=st.data())
    def check(kind: str, suffix: str, data: Any) -> None:
        records = data.draw(mutated(files[kind]))
        if not isinstance(records, list):
            records = [records]
        path = tmp_path / f"fuzz{suffix}"
        if suffix == ".csv":
            if not all(isinstance(r, dict) for r in records):
                return
            path.write_bytes(_csv(records))
        else:
            path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        before = _contents(db)
        result = nf("import", kind, str(path))
        assert result.code in (0, 2), result
        assert "Traceback" not in result.err
        if result.code == 2:
            assert str(path) in result.err or "argument" in result.err, result.err
            assert _contents(db) == before

    check()
