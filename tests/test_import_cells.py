"""An import reads a column at a time: a quick form for the cells a file nearly always holds,
the cell parsers for the rest. Whatever the quick form accepts, it reads as the parser does."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from engine.contacts import normalise_email, normalise_emails, normalise_phone, normalise_phones
from engine.importing import cells, shapes
from engine.importing.shapes import CUSTOMERS, INVOICES, Cells

DATES = st.from_regex(r"[ ]?[0-9]{4}-[0-9]{2}-[0-9]{2}[ ]?|[0-9]{8}|2020-W01-[0-9]", fullmatch=True)
NUMBERS = st.from_regex(r"[ ]?-?[0-9]{0,14}(\.[0-9]{0,4})?(e-?[0-9])?[ ]?|NaN|-0|Infinity",
                        fullmatch=True)
ANY = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                st.text(max_size=12), DATES, NUMBERS,
                st.sampled_from(["yes", " No ", "TRUE", "zar", "ZA", "Europe/Vilnius",
                                 " Africa/Johannesburg ", "Mars/Olympus"]))
PAIRS = [(shapes._text, cells.parse_text), (shapes._date, shapes._parse_date),
         (shapes._flag, cells.parse_bool), (shapes._currency, cells.parse_currency),
         (shapes._amount, cells.parse_amount), (shapes._zone, cells.parse_timezone)]
COLUMNS = [(shapes._texts, cells.parse_text), (shapes._dates, shapes._parse_date),
           (shapes._flags, cells.parse_bool)]


def outcome(parse: Any, value: Any) -> Any:
    try:
        return "ok", parse(value, "c")
    except cells.RowError as exc:
        return "error", str(exc)


@given(ANY)
def test_the_quick_forms_read_as_the_parsers_do(value: Any) -> None:
    for quick, parse in PAIRS:
        try:
            read = quick(value)
        except Exception:  # the parser decides this cell
            continue
        assert outcome(parse, value) == ("ok", read), (quick.__name__, value)
    for whole, parse in COLUMNS:
        try:
            column = whole([value, value])
        except Exception:  # the cells are read one by one
            continue
        assert [outcome(parse, value)] * 2 == [("ok", v) for v in column], (whole.__name__, value)


@given(st.lists(st.one_of(st.none(), st.emails(), st.from_regex(
    r"[a-zA-Z0-9.!#_-]{1,70}@[a-zA-Z0-9.-]{1,20}", fullmatch=True)), max_size=30))
def test_a_column_of_emails_reads_as_each_email(column: list[str | None]) -> None:
    values, valid, invalid = normalise_emails(column)
    one_by_one = [normalise_email(raw) for raw in column]
    assert values == [c.value for c in one_by_one]
    assert valid == [c.valid for c in one_by_one]
    assert invalid == sum(c.value is not None and not c.valid for c in one_by_one)


@given(st.sampled_from(["ZA", "LT", "US", "GB"]), st.lists(st.one_of(
    st.none(), st.from_regex(r"\+?[0-9 ]{3,14}", fullmatch=True)), max_size=30))
def test_a_column_of_phones_reads_as_each_phone(region: str, column: list[str | None]) -> None:
    column = [raw.strip() or None if raw else raw for raw in column]
    values, valid, invalid, read_as = normalise_phones(column, region)
    one_by_one = [normalise_phone(raw, region) for raw in column]
    assert values == [c.value for c in one_by_one]
    assert valid == [c.valid for c in one_by_one]
    assert invalid == sum(c.value is not None and not c.valid for c in one_by_one)
    assert read_as == sum(c.region is not None for c in one_by_one)


def test_every_error_of_a_row_is_named_and_good_rows_are_built() -> None:
    keys = ("external_id", "birth_date", "email_opt_out", "email", "shoe_size")
    rows = [("C1", "1980-02-29", "yes", "A@Example.COM", "42"),
            ("", "1980-02-30", "maybe", "not an email", ""),
            ("C3", "", "", None, "007")]
    batch = Cells(keys, rows)
    warnings: Counter[str] = Counter()
    out = CUSTOMERS.make(keys, "ZA", warnings)(batch)
    column = dict(zip(CUSTOMERS.columns, out, strict=True))
    assert sorted(batch.errors) == [
        (1, "birth_date: expected an ISO date (YYYY-MM-DD), got '1980-02-30'"),
        (1, "email_opt_out: expected yes/no/true/false/1/0, got 'maybe'"),
        (1, "external_id: required")]
    assert column["birth_date"][0] == "1980-02-29" and column["birth_mmdd"][0] == 229
    assert column["email"][0] == "A@example.com" and column["email_valid"][0] is True
    assert column["email_opt_out"] == [True, None, None]
    assert column["attributes"] == ['{"shoe_size": 42}', "{}", '{"shoe_size": "007"}']
    assert warnings == {"invalid email": 1}


def test_invoice_amounts_and_too_long_values() -> None:
    keys = ("external_id", "customer_external_id", "amount", "due_date", "currency")
    rows = [("I1", "C1", "100.5", "2026-01-31", "zar"),
            ("I2", "C1", "1e3", "2026-01-31", ""),
            ("I" * 101, "C1", "1000000000000", "2026-01-31", "RANDS"),
            ("I4", "C1", "-1", "", "ZAR")]
    batch = Cells(keys, rows)
    out = INVOICES.make(keys, "ZA", Counter())(batch)
    column = dict(zip(INVOICES.columns, out, strict=True))
    assert column["amount"][:2] == ["100.50", "1000.00"] and column["currency"][:2] == ["ZAR", None]
    assert sorted(batch.errors) == [
        (2, "amount: at most 12 digits before the decimal point, got 1000000000000.00"),
        (2, "currency: expected a 3-letter ISO code, got 'RANDS'"),
        (2, "external_id: at most 100 characters, got 101"),
        (3, "amount: expected a number of at least 0, got '-1'"),
        (3, "due_date: required")]
