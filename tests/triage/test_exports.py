"""results.jsonl / results.csv and the VICS case export, checked against the fixture scan."""

from __future__ import annotations

import csv
import json
import tracemalloc
from datetime import datetime
from pathlib import Path

import pytest

from tests.triage.conftest import CANON, HOSTILE, Built
from vigil.formats import FORMATS
from vigil.triage.exports import (
    CSV_COLUMNS,
    capture_time,
    clean_text,
    escape_unsafe,
    exif_summary,
    gps,
    vics_category,
    write_results,
    write_vics_case,
)
from vigil.triage.scandb import MatchRow, ScanDB


def _lines(p: Path) -> list[dict]:
    return [json.loads(line) for line in p.read_text("utf-8").splitlines()]


def test_results_one_row_per_file(scan_db: ScanDB, built: Built, tmp_path: Path) -> None:
    jsonl, csv_path = write_results(scan_db, tmp_path)
    assert (jsonl.name, csv_path.name) == ("results.jsonl", "results.csv")
    rows = _lines(jsonl)
    files = list(scan_db.files())
    assert [r["path"] for r in rows] == [f.path for f in files]
    by_path = {r["path"]: r for r in rows}
    assert {r["status"] for r in rows} == {"done", "error", "pending"}

    k = by_path["E01/DCIM/k_ncB1.jpg"]
    assert (k["md5"], k["sha1"], k["sha256"]) == (built.md5["k_ncB1"], built.sha1["k_ncB1"],
                                                  built.sha["k_ncB1"])
    assert k["pdq"] and k["pdq_quality"] == 100 and k["duplicate_of"] is None
    assert [(m["bank"], m["category"], m["distance"]) for m in k["matches"]] == [
        ("spf-known", "us:1", 0), ("ncmec-share", "ncmec:B1", 4)]
    copy = by_path["backup.zip!/photos/b1.jpg"]
    assert copy["duplicate_of"] == "E01/DCIM/k_ncB1.jpg" and copy["container"] == "backup.zip"
    assert copy["matches"] == k["matches"]

    g = by_path["E01/DCIM/g1a.jpg"]
    assert g["device"] == CANON and g["matches"] == []
    assert g["exif"] == {"make": "Canon", "model": "Canon EOS 5D Mark IV",
                         "serial": "0123456789", "datetime_original": "2021-03-04T10:11:12",
                         "gps": {"lat": 1.3521, "lon": 103.8198}}
    assert by_path[HOSTILE]["sha256"] == built.sha["g2a"]
    err = by_path['dcim/"><img src=x onerror=alert(1)>.jpg']
    assert (err["status"], err["error_code"]) == ("error", "corrupt")
    assert "cannot identify image" in err["error_message"]
    assert by_path["E01/zz_pending.jpg"]["status"] == "pending"
    for r in rows:  # never a bank's hash: a match names bank, agency and entry id only
        for m in r["matches"]:
            assert set(m) == {"bank", "agency", "entry_id", "signal_type", "signals",
                              "variant", "distance", "category", "series", "victim_status",
                              "tags", "video"}

    with open(csv_path, newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == list(CSV_COLUMNS)
    assert [r["path"] for r in table] == [f.path for f in files]
    c = {r["path"]: r for r in table}["E01/DCIM/k_ukA.jpg"]
    assert (c["match_count"], c["best_bank"], c["best_category"], c["best_distance"],
            c["best_variant"], c["best_series"]) == ("1", "nca-caid", "uk:A", "12", "rot90",
                                                    "series-beta")
    assert c["exif_datetime_original"] == "2019-07-14T21:30:05"
    c = {r["path"]: r for r in table}["E01/DCIM/k_ncB1.jpg"]
    assert (c["match_count"], c["best_bank"], c["best_distance"]) == ("2", "spf-known", "0")


def test_csv_cells_are_not_formulas(scan_db: ScanDB, tmp_path: Path) -> None:
    _, csv_path = write_results(scan_db, tmp_path)
    with open(csv_path, newline="", encoding="utf-8") as f:
        paths = [r["path"] for r in csv.DictReader(f)]
    assert "'E01/=cmd|' /C calc'!A0.txt" not in paths  # only a *leading* = is a formula
    assert "E01/=cmd|' /C calc'!A0.txt" in paths
    assert not any(p.startswith(("=", "+", "-", "@")) for p in paths)
    db = ScanDB(tmp_path / "evil.db")
    db.add_pending([("=HYPERLINK(\"x\")", None, 1, None), ("-2+3", None, 1, None)])
    db.record([{"path": "=HYPERLINK(\"x\")", "status": "error", "error_code": "corrupt",
                "error_message": "@SUM(A1)"}])
    _, csv_path = write_results(db, tmp_path / "evil")
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["path"] == "'=HYPERLINK(\"x\")" and rows[0]["error_message"] == "'@SUM(A1)"
    assert rows[1]["path"] == "'-2+3"
    assert json.loads((tmp_path / "evil" / "results.jsonl").read_text().splitlines()[0]
                      )["path"] == "=HYPERLINK(\"x\")"  # the JSONL stays exact
    db.close()


def test_vics_case_reimports(scan_db: ScanDB, built: Built, tmp_path: Path) -> None:
    out = write_vics_case(scan_db, tmp_path, case_id="case-2026-042")
    assert out == tmp_path / "case.vics.json"
    doc = json.loads(out.read_text("utf-8"))
    assert "odata.metadata" in doc and len(doc["value"]) == 1
    case = doc["value"][0]
    assert case["CaseID"] == "case-2026-042" and case["SourceApplicationName"] == "Vigil"
    items = scan_db.items()
    assert len(case["Media"]) == len(items) == scan_db.summary().items
    assert case["TotalMediaFiles"] == sum(len(i.paths) for i in items)
    assert case["TotalPrecategorized"] == 5

    media = {m["MD5"].lower(): m for m in case["Media"]}
    m = media[built.md5["k_us1"]]
    assert m["Category"] == 1 and m["IsPrecategorized"] == "true"
    assert m["SHA1"] == built.sha1["k_us1"].upper()
    assert m["RelativeFilePath"] == "E01/DCIM/k_us1.jpg"
    assert [f["FilePath"] for f in m["MediaFiles"]] == ["E01/DCIM/k_us1.jpg",
                                                        "chat/received/IMG_0001.jpg"]
    assert m["MediaFiles"][1]["FileName"] == "IMG_0001.jpg"
    assert {a["HashName"] for a in m["AlternativeHashes"]} == {"SHA256", "PDQ"}
    assert m["VictimIdentified"] == "true" and m["Series"] == "series-alpha"
    g = media[built.md5["g1a"]]
    assert g["Category"] == 0 and g["IsPrecategorized"] == "false"
    assert {e["PropertyName"]: e["PropertyValue"] for e in g["Exifs"]} == {
        "Make": "Canon", "Model": "Canon EOS 5D Mark IV", "BodySerialNumber": "0123456789",
        "DateTimeOriginal": "2021:03:04 10:11:12", "GPSLatitude": "1.352100",
        "GPSLongitude": "103.819800"}
    assert media[built.md5["k_unc"]]["IsPrecategorized"] == "false"

    # Round trip through the banks' own VICS reader (case shape).
    recs = list(FORMATS["vics"].read(out))
    got: dict[str, dict[str, str | None]] = {}
    for r in recs:
        got.setdefault(r.source_id or "", {})[r.signal_type] = r.value
        got[r.source_id or ""]["cat"] = r.labels.category[1] if r.labels.category else None
    by_md5 = {v["md5"]: v for v in got.values()}
    assert set(by_md5) == {i_md5 for i_md5 in media}
    for name in built.md5:
        v = by_md5[built.md5[name]]
        assert v["sha1"] == built.sha1[name] and v["sha256"] == built.sha[name]
        assert v["pdq"]
    for md5, cat in built.expected_vics_category.items():
        assert by_md5[md5]["cat"] == str(cat)


def test_vics_case_default_id_and_path(scan_db: ScanDB, tmp_path: Path) -> None:
    out = write_vics_case(scan_db, tmp_path / "x" / "my.json")
    assert out.name == "my.json"
    case = json.loads(out.read_text())["value"][0]
    assert len(case["CaseID"]) == 36  # a GUID, as VICS tools expect


def test_vics_category_precedence() -> None:
    def m(scheme: str | None, value: str | None) -> MatchRow:
        return MatchRow("0" * 64, "b", "a", 1, "md5", ["md5"], "original", 0, scheme, value,
                        None, "unknown", [])
    assert vics_category([]) is None
    assert vics_category([m(None, None)]) is None
    assert vics_category([m("us", "5"), m("uk", "C")]) == 1  # the most serious wins
    assert vics_category([m("us", "0")]) is None
    assert vics_category([m("interpol", "no")]) is None  # no defensible mapping
    assert vics_category([m("us", "3"), m("us", "4")]) == 3


def test_vics_case_streams(tmp_path: Path) -> None:
    """Memory while writing stays far below the size of the document."""
    db = ScanDB(tmp_path / "scan.db")
    n = 4000
    rows = [{"path": f"d/{i:06d}-{'x' * 60}.jpg", "status": "done", "kind": "image",
             "md5": f"{i:032x}", "sha1": f"{i:040x}", "sha256": f"{i:064x}",
             "pdq": f"{i:064x}", "pdq_quality": 90, "size": i,
             "exif": {"make": "M", "model": "X", "datetime_original": "2020:01:01 00:00:00"}}
            for i in range(n)]
    db.add_pending([(r["path"], None, r["size"], None) for r in rows])
    db.record(rows)
    tracemalloc.start()
    out = write_vics_case(db, tmp_path / "case.vics.json")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    size = out.stat().st_size
    assert size > 2_000_000
    # the row objects ScanDB yields and the paths map are O(n), the JSON text is not held
    assert peak < size, (peak, size)
    assert sum(1 for _ in FORMATS["vics"].read(out)) == 4 * n
    db.close()


@pytest.mark.parametrize(("raw", "want"), [
    ("2021:03:04 10:11:12", datetime(2021, 3, 4, 10, 11, 12)),
    ("2021-03-04T10:11:12", datetime(2021, 3, 4, 10, 11, 12)),
    ("2021-03-04T10:11:12+09:00", datetime(2021, 3, 4, 10, 11, 12)),
    ("0000:00:00 00:00:00", None), ("garbage", None), (None, None), (20210304, None),
    ("1900:01:01 00:00:00", None),
])
def test_capture_time(raw: object, want: datetime | None) -> None:
    assert capture_time({"datetime_original": raw}) == want


def test_gps_and_summary() -> None:
    assert gps({"gps": {"lat": 1.5, "lon": -2}}) == (1.5, -2.0)
    assert gps({"gps": {"latitude": "1.5", "longitude": "2"}}) == (1.5, 2.0)
    assert gps({"gps": [10, 20]}) == (10.0, 20.0)
    assert exif_summary({"gps": {"lat": 1, "lon": 2, "alt": 30.5}, "lens": "EF 50mm"}) == {
        "gps": {"lat": 1.0, "lon": 2.0, "alt": 30.5}, "lens": "EF 50mm"}
    assert gps({"gps": {"lat": 91, "lon": 0}}) is None
    assert gps({"gps": "north"}) is None and gps({}) is None
    assert exif_summary({"make": "A\u202eB", "model": "", "other": 1}) == {"make": "A\\u202eB"}
    assert clean_text("a\udcffb") == "a\\xffb"


def test_clean_text_equals_its_reference() -> None:
    """The printable-ASCII shortcut changes nothing: every string, hostile or not, comes
    out as the regex reference writes it."""
    import random

    rng = random.Random(7)
    alphabet = ([chr(c) for c in range(0x00, 0x80)] + ["\u00e9", "\u202e", "\u2066", "\u200f",
                "\udcff", "\ud800", "\u4e2d", "\U0001f600"])
    cases = ["", "plain/name.jpg", "tab\tin", "del\x7f", "=cmd", "a b"]
    cases += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
              for _ in range(3000)]
    for s in cases:
        got = clean_text(s)
        assert got == escape_unsafe(s), repr(s)
        got.encode("utf-8")  # never a surrogate left to fail the write
    assert clean_text(12) == "12"
    assert clean_text("a\ud800b") == "a\\ud800b" and clean_text("\udcff") == "\\xff"
