"""SMS encoding and part counting; template checks at save time and sandboxed rendering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from engine.sms import SmsTooLong, measure, prepare
from engine.templates import problems, render


@pytest.mark.parametrize(("text", "encoding", "units", "parts"), [
    ("a" * 160, "gsm7", 160, 1),
    ("a" * 161, "gsm7", 161, 2),
    ("a" * 306, "gsm7", 306, 2),
    ("a" * 307, "gsm7", 307, 3),
    ("€" * 80, "gsm7", 160, 1),  # extension characters take two septets
    ("{" * 81, "gsm7", 162, 2),
    ("ą" * 70, "ucs2", 70, 1),
    ("ą" * 71, "ucs2", 71, 2),
    ("ą" * 134, "ucs2", 134, 2),
    ("ą" * 135, "ucs2", 135, 3),
    ("😀" * 35, "ucs2", 70, 1),  # an emoji is two UTF-16 units
    ("Héllo Ñandú", "ucs2", 11, 1),  # é and Ñ are GSM-7, ú is not
])
def test_measure(text: str, encoding: str, units: int, parts: int) -> None:
    got = measure(text)
    assert (got.encoding, got.units, got.parts) == (encoding, units, parts)


def test_transliteration_and_limit() -> None:
    sent = prepare("Labas, Žemaitė! Jūsų sąskaita: 12,50 €", transliterate=True)
    assert sent.text == "Labas, Zemaite! Jusu saskaita: 12,50 EUR"
    assert (sent.encoding, sent.parts) == ("gsm7", 1)
    assert prepare("Jūsų", transliterate=False).encoding == "ucs2"
    prepare("x" * 480, transliterate=False)
    with pytest.raises(SmsTooLong, match="SMS is 481 characters; at most 480 are sent"):
        prepare("x" * 481, transliterate=False)


@pytest.mark.parametrize(("source", "expected"), [
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}",
     ["line 1: access to private attribute '__class__' is not allowed",
      "line 1: access to private attribute '__mro__' is not allowed",
      "line 1: access to private attribute '__subclasses__' is not allowed"]),
    ("{{ customer['__dict__'] }}", ["line 1: access to private attribute '__dict__' is not allowed"]),
    ("Hi\n{{ customer.frist_name }}", ["line 2: unknown field customer.frist_name"]),
    ("Hi\n\n{{ cycler }}", ["line 3: unknown variable 'cycler' (use bonus, campaign, customer, "
                            "invoice, today, unsubscribe_url)"]),
    ("{% if customer.age > 3 %}", ["line 1: Unexpected end of template. Jinja was looking for "
                                   "the following tags: 'elif' or 'else' or 'endif'. The "
                                   "innermost block that needs to be closed is 'if'."]),
    ("{% for n in [1, 2] %}{{ n }}{% endfor %} {{ customer.attributes.tier }}", []),
])
def test_template_problems(source: str, expected: list[str]) -> None:
    assert problems(source) == expected


def test_rendering_is_sandboxed_and_strict() -> None:
    with pytest.raises(SecurityError):
        render("{{ x.__class__ }}", {"x": ""})
    with pytest.raises(UndefinedError):
        render("{{ customer.nickname }}", {"customer": {}})
    assert render("<p>{{ name }}</p>", {"name": "<b>Bo</b>"}, html=True) == \
        "<p>&lt;b&gt;Bo&lt;/b&gt;</p>"


def test_sandbox_escape_in_a_campaign_file_is_rejected(nf, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    doc = {"version": 1, "templates": [{"key": "evil", "channel": "sms",
                                        "body": "{{ ''.__class__.__mro__ }}"}]}
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    result = nf("import", "campaigns", str(path))
    assert result.code == 2
    assert result.err.splitlines()[1:] == [
        "$.templates[0].body: line 1: access to private attribute '__class__' is not allowed",
        "$.templates[0].body: line 1: access to private attribute '__mro__' is not allowed",
    ]


def test_references_tell_the_dispatcher_what_to_load() -> None:
    from engine.templates import references

    assert references("Hi {{ customer.first_name }}, {{ bonus.amount }} on {{ today }}") == {
        ("customer", "first_name"), ("bonus", "amount"), ("today", None)}
    assert references("{{ customer }}") == {("customer", None)}
    assert references("no variables here") == frozenset()
