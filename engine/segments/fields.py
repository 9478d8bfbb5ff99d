"""The fields a rule can test, each compiled to a SQL boolean that is never NULL.

NULL semantics, the same for every field: a missing value satisfies only `is_null`, `!=` and
`not_in` ("not equal to x" is true of an unknown value); every other operator is false on it.
Because no condition is ever NULL, `not` is plain negation on both databases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import partial
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    and_,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.sql.elements import Grouping
from sqlalchemy.sql.expression import ColumnElement

from engine.models import Customer, Invoice, Message
from engine.points.credits import available_points
from engine.segments import dates, payments
from engine.segments.ops import apply_op
from engine.segments.sqlfuncs import days_from

C = Customer.__table__.c
TYPE_OPS = {
    "string": {"=", "!=", "in", "not_in", "contains", "starts_with", "is_null", "not_null"},
    "int": {"=", "!=", "<", "<=", ">", ">=", "in", "not_in", "between", "is_null", "not_null"},
    "date": {"=", "!=", "<", "<=", ">", ">=", "in", "not_in", "between", "is_null", "not_null"},
    "bool": {"=", "!=", "is_null", "not_null"},
}
TYPE_OPS["number"] = TYPE_OPS["int"]
Bool = ColumnElement[bool]


def _bound(value: Any) -> Any:
    """Whole numbers bound as 64-bit integers: otherwise each takes the compared expression's
    type (INTEGER for a count or a sum of points), which PostgreSQL casts it to and refuses
    beyond 2**31."""
    if isinstance(value, list):
        return [_bound(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return literal(value, BigInteger)
    return value


def compare(expr: ColumnElement[Any], op: str, value: Any) -> Bool:
    """`expr OP value` with the NULL semantics above, for a plain (nullable) SQL value."""
    value = _bound(value)
    if op == "is_null":
        return expr.is_(None)
    if op == "not_null":
        return expr.is_not(None)
    if op == "!=":
        return or_(expr.is_(None), expr != value)
    if op == "not_in":
        return or_(expr.is_(None), expr.not_in(value))
    known = expr.is_not(None)
    cond: Bool
    if op == "in":
        cond = expr.in_(value)
    elif op == "between":
        cond = expr.between(value[0], value[1])
    elif op == "contains":
        cond = func.lower(expr).contains(value.lower(), autoescape=True)
    elif op == "starts_with":
        cond = func.lower(expr).startswith(value.lower(), autoescape=True)
    else:
        cond = expr.operate(OPERATORS[op], value)
    return and_(known, cond)


def _ops() -> dict[str, Any]:
    import operator

    return {"=": operator.eq, "<": operator.lt, "<=": operator.le, ">": operator.gt,
            ">=": operator.ge}


OPERATORS = _ops()


def threshold(known: Bool, at_least: Callable[[int], Bool], op: str, value: Any) -> Bool:
    """Compile any operator on an integer field f that is only tested as `f >= n`.

    Days-ago and age fields are monotone in a stored date, so `f >= n` becomes a plain
    date comparison the database answers from an index, the same on SQLite and PostgreSQL.
    """
    def eq(n: int) -> Bool:
        return and_(at_least(n), not_(at_least(n + 1)))

    if op == "is_null":
        return not_(known)
    if op == "not_null":
        return known
    if op == ">=":
        return at_least(value)
    if op == ">":
        return at_least(value + 1)
    if op == "<":
        return and_(known, not_(at_least(value)))
    if op == "<=":
        return and_(known, not_(at_least(value + 1)))
    if op == "=":
        return eq(value)
    if op == "!=":
        return not_(eq(value))
    if op == "between":
        return and_(at_least(value[0]), not_(at_least(value[1] + 1)))
    if op in ("in", "not_in"):
        chosen = any_of([and_(at_least(low), not_(at_least(high + 1)))
                         for low, high in _runs(value)])
        return chosen if op == "in" else not_(chosen)
    raise AssertionError(f"operator {op} is not valid for a number")


def _runs(values: list[int]) -> list[tuple[int, int]]:
    """Sorted distinct values as inclusive runs of consecutive numbers: [1, 2, 3, 7] -> (1, 3),
    (7, 7)."""
    runs: list[tuple[int, int]] = []
    for n in sorted(set(values)):
        if runs and runs[-1][1] == n - 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs


def any_of(parts: list[Bool]) -> Bool:
    """OR of many parts, parenthesised as a balanced tree: SQLite parses a flat `a OR b OR ...`
    into a tree as deep as the list is long and refuses one deeper than 1,000."""
    if len(parts) <= 16:
        return or_(*parts) if parts else false()
    middle = len(parts) // 2
    # A custom operator: or_() would flatten the halves back into one long chain.
    left, right = Grouping(any_of(parts[:middle])), Grouping(any_of(parts[middle:]))
    return left.op("OR", return_type=Boolean)(right)


def _date_at_most(column: ColumnElement[Any], limit: date | None) -> Bool:
    if limit is None:
        return false()
    return and_(column.is_not(None), column <= limit)


def _unpaid(as_of: date) -> Bool:
    return and_(
        Invoice.customer_id == C.id,
        or_(Invoice.paid_at.is_(None), Invoice.paid_at > as_of),
    )


def _sum(amount: Any, *where: Bool) -> ColumnElement[Any]:
    return select(func.coalesce(func.sum(amount), 0)).where(*where).scalar_subquery()


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time())


CONTACTED = ("queued", "sending", "sent", "held")


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    compile: Callable[[str, Any, date], Bool]
    # The field's value as of a date over `customers`, where one SQL expression gives it
    # (explanations show it beside the rule); None where the field is only ever tested.
    value: Callable[[date], ColumnElement[Any]] | None = None


def _column(name: str, type_: str) -> Field:
    return Field(name, type_, lambda op, value, _d: compare(C[name], op, value),
                 lambda _d: C[name])


def _age(op: str, value: Any, as_of: date) -> Bool:
    return threshold(
        C.birth_date.is_not(None),
        lambda n: _date_at_most(C.birth_date, dates.latest_birth_for_age(as_of, n)),
        op, value,
    )


def _days_since_registration(op: str, value: Any, as_of: date) -> Bool:
    return threshold(
        C.registered_at.is_not(None),
        lambda n: _date_at_most(C.registered_at, dates.shift(as_of, -n)),
        op, value,
    )


def _days_until_birthday(op: str, value: Any, as_of: date) -> Bool:
    # 366 possible birthdays: evaluate the operator on each in Python, test membership in SQL.
    if op in ("is_null", "not_null"):
        return compare(C.birth_mmdd, op, None)
    chosen = [m for m in dates.MMDD_DOMAIN if apply_op(op, dates.days_until(m, as_of), value)]
    if op in ("!=", "not_in"):
        return or_(C.birth_mmdd.is_(None), C.birth_mmdd.in_(chosen))
    return and_(C.birth_mmdd.is_not(None), C.birth_mmdd.in_(chosen)) if chosen else false()


def _days_past_due(op: str, value: Any, as_of: date) -> Bool:
    def at_least(n: int) -> Bool:
        if n <= 0:
            return true()
        limit = dates.shift(as_of, -n)
        if limit is None:
            return false()
        return C.id.in_(overdue_customers(as_of, limit))

    return threshold(true(), at_least, op, value)


def overdue_customers(as_of: date, due_by: date) -> Any:
    """The customers with an invoice due by `due_by` and unpaid as of `as_of`, for a semi-join
    (`customers.id IN ...`): the overdue invoices are few next to the customers, so it beats
    a correlated EXISTS per customer several times over.

    "Unpaid as of D" (paid_at null or after D) is read as two index ranges: the invoices never
    paid, from the partial index on `paid_at IS NULL` (due_date, customer_id), which alone
    covers the query, and those paid after D, from the partial index on paid_at; the second is
    empty in the common case (no payment is recorded after the run date) and costs one index
    probe. SQLite uses a partial index only for a query that repeats its condition, hence the
    `paid_at IS NULL` spelled out."""
    return union_all(
        select(Invoice.customer_id).where(Invoice.paid_at.is_(None), Invoice.due_date <= due_by),
        select(Invoice.customer_id).where(Invoice.paid_at.is_not(None), Invoice.paid_at > as_of,
                                          Invoice.due_date <= due_by),
    )


def _days_past_due_value(as_of: date) -> ColumnElement[Any]:
    oldest = select(func.min(Invoice.due_date)).where(
        _unpaid(as_of), Invoice.due_date < as_of).scalar_subquery()
    return func.coalesce(days_from(oldest, _day(as_of)), 0)


def _day(day: date) -> ColumnElement[Any]:
    return literal(day, Date)


def _days_since_last_payment(op: str, value: Any, as_of: date) -> Bool:
    # Monotone in the last payment date: `>= n` is `last_payment_date <= D - n`.
    last = payments.last_payment_date(as_of)
    known = last.is_not(None)

    def at_least(n: int) -> Bool:
        return known if n <= 0 else _date_at_most(last, dates.shift(as_of, -n))

    return threshold(known, at_least, op, value)


def _days_since_last_message(op: str, value: Any, as_of: date) -> Bool:
    end = _midnight(as_of) + (_midnight(date(2000, 1, 2)) - _midnight(date(2000, 1, 1)))
    mine = and_(Message.customer_id == C.id, Message.status.in_(CONTACTED))
    known = exists().where(mine, Message.created_at < end)

    def at_least(n: int) -> Bool:
        if n <= 0:
            return known
        start = dates.shift(as_of, -n + 1)
        if start is None:
            return false()
        recent = exists().where(mine, Message.created_at >= _midnight(start),
                                Message.created_at < end)
        return and_(known, not_(recent))

    return threshold(known, at_least, op, value)


def _aggregate(name: str, type_: str, expr: Callable[[date], ColumnElement[Any]]) -> Field:
    return Field(name, type_, lambda op, value, as_of: compare(expr(as_of), op, value), expr)


FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        *(_column(n, "string") for n in (
            "external_id", "first_name", "last_name", "email", "phone", "gender", "branch",
            "region", "status")),
        *(_column(n, "date") for n in ("birth_date", "registered_at")),
        *(_column(n, "bool") for n in ("email_opt_out", "sms_opt_out", "marketing_consent")),
        Field("age", "int", _age),
        Field("days_since_registration", "int", _days_since_registration,
              lambda d: days_from(C.registered_at, _day(d))),
        Field("days_until_birthday", "int", _days_until_birthday),
        Field("has_valid_email", "bool", lambda op, v, _d: compare(
            and_(C.email_valid, C.email.is_not(None)), op, v),
              lambda _d: and_(C.email_valid, C.email.is_not(None))),
        Field("has_valid_phone", "bool", lambda op, v, _d: compare(
            and_(C.phone_valid, C.phone.is_not(None)), op, v),
              lambda _d: and_(C.phone_valid, C.phone.is_not(None))),
        Field("days_past_due", "int", _days_past_due, _days_past_due_value),
        _aggregate("overdue_amount", "number",
                   lambda d: _sum(Invoice.amount, _unpaid(d), Invoice.due_date < d)),
        _aggregate("outstanding_amount", "number", lambda d: _sum(Invoice.amount, _unpaid(d))),
        _aggregate("unpaid_invoices", "int",
                   lambda d: select(func.count()).where(_unpaid(d)).scalar_subquery()),
        # Available points: not pending, not expired, less what was redeemed.
        _aggregate("bonus_balance", "int", lambda d: available_points(C.id, d)),
        Field("days_since_last_message", "int", _days_since_last_message),
        # As of D over the invoices (engine/segments/payments.py).
        _aggregate("next_due_date", "date", payments.next_due_date),
        _aggregate("next_amount_due", "number", payments.next_amount_due),
        _aggregate("last_payment_date", "date", payments.last_payment_date),
        Field("days_since_last_payment", "int", _days_since_last_payment,
              payments.days_since_last_payment),
        *(_aggregate(name, "number", partial(payments.owed, bucket=name))
          for name in payments.BUCKETS),
        _aggregate("overdue_invoices", "int", payments.overdue_invoices),
        _aggregate("paid_ratio", "number", payments.paid_ratio),
        _aggregate("paid_up_on", "date", payments.paid_up_on),
    )
}
