"""A hashed file as the scan records it, and a recorded item back as signals to match.

The scan's per-file work is the one hashing pipeline (``vigil.signals.pipeline``) run by
the one runner (``vigil.signals.runner``); this module only translates between its
result type and the rows of ``scan.db``, so the two cannot drift apart.
"""

from __future__ import annotations

import io
from typing import Any

from vigil.signals import DIHEDRAL_NAMES, Digests, FileSignals, HashOptions, PdqHash
from vigil.signals.options import VariantOption
from vigil.signals.vpdq import read_vpdq, write_vpdq
from vigil.triage.scandb import ItemRow, SignalRow


def hash_options(mode: str, dihedral: bool, thumbnails: bool,
                 variants: VariantOption = "off") -> HashOptions:
    """What a scan computes for every file: PDQ (and its variants if asked), vPDQ, the
    EXIF fields that matter for victim identification, and a thumbnail unless none; with
    ``variants``, the query-side derived codes (``vigil.signals.crops``)."""
    return HashOptions(mode="reference" if mode == "reference" else "fast",
                       dihedral=dihedral, exif=True, thumbnails=thumbnails, variants=variants)


def scan_row(r: FileSignals) -> dict[str, Any]:
    """The ``files`` row of one result (``ScanDB.record``); the thumbnail is stored apart,
    keyed by the item's SHA-256."""
    row: dict[str, Any] = {"path": r.path, "status": "done" if r.error is None else "error",
                           "kind": r.kind, "format": r.format, "width": r.width,
                           "height": r.height, "seconds": r.seconds}
    if r.digests is not None:
        d = r.digests
        row.update(size=d.size, md5=d.md5, sha1=d.sha1, sha256=d.sha256)
    if r.pdq is not None:
        row.update(pdq=r.pdq.hex, pdq_quality=r.pdq.quality)
    if r.pdq_dihedral is not None:
        row["pdq_dihedral"] = [h.hex for h in r.pdq_dihedral[1:]]
    if r.pdq_derived is not None:
        row["pdq_derived"] = [[n, h.hex, h.quality] for n, h in r.pdq_derived]
    if r.pdq_features is not None:
        row["pdq_features"] = r.pdq_features
    if r.vpdq is not None:
        row["vpdq"] = write_vpdq(r.vpdq)
    if r.exif:
        row.update(exif=r.exif, device=r.device)
    if r.error is not None:
        row.update(error_code=r.error.code, error_message=r.error.cause)
    return row


def signals_of(item: ItemRow | SignalRow) -> FileSignals:
    """A recorded item as the signals it was hashed into, for ``queries_of`` (which reads
    no path: a ``SignalRow``, which has none, is named by its SHA-256)."""
    path = item.paths[0] if isinstance(item, ItemRow) and item.paths else item.sha256
    out = FileSignals(path=path,
                      digests=Digests(item.md5 or "", item.sha1 or "", item.sha256,
                                      item.size or 0),
                      kind=item.kind, format=item.format)
    if item.pdq:
        pdq = PdqHash(item.pdq, item.pdq_quality or 0)
        out.pdq = pdq
        if item.pdq_dihedral and len(item.pdq_dihedral) == len(DIHEDRAL_NAMES) - 1:
            out.pdq_dihedral = (pdq, *(PdqHash(h, pdq.quality) for h in item.pdq_dihedral))
        if item.pdq_derived:
            out.pdq_derived = tuple((str(n), PdqHash(str(h), int(q)))
                                    for n, h, q in item.pdq_derived)
        out.pdq_features = item.pdq_features
    if item.vpdq:
        out.vpdq = read_vpdq(io.StringIO(item.vpdq))
    return out
