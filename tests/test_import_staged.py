"""The staged import: unchanged rows are not written, a late bad row changes nothing, duplicate
ids anywhere in a file are found, long error lists are capped, records of different shapes
keep what they do not give; on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from engine.importing import run
from engine.importing.progress import Progress
from engine.models import Activity, Customer, Invoice
from tests.conftest import Db

HEADER = "external_id,first_name,email,phone,sms_opt_out,birth_date,tier\n"


def people(n: int, name: str = "Name") -> str:
    return HEADER + "".join(f"C{i},{name}{i},c{i}@example.com,082{i:07d},no,1980-01-0{1 + i % 9},"
                            f"{'gold' if i % 2 else ''}\n" for i in range(n))


def stored(db: Db) -> dict[str, Any]:
    with db.engine.connect() as conn:
        return {r.external_id: r for r in conn.execute(select(Customer.__table__))}


def count(db: Db, model: Any) -> int:
    with db.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def test_unchanged_rows_are_not_written(nf: Any, db: Db, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(people(3))
    assert nf("import", "customers", str(path)).out.startswith(
        "customers: 3 rows, 3 inserted, 0 updated;")
    with db.engine.begin() as conn:  # an old stamp, so a rewrite would show
        conn.execute(update(Customer).values(updated_at=datetime(2020, 1, 1)))
    before = stored(db)
    again = nf("import", "customers", str(path), "--json")
    assert again.code == 0, again.err
    assert {k: v for k, v in json.loads(again.out).items() if k != "warnings"} == {
        "kind": "customers", "rows": 3, "inserted": 0, "updated": 0, "unchanged": 3}
    assert stored(db) == before
    assert count(db, Activity) == 0
    # One changed name (not audited) and one changed opt-out (audited): two rows written.
    path.write_text(people(3).replace("Name1,", "Renamed1,").replace("082" + "0000002,no",
                                                                      "0820000002,yes"))
    result = nf("import", "customers", str(path))
    assert result.out.startswith("customers: 3 rows, 0 inserted, 2 updated, 1 unchanged;")
    after = stored(db)
    assert after["C0"] == before["C0"]
    assert after["C1"].first_name == "Renamed1" and after["C1"].updated_at > before["C1"].updated_at
    assert (after["C2"].sms_opt_out, after["C2"].updated_at > before["C2"].updated_at) == (True, True)
    with db.engine.connect() as conn:
        audits = conn.execute(select(Activity.summary, Activity.details)).all()
    assert [tuple(a) for a in audits] == [(
        "Profile changed (import people.csv): sms_opt_out",
        {"source": "import people.csv", "fields": {"sms_opt_out": {"old": False, "new": True}}})]


def test_a_late_bad_row_changes_nothing_and_is_named(nf: Any, db: Db, tmp_path: Path) -> None:
    first = tmp_path / "first.csv"
    first.write_text(people(10))
    assert nf("import", "customers", str(first)).code == 0
    before = stored(db)
    rows = 12_000  # more than one staging chunk
    text = people(rows, "New").splitlines(keepends=True)
    text[rows - 1] = text[rows - 1].replace("1980-01-0", "1980-13-0")  # line `rows`
    path = tmp_path / "big.csv"
    path.write_text("".join(text))
    result = nf("import", "customers", str(path))
    assert result.code == 2
    bad = text[rows - 1].split(",")[5]
    assert result.err.splitlines() == [
        f"error: {path}: 1 row error(s)",
        f"{path}:{rows}: birth_date: expected an ISO date (YYYY-MM-DD), got '{bad}'"]
    assert stored(db) == before and count(db, Activity) == 0


def test_duplicate_ids_anywhere_in_a_file(nf: Any, db: Db, tmp_path: Path) -> None:
    text = people(7000).splitlines(keepends=True)
    text.append("C5,Again,,,,,\n")  # line 7002, first on line 7
    text.append("C6999,Again,,,,,\n")  # line 7003, first on line 7001
    path = tmp_path / "twice.csv"
    path.write_text("".join(text))
    result = nf("import", "customers", str(path))
    assert result.code == 2
    assert result.err.splitlines() == [
        f"error: {path}: 2 row error(s)",
        f"{path}:7002: external_id: 'C5' already appears on line 7",
        f"{path}:7003: external_id: 'C6999' already appears on line 7001"]
    assert count(db, Customer) == 0


def test_invoice_errors_found_in_sql_come_in_line_order(nf: Any, db: Db, tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("external_id\nC1\n")
    assert nf("import", "customers", str(tmp_path / "c.csv")).code == 0
    path = tmp_path / "i.csv"
    path.write_text("external_id,customer_external_id,amount,due_date\n"
                    "I1,C9,10,2026-01-01\n"
                    "I2,C1,ten,2026-01-01\n"
                    "I1,C8,10,2026-01-01\n"
                    "I3,C1,10,2026-01-01\n")
    result = nf("import", "invoices", str(path))
    assert result.err.splitlines() == [
        f"error: {path}: 3 row error(s)",
        f"{path}:2: customer_external_id: no customer 'C9'",
        f"{path}:3: amount: expected a number, got 'ten'",
        f"{path}:4: external_id: 'I1' already appears on line 2"]
    assert count(db, Invoice) == 0


def test_a_long_list_of_errors_is_capped_and_counted(nf: Any, db: Db, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "MAX_LISTED", 3)
    path = tmp_path / "bad.csv"
    # Five bad dates found while reading, four duplicates found in SQL (beyond its limit).
    path.write_text("external_id,birth_date\n" + "".join(f"C{i},never\n" for i in range(5))
                    + "D1,\nD2,\n" * 3)
    result = nf("import", "customers", str(path))
    assert result.code == 2
    assert result.err.splitlines() == [
        f"error: {path}: 9 row error(s)",
        f"{path}:2: birth_date: expected an ISO date (YYYY-MM-DD), got 'never'",
        f"{path}:3: birth_date: expected an ISO date (YYYY-MM-DD), got 'never'",
        f"{path}:4: birth_date: expected an ISO date (YYYY-MM-DD), got 'never'",
        "... and 6 more row error(s) not listed"]


def test_records_of_different_shapes_keep_what_they_do_not_give(nf: Any, db: Db,
                                                                 tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("external_id,first_name,last_name,email,tier\n"
                                    "J1,Ana,Silva,ana@example.com,gold\n"
                                    "J2,Ben,Moyo,ben@example.com,\n")
    assert nf("import", "customers", str(tmp_path / "a.csv")).code == 0
    lines = [{"external_id": "J1", "last_name": None},
             {"external_id": "J2", "first_name": "Benjamin", "email": "BEN@EXAMPLE.COM"}]
    path = tmp_path / "b.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    result = nf("import", "customers", str(path))
    assert result.out == "customers: 2 rows, 0 inserted, 2 updated\n"
    got = stored(db)
    assert (got["J1"].first_name, got["J1"].last_name, got["J1"].email, got["J1"].attributes) == (
        "Ana", None, "ana@example.com", {"tier": "gold"})
    assert (got["J2"].first_name, got["J2"].last_name, got["J2"].email) == (
        "Benjamin", "Moyo", "BEN@example.com")


def test_progress_is_drawn_on_a_terminal_only(nf: Any, db: Db, tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(people(3))
    assert nf("import", "customers", str(path)).err == ""  # not a terminal: nothing
    out = io.StringIO()
    bar = Progress("customers", out, every=0)
    bar.update(0.5, 50_000)
    bar.phase("writing", 100_000)
    bar.close()
    drawn = out.getvalue()
    assert "customers [############............]  50% 50,000 rows, " in drawn
    assert "rows/s" in drawn and "customers: 100,000 rows read; writing" in drawn
    assert drawn.endswith("\r\x1b[K")


def test_a_file_read_in_a_child_process(nf: Any, db: Db, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Big files are read in a child process: the same rows, errors and refusals."""
    monkeypatch.setattr(run, "APART_BYTES", 0)
    path = tmp_path / "people.csv"
    path.write_text(people(12_000))
    result = nf("import", "customers", str(path))
    assert result.out.startswith("customers: 12000 rows, 12000 inserted, 0 updated; "), result.err
    assert stored(db)["C11999"].phone == "+27820011999"
    text = people(12_000, "New").replace("C11000,New11000,", "C11000,New11000,bad@")
    path.write_text(text.replace("1980-01-01,gold\nC11998", "1980-01-01,gold\nC5"))
    result = nf("import", "customers", str(path))
    assert result.code == 2
    assert result.err.splitlines() == [
        f"error: {path}: 1 row error(s)",
        f"{path}:12000: external_id: 'C5' already appears on line 7"]
    assert stored(db)["C1"].first_name == "Name1"
    path.write_bytes(b"external_id,first_name\nC1,Ren\xe9e\n")
    result = nf("import", "customers", str(path))
    assert (result.code, result.err.splitlines()) == (2, [
        f"error: {path}: not UTF-8",
        f"{path}:2: not UTF-8 at line 2 (byte 0xE9): save the file as UTF-8"])


def test_a_file_read_in_parts(nf: Any, db: Db, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite reads a big file in parts at once (engine.importing.split): a quoted cell with
    line breaks where the file is cut, row errors in every part named by their line in the
    whole file (the first 1000 of them, in file order), warnings counted over all parts."""
    from engine.importing import split

    monkeypatch.setattr(run, "APART_BYTES", 0)
    monkeypatch.setattr(run, "PARTS", 3)
    path = tmp_path / "people.csv"
    rows = [f'C{i},"Name\n{i}",c{i}@example.com,082{i:07d},no,1980-01-0{1 + i % 9},\n'
            for i in range(9_000)]
    text = HEADER + "".join(rows)
    path.write_text(text)
    names, parts = split.cut(path, 3)  # type: ignore[misc]
    assert names == tuple(HEADER.strip().split(",")) and len(parts) == 3
    data = path.read_bytes()
    for part in parts[1:]:  # each part starts a record, after an even number of quotes
        assert data[part.start:part.start + 1] == b"C" and data[:part.start].count(b'"') % 2 == 0
        assert part.lines_before == data[:part.start].count(b"\n")
    result = nf("import", "customers", str(path), "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["inserted"] == 9_000
    assert json.loads(result.out)["warnings"] == {
        "phones had no country code and were read as ZA numbers": 9_000}
    if db.engine.dialect.name == "sqlite":
        assert stored(db)["C8999"].first_name == "Name\n8999"
    bad = text.replace(',"Name\n10",', ',"Name\n10",x,').replace("C8990,", "C5,")
    bad = bad.replace("c4500@example.com,0820004500,no,1980-01-01", "c4500@example.com,0820004500,"
                      "maybe,1980-01-01")
    path.write_text(bad)
    result = nf("import", "customers", str(path))
    assert result.code == 2
    assert result.err.splitlines() == [
        "error: invalid input", f"{path}:23: more cells than header columns"]
    path.write_text(bad.replace(',"Name\n10",x,', ',"Name\n10",'))
    result = nf("import", "customers", str(path))
    assert result.err.splitlines() == [
        f"error: {path}: 2 row error(s)",
        f"{path}:9003: sms_opt_out: expected yes/no/true/false/1/0, got 'maybe'",
        f"{path}:17983: external_id: 'C5' already appears on line 13"]
    assert count(db, Customer) == 9_000


def test_a_file_with_bare_cr_line_breaks_is_read_whole(tmp_path: Path) -> None:
    from engine.importing import split

    path = tmp_path / "old-mac.csv"
    path.write_bytes(people(3000).replace("\n", "\r").encode())
    assert split.cut(path, 2) is None
    path.write_bytes(people(3000).replace("\n", "\r\n").encode())
    names, parts = split.cut(path, 2)  # type: ignore[misc]
    assert names[0] == "external_id" and parts[1].lines_before == path.read_bytes()[
        :parts[1].start].count(b"\n")
