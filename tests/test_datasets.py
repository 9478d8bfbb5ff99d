"""Invoice fields as of a date and data sets: each value against the plain-Python reference, in
rules, in templates, in the data set's JSON pages, CSV and XLSX (CLI and API)."""

from __future__ import annotations

import base64
import csv
import io
import re
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from openpyxl import load_workbook

from engine import datasets
from engine.campaigns import save_segment
from engine.db import write_transaction
from engine.errors import ValidationError
from engine.message_context import PAYMENT_FIGURES, preview_context
from engine.segments import member_ids
from engine.segments.fields import FIELDS
from tests.conftest import Db
from tests.reference import derived, matches
from tests.webapp import ok, token_for
from tests.world import customer, insert_world

D = date(2026, 3, 1)


def _in(days: int) -> date:
    return D + timedelta(days=days)


def inv(due: int, amount: int | str, paid: int | None = None) -> dict[str, Any]:
    """An invoice due `due` days after D, paid `paid` days after D (None: unpaid)."""
    return {"due_date": _in(due), "amount": Decimal(amount),
            "paid_at": None if paid is None else _in(paid)}


PEOPLE = [
    customer("a-none", first_name="Ann"),
    customer("b-all-paid", invoices=[inv(-40, 50, -30), inv(-5, 70, 0)]),  # one paid on D
    customer("c-mixed", email="c@example.com", email_valid=True, invoices=[
        inv(0, 10), inv(0, 5, 1),             # due on D: one unpaid, one paid after D
        inv(30, 20), inv(31, 40), inv(60, 7), inv(61, 8), inv(90, 9), inv(91, 11),
        inv(120, 12), inv(121, 13), inv(400, "1.25"),
        inv(-10, 100, 1), inv(-3, "0.50"),    # overdue: paid after D, and unpaid
        inv(-40, 50, -5), inv(-60, 30, -5)]),  # paid twice on the same day
    customer("d-paid-later", invoices=[inv(-2, 80, 3)]),
    customer("e-formula", first_name="=HYPERLINK(\"http://x\")", phone="+27821234567",
             attributes={"plate": "=1+1", "score": 7, "vip": True, "meta": {"a": 1}}),
    customer("f-zero", invoices=[inv(-1, 0, -1)]),
    customer("g-future", invoices=[inv(5, 25), inv(5, 15), inv(9, 1)]),
]
PAYMENT = ["days_past_due", *PAYMENT_FIGURES]
DAYS = [D, _in(-1), _in(1), _in(31), _in(-60)]


@pytest.fixture
def world(db: Db) -> Db:
    with write_transaction(db.engine) as conn:
        insert_world(conn, PEOPLE)
        save_segment(conn, {"key": "everyone", "rules": {"all": []}})
        save_segment(conn, {"key": "owing", "rules": {
            "field": "owed_next_30", "op": ">", "value": 0}})
    return db


def same(got: Any, want: Any) -> bool:
    if isinstance(want, float) or isinstance(got, float):
        return got is not None and want is not None and abs(float(got) - float(want)) < 1e-9
    if isinstance(want, int | Decimal) and not isinstance(want, bool) and got is not None:
        return Decimal(str(got)) == Decimal(want)
    return bool(got == want)


def test_every_column_equals_the_reference_on_several_days(world: Db) -> None:
    for day in DAYS:
        with world.engine.connect() as conn:
            ds = datasets.for_segment(conn, "everyone", datasets.COLUMNS, day)
            got = list(datasets.rows(conn, ds))
        assert [r[0] for r in got] == sorted(p["external_id"] for p in PEOPLE)
        for row, person in zip(got, sorted(PEOPLE, key=lambda p: p["external_id"]), strict=True):
            want = derived(person, day)
            for name, value in zip(ds.columns, row, strict=True):
                assert same(value, want[name]), (day, person["external_id"], name, value,
                                                 want[name])


def test_hand_made_values(world: Db) -> None:
    with world.engine.connect() as conn:
        ds = datasets.for_segment(conn, "everyone", ["external_id", *PAYMENT], D)
        rows = {r[0]: dict(zip(ds.columns, r, strict=True)) for r in datasets.rows(conn, ds)}
    c = rows["c-mixed"]
    assert (c["next_due_date"], c["next_amount_due"]) == (D, 15)
    assert (c["last_payment_date"], c["days_since_last_payment"]) == (_in(-5), 5)
    assert [c[f"owed_{b}"] for b in ("next_30", "31_60", "61_90", "91_120", "over_120")] == [
        35, 47, 17, 23, Decimal("14.25")]
    assert (c["overdue_invoices"], c["days_past_due"], c["paid_up_on"]) == (2, 10, None)
    assert rows["b-all-paid"]["paid_up_on"] == D and rows["b-all-paid"]["paid_ratio"] == 1
    assert rows["b-all-paid"]["days_since_last_payment"] == 0
    assert rows["a-none"]["paid_ratio"] is None and rows["a-none"]["owed_next_30"] == 0
    assert rows["a-none"]["next_amount_due"] is None and rows["a-none"]["paid_up_on"] is None
    assert rows["d-paid-later"]["last_payment_date"] is None
    assert rows["d-paid-later"]["paid_ratio"] == 0
    assert rows["f-zero"]["paid_ratio"] is None and rows["f-zero"]["paid_up_on"] == _in(-1)
    assert rows["g-future"]["next_amount_due"] == 40


def _conditions(name: str, values: list[Any]) -> list[dict[str, Any]]:
    type_ = FIELDS[name].type
    out: list[dict[str, Any]] = [{"field": name, "op": "is_null"}, {"field": name, "op": "not_null"}]
    for v in {v for v in values if v is not None}:
        value: Any = v.isoformat() if isinstance(v, date) else (
            float(v) if type_ == "number" else v)
        out += [{"field": name, "op": op, "value": value} for op in ("=", "!=", "<", ">=")]
        out.append({"field": name, "op": "in", "value": [value]})
    return out


def test_rules_on_each_field_equal_the_reference(world: Db) -> None:
    from sqlalchemy import select

    from engine.models import Customer

    for day in (D, _in(1)):
        values = {n: [derived(p, day)[n] for p in PEOPLE] for n in PAYMENT}
        with world.engine.connect() as conn:
            for name in PAYMENT:
                for rule in _conditions(name, values[name]):
                    got = set(conn.execute(select(Customer.external_id).where(
                        Customer.id.in_(member_ids(rule, day, {})))).scalars())
                    want = {p["external_id"] for p in PEOPLE if matches(rule, p, day, {})}
                    assert got == want, (day, rule)


def test_templates_read_the_same_values(world: Db) -> None:
    from sqlalchemy import select

    from engine.models import Customer

    with world.engine.connect() as conn:
        ids = dict(conn.execute(select(Customer.external_id, Customer.id)).all())
        for person in PEOPLE:
            seen = preview_context(conn, ids[person["external_id"]], D, "u")["customer"]
            want = derived(person, D)
            for name in PAYMENT:
                assert same(seen[name], want[name]), (person["external_id"], name)


def test_unknown_and_repeated_columns_are_named(world: Db) -> None:
    with world.engine.connect() as conn, pytest.raises(ValidationError) as caught:
        datasets.for_segment(conn, "everyone", "external_id,balance,external_id,age", D)
    messages = [p.message for p in caught.value.problems]
    assert messages[0].startswith("unknown column 'balance' (expected attributes.NAME or one of")
    assert messages[1] == "column 'external_id' is named twice"
    # age has no value expression (it is tested as date comparisons only).
    assert messages[2].startswith("unknown column 'age'")


COLUMNS = ("external_id,first_name,phone,attributes.plate,attributes.score,attributes.vip,"
           "attributes.meta,attributes.missing,next_due_date,owed_31_60,paid_ratio,paid_up_on,"
           "has_valid_email")


def _csv_cell(text: str) -> Any:
    return None if text == "" else text


def _as_text(value: Any) -> Any:
    """A JSON value as CSV shows it (numbers compared as numbers)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value)
    return value


def test_cli_csv_and_xlsx_equal_the_api_and_the_reference(world: Db, nf: Any, app: Flask,
                                                          tmp_path: Path) -> None:
    client, auth = app.test_client(), token_for(world, "viewer")
    url = f"/api/v1/segments/everyone/dataset?columns={COLUMNS}&date={D}&limit=3"
    items, after, pages = [], None, 0
    while True:
        page = ok(client.get(url + (f"&after={after}" if after else ""), headers=auth))
        assert page["total"] == len(PEOPLE) + 1  # and C1, the app fixture's customer
        items += page["items"]
        pages += 1
        if (after := page["next"]) is None:
            break
    assert pages == 3 and [i["external_id"] for i in items] == sorted(
        [*(p["external_id"] for p in PEOPLE), "C1"])
    names = COLUMNS.split(",")
    api_rows = [[i[n] for n in names] for i in items]
    e = next(i for i in items if i["external_id"] == "e-formula")
    assert (e["attributes.plate"], e["attributes.score"], e["attributes.vip"],
            e["attributes.meta"], e["attributes.missing"]) == ("=1+1", 7, True, '{"a": 1}', None)
    by_ext = {p["external_id"]: derived(p, D) for p in PEOPLE}
    for item in items:
        if (want := by_ext.get(item["external_id"])) is not None:
            for name in ("next_due_date", "owed_31_60", "paid_ratio", "paid_up_on"):
                expected = want[name].isoformat() if isinstance(want[name], date) else want[name]
                assert same(item[name], expected), (item["external_id"], name)

    out = tmp_path / "d.csv"
    answer = nf("dataset", "everyone", "--columns", COLUMNS, "--date", D.isoformat(), "-o",
                str(out))
    assert answer.code == 0, answer.err
    assert answer.err == ""  # no progress bar: stderr is not a terminal
    cli_text = out.read_text(encoding="utf-8")
    api_text = ok(client.get(f"/api/v1/segments/everyone/dataset.csv?columns={COLUMNS}"
                             f"&date={D}", headers=auth))
    assert cli_text.replace("\r\n", "\n") == api_text.replace("\r\n", "\n")
    table = list(csv.reader(io.StringIO(cli_text)))
    assert table[0] == names
    for line, api_row in zip(table[1:], api_rows, strict=True):
        for cell, value, name in zip(line, api_row, names, strict=True):
            if name in ("first_name", "attributes.plate") and cell.startswith("'="):
                assert cell == "'" + value  # neutralised
            elif isinstance(value, int | float) and not isinstance(value, bool):
                assert float(cell) == value
            else:
                assert _csv_cell(cell) == _as_text(value), name
    assert "'=HYPERLINK" in cli_text and "+27821234567" in cli_text

    xlsx = tmp_path / "d.xlsx"
    assert nf("dataset", "everyone", "--columns", COLUMNS, "--date", D.isoformat(), "-o",
              str(xlsx)).code == 0
    api_xlsx = client.get(f"/api/v1/segments/everyone/dataset.xlsx?columns={COLUMNS}&date={D}",
                          headers=auth)
    assert api_xlsx.status_code == 200
    (tmp_path / "api.xlsx").write_bytes(api_xlsx.data)
    api_xlsx.close()  # as a WSGI server does: closes the spooled file
    for path in (xlsx, tmp_path / "api.xlsx"):
        book = load_workbook(path, read_only=True)
        got = [list(r) for r in book.active.iter_rows(values_only=True)]
        book.close()
        assert got[0] == names
        for line, api_row in zip(got[1:], api_rows, strict=True):
            for cell, value in zip(line, api_row, strict=True):
                if hasattr(cell, "date"):
                    cell = cell.date().isoformat()
                if isinstance(cell, str) and cell.startswith("'="):
                    cell = cell[1:]
                assert cell == value or same(cell, value), (cell, value)


def test_inline_rules_and_errors(world: Db, nf: Any, app: Flask, tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    answer = nf("dataset", "--rules", '{"field": "overdue_invoices", "op": ">=", "value": 1}',
                "--columns", "external_id,overdue_invoices", "--date", D.isoformat(), "-o", str(out))
    assert answer.code == 0, answer.err
    assert out.read_text().splitlines() == ["external_id,overdue_invoices", "c-mixed,2",
                                            "d-paid-later,1"]
    bad = nf("dataset", "everyone", "--columns", "external_id,balance", "-o", str(out))
    assert bad.code == 2
    assert "unknown column 'balance'" in bad.err
    assert nf("dataset", "nope", "--columns", "external_id", "-o", str(out)).code == 2
    client, auth = app.test_client(), token_for(world, "viewer")
    for suffix in ("", ".csv", ".xlsx"):
        answer = client.get(f"/api/v1/segments/everyone/dataset{suffix}?columns=balance",
                            headers=auth)
        assert answer.status_code == 400, answer.get_data(as_text=True)
        assert "unknown column 'balance'" in answer.get_data(as_text=True)
    missing = client.get("/api/v1/segments/nope/dataset?columns=external_id", headers=auth)
    assert missing.status_code == 404
    owing = ok(client.get(f"/api/v1/segments/owing/dataset?columns=owed_next_30&date={D}",
                          headers=auth))
    assert owing["items"] == [{"owed_next_30": 35.0}, {"owed_next_30": 41.0}]


def test_memory_does_not_grow_with_rows(db: Db) -> None:
    from tests.bench_dataset import generate, measure

    peaks = {}
    for n in (5_000, 50_000):
        generate(db.engine, n)
        for fmt in ("csv", "xlsx"):
            got = measure(db.engine, fmt, "external_id,next_due_date,owed_next_30,paid_ratio,"
                                          "attributes.tier")
            assert got["rows"] == n
            peaks[fmt, n] = got["peak_mb"]
    for fmt in ("csv", "xlsx"):
        # Ten times the rows, the same peak (a chunk of rows), give or take the allocator.
        assert peaks[fmt, 50_000] < peaks[fmt, 5_000] * 1.3 + 0.5, peaks


def test_the_data_set_page(world: Db, app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.webapp import ROLES, session_client
    from web.pages import segments as pages

    monkeypatch.setattr(pages, "PAGE_ROWS", 3)
    url = (f"/segments/everyone/dataset?column=external_id&column=first_name&column=paid_ratio"
           f"&attributes=plate&date={D}")
    assert app.test_client().get(url).status_code == 302  # login first
    for role in ROLES:
        client, _ = session_client(app, role)
        page = ok(client.get(url))
        assert "8 customers as of 2026-03-01" in page
        assert "&lt;b&gt;Ana&lt;/b&gt;" in page and "<b>Ana</b>" not in page
        assert "<td>b-all-paid</td>" in page and "<td>c-mixed</td>" not in page
        assert ("dataset.csv?columns=external_id,first_name,paid_ratio,attributes.plate"
                "&amp;date=2026-03-01") in page, re.findall(r'href="[^"]*dataset[^"]*"', page)
        following = ok(client.get(url + "&after=b-all-paid"))
        assert "<td>c-mixed</td>" in following and "<td>b-all-paid</td>" not in following
    bad = ok(client.get("/segments/everyone/dataset?attributes=no%20such"))
    assert "unknown column &#39;attributes.no such&#39;" in bad
    assert client.get("/segments/nope/dataset").status_code == 404


SORTS = ["next_due_date", "-paid_ratio", "days_past_due", "-owed_next_30", "-has_valid_email",
         "first_name", "-external_id", "paid_up_on"]


def _reference_order(items: list[dict[str, Any]], sort: str) -> list[str]:
    """Empty values last, ties by external_id, whatever the direction."""
    name, descending = sort.removeprefix("-"), sort.startswith("-")
    by_id = sorted(items, key=lambda i: i["external_id"])
    filled = sorted((i for i in by_id if i[name] is not None), key=lambda i: i[name],
                    reverse=descending)  # stable: equal values stay in external_id order
    return [i["external_id"] for i in (*filled, *(i for i in by_id if i[name] is None))]


def test_sorted_pages_walk_every_row_once_in_order(world: Db, app: Flask, nf: Any,
                                                    tmp_path: Path) -> None:
    client, auth = app.test_client(), token_for(world, "viewer")
    names = sorted({s.removeprefix("-") for s in SORTS})
    base = f"/api/v1/segments/everyone/dataset?columns={','.join(names)}&date={D}"
    everything = ok(client.get(base + "&limit=1000", headers=auth))["items"]
    assert len(everything) == len(PEOPLE) + 1
    assert len({i["next_due_date"] for i in everything}) > 2  # ties, gaps and empties to order
    for sort in SORTS:
        got, after, pages = [], None, 0
        while True:
            url = base + f"&sort={sort}&limit=2" + (f"&after={after}" if after else "")
            answer = client.get(url, headers=auth)
            assert answer.status_code == 200, answer.get_data(as_text=True)
            page = answer.get_json()
            assert page["sort"] == sort and page["total"] == len(everything)
            got += [i["external_id"] for i in page["items"]]
            pages += 1
            if (after := page["next"]) is None:
                break
        assert got == _reference_order(everything, sort), sort
        assert pages == 4  # eight rows, two a page
        out = tmp_path / "sorted.csv"
        assert nf("dataset", "everyone", "--columns", "external_id", "--sort", sort, "--date",
                  D.isoformat(), "-o", str(out)).code == 0
        assert out.read_text().split() == ["external_id", *got]
        csv_text = ok(client.get(f"/api/v1/segments/everyone/dataset.csv?columns=external_id"
                                 f"&date={D}&sort={sort}", headers=auth))
        assert csv_text.split() == ["external_id", *got]


def test_bad_orders_and_cursors_are_named(world: Db, app: Flask, nf: Any, tmp_path: Path) -> None:
    client, auth = app.test_client(), token_for(world, "viewer")
    base = f"/api/v1/segments/everyone/dataset?columns=external_id&date={D}"
    for sort in ("age", "balance", "attributes.plate", "--paid_ratio"):
        answer = client.get(base + f"&sort={sort}", headers=auth)
        assert answer.status_code == 400, sort
        assert answer.get_json()["error"]["details"][0]["path"] == "sort"
        assert "cannot sort by" in answer.get_json()["error"]["details"][0]["message"]
    first = ok(client.get(base + "&sort=paid_ratio&limit=2", headers=auth))
    hostile = ('[false,1e999,"a"]', '[false,NaN,"a"]', '[false,1,"a\\u0000"]',
               '[false,123456789012345678901234567890,"a"]', '[false,1,"\\ud800"]', '[1,2]')
    for cursor in ("c-mixed", "k!!", "kW10", first["next"] + "x", "k" + "A" * 900,
                   *("k" + base64.urlsafe_b64encode(h.encode()).decode() for h in hostile)):
        answer = client.get(base + f"&sort=paid_ratio&after={cursor}", headers=auth)
        assert answer.status_code == 400, cursor
        assert answer.get_json()["error"]["details"][0]["path"] == "after"
    # A cursor of one order is refused by another whose values have another type.
    answer = client.get(base + f"&sort=next_due_date&after={first['next']}", headers=auth)
    assert answer.status_code == 400
    bad = nf("dataset", "everyone", "--columns", "external_id", "--sort", "age", "-o",
             str(tmp_path / "x.csv"))
    assert bad.code == 2 and "cannot sort by 'age'" in bad.err


def test_the_data_set_page_sorts_by_a_header(world: Db, app: Flask,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.webapp import session_client
    from web.pages import segments as pages

    monkeypatch.setattr(pages, "PAGE_ROWS", 3)
    client, _ = session_client(app, "viewer")
    url = f"/segments/everyone/dataset?column=external_id&column=owed_next_30&date={D}"
    page = ok(client.get(url))
    assert "sort=owed_next_30" in page  # the header's link: ascending first
    down = ok(client.get(url + "&sort=-owed_next_30"))
    assert re.search(r"customers as of 2026-03-01, by [^<·]+ descending ·", down)
    rows = re.findall(r"<tr><td>([^<]+)</td>", down)
    assert rows[:2] == ["g-future", "c-mixed"]  # 41 and 35 owed in the next 30 days
    assert 'aria-sort="descending"' in down
    following = re.search(r'href="([^"]*after=[^"]*)"', down)
    assert following is not None
    rest = ok(client.get(following.group(1).replace("&amp;", "&")))
    assert "sort=-owed_next_30" in following.group(1)
    assert "c-mixed" not in re.findall(r"<tr><td>([^<]+)</td>", rest)


def test_column_sets_are_saved_listed_used_and_removed(world: Db, app: Flask, nf: Any,
                                                       tmp_path: Path) -> None:
    client, marketer = app.test_client(), token_for(world, "marketer")
    viewer = token_for(world, "viewer")
    url = "/api/v1/column-sets/Collections%20view"
    body = {"columns": ["external_id", "owed_next_30", "attributes.plate"]}
    assert client.put(url, json=body, headers=viewer).status_code == 403
    created = client.put(url, json=body, headers=marketer)
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json()["columns"] == body["columns"]
    again = client.put(url, json={"columns": ["external_id", "paid_ratio"]}, headers=marketer)
    assert again.status_code == 200  # replaced, not a second set
    listed = ok(client.get("/api/v1/column-sets", headers=viewer))
    assert [(s["name"], s["columns"]) for s in listed] == [
        ("Collections view", ["external_id", "paid_ratio"])]
    assert listed[0]["saved_by"] == "marketer"
    for bad, where in (({"columns": ["external_id", "balance"]}, "unknown column 'balance'"),
                       ({"columns": []}, "Length must be between 1 and 100"),
                       ({"columns": "external_id"}, "Not a valid list")):
        answer = client.put(url, json=bad, headers=marketer)
        assert answer.status_code in (400, 422), bad
        assert where in answer.get_data(as_text=True)
    long = client.put("/api/v1/column-sets/" + "x" * 101, json=body, headers=marketer)
    assert long.status_code == 400 and "1 to 100 characters" in long.get_data(as_text=True)

    from tests.webapp import session_client
    session, _ = session_client(app, "viewer")
    page = ok(session.get(f"/segments/everyone/dataset?set=Collections+view&date={D}"))
    assert "<th scope=\"col\">" in page and "paid_ratio" in page.replace(" ", "_").lower()
    assert '<option value="Collections view" selected>' in page
    missing = ok(session.get("/segments/everyone/dataset?set=nope"))
    assert "no column set &#39;nope&#39;" in missing

    out = tmp_path / "set.csv"
    used = nf("dataset", "owing", "--column-set", "Collections view", "--date", D.isoformat(),
              "-o", str(out))
    assert used.code == 0, used.err
    lines = out.read_text().split()
    assert lines[0] == "external_id,paid_ratio"
    assert [line.split(",")[0] for line in lines[1:]] == ["c-mixed", "g-future"]
    for args in (("--column-set", "nope"), ("--column-set", "x", "--columns", "external_id"), ()):
        refused = nf("dataset", "owing", *args, "-o", str(out))
        assert refused.code != 0 and "Traceback" not in refused.err, args
        assert "no column set 'nope'" in refused.err or "exactly one of" in refused.err

    assert client.delete(url, headers=marketer).status_code == 204
    assert client.delete(url, headers=marketer).status_code == 404
    assert ok(client.get("/api/v1/column-sets", headers=viewer)) == []
