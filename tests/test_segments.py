"""Segment edge cases with exact answers, validation messages, and `segment preview`."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from engine import segments
from engine.db import write_transaction
from engine.errors import ValidationError
from engine.segments.rules import validate_rules
from tests.conftest import Db
from tests.world import customer, day, insert_world


def ids_for(db: Db, rules: dict, as_of: date, catalog: dict | None = None) -> set[str]:  # type: ignore[type-arg]
    from sqlalchemy import select

    from engine.models import Customer

    with db.engine.connect() as conn:
        stmt = select(Customer.external_id).where(
            Customer.id.in_(segments.member_ids(rules, as_of, catalog or {})))
        return set(conn.execute(stmt).scalars())


@pytest.fixture
def people(db: Db) -> Db:
    world = [
        customer("leap", birth_date=day("2000-02-29"), registered_at=day("2025-03-01")),
        customer("feb28", birth_date=day("2001-02-28"), registered_at=day("2025-03-02")),
        customer("mar1", birth_date=day("1999-03-01")),
        customer("nye", birth_date=day("1990-12-31"), registered_at=day("2025-12-31")),
        customer("nobody"),
        customer("debtor", email="d@example.com", email_valid=True, invoices=[
            {"due_date": day("2026-01-31"), "amount": Decimal(100), "paid_at": None},
            {"due_date": day("2026-03-02"), "amount": Decimal(50), "paid_at": None},
            {"due_date": day("2026-01-01"), "amount": Decimal(70), "paid_at": day("2026-01-05")},
        ]),
    ]
    with write_transaction(db.engine) as conn:
        insert_world(conn, world)
    return db


def test_leap_day_birthdays(people: Db) -> None:
    birthday = {"field": "days_until_birthday", "op": "=", "value": 0}
    # Non-leap year: 29 February birthdays are celebrated on 28 February.
    assert ids_for(people, birthday, day("2025-02-28")) == {"leap", "feb28"}
    assert ids_for(people, birthday, day("2025-03-01")) == {"mar1"}
    # Leap year: each on its own day.
    assert ids_for(people, birthday, day("2024-02-28")) == {"feb28"}
    assert ids_for(people, birthday, day("2024-02-29")) == {"leap"}
    # Age changes on the celebrated day.
    age = {"field": "age", "op": "=", "value": 25}
    assert ids_for(people, age, day("2025-02-28")) == {"leap", "mar1"}  # mar1 turns 26 tomorrow
    assert ids_for(people, age, day("2025-02-27")) == {"mar1"}  # leap is still 24
    # In a leap year the 29 February birthday has not come on the 28th.
    assert ids_for(people, {"field": "age", "op": "=", "value": 23}, day("2024-02-28")) == {
        "leap", "feb28"}
    assert ids_for(people, {"field": "age", "op": "=", "value": 24}, day("2024-02-29")) == {
        "leap", "mar1"}


def test_year_boundary(people: Db) -> None:
    assert ids_for(people, {"field": "days_until_birthday", "op": "=", "value": 1},
                   day("2025-12-30")) == {"nye"}
    assert ids_for(people, {"field": "days_until_birthday", "op": "<=", "value": 1},
                   day("2025-12-31")) == {"nye"}
    assert ids_for(people, {"field": "days_until_birthday", "op": "=", "value": 364},
                   day("2026-01-01")) == {"nye"}


def test_registration_365_vs_364_days(people: Db) -> None:
    member = {"field": "days_since_registration", "op": ">=", "value": 365}
    assert ids_for(people, member, day("2026-03-01")) == {"leap"}  # 365 days; feb28 has 364
    assert ids_for(people, member, day("2026-03-02")) == {"leap", "feb28"}
    assert ids_for(people, {"not": member}, day("2026-03-01")) == {
        "feb28", "mar1", "nye", "nobody", "debtor"}


def test_invoices_due_on_the_day_and_paid(people: Db) -> None:
    overdue = {"field": "days_past_due", "op": ">=", "value": 1}
    assert ids_for(people, overdue, day("2026-01-31")) == set()  # due today is not overdue
    assert ids_for(people, overdue, day("2026-02-01")) == {"debtor"}
    assert ids_for(people, {"field": "days_past_due", "op": "=", "value": 30},
                   day("2026-03-02")) == {"debtor"}
    # The paid invoice (due 1 January) never counts once paid; before payment it did.
    assert ids_for(people, {"field": "days_past_due", "op": "=", "value": 3},
                   day("2026-01-04")) == {"debtor"}
    assert ids_for(people, {"field": "overdue_amount", "op": "=", "value": 100},
                   day("2026-03-02")) == {"debtor"}
    assert ids_for(people, {"field": "outstanding_amount", "op": "=", "value": 150},
                   day("2026-03-02")) == {"debtor"}
    assert ids_for(people, {"field": "unpaid_invoices", "op": "=", "value": 0},
                   day("2026-04-01")) == {"leap", "feb28", "mar1", "nye", "nobody"}


def test_segment_references(people: Db) -> None:
    catalog = {"old": {"field": "age", "op": ">=", "value": 30},
               "old-nye": {"all": [{"segment": "old"}, {"field": "birth_date", "op": ">=",
                                                        "value": "1990-01-01"}]}}
    assert ids_for(people, {"segment": "old-nye"}, day("2026-01-01"), catalog) == {"nye"}


@pytest.mark.parametrize(("rules", "problem"), [
    ({"field": "salary", "op": "=", "value": 1},
     "$.field: unknown field 'salary' (a customer column, attributes.NAME or a derived field "
     "such as days_past_due)"),
    ({"all": [{"field": "age", "op": ">=", "value": "30"}]},
     "$.all[0].value: expected a whole number for age, got '30'"),
    ({"any": [{"not": {"field": "first_name", "op": ">", "value": "a"}}]},
     "$.any[0].not.op: operator '>' does not apply to first_name (text); use one of !=, =, "
     "contains, in, is_null, not_in, not_null, starts_with"),
    ({"field": "birth_date", "op": "=", "value": "29/02/2000"},
     "$.value: expected a date YYYY-MM-DD for birth_date, got '29/02/2000'"),
    ({"field": "age", "op": "between", "value": [40, 30]},
     "$.value: between: low 40 is above high 30"),
    ({"field": "age", "op": "like", "value": 1},
     "$.op: Must be one of: !=, <, <=, =, >, >=, between, contains, in, is_null, not_in, "
     "not_null, starts_with."),
    ({"segment": "missing"}, "$.segment: unknown segment 'missing'"),
    ({"all": "x"}, "$.all: expected a list of rules"),
])
def test_validation_names_the_path(rules: dict, problem: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValidationError) as exc:
        validate_rules(rules, {})
    assert [str(p) for p in exc.value.problems] == [problem]


def test_reference_cycle_is_named() -> None:
    catalog = {"a": {"segment": "b"}, "b": {"all": [{"segment": "c"}]}}
    with pytest.raises(ValidationError) as exc:
        validate_rules({"segment": "a"}, catalog, key="c")
    assert [str(p) for p in exc.value.problems] == [
        "$: segment references form a cycle: c -> a -> b -> c"]


def test_segment_preview_cli(nf, people: Db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rules = json.dumps({"field": "days_until_birthday", "op": "=", "value": 0})
    result = nf("segment", "preview", "--rules", rules, "--date", "2025-02-28", "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["count"] == 2
    assert [c["external_id"] for c in data["sample"]] == ["leap", "feb28"]
    text = nf("segment", "preview", "--rules", rules, "--date", "2025-02-28")
    assert text.out.splitlines()[0] == "2 customers as of 2025-02-28"
    bad = nf("segment", "preview", "--rules", '{"field": "age", "op": ">", "value": true}')
    assert bad.code == 2
    assert bad.err == ("error: invalid segment rules\n"
                       "$.value: expected a whole number for age, got True\n")
    assert nf("segment", "preview", "--key", "nope").code == 2


def test_attribute_names_are_part_of_the_statement_cache_key(db: Db) -> None:
    """Regression: json_attr once shared a cached compilation across attribute names."""
    with write_transaction(db.engine) as conn:
        insert_world(conn, [customer("t", attributes={"tier": "gold"}),
                            customer("s", attributes={"score": 3})])
    for _ in range(2):
        assert ids_for(db, {"field": "attributes.tier", "op": "not_null"}, day("2026-01-01")) \
            == {"t"}
        assert ids_for(db, {"field": "attributes.score", "op": "not_null"}, day("2026-01-01")) \
            == {"s"}
        assert ids_for(db, {"field": "attributes.score", "op": ">", "value": 1},
                       day("2026-01-01")) == {"s"}
