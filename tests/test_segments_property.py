"""Random rule trees over random customers: the SQL answer equals the plain-Python reference."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import segments
from engine.db import write_transaction
from engine.segments.fields import FIELDS
from tests.conftest import Db
from tests.reference import matches
from tests.world import clear, customer, insert_world

AS_OF = st.sampled_from([date(2024, 2, 28), date(2024, 2, 29), date(2024, 3, 1),
                         date(2025, 2, 28), date(2025, 3, 1), date(2025, 12, 31),
                         date(2026, 1, 1), date(2026, 6, 15)])
WORDS = ["ana", "Ben", "cara", "Dube", "ëla", "x_%"]
BIRTHS = st.one_of(st.none(), st.sampled_from([date(2000, 2, 29), date(1996, 2, 29),
                                               date(2001, 2, 28), date(1999, 3, 1),
                                               date(1990, 12, 31), date(1985, 1, 1)]),
                   st.dates(date(1940, 1, 1), date(2025, 12, 31)))
NEAR = st.integers(-400, 400)


def _near(base: date, offset: int) -> date:
    return base + timedelta(days=offset)


@st.composite
def worlds(draw: Any) -> tuple[date, list[dict[str, Any]]]:
    as_of = draw(AS_OF)
    people = []
    for i in range(draw(st.integers(0, 12))):
        invoices = [{"due_date": _near(as_of, draw(st.integers(-90, 150))),
                     "amount": draw(st.integers(1, 900)),
                     "paid_at": draw(st.one_of(st.none(), st.builds(_near, st.just(as_of),
                                                                    st.integers(-60, 30))))}
                    for _ in range(draw(st.integers(0, 3)))]
        ledger = []
        for _ in range(draw(st.integers(0, 2))):
            booked = _near(as_of, draw(st.integers(-60, 5)))
            life = draw(st.one_of(st.none(), st.integers(1, 60)))
            ledger.append({"kind": "accrual", "amount": draw(st.integers(1, 500)),
                           "booked_on": booked,
                           "expires_at": booked + timedelta(days=life) if life else None})
        messages = [{"status": draw(st.sampled_from(["sent", "queued", "skipped"])),
                     "created_at": datetime.combine(_near(as_of, draw(st.integers(-20, 3))),
                                                    datetime.min.time())
                     + timedelta(hours=draw(st.integers(0, 23)))}
                    for _ in range(draw(st.integers(0, 2)))]
        attrs = {}
        if draw(st.booleans()):
            attrs["tier"] = draw(st.sampled_from(["gold", "silver", 3, True]))
        if draw(st.booleans()):
            attrs["score"] = draw(st.one_of(st.integers(-5, 5), st.floats(-5, 5, width=16),
                                            st.just("high")))
        people.append(customer(
            f"P{i}", first_name=draw(st.one_of(st.none(), st.sampled_from(WORDS))),
            branch=draw(st.one_of(st.none(), st.sampled_from(["North", "South"]))),
            email=draw(st.one_of(st.none(), st.just(f"p{i}@example.com"))),
            email_valid=draw(st.booleans()),
            birth_date=draw(BIRTHS),
            registered_at=draw(st.one_of(st.none(), st.builds(_near, st.just(as_of), NEAR))),
            email_opt_out=draw(st.booleans()), marketing_consent=draw(st.booleans()),
            attributes=attrs, invoices=invoices, ledger=ledger, messages=messages))
    return as_of, people


def _values(type_: str) -> st.SearchStrategy[Any]:
    return {
        "int": st.integers(-3, 400), "number": st.integers(0, 1500) | st.floats(0, 1500, width=16),
        "bool": st.booleans(), "string": st.sampled_from([*WORDS, "North", "a", "%"]),
        "date": st.dates(date(1990, 1, 1), date(2027, 1, 1)).map(date.isoformat),
    }[type_]


@st.composite
def conditions(draw: Any) -> dict[str, Any]:
    name = draw(st.sampled_from([*sorted(FIELDS), "attributes.tier", "attributes.score"]))
    if name.startswith("attributes."):
        type_ = draw(st.sampled_from(["string", "number", "bool"]))
        ops = {"string": ["=", "!=", "in", "not_in", "contains", "starts_with", "is_null",
                          "not_null"],
               "number": ["=", "!=", "<", ">=", "between", "in", "is_null"],
               "bool": ["=", "!=", "not_null"]}[type_]
    else:
        type_ = FIELDS[name].type
        from engine.segments.fields import TYPE_OPS

        ops = sorted(TYPE_OPS[type_])
    op = draw(st.sampled_from(ops))
    if op in ("is_null", "not_null"):
        return {"field": name, "op": op}
    if op in ("in", "not_in"):
        return {"field": name, "op": op, "value": draw(st.lists(_values(type_), min_size=1,
                                                                 max_size=3))}
    if op == "between":
        pair = sorted(draw(st.lists(_values(type_), min_size=2, max_size=2)))
        return {"field": name, "op": op, "value": pair}
    if op in ("contains", "starts_with"):
        return {"field": name, "op": op, "value": draw(st.sampled_from(["a", "An", "%", "_"]))}
    return {"field": name, "op": op, "value": draw(_values(type_))}


RULES = st.recursive(
    conditions(),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: {"all": xs}),
        st.lists(inner, max_size=3).map(lambda xs: {"any": xs}),
        inner.map(lambda x: {"not": x}),
    ),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(world=worlds(), rule_list=st.lists(RULES, min_size=1, max_size=6))
def test_sql_matches_reference(db: Db, world: tuple[date, list[dict[str, Any]]],
                               rule_list: list[dict[str, Any]]) -> None:
    as_of, people = world
    with write_transaction(db.engine) as conn:
        clear(conn)
        ids = insert_world(conn, people)
    by_id = {v: k for k, v in ids.items()}
    catalog = {"inner": rule_list[0]}
    with db.engine.connect() as conn:
        for rules in [*rule_list, {"not": {"segment": "inner"}}]:
            segments.validate_rules(rules, catalog)
            got = {by_id[i] for i in conn.execute(segments.member_ids(rules, as_of, catalog))
                   .scalars()}
            want = {p["external_id"] for p in people if matches(rules, p, as_of, catalog)}
            assert got == want, rules
            assert segments.count(conn, rules, as_of, catalog) == len(want)
