"""From a scan to a series in one step: an unknown group of ``vigil scan`` becomes the
entries of a new series (its items' signals, labelled with the series and a category)."""

from __future__ import annotations

from pathlib import Path

from vigil.banks.entry import EntryRecord, Labels
from vigil.triage.scandb import ScanDB
from vigil.victimid.model import SeriesError


def group_records(scan_dir: Path, group: int, series_id: str,
                  category: tuple[str, str] | None) -> list[EntryRecord]:
    """The entries of unknown group ``group`` of the scan in ``scan_dir``: every signal of
    every member (MD5, SHA-1, SHA-256, PDQ with its quality), labelled with the series."""
    path = Path(scan_dir) / "scan.db"
    if not path.is_file():
        raise SeriesError(f"{scan_dir}: no scan.db here (the --out folder of a vigil scan)",
                          series_id, 422)
    db = ScanDB(path)
    try:
        groups = {g.id: g for g in db.groups()}
        if group not in groups:
            known = ", ".join(str(g) for g in sorted(groups)[:20]) or "none"
            raise SeriesError(f"{scan_dir}: the scan has no group {group} (groups: {known})",
                              series_id, 422)
        members = {sha for sha, _ in groups[group].members}
        labels = Labels(category=category, series=series_id)
        out: list[EntryRecord] = []
        for it in db.items():
            if it.sha256 not in members:
                continue
            for t, v in (("md5", it.md5), ("sha1", it.sha1), ("sha256", it.sha256)):
                if v:
                    out.append(EntryRecord(t, v, labels))
            if it.pdq:
                out.append(EntryRecord("pdq", it.pdq, labels, quality=it.pdq_quality))
        return out
    finally:
        db.close()
