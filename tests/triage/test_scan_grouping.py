"""The scan's streamed grouping equals the in-memory reference, ``group_unknown``."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vigil.index import hex_from_codes
from vigil.triage import grouping, scan
from vigil.triage.grouping import Unknown, group_unknown
from vigil.triage.scan import ScanOptions, _group
from vigil.triage.scandb import MatchRow, ScanDB


def _near(code: str, bits: int, rng: np.random.Generator) -> str:
    v = int(code, 16)
    for b in rng.choice(256, bits, replace=False):
        v ^= 1 << int(b)
    return f"{v:064x}"


def _scan(path: Path, rng: np.random.Generator) -> ScanDB:
    """A scan.db of 600 files: bursts of near-duplicates, shared cameras, duplicate
    files, matched items, flat pictures and non-images, in shuffled order."""
    seeds = hex_from_codes(rng.integers(0, 256, (60, 32), dtype=np.uint8))
    rows: list[dict[str, Any]] = []
    for k in range(600):
        s = int(rng.integers(0, 60))
        seed = seeds[s]
        pdq = _near(seed, int(rng.integers(0, 40)), rng) if rng.random() < 0.9 else None
        kind = "image" if rng.random() < 0.95 else "other"
        device = (f"cam|m|SN{s % 8}" if s < 16 and rng.random() < 0.8 else
                  "phone|p|" if rng.random() < 0.1 else None)
        content = f"file-{k}" if rng.random() < 0.9 else f"file-{int(rng.integers(0, 20))}"
        sha = hashlib.sha256(content.encode()).hexdigest()
        exif = {"datetime_original": f"2026-01-{k % 28 + 1:02d}T10:00:00", "gps": None,
                "make": "x"} if device else {}
        rows.append({"path": f"/e/{k}.jpg", "status": "done", "kind": kind, "format": "JPEG",
                     "sha256": sha, "pdq": pdq, "pdq_quality": int(rng.integers(30, 101)),
                     "device": device, "exif": exif})
    db = ScanDB(path)
    db.add_pending([(r["path"], None, 1, 0.0) for r in rows])
    db.record(rows)
    matched = sorted({r["sha256"] for r in rows})[::7]
    db.replace_matches([MatchRow(s, "b", "sg", 1, "pdq", ["pdq"], "original", 3, None, None, None,
                                 "unknown", []) for s in matched])
    return db


@pytest.mark.parametrize("sub_index,chunk,details", [(262144, 1024, 4096), (37, 23, 5)])
def test_streamed_grouping_equals_the_reference(tmp_path: Path, sub_index: int, chunk: int,
                                                details: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Also with small sub-indexes, query chunks and batches of members' records: codes
    read back from scan.db by position, a range at a time, link exactly what the
    in-memory reference links, and each group gets its own members' records."""
    monkeypatch.setattr(grouping, "SUB_INDEX", sub_index)
    monkeypatch.setattr(grouping, "SEARCH_CHUNK", chunk)
    monkeypatch.setattr(scan, "DETAIL_BATCH", details)
    rng = np.random.default_rng(11)
    db = _scan(tmp_path / "scan.db", rng)
    try:
        known = db.matched_items()
        unknown = [Unknown(it.sha256, it.pdq, it.pdq_quality or 0, it.device,
                           {k: it.exif[k] for k in ("datetime_original", "gps")
                            if k in it.exif}, it.format, it.vpdq)
                   for chunk in db.iter_items(kinds=("image", "video")) for it in chunk
                   if it.sha256 not in known]
        reference = group_unknown(unknown, threshold=31, min_quality=50)
        _group(db, ScanOptions(inputs=("/e",)))
        streamed = db.groups()
        assert len(reference) >= 10  # the data makes groups of every kind
        assert any(g.device for g in reference)
        assert [(g.rank, g.size, g.score, g.device, g.summary, sorted(g.members))
                for g in streamed] == \
               [(g.rank, g.size, g.score, g.device, g.summary, sorted(g.members))
                for g in reference]
    finally:
        db.close()


def test_linking_in_chunks_equals_brute_force_components() -> None:
    """Small sub-indexes and search chunks link exactly the pairs a full comparison does."""
    from vigil.triage.grouping import Gathered

    rng = np.random.default_rng(5)
    seeds = hex_from_codes(rng.integers(0, 256, (40, 32), dtype=np.uint8))
    codes = [_near(seeds[int(rng.integers(0, 40))], int(rng.integers(0, 30)), rng)
             for _ in range(400)]
    g = Gathered(min_quality=0, by_device=False)
    for c in codes:
        g.add(c, 100, None)
    g.sub_index, g.search_chunk = 37, 23
    got = sorted(g.components(31))
    bits = np.unpackbits(np.array([bytes.fromhex(c) for c in codes], dtype="S32")
                         .view(np.uint8).reshape(-1, 32), axis=1)
    near = (bits[:, None, :] != bits[None, :, :]).sum(axis=2) <= 31
    seen: set[int] = set()
    expected = []
    for start in range(len(codes)):
        if start in seen:
            continue
        comp, todo = {start}, [start]
        while todo:
            i = todo.pop()
            for j in np.flatnonzero(near[i]).tolist():
                if j not in comp:
                    comp.add(j)
                    todo.append(j)
        seen |= comp
        if len(comp) > 1:
            expected.append(sorted(comp))
    assert len(expected) > 5
    assert got == sorted(expected)


def test_grouping_reports_its_progress_and_links_the_same(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every chunk searched is reported, in order, up to the total; the members taken are
    reported at least every ``PROGRESS_EVERY`` and once at the end; the components are
    those found without a progress callback."""
    from vigil.triage.grouping import GROUPED, SEARCHING, Gathered

    rng = np.random.default_rng(8)
    seeds = hex_from_codes(rng.integers(0, 256, (30, 32), dtype=np.uint8))
    codes = [_near(seeds[int(rng.integers(0, 30))], int(rng.integers(0, 20)), rng)
             for _ in range(300)]

    def gathered() -> Gathered:
        g = Gathered(min_quality=0, by_device=False)
        for c in codes:
            g.add(c, 100, None)
        g.sub_index, g.search_chunk = 128, 50  # 3 sub-indexes x 6 chunks
        return g

    monkeypatch.setattr(grouping, "PROGRESS_EVERY", 40)
    heard: list[tuple[str, int, int]] = []
    got = list(gathered().components(31, lambda *a: heard.append(a)))
    assert got == list(gathered().components(31))
    searched = [(d, t) for p, d, t in heard if p == SEARCHING]
    assert searched == [(k, 18) for k in range(1, 19)]
    written = [(d, t) for p, d, t in heard if p == GROUPED]
    members = sum(len(c) for c in got)
    assert written[-1] == (members, members)
    assert [d for d, _ in written] == sorted({d for d, _ in written})
    assert all(b - a < 40 + max(map(len, got)) for a, b in
               zip([0] + [d for d, _ in written], [d for d, _ in written], strict=False))
    assert len(written) >= members // (40 + max(map(len, got)))
    assert heard.index((SEARCHING, 18, 18)) < heard.index((GROUPED, members, members))
