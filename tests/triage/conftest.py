"""A realistic scan database, built by calling ScanDB's write methods directly.

Why not run ``vigil scan``: the report and exports must be testable on their own, on a
database with every feature the renderers must cope with (duplicates, matches from several
banks and schemes, every error kind, groups with devices, EXIF with dates and GPS, hostile
file names from a seized device), without depending on the scan's speed or its choices.

Layout (30 files):

* 15 distinct images, 4 of them also found at a second path (19 image files);
* known (6 items): us:1 by exact MD5; uk:A by PDQ (rot90, distance 12); ncmec:B1 by
  PDQ + SHA-1 in two banks; interpol:yes at distance 31; one uncategorised; one us:5;
* unknown images grouped: group 1 (4 items, one camera), group 2 (2 items, a phone,
  one also at a hostile path), group 3 (2 items, no EXIF); one unknown image in no group;
* 3 non-image files, 1 video, 1 pending, 6 errors (5 codes), hostile names throughout.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vigil.demo.synthetic import synthetic_image
from vigil.triage.scandb import GroupRow, MatchRow, ScanDB
from vigil.triage.thumbs import make_thumbnail

HOSTILE = "evil/<script>alert('x')</script>.jpg"
HOSTILE_ERROR = 'dcim/"><img src=x onerror=alert(1)>.jpg'
CANON = "Canon|Canon EOS 5D Mark IV|0123456789"
PHONE = "Apple|iPhone 12|"


@dataclass(frozen=True)
class Built:
    """The database and what the tests need to know about its content."""

    path: Path
    sha: dict[str, str]       # image name -> sha256
    md5: dict[str, str]
    sha1: dict[str, str]
    expected_vics_category: dict[str, int]  # md5 -> us category expected in VICS


def _digests(data: bytes) -> tuple[str, str, str]:
    return (hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest(),
            hashlib.sha256(data).hexdigest())


def _pdq(seed: int) -> str:
    return hashlib.sha256(f"pdq{seed}".encode()).hexdigest()


def _exif(dt: str | None, device: str | None, gps: tuple[float, float] | None = None
          ) -> dict[str, Any]:
    e: dict[str, Any] = {}
    if device:
        make, model, serial = device.split("|")
        e.update(make=make, model=model)
        if serial:
            e["serial"] = serial
    if dt:
        e["datetime_original"] = dt
    if gps:
        e["gps"] = {"lat": gps[0], "lon": gps[1]}
    if device == PHONE:
        e["software"] = "16.1"
    return e


# name -> (seed, extra paths, exif datetime, device, gps)
IMAGES: dict[str, tuple[int, list[str], str | None, str | None, tuple[float, float] | None]] = {
    "k_us1": (1, ["chat/received/IMG_0001.jpg"], "2019:06:01 10:00:00", None, None),
    "k_ukA": (2, [], "2019:07:14 21:30:05", None, None),
    "k_ncB1": (3, ["backup.zip!/photos/b1.jpg"], None, None, None),
    "k_int": (4, [], "2020:01:02 03:04:05", None, None),
    "k_unc": (5, [], None, None, None),
    "k_us5": (6, [], None, None, None),
    "g1a": (11, ["copy/g1a.jpg"], "2021:03:04 10:11:12", CANON, (1.3521, 103.8198)),
    "g1b": (12, [], "2021:03:04 10:15:00", CANON, (1.3521, 103.8199)),
    "g1c": (13, [], "2021:03:05 09:00:00", CANON, (1.3522, 103.8198)),
    "g1d": (14, [], "2021:04:20 18:45:00", CANON, None),
    "g2a": (21, [HOSTILE], "2022-11-30T08:00:00", PHONE, (37.5665, 126.9780)),
    "g2b": (22, [], "2022:11:30 08:01:00", PHONE, None),
    "g3a": (31, [], None, None, None),
    "g3b": (32, [], None, None, None),
    "lone": (41, [], "2018:12:24 23:59:59", None, None),
}
MAIN_PATH = {name: f"E01/DCIM/{name}.jpg" for name in IMAGES}
MAIN_PATH["g2b"] = "E01/DCIM/weird name & \"quotes\" 'n' <b>bold</b>.jpg"


def build_scan_db(path: Path) -> Built:
    """Fill a new scan database at ``path`` as a finished scan would."""
    db = ScanDB(path)
    db.set_meta("started", "2026-12-01T09:00:00Z")
    db.set_meta("finished", "2026-12-01T09:05:00Z")
    db.set_meta("evidence", ["/evidence/E01", "/evidence/backup.zip"])
    db.set_meta("banks", ["spf-known", "nca-caid", "ncmec-share"])
    db.set_meta("threshold", 31)

    files: list[dict[str, Any]] = []
    thumbs: list[tuple[str, bytes]] = []
    sha: dict[str, str] = {}
    md5: dict[str, str] = {}
    sha1: dict[str, str] = {}
    for name, (seed, extra, dt, device, gps) in IMAGES.items():
        img = synthetic_image(seed, (320, 240))
        jpeg = make_thumbnail(img)
        data = jpeg + name.encode()  # stand-in for the file's bytes: unique per image
        m, s1, s256 = _digests(data)
        sha[name], md5[name], sha1[name] = s256, m, s1
        thumbs.append((s256, jpeg))
        for p in [MAIN_PATH[name], *extra]:
            files.append(dict(
                path=p, container="backup.zip" if "!/" in p else None, status="done",
                size=len(data), mtime=1.6e9 + seed, kind="image", format="JPEG", width=320,
                height=240, md5=m, sha1=s1, sha256=s256, pdq=_pdq(seed), pdq_quality=100,
                exif=_exif(dt, device, gps), device=device, seconds=0.01))
    for i, (p, kind, fmt) in enumerate([("E01/docs/notes.txt", "other", None),
                                        ("E01/docs/report.pdf", "other", "PDF"),
                                        ("E01/=cmd|' /C calc'!A0.txt", "other", None),
                                        ("E01/video/clip.mp4", "video", "MP4")]):
        m, s1, s256 = _digests(f"other{i}".encode())
        files.append(dict(path=p, status="done", size=100 + i, kind=kind, format=fmt, md5=m,
                          sha1=s1, sha256=s256, exif={}, seconds=0.001))
    errors = [("E01/broken/trunc.jpg", "truncated", "image data ends early"),
              ("E01/broken/empty.jpg", "zero_byte", "file is empty"),
              ("E01/broken/bomb.png", "decompression_bomb", "178956970 pixels > limit"),
              ("E01/broken/bomb2.png", "decompression_bomb", "200000000 pixels > limit"),
              ("E01/locked.jpg", "unreadable", "Permission denied"),
              (HOSTILE_ERROR, "corrupt", "cannot identify image <script>alert(2)</script>")]
    for p, code, msg in errors:
        files.append(dict(path=p, status="error", error_code=code, error_message=msg))
    pending = "E01/zz_pending.jpg"
    db.add_pending([(f["path"], f.get("container"), f.get("size"), f.get("mtime"))
                    for f in files] + [(pending, None, 10, None)])
    db.record(files, thumbs)

    def lead(name: str, bank: str, agency: str, entry: int, st: str, sigs: list[str],
             variant: str, dist: int, cat: tuple[str, str] | None, series: str | None = None,
             victim: str = "unknown", tags: list[str] | None = None) -> MatchRow:
        return MatchRow(sha[name], bank, agency, entry, st, sigs, variant, dist,
                        cat[0] if cat else None, cat[1] if cat else None, series, victim,
                        tags or [])

    db.replace_matches([
        lead("k_us1", "spf-known", "SPF", 101, "md5", ["md5", "sha1"], "original", 0,
             ("us", "1"), "series-alpha", "identified", ["hands"]),
        lead("k_ukA", "nca-caid", "NCA", 7, "pdq", ["pdq"], "rot90", 12, ("uk", "A"),
             "series-beta", "unidentified"),
        lead("k_ncB1", "ncmec-share", "NCMEC", 55, "pdq", ["pdq"], "original", 4,
             ("ncmec", "B1")),
        lead("k_ncB1", "spf-known", "SPF", 102, "sha1", ["sha1"], "original", 0, ("us", "1")),
        lead("k_int", "ncmec-share", "NCMEC", 56, "pdq", ["pdq"], "flipx", 31,
             ("interpol", "yes")),
        lead("k_unc", "spf-known", "SPF", 103, "pdq", ["pdq"], "original", 20, None),
        lead("k_us5", "spf-known", "SPF", 104, "sha256", ["sha256"], "original", 0,
             ("us", "5")),
    ])
    db.replace_groups([
        GroupRow(1, 1, 4, 9.5, CANON, {"devices": {CANON: 4}, "formats": {"JPEG": 4},
                                       "capture_first": "2021:03:04 10:11:12",
                                       "capture_last": "2021:04:20 18:45:00", "with_gps": 3},
                 [(sha["g1a"], 0), (sha["g1b"], 8), (sha["g1c"], 14), (sha["g1d"], 22)]),
        GroupRow(2, 2, 2, 6.0, PHONE, {"devices": {PHONE: 2}, "formats": {"JPEG": 2},
                                      "with_gps": 1},
                 [(sha["g2a"], 0), (sha["g2b"], 10)]),
        GroupRow(3, 3, 2, 2.0, None, {"devices": {}, "formats": {"JPEG": 2},
                                    "capture_first": None, "capture_last": None},
                 [(sha["g3a"], 0), (sha["g3b"], 16)]),
    ])
    expected = {md5["k_us1"]: 1, md5["k_ukA"]: 1, md5["k_ncB1"]: 1, md5["k_int"]: 1,
                md5["k_unc"]: 0, md5["k_us5"]: 5}
    db.close()
    return Built(path, sha, md5, sha1, expected)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """One scan database per test module (read-only for the tests)."""
    return build_scan_db(tmp_path_factory.mktemp("scan") / "scan.db")


@pytest.fixture
def scan_db(built: Built) -> Iterator[ScanDB]:
    """The built database, opened."""
    db = ScanDB(built.path)
    yield db
    db.close()
