"""Hostile files and arguments through the real `nudgeflow` CLI, on SQLite and PostgreSQL: a
clean message naming the file, line and column, exit code 2, and the database unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from engine.models import ChannelCredit, Customer, Invoice
from tests.conftest import Db


def rows(db: Db) -> dict[str, Any]:
    with db.engine.connect() as conn:
        return {"customers": sorted(tuple(r) for r in conn.execute(
                    select(Customer.external_id, Customer.first_name, Customer.attributes))),
                "invoices": sorted(tuple(r) for r in conn.execute(
                    select(Invoice.external_id, Invoice.amount)))}


def seeded(nf: Any, tmp_path: Path) -> None:
    path = tmp_path / "seed.csv"
    path.write_text("external_id,first_name,score\nC1,Ana,3\n", encoding="utf-8")
    assert nf("import", "customers", str(path)).code == 0


def refused(nf: Any, db: Db, tmp_path: Path, name: str, content: bytes,
            kind: str = "customers") -> list[str]:
    """Import a file that must be refused; return stderr's lines after checking exit 2, no
    output and an unchanged database."""
    seeded(nf, tmp_path)
    before = rows(db)
    path = tmp_path / name
    path.write_bytes(content)
    result = nf("import", kind, str(path))
    assert result.code == 2, result
    assert result.out == ""
    assert "Traceback" not in result.err
    assert rows(db) == before
    return [line.replace(str(path), "FILE") for line in result.err.splitlines()]


def test_latin1_file(nf: Any, db: Db, tmp_path: Path) -> None:
    text = "external_id,first_name\nC2,Zoe\nC3,Ren\xe9e\n"
    assert refused(nf, db, tmp_path, "c.csv", text.encode("latin-1")) == [
        "error: FILE: not UTF-8",
        "FILE:3: not UTF-8 at line 3 (byte 0xE9): save the file as UTF-8"]


def test_latin1_json_lines(nf: Any, db: Db, tmp_path: Path) -> None:
    text = '{"external_id": "C2", "first_name": "Andr\xe9"}\n'
    assert refused(nf, db, tmp_path, "c.jsonl", text.encode("latin-1")) == [
        "error: FILE: not UTF-8",
        "FILE:1: not UTF-8 at line 1 (byte 0xE9): save the file as UTF-8"]


def test_a_cell_over_128_kb(nf: Any, db: Db, tmp_path: Path) -> None:
    text = "external_id,first_name\nC2,Zoe\nC3," + "x" * 200_000 + "\n"
    assert refused(nf, db, tmp_path, "c.csv", text.encode()) == [
        "error: invalid input",
        "FILE:3: field larger than field limit (131072) (a cell holds at most 128 KB)"]


def test_lone_surrogate_nan_and_nul(nf: Any, db: Db, tmp_path: Path) -> None:
    lines = ['{"external_id": "C2", "first_name": "\\ud800"}',
             '{"external_id": "C3", "score": 1e999}',
             '{"external_id": "C4", "last_name": "a\\u0000b"}',
             '{"external_id": "C5", "score": 99999999999999999999}']
    assert refused(nf, db, tmp_path, "c.jsonl", "\n".join(lines).encode()) == [
        "error: FILE: 4 row error(s)",
        'FILE:1: first_name: text may not contain a lone surrogate ("\\ud800"): it is not a '
        "character",
        "FILE:2: score: expected a finite number, got inf",
        "FILE:3: last_name: text may not contain a NUL character (\\u0000)",
        "FILE:4: score: whole number out of range (-9223372036854775808 to "
        "9223372036854775807)"]
    assert refused(nf, db, tmp_path, "n.jsonl", b'{"external_id": "C2", "score": NaN}\n') == [
        "error: invalid input", "FILE:1: NaN is not a number JSON allows"]
    assert refused(nf, db, tmp_path, "n.csv", b"external_id,last_name\nC2,a\x00b\n") == [
        "error: FILE: 1 row error(s)",
        "FILE:2: last_name: text may not contain a NUL character (\\u0000)"]


def test_nan_as_csv_text_stays_text(nf: Any, db: Db, tmp_path: Path) -> None:
    """A CSV cell is text; only plain decimal numbers become JSON numbers, so a NaN cell (or
    a number too large for JSON) is kept as the text it is and every rule keeps working."""
    path = tmp_path / "c.csv"
    path.write_text("external_id,score,big\nC2,NaN," + "9" * 400 + ".5\n", encoding="utf-8")
    assert nf("import", "customers", str(path)).code == 0
    assert rows(db)["customers"] == [("C2", None, {"score": "NaN", "big": "9" * 400 + ".5"})]
    result = nf("segment", "preview", "--rules",
                '{"field": "attributes.score", "op": ">", "value": 1}', "--json")
    assert result.code == 0, result.err
    assert '"count": 0' in result.out


def test_semicolon_separated_file(nf: Any, db: Db, tmp_path: Path) -> None:
    text = "external_id;first_name;last_name\nC2;Zoe;Dube\n"
    assert refused(nf, db, tmp_path, "c.csv", text.encode()) == [
        "error: FILE: not comma-separated",
        "FILE:1: the header has 1 column 'external_id;first_name;last_name': the file looks "
        "semicolon-separated; nudgeflow reads comma-separated CSV"]


def test_duplicate_header(nf: Any, db: Db, tmp_path: Path) -> None:
    text = "external_id,first_name,email,first_name\nC2,Zoe,z@example.com,Zo\n"
    assert refused(nf, db, tmp_path, "c.csv", text.encode()) == [
        "error: FILE: duplicate column",
        "FILE:1: column 'first_name' appears twice in the header (columns 2 and 4)"]


def test_values_longer_than_their_column(nf: Any, db: Db, tmp_path: Path) -> None:
    text = ("external_id,first_name,phone,gender\nC2," + "n" * 101 + ",,\nC3,Zoe," + "1" * 60
            + ",\nC4,,," + "g" * 21 + "\n")
    assert refused(nf, db, tmp_path, "c.csv", text.encode()) == [
        "error: FILE: 3 row error(s)",
        "FILE:2: first_name: at most 100 characters, got 101",
        "FILE:3: phone: at most 40 characters, got 60",
        "FILE:4: gender: at most 20 characters, got 21"]
    text = ("external_id,customer_external_id,amount,due_date\nI1,C1,1e20,2026-01-01\n"
            "I2,C1,1e999999999,2026-01-01\n")
    assert refused(nf, db, tmp_path, "i.csv", text.encode(), kind="invoices") == [
        "error: FILE: 2 row error(s)",
        "FILE:2: amount: at most 12 digits before the decimal point, got "
        "100000000000000000000.00",
        "FILE:3: amount: number too large: '1e999999999'"]


def test_segment_preview_rules(nf: Any, db: Db) -> None:
    for rules, where in (('{"field": "age", "op": ">", "value": 1e400}', "$.value"),
                         ('{"field": "age", "op": ">", "value": NaN}', "--rules"),
                         ('{"field": "age", "op": ">", "value": 99999999999999999999}',
                          "$.value"),
                         ('{"field": "first_name", "op": "=", "value": "\\u0000"}', "$.value"),
                         ('{"not": ' * 40 + '{"field": "age", "op": ">", "value": 1}' + "}" * 40,
                          "$" + ".not" * 33)):
        result = nf("segment", "preview", "--rules", rules)
        assert result.code == 2, result
        assert result.err.splitlines()[1].startswith(f"{where}: "), result.err
    result = nf("segment", "preview", "--rules", '{"field": "age", "op": "in", "value": ['
                + ",".join(str(n) for n in range(0, 3000, 3)) + "]}")
    assert (result.code, result.out) == (0, f"0 customers as of {result.out.split()[-1]}\n")


def test_dates_and_credits(nf: Any, db: Db) -> None:
    result = nf("run", "--date", "9999-12-31")
    assert result.code == 2
    assert "expected a date from 1900-01-01 to 2999-12-31, got 9999-12-31" in result.err
    result = nf("segment", "preview", "--rules", '{"field": "age", "op": ">", "value": 1}',
                "--date", "9999-12-31")
    assert result.code == 2 and "'--date'" in result.err
    result = nf("credits", "add", "sms", "99999999999999999999")
    assert result.code == 2
    assert result.err.splitlines() == [
        "error: cannot add credits",
        "units: expected 1 to 2147483647: the sms balance is 0 and holds at most 2147483647; "
        "got 99999999999999999999"]
    with db.engine.connect() as conn:
        assert conn.execute(select(ChannelCredit.balance)).first() is None


def test_arguments_that_are_not_utf8(nf: Any, db: Db) -> None:
    result = nf("activity", "C\udcff")  # how Python hands over a non-UTF-8 byte in argv
    assert result.code == 2
    assert result.err == ('error: argument 2: text may not contain a lone surrogate ("\\udcff")'
                          ": it is not a character (is it UTF-8?)\n")


def test_runs_limit_beyond_the_integer_column(nf: Any, db: Db) -> None:
    for limit in ("99999999999999999999", "-5"):
        result = nf("runs", "--limit", limit)
        assert result.code == 2
        assert "Invalid value for '--limit'" in result.err
    assert nf("runs", "--limit", "100000").code == 0


def test_outbox_arguments_beyond_their_columns(nf: Any, db: Db) -> None:
    for args in (("messages", "cancel", "--campaign", "k", "--run", "99999999999999999999"),
                 ("dispatch", "--once", "--interval", "0"),
                 ("dispatch", "--once", "--batch-size", "100000")):
        result = nf(*args)
        assert result.code == 2, args
        assert "Invalid value for '--" in result.err and "Traceback" not in result.err, args
