"""Every writer, given hostile text: what the door lets in comes back whole; what only an older
version could have stored is either carried exactly by the format's syntax or refused with
an error naming the record, never written as a file that reads back differently or not at all.
"""

from __future__ import annotations

import csv
import io
import json
import xml.parsers.expat
from typing import Any

import pytest

from vigil.banks.entry import EntryRecord, Labels, stored_labels, stored_record
from vigil.formats import csvlist, ncmec, pdqlist, stopncii, vics, vpdqtext

MD5 = "0123456789abcdef0123456789abcdef"
SHA1 = "0123456789abcdef0123456789abcdef01234567"
PDQ = "f" * 64

#: what the door accepts and a careless writer would break: scripts, separators, markup
HOSTILE = Labels(
    category=("ncmec", "A1"),
    series="系列 17 — 한국어 <&> \"quoted\" 'single' ]]> ,;",
    victim_status="identified",
    tags=("comma, inside", "ข้อมูล", "🙂", "case:2024-17", "case:", "<tag>&amp", "e\u0301"),
    note="Nota: dikenal pasti\nline two\twith a tab\n\"quotes\", <xml> & ]]> \\ back\\slash",
)
STYLES: list[tuple[Any, dict[str, str]]] = [
    (csvlist, {}), (ncmec, {"style": "json"}), (ncmec, {"style": "jsonl"}),
    (ncmec, {"style": "xml"}), (stopncii, {"style": "json"}), (stopncii, {"style": "jsonl"}),
    (vics, {})]


def _write(module: Any, records: list[EntryRecord], **kw: str) -> bytes:
    buf = io.BytesIO()
    assert module.write(records, buf, **kw) == len(records)
    return buf.getvalue()


def _read(module: Any, data: bytes) -> list[EntryRecord]:
    return list(module.read(io.BytesIO(data), name="mem"))


@pytest.mark.parametrize(("module", "kw"), STYLES, ids=lambda x: getattr(x, "NAME", str(x)))
def test_labels_the_door_accepts_come_back_whole(module: Any, kw: dict[str, str]) -> None:
    recs = [EntryRecord("md5", MD5, HOSTILE, source_id="7"),
            EntryRecord("sha1", SHA1, HOSTILE, source_id="7"),
            EntryRecord("photodna", "AbC+/=,12 34", HOSTILE, source_id="8")]
    back = _read(module, _write(module, recs, **kw))
    assert sorted((r.signal_type, r.value) for r in back) == \
        sorted((r.signal_type, r.value) for r in recs)
    for r in back:
        lab = r.labels
        assert (lab.series, lab.tags, lab.note, lab.victim_status) == \
            (HOSTILE.series, HOSTILE.tags, HOSTILE.note, HOSTILE.victim_status)


def test_a_vics_media_id_that_only_looks_like_a_number_is_not_one() -> None:
    """'²' and '٣' are digits to str.isdigit; VICS's MediaID is an integer."""
    recs = [EntryRecord("md5", MD5, source_id="²"), EntryRecord("sha1", SHA1, source_id="٣")]
    doc = json.loads(_write(vics, recs))
    assert [m["MediaID"] for m in doc["value"]] == [1, 2]


# --------------------------------------------------------- what an older version stored


def legacy(**labels: Any) -> EntryRecord:
    base = {"category": None, "series": None, "victim_status": "unknown", "tags": (),
            "note": None}
    base.update(labels)
    return stored_record("md5", MD5, stored_labels(**base), None, "add", "1", {})


LEGACY = {
    "tag with ;": legacy(tags=("a;b",)),
    "ESC in a note": legacy(note="x\x1b[31my"),
    "CR in a series": legacy(series="a\rb"),
    "NUL in a note": legacy(note="a\x00b"),
    "lone surrogate in a tag": legacy(tags=("bad\udc80",)),
    "U+FFFE in a series": legacy(series="x\ufffe"),
    "digit-first type": stored_record("3dhash", "v", Labels(), None, "add", None, {}),
    "control in an opaque value": stored_record("photodna", "a\x01b", Labels(), None, "add",
                                                None, {}),
}


def _syntax(module: Any, kw: dict[str, str], data: bytes) -> list[Any]:
    """The file parsed by a generic parser of its syntax (what any other tool would do)."""
    text = data.decode("utf-8")  # never invalid UTF-8
    if module is csvlist:
        return list(csv.reader(io.StringIO(text, newline="")))
    if kw.get("style") == "xml":
        parser = xml.parsers.expat.ParserCreate()
        cells: list[str] = []
        parser.CharacterDataHandler = cells.append
        parser.Parse(data, True)
        return ["".join(cells)]
    if kw.get("style") == "jsonl":
        return [json.loads(line) for line in text.splitlines()]
    return [json.loads(text)]


@pytest.mark.parametrize("case", LEGACY)
@pytest.mark.parametrize(("module", "kw"), STYLES, ids=lambda x: getattr(x, "NAME", str(x)))
def test_legacy_text_is_carried_exactly_or_refused_by_record(module: Any, kw: dict[str, str],
                                                             case: str) -> None:
    rec = LEGACY[case]
    good = EntryRecord("sha1", SHA1, source_id="0")
    try:
        data = _write(module, [good, rec], **kw)
    except ValueError as exc:
        assert "record 2" in str(exc), exc
        return
    parsed = _syntax(module, kw, data)
    wanted = [rec.labels.note, rec.labels.series, *rec.labels.tags, rec.value]
    flat = json.dumps(parsed, ensure_ascii=False) if module is not csvlist else str(parsed)
    for value in (v for v in wanted if v):
        shown = json.dumps(value, ensure_ascii=False)[1:-1] if module is not csvlist \
            else repr(value)[1:-1]
        assert shown in flat or shown.upper() in flat, (case, value)  # VICS: MD5 in capitals


def test_xml_refuses_what_it_cannot_carry_and_drops_such_extra_fields() -> None:
    with pytest.raises(ValueError, match=r"record 1: fingerprint type '3dhash'"):
        _write(ncmec, [LEGACY["digit-first type"]], style="xml")
    with pytest.raises(ValueError, match=r"record 1: note: character 2 \(U\+001B\)"):
        _write(ncmec, [LEGACY["ESC in a note"]], style="xml")
    rec = EntryRecord("md5", MD5, source_id="1",
                      extra={"kept": "fine", "dropped": "a\x00b", "nested": {"a": 1}})
    (back,) = _read(ncmec, _write(ncmec, [rec], style="xml"))
    assert back.extra == {"kept": "fine"}
    (back,) = _read(ncmec, _write(ncmec, [rec], style="json"))
    assert back.extra == rec.extra  # JSON carries them all


@pytest.mark.parametrize(("module", "kw"), [(vics, {}), (ncmec, {"style": "json"}),
                                             (stopncii, {"style": "jsonl"})],
                         ids=["vics", "ncmec", "stopncii"])
def test_a_lone_surrogate_from_a_foreign_file_does_not_stop_a_json_writer(
        module: Any, kw: dict[str, str]) -> None:
    """A foreign JSON file may say "\\ud800"; it is kept in extra and must be written back."""
    rec = EntryRecord("md5", MD5, Labels(series="한국"), source_id="1",
                      extra={"Comment2": "half \ud800 pair"})
    data = _write(module, [rec], **kw)
    assert b"\\ud800" in data and "한국".encode() not in data  # escaped, as ASCII
    assert "half \ud800 pair" in json.dumps(_syntax(module, kw, data), ensure_ascii=False)
    (back,) = _read(module, data)  # (ijson-based readers give a lone surrogate as "?")
    assert back.labels.series == "한국" and back.extra["Comment2"] in ("half \ud800 pair",
                                                                     "half ? pair")


def test_line_writers_carry_only_what_they_can() -> None:
    with pytest.raises(ValueError, match="record 1"):
        _write(pdqlist, [EntryRecord("md5", MD5)])
    with pytest.raises(ValueError, match="one video"):
        _write(vpdqtext, [EntryRecord("md5", MD5)])
    assert _read(pdqlist, _write(pdqlist, [EntryRecord("pdq", PDQ, quality=90)])) == \
        [EntryRecord("pdq", PDQ, quality=90)]
