"""Machine-readable outputs of a scan: results.jsonl / results.csv and a VICS 2.0 case export.

Why these three: the JSONL is the complete record (one object per file, nested matches)
for scripts and other tools; the CSV is the same flattened to one best match per file for
spreadsheets; the VICS case file is what forensic suites (Griffeye and others that speak
Project VIC's VICS 2.0) import to pre-categorise a case. All are rendered from ``scan.db``
alone and streamed, so a scan of millions of files does not need them in memory.

None of them contains a bank's hash values: a match is named by bank, agency and entry id
with the labels and distance (DESIGN.md: hash lists are sensitive). They do contain the
*seized files'* own hashes, which is what they are for.

VICS EXIF choice: VICS 2.0 carries EXIF as a list under ``Exifs``. The exact member names
could not be checked against the published data model offline; we write
``{"PropertyName": ..., "PropertyValue": ...}`` objects (one per EXIF field, values as
strings, GPS as decimal degrees), the naming used by VICS exports we have seen. Vigil's
own VICS reader keeps ``Exifs`` as opaque extra data, so a mismatch there cannot break a
re-import; if a tool expects other member names, change ``EXIF_NAME``/``EXIF_VALUE``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from vigil import __version__
from vigil.schemes import map_category
from vigil.triage.scandb import FileRow, MatchRow, ScanDB, Span

VICS_CASE_METADATA = (
    "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Cases")
EXIF_NAME = "PropertyName"
EXIF_VALUE = "PropertyValue"

# ----------------------------------------------------------------------------- text safety

_SURROGATE = re.compile("[\ud800-\udfff]")
#: surrogates that stand for no undecodable byte (only U+DC80..U+DCFF do): from JSON, say
_NOT_A_BYTE = re.compile("[\ud800-\udc7f\udd00-\udfff]")
_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean_text(value: object) -> str:
    """``value`` as text that is safe to write and honest to read.

    Seized file names are hostile: control characters and Unicode direction overrides
    (``U+202E`` turns "gpj.exe" into what looks like "exe.jpg") are shown as ``\\u202e``
    escapes so a reader sees what is really there; lone surrogates (bytes that were not
    UTF-8) become ``\\xNN``, and any other surrogate ``\\udNNN``, so writing UTF-8 never
    fails.
    """
    s = value if isinstance(value, str) else str(value)
    if s.isascii() and s.isprintable():  # nearly every name; 5x cheaper than the regexes
        return s
    return escape_unsafe(s)


def escape_unsafe(s: str) -> str:
    """``clean_text`` without its shortcut for printable ASCII: the reference it is tested
    against (tests/triage/test_exports.py)."""
    if _SURROGATE.search(s):
        s = _NOT_A_BYTE.sub(lambda m: f"\\u{ord(m.group()):04x}", s)
        s = s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", s)


# ----------------------------------------------------------------------------- EXIF summary

#: The keys ``vigil.signals.exif.exif_summary`` writes (besides ``gps``).
_EXIF_FIELDS = ("make", "model", "serial", "lens", "datetime_original", "software")


def capture_time(exif: dict[str, Any]) -> datetime | None:
    """The EXIF capture time (``datetime_original``) as a naive datetime, or None.

    Accepts the EXIF form ``YYYY:MM:DD HH:MM:SS`` and ISO 8601; anything else (cameras
    write "0000:00:00 00:00:00" and worse) is None rather than a guess.
    """
    raw = exif.get("datetime_original")
    if not isinstance(raw, str):
        return None
    s = raw.strip().replace("\x00", "")
    if len(s) >= 10 and s[4] == ":" and s[7] == ":":
        s = f"{s[:4]}-{s[5:7]}-{s[8:]}"
    try:
        dt = datetime.fromisoformat(s.replace(" ", "T", 1) if "T" not in s else s)
    except ValueError:
        return None
    if dt.year < 1970 or dt.year > 2100:
        return None
    return dt.replace(tzinfo=None)


def gps(exif: dict[str, Any]) -> tuple[float, float] | None:
    """(latitude, longitude) in decimal degrees, or None when absent or out of range."""
    g = exif.get("gps")
    lat = lon = None
    if isinstance(g, dict):
        lat = g.get("lat", g.get("latitude"))
        lon = g.get("lon", g.get("longitude"))
    elif isinstance(g, list | tuple) and len(g) >= 2:
        lat, lon = g[0], g[1]
    try:
        la, lo = float(lat), float(lon)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not (-90 <= la <= 90 and -180 <= lo <= 180):
        return None
    return la, lo


def exif_summary(exif: dict[str, Any]) -> dict[str, Any]:
    """The EXIF fields that matter for victim identification, normalised, absent ones omitted."""
    out: dict[str, Any] = {}
    for k in _EXIF_FIELDS:
        v = exif.get(k)
        if v not in (None, ""):
            out[k] = clean_text(v)
    t = capture_time(exif)
    if t is not None:
        out["datetime_original"] = t.isoformat()
    g = gps(exif)
    if g is not None:
        out["gps"] = {"lat": g[0], "lon": g[1]}
        alt = exif["gps"].get("alt") if isinstance(exif.get("gps"), dict) else None
        if isinstance(alt, int | float) and not isinstance(alt, bool) and math.isfinite(alt):
            out["gps"]["alt"] = alt
    return out


# ----------------------------------------------------------------------------- matches


def _category(m: MatchRow) -> str | None:
    return f"{m.category_scheme}:{m.category}" if m.category_scheme and m.category else None


#: series id -> what the series registry says of it (``vigil.victimid.annotate.note``),
#: given by the caller: triage knows no registry, it only prints what it is handed
SeriesNotes = Mapping[str, dict[str, Any]]


def match_dict(m: MatchRow, notes: SeriesNotes | None = None) -> dict[str, Any]:
    """A match as exported: who says what about the file, how close, via which signals;
    with ``notes``, the series' registry status (identified by whom, claimed)."""
    out = _match_dict(m)
    if notes is not None:
        out["series_status"] = notes.get(m.series) if m.series else None
    return out


def _match_dict(m: MatchRow) -> dict[str, Any]:
    return {"bank": m.bank, "agency": m.agency, "entry_id": m.entry_id,
            "signal_type": m.signal_type, "signals": m.signals, "variant": m.variant,
            "distance": m.distance, "category": _category(m), "series": m.series,
            "victim_status": m.victim_status, "tags": m.tags,
            "video": m.detail if m.detail and "inliers" not in m.detail else None,
            **({"inliers": m.detail["inliers"]} if m.detail and "inliers" in m.detail else {})}


def matches_by_item(db: ScanDB, span: Span | None = None) -> dict[str, list[MatchRow]]:
    """sha256 -> its matches, best (lowest distance) first, as ``ScanDB.matches`` orders them;
    with ``span``, only the items of the files in it."""
    out: dict[str, list[MatchRow]] = {}
    for m in db.matches(span=span):
        out.setdefault(m.sha256, []).append(m)
    return out


# ----------------------------------------------------------------------------- results

CSV_COLUMNS = (
    "path", "container", "flags", "status", "size", "mtime", "kind", "format", "width",
    "height", "md5", "sha1", "sha256", "pdq", "pdq_quality", "duplicate_of", "device", "exif_make",
    "exif_model", "exif_serial", "exif_lens", "exif_datetime_original", "exif_software",
    "exif_gps_lat",
    "exif_gps_lon", "error_code", "error_message", "match_count", "best_bank", "best_agency",
    "best_category", "best_series", "best_victim_status", "best_distance",
    "best_signal_type", "best_variant", "seconds")

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(v: Any) -> Any:
    """A CSV cell that a spreadsheet will not execute.

    A seized file named ``=HYPERLINK(...)`` would run as a formula in Excel or LibreOffice
    (CSV injection); text cells starting with ``= + - @`` or a tab get a leading ``'``
    (the spreadsheet convention for "this is text"). Numbers are written as they are; the
    JSONL keeps every value exact.
    """
    if v is None:
        return ""
    if isinstance(v, str):
        v = clean_text(v)
        if v.startswith(_FORMULA_START):
            return "'" + v
    return v


def _file_record(f: FileRow, dup: str | None, leads: list[MatchRow],
                 notes: SeriesNotes | None = None) -> dict[str, Any]:
    return {
        "path": clean_text(f.path), "container": clean_text(f.container) if f.container
        else None, "flags": list(f.flags), "status": f.status, "size": f.size,
        "mtime": f.mtime, "kind": f.kind,
        "format": f.format, "width": f.width, "height": f.height, "md5": f.md5,
        "sha1": f.sha1, "sha256": f.sha256, "pdq": f.pdq, "pdq_quality": f.pdq_quality,
        "duplicate_of": clean_text(dup) if dup and dup != f.path else None,
        "device": clean_text(f.device) if f.device else None, "exif": exif_summary(f.exif),
        "error_code": f.error_code,
        "error_message": clean_text(f.error_message) if f.error_message else None,
        "seconds": f.seconds, "matches": [match_dict(m, notes) for m in leads],
    }


def _csv_row(rec: dict[str, Any]) -> list[Any]:
    ex = rec["exif"]
    best = rec["matches"][0] if rec["matches"] else {}
    flat = dict(rec)
    flat.update(
        flags=";".join(rec["flags"]),
        exif_make=ex.get("make"), exif_model=ex.get("model"), exif_serial=ex.get("serial"),
        exif_lens=ex.get("lens"),
        exif_datetime_original=ex.get("datetime_original"), exif_software=ex.get("software"),
        exif_gps_lat=ex.get("gps", {}).get("lat"), exif_gps_lon=ex.get("gps", {}).get("lon"),
        match_count=len(rec["matches"]), best_bank=best.get("bank"),
        best_agency=best.get("agency"), best_category=best.get("category"),
        best_series=best.get("series"), best_victim_status=best.get("victim_status"),
        best_distance=best.get("distance"), best_signal_type=best.get("signal_type"),
        best_variant=best.get("variant"))
    return [_csv_cell(flat.get(c)) for c in CSV_COLUMNS]


def write_results(db: ScanDB, out_dir: Path, series_notes: SeriesNotes | None = None,
                  ) -> tuple[Path, Path]:
    """Write ``results.jsonl`` and ``results.csv`` into ``out_dir``: one row per file.

    Every file the scan registered is there, in input order, whatever its status (done,
    error, pending), with its signals, EXIF summary, error and matches (an item's matches
    are repeated on each of its paths; ``duplicate_of`` names the first path of the item).
    Both files are written in one pass over the database and renamed into place at the
    end, so a crash never leaves a half file that looks complete.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jsonl, csv_path = out_dir / "results.jsonl", out_dir / "results.csv"
    tmp_j, tmp_c = jsonl.with_suffix(".jsonl.tmp"), csv_path.with_suffix(".csv.tmp")
    with open(tmp_j, "w", encoding="utf-8", newline="\n") as fj, \
            open(tmp_c, "w", encoding="utf-8", newline="") as fc:
        csv.writer(fc).writerow(CSV_COLUMNS)
        write_results_rows(db, fj, fc, series_notes)
    os.replace(tmp_j, jsonl)
    os.replace(tmp_c, csv_path)
    return jsonl, csv_path


def write_results_rows(db: ScanDB, fj: TextIO, fc: TextIO,
                       series_notes: SeriesNotes | None = None, span: Span | None = None,
                       ) -> int:
    """The rows of ``results.jsonl`` (to ``fj``) and ``results.csv`` (to ``fc``, no header)
    of every file, or of the files in ``span``. Returns how many items first appear among
    them: where the VICS case's numbering of the next span starts."""
    leads = matches_by_item(db, span)
    w = csv.writer(fc)
    items = 0
    for f, first in db.files_with_first(span):
        rec = _file_record(f, first, leads.get(f.sha256, []) if f.sha256 else [],
                           series_notes)
        fj.write(json.dumps(rec, ensure_ascii=False, sort_keys=False) + "\n")
        w.writerow(_csv_row(rec))
        items += first == f.path
    return items


# ----------------------------------------------------------------------------- VICS case


def vics_category(leads: Iterable[MatchRow]) -> int | None:
    """The Project VIC ("us") grade the matches give an item, or None when none maps.

    When banks disagree the most serious grade wins (1 = CAM before 2..5): an export that
    understates a category would hide material from the examiner; one that overstates it
    is corrected by the human who reviews every pre-categorised item anyway.
    """
    grades = []
    for m in leads:
        if m.category_scheme and m.category:
            try:
                g = map_category(m.category_scheme, m.category, to="us")
            except ValueError:
                g = None
            if g is not None and g != "0":
                grades.append(int(g))
    return min(grades) if grades else None


def _exifs(exif: dict[str, Any]) -> list[dict[str, str]]:
    s = exif_summary(exif)
    names = {"make": "Make", "model": "Model", "serial": "BodySerialNumber",
             "lens": "LensModel", "datetime_original": "DateTimeOriginal",
             "software": "Software"}
    out = [{EXIF_NAME: names[k], EXIF_VALUE: str(s[k])} for k in names if k in s]
    t = capture_time(exif)
    if t is not None:  # EXIF's own notation, as forensic tools display it
        out[[o[EXIF_NAME] for o in out].index("DateTimeOriginal")][EXIF_VALUE] = \
            t.strftime("%Y:%m:%d %H:%M:%S")
    if "gps" in s:
        out.append({EXIF_NAME: "GPSLatitude", EXIF_VALUE: f"{s['gps']['lat']:.6f}"})
        out.append({EXIF_NAME: "GPSLongitude", EXIF_VALUE: f"{s['gps']['lon']:.6f}"})
    return out


_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "BMP": "image/bmp",
         "WEBP": "image/webp", "TIFF": "image/tiff", "MP4": "video/mp4", "PDF":
         "application/pdf", "ZIP": "application/zip"}


def _media(media_id: int, item_paths: list[str], f: FileRow, leads: list[MatchRow],
           notes: SeriesNotes | None = None) -> dict[str, Any]:
    cat = vics_category(leads)
    m: dict[str, Any] = {"MediaID": media_id, "Category": cat if cat is not None else 0,
                         "IsPrecategorized": "true" if cat is not None else "false"}
    if f.md5:
        m["MD5"] = f.md5.upper()
    if f.sha1:
        m["SHA1"] = f.sha1.upper()
    if f.size is not None:
        m["MediaSize"] = f.size
    if f.format and f.format.upper() in _MIME:
        m["MimeType"] = _MIME[f.format.upper()]
    statuses = {x.victim_status for x in leads}
    if notes and any((notes.get(x.series) or {}).get("status") == "identified"
                     for x in leads if x.series):
        statuses.add("identified")  # the series registry says so, after a sync
    if "identified" in statuses:
        m["VictimIdentified"] = "true"
    elif "unidentified" in statuses:
        m["VictimIdentified"] = "false"
    series = next((x.series for x in leads if x.series), None)
    if series:
        m["Series"] = series
    tags = sorted({t for x in leads for t in x.tags})
    if tags:
        m["Tags"] = ",".join(t.replace(",", " ") for t in tags)
    if leads:
        m["Comments"] = "Vigil leads: " + "; ".join(
            f"{x.bank} ({x.agency}) entry {x.entry_id} via {x.signal_type}/{x.variant} "
            f"distance {x.distance}" for x in leads[:10])
    m["RelativeFilePath"] = clean_text(item_paths[0])
    m["MediaFiles"] = [{"MediaFileID": i + 1, "FileName": clean_text(p.rsplit("/", 1)[-1]),
                        "FilePath": clean_text(p)} for i, p in enumerate(item_paths)]
    ex = _exifs(f.exif)
    if ex:
        m["Exifs"] = ex
    alts: list[dict[str, Any]] = []
    if f.sha256:
        alts.append({"HashName": "SHA256", "HashValue": f.sha256})
    if f.pdq:
        alt: dict[str, Any] = {"HashName": "PDQ", "HashValue": f.pdq}
        if f.pdq_quality is not None:
            alt["Quality"] = f.pdq_quality
        alts.append(alt)
    if alts:
        m["AlternativeHashes"] = alts
    return m


def _write_json_item(f: TextIO, obj: Any) -> None:
    f.write(json.dumps(obj, ensure_ascii=False))


def write_vics_case(db: ScanDB, out: Path, case_id: str | None = None,
                    overrides: Mapping[str, Mapping[str, Any]] | None = None,
                    series_notes: SeriesNotes | None = None) -> Path:
    """Write a VICS 2.0 case export (``case.vics.json``): one Media per item.

    ``out`` is the file to write, or a directory to write ``case.vics.json`` into.
    ``case_id`` defaults to the scan's ``case_id`` meta value, else a new UUID (VICS
    wants a GUID there). Media are streamed one at a time; only the map sha256 -> paths
    (needed to list every path of an item in its ``MediaFiles``) is held in memory.
    ``Category`` comes from the item's matches mapped to the Project VIC scheme
    (``vics_category``), 0 otherwise; ``IsPrecategorized`` says whether a match gave it.
    ``overrides``: Media fields to set per item (by SHA-256), e.g. a reviewer's decision.
    ``series_notes``: the series registry's word (an identified series sets
    ``VictimIdentified``).
    """
    out = vics_path(out)
    leads = matches_by_item(db)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(vics_head(db, leads, case_id))
        write_vics_media(db, fh, 1, leads, series_notes, overrides)
        fh.write(VICS_TAIL)
    os.replace(tmp, out)
    return out


#: What ends a VICS case file after its last Media.
VICS_TAIL = "\n]}]}\n"


def vics_path(out: Path) -> Path:
    """The case file ``out`` names: itself, or ``case.vics.json`` in it if it is a folder
    (or has no suffix); its folder is made."""
    out = Path(out)
    if out.is_dir() or not out.suffix:
        out = out / "case.vics.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def vics_head(db: ScanDB, leads: Mapping[str, list[MatchRow]], case_id: str | None = None,
              ) -> str:
    """A VICS case file up to its first Media: the case's header, counted over ``leads``
    (every item's matches)."""
    meta = db.meta()
    case_id = case_id or meta.get("case_id") or str(uuid.uuid4())
    n_pre = sum(1 for ms in leads.values() if vics_category(ms) is not None)
    header = {
        "CaseID": case_id, "CaseNumber": str(meta.get("case_number") or case_id),
        "SourceApplicationName": "Vigil", "SourceApplicationVersion": __version__,
        "DateCreated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "TotalMediaFiles": db.done_with_digest(),
        "TotalPrecategorized": n_pre,
    }
    return ('{"odata.metadata":' + json.dumps(VICS_CASE_METADATA) + ',"value":[{'
            + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in header.items())
            + ',"Media":[')


def write_vics_media(db: ScanDB, fh: TextIO, start: int,
                     leads: Mapping[str, list[MatchRow]],
                     series_notes: SeriesNotes | None = None,
                     overrides: Mapping[str, Mapping[str, Any]] | None = None,
                     span: Span | None = None) -> int:
    """The Media of the items that first appear in ``span`` (every item without one), in
    that order, numbered from ``start``, each with every path: streamed from scan.db.
    Each Media is preceded by its separator (the first of the case by a line break), so
    the spans' outputs joined in order are the whole list. Returns how many were written."""
    n = start
    for f, item_paths in db.first_files(span):
        fh.write("\n" if n == 1 else ",\n")
        sha = f.sha256 or ""
        media = _media(n, item_paths, f, leads.get(sha, []), series_notes)
        if overrides and sha in overrides:
            media.update(overrides[sha])
        _write_json_item(fh, media)
        n += 1
    return n - start
