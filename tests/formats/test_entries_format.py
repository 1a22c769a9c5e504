"""Vigil's own entry list (``--format vigil``) keeps an entry whole, a picture's derived
data included, checked on the way in as a peer's feed record is; foreign formats leave
the derived data out. End to end: a picture banked with a crop ladder, exported and
imported into another bank, keeps its codes, and the imported bank matches a crop."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.formats.fuzz import json_values
from vigil.banks.entry import EntryRecord, Labels
from vigil.banks.travel import MAX_FEATURES_CHARS
from vigil.cli import app
from vigil.demo.synthetic import synthetic_image
from vigil.formats import FORMATS, FormatError, detect_format, entries
from vigil.signals.features import packed_features
from vigil.store.models import Bank, Entry

PDQ = [f"{k:02x}" * 32 for k in range(1, 8)]
#: a real feature set (an entry's features are checked when it is made), of a generated picture
FEATURES = packed_features(np.asarray(synthetic_image(5, (400, 300))))
assert FEATURES is not None
DERIVED: dict[str, Any] = {"pdq_derived": [["trimmed", PDQ[1], 88], ["centre-0.05", PDQ[2], 61]],
                           "pdq_features": FEATURES}
RECORDS = [
    EntryRecord("pdq", PDQ[0], Labels(category=("us", "1"), series="S 17",
                                      victim_status="identified", tags=("a", "b"), note="n"),
                90, source_id="sha256:" + "e" * 64, extra={"size": 1234, **DERIVED}),
    EntryRecord("pdq", PDQ[3], quality=40, extra={"pdq_derived": [["top-0.1", PDQ[4], 55]]}),
    EntryRecord("md5", "a" * 32, Labels(category=("uk", "A")), source_id="x",
                extra={"size": 1234, "MimeType": "image/jpeg", "nested": {"k": [1, 2]}}),
    EntryRecord("pdq", PDQ[5], op="remove"),
]


def written(records: list[EntryRecord], fmt: str = "vigil") -> bytes:
    buf = io.BytesIO()
    FORMATS[fmt].write(records, buf)
    return buf.getvalue()


def test_entries_round_trip_with_their_derived_data(tmp_path: Path) -> None:
    data = written(RECORDS)
    assert data.startswith(b'{"vigil_entries": 1}\n')
    assert list(entries.read(io.BytesIO(data))) == RECORDS
    p = tmp_path / "bank.vigil.jsonl"
    p.write_bytes(data)
    assert detect_format(p) == "vigil"
    assert list(FORMATS["vigil"].read(p)) == RECORDS


@pytest.mark.parametrize("fmt", ["vics", "ncmec", "stopncii", "csv"])
def test_foreign_formats_leave_the_derived_data_out(fmt: str) -> None:
    out = written(RECORDS[:3], fmt).decode()
    for word in ("pdq_derived", "pdq_features", PDQ[1], PDQ[2], PDQ[4], FEATURES[8:40]):
        assert word not in out, (fmt, word)
    assert PDQ[0] in out  # the hash itself is there
    back = list(FORMATS[fmt].read(io.BytesIO(out.encode())))
    assert all("pdq_derived" not in r.extra for r in back)


def _file(*lines: dict[str, Any] | str) -> bytes:
    return ("\n".join([json.dumps({"vigil_entries": 1}),
                       *(x if isinstance(x, str) else json.dumps(x) for x in lines)])
            + "\n").encode()


GOOD = {"type": "pdq", "value": PDQ[0], "derived": DERIVED}
BAD: list[tuple[str, dict[str, Any] | str, str]] = [
    ("unknown window", {**GOOD, "derived": {"pdq_derived": [["centre-0.9", PDQ[1], 80]]}},
     "line 3: derived: pdq_derived[0]: unknown window 'centre-0.9'"),
    ("too many codes", {**GOOD, "derived": {"pdq_derived": [["trimmed", PDQ[1], 80]] * 65}},
     "line 3: derived: pdq_derived: more than 64 codes"),
    ("features too long", {**GOOD, "derived": {"pdq_features": "A" * (MAX_FEATURES_CHARS + 4)}},
     f"line 3: derived: pdq_features: longer than {MAX_FEATURES_CHARS:,}"),
    ("derived on an md5", {"type": "md5", "value": "a" * 32,
                           "derived": {"pdq_derived": DERIVED["pdq_derived"]}},
     "line 3: md5 entry: only a pdq entry carries derived data"),
    ("features on an md5", {"type": "md5", "value": "a" * 32, "derived": DERIVED},
     "line 3: pdq_features: only a pdq entry has features, not a md5"),
    ("derived hidden in extra", {**GOOD, "extra": {"pdq_derived": []}},
     "line 3: extra: holds derived data"),
    ("derived on a removal", {**GOOD, "op": "remove"}, "line 3: derived: a removal carries none"),
    ("unknown field", {**GOOD, "colour": "red"}, "line 3: colour: unknown field"),
    ("not JSON", "{nope", "line 3: invalid JSON"),
    ("too deep", {**GOOD, "extra": {"a": json.loads("[" * 32 + "1" + "]" * 32)}},
     "nested deeper than 32 levels"),
]


@pytest.mark.parametrize(("line", "says"), [(b, s) for _, b, s in BAD],
                         ids=[w for w, _, _ in BAD])
def test_a_bad_line_is_refused_naming_file_line_and_field(line: Any, says: str) -> None:
    data = _file(GOOD, line, GOOD)
    with pytest.raises(FormatError) as info:
        list(entries.read(io.BytesIO(data), name="export.jsonl"))
    assert str(info.value).startswith("export.jsonl: "), str(info.value)
    assert says in str(info.value), str(info.value)
    assert PDQ[1] not in str(info.value)  # never a code
    skipped: list[FormatError] = []
    got = list(entries.read(io.BytesIO(data), name="f", on_error=skipped.append))
    assert len(got) == 2 and len(skipped) == 1 and skipped[0].location == "line 3"


#: entry lines with Vigil's own fields holding anything JSON can hold (and a few values
#: that look right: a PDQ, a known window)
_field = json_values | st.just(PDQ[0]) | st.just(["trimmed", PDQ[1], 80])
entry_lines = st.fixed_dictionaries({}, optional={
    k: _field for k in ("type", "value", "quality", "op", "source_id", "category", "series",
                        "tags", "victimStatus", "note", "extra")} | {
    "derived": st.fixed_dictionaries({}, optional={
        "pdq_derived": st.lists(st.lists(_field, max_size=4) | _field, max_size=4),
        "pdq_features": _field}) | _field})


@settings(max_examples=300, deadline=None)
@given(st.lists(entry_lines, max_size=4))
def test_any_entry_line_is_an_entry_or_a_format_error(lines: list[dict[str, Any]]) -> None:
    data = _file(*lines)
    skipped: list[FormatError] = []
    got = list(entries.read(io.BytesIO(data), name="f", on_error=skipped.append))
    assert len(got) + len(skipped) == len(lines)
    assert all(isinstance(r, EntryRecord) for r in got)


def test_the_header_is_required_and_versioned() -> None:
    with pytest.raises(FormatError, match="not a Vigil entry list"):
        list(entries.read(io.BytesIO(json.dumps(GOOD).encode() + b"\n"), name="f"))
    with pytest.raises(FormatError, match="version 2 is not one this Vigil reads"):
        list(entries.read(io.BytesIO(b'{"vigil_entries": 2}\n'), name="f"))
    with pytest.raises(FormatError, match=r"no .* header line"):
        list(entries.read(io.BytesIO(b"\n\n"), name="f"))


def test_a_line_past_the_record_limit_is_refused() -> None:
    from vigil.formats import Limits

    data = _file({**GOOD, "extra": {"pad": "x" * 5000}})
    with pytest.raises(FormatError, match=r"line 2.*VIGIL_MAX_RECORD_BYTES"):
        list(entries.read(io.BytesIO(data), name="f", limits=Limits(max_record_bytes=4096)))


def test_export_and_import_keep_a_pictures_ladder(engine: Engine, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"VIGIL_HOME": str(tmp_path / "home"),
           "VIGIL_DATABASE_URL": engine.url.render_as_string(hide_password=False),
           "VIGIL_USER": "examiner1"}

    def vigil(*args: str) -> str:
        r = runner.invoke(app, list(args), env=env)
        assert r.exit_code == 0, (args, r.output, r.exception)
        return r.output

    pics = tmp_path / "pics"
    pics.mkdir()
    img = synthetic_image(41, (400, 300))
    img.save(pics / "p.jpg", quality=92)
    vigil("bank", "create", "crops", "--agency", "SG-SPF", "--crop-ladder")
    vigil("bank", "add", "crops", str(pics), "--category", "us:1", "-q")
    out = tmp_path / "crops.jsonl"
    vigil("bank", "export", "crops", str(out), "--format", "vigil")
    vics = tmp_path / "crops.vics.json"
    vigil("bank", "export", "crops", str(vics), "--format", "vics")
    assert "pdq_derived" in out.read_text() and "pdq_derived" not in vics.read_text()
    vigil("bank", "create", "copy", "--agency", "SG-SPF", "--crop-ladder")
    vigil("bank", "import", "copy", str(out), "-q")  # the format is detected

    def ladder(bank: str) -> list[Any]:
        with Session(engine) as s:
            return [x.get("pdq_derived") for x in s.scalars(
                select(Entry.extra).join(Bank, Bank.id == Entry.bank_id)
                .where(Bank.name == bank, Entry.signal_type == "pdq"))]

    assert ladder("copy") == ladder("crops") and len(ladder("copy")[0]) >= 20
    w, h = img.size
    query = tmp_path / "q"
    query.mkdir()
    img.crop((40, 30, w - 40, h - 30)).save(query / "crop.jpg", quality=90)
    rows = [json.loads(x) for x in vigil("match", str(query), "--json", "-q", "--variants",
                                         "crops").splitlines() if x.startswith("{")]
    assert {m["bank"] for r in rows for m in r["matches"]} == {"crops", "copy"}
