"""The door's text rules (vigil.banks.text) and where the domain applies them: Labels,
EntryRecord, bank creation; and what was stored before a rule got stricter stays readable."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from vigil.banks import BankError, Banks, EntryReader
from vigil.banks.entry import EntryRecord, Labels, check_signal, stored_labels, stored_record
from vigil.banks.text import (
    FieldError,
    agency_code,
    bank_name,
    free_text,
    label,
    peer_name,
    principal_name,
    tag,
    visible,
)

MD5 = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("name", ["sg-known", "한국 경찰", "系列十七", "Bank (2024).v2",
                                  "café", "ข้อมูล_1", "٣-bank", "हिन्दी"])
def test_bank_names_of_any_script(name: str) -> None:
    assert bank_name(name) == unicodedata.normalize("NFC", name)


@pytest.mark.parametrize(("name", "says"), [
    ("", "must not be empty"), ("x" * 101, "at most 100"), ("a/b", "'/'"),
    ("a\\b", "'\\\\'"), (".hidden", "must start with a letter"), ("a  b", "two spaces"),
    ("a\tb", "U+0009 TAB"), ("a\x00b", "U+0000 NUL"), ("a\u200db", "ZERO WIDTH JOINER"),
    ("a\u00a0b", "a space other than U+0020"), ("a\ud800b", "lone surrogate"),
    ("a\ue000b", "private-use"), ("a\ufffeb", "unassigned"), ("a;b", "';'"),
    ("a#b", "'#'"), ("a%00b", "'%'"),
])
def test_bank_names_outside_the_set(name: str, says: str) -> None:
    with pytest.raises(FieldError, match="name: ") as exc:
        bank_name(name)
    assert says in exc.value.reason
    assert exc.value.field == "name"


def test_names_are_normalised_and_trimmed() -> None:
    decomposed = "cafe\u0301"
    assert bank_name(f"  {decomposed} \n") == "café" == bank_name("café")
    assert principal_name("ana.lyst@sg") == "ana.lyst@sg"
    with pytest.raises(FieldError):
        principal_name("a b")  # no spaces in user names
    with pytest.raises(FieldError):
        peer_name("hk@x")


@pytest.mark.parametrize(("code", "ok"), [("SG-SPF", True), ("KR_KNPA2", True), ("sg", False),
                                          ("-SG", False), ("SG SPF", False), ("ＳＧ", False),
                                          ("A" * 64, True), ("A" * 65, False)])
def test_agency_codes_are_ascii(code: str, ok: bool) -> None:
    if ok:
        assert agency_code(code) == code
    else:
        with pytest.raises(FieldError):
            agency_code(code)


def test_labels_and_free_text() -> None:
    assert label("Siri 17 — 系列 (b)", "series") == "Siri 17 — 系列 (b)"
    with pytest.raises(FieldError, match=r"U\+000A LF"):
        label("a\nb", "series")
    with pytest.raises(FieldError, match="';'"):
        tag("a;b")
    assert free_text("line 1\r\nline 2\tx\n", "note") == "line 1\nline 2\tx"
    with pytest.raises(FieldError, match=r"U\+000D CR"):
        free_text("a\rb", "note")
    with pytest.raises(FieldError, match=r"U\+2028 LINE SEPARATOR"):
        free_text("a\u2028b", "note")
    with pytest.raises(FieldError, match="at most 4000"):
        free_text("x" * 4001, "note")


def test_field_errors_never_quote_the_value() -> None:
    secret = "deadbeef" * 4 + "\x1b"
    with pytest.raises(ValueError) as exc:
        check_signal("photodna", secret)
    assert "deadbeef" not in str(exc.value) and "U+001B" in str(exc.value)


@given(st.text(max_size=30))
def test_visible_text_has_nothing_invisible_and_loses_nothing(s: str) -> None:
    v = visible(s)
    assert v.isprintable()
    if s.isprintable():
        assert v == s
    # every character is still there, as itself or as an escape
    assert len(v) >= len(s)


def test_visible_escapes() -> None:
    assert visible("a\nb\x1b\u202ec") == "a\\u000ab\\u001b\\u202ec"
    assert visible(b"\xff.jpg".decode("utf-8", "surrogateescape")) == "\\xff.jpg"
    assert visible("\U000e0001") == "\\U000e0001"
    assert visible("C:\\temp\\ok") == "C:\\temp\\ok"


# ------------------------------------------------------------------- where they apply


def test_labels_and_records_are_checked_at_the_door() -> None:
    with pytest.raises(FieldError) as exc:
        Labels(series="S\x1b[31m")
    assert exc.value.field == "series"
    with pytest.raises(FieldError, match="tags"):
        Labels(tags=("ok", "a;b"))
    with pytest.raises(FieldError, match="at most 1000 tags"):
        Labels(tags=tuple(f"t{i}" for i in range(1001)))
    with pytest.raises(FieldError, match="source_id"):
        EntryRecord("md5", MD5, source_id="id\x00")
    with pytest.raises(ValueError, match="photodna value: character 2 is U\\+0000"):
        EntryRecord("photodna", "a\x00b")
    with pytest.raises(ValueError, match="invalid signal type name"):
        EntryRecord("3dhash", "x")  # an opaque type's name starts with a letter (XML)
    with pytest.raises(ValueError, match="invalid signal type name"):
        EntryRecord("a" * 33, "x")  # and fits the store's column
    lab = Labels(series="  S17 ", tags=(" b", "a", "a", " "), note="x\r\ny ")
    assert (lab.series, lab.tags, lab.note) == ("S17", ("a", "b"), "x\ny")
    assert Labels(series="", note="  ").series is None and Labels(note=" ").note is None


def test_bank_creation_is_checked(engine: Engine) -> None:
    banks = Banks(engine, user="t")
    for name in ("evil\x1b[31m", "a\rb", "a\u202eb"):
        with pytest.raises(BankError, match="invalid bank name"):
            banks.create(name, "SG-SPF")
    with pytest.raises(BankError, match="invalid agency code"):
        banks.create("b", "sg spf")
    with pytest.raises(BankError, match="invalid description"):
        banks.create("b", "SG-SPF", "a\x00b")
    assert banks.create("한국 은행", "SG-SPF", "설명\n둘째 줄").name == "한국 은행"
    assert banks.names() == {"한국 은행"}


def test_what_was_stored_before_stays_readable(engine: Engine) -> None:
    """An entry an older version stored (a label the door now refuses) is read, matched
    and relabelled, never refused on the way out."""
    banks = Banks(engine, user="t")
    banks.create("b", "SG-SPF")
    legacy = stored_labels(("us", "1"), "S\x1b", "unknown", ("a;b",), "n\x07")
    banks.apply("b", [stored_record("md5", MD5, legacy, None, "add", "id\x1b", {})])
    (e,) = EntryReader(engine).find("md5", [MD5], ["b"])
    assert e.labels.tags == ("a;b",) and e.labels.series == "S\x1b" and e.source_id == "id\x1b"
    assert e.record().labels == e.labels
    fixed = EntryRecord("md5", MD5, Labels(category=("us", "1"), series="S1"))
    assert banks.apply("b", [fixed]).updated == 1
