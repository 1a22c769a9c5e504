"""Checking one page of a feed: the pure part of a pull, shared by every reader of feeds.

``vigil peer sync`` (``vigil.exchange.sync``) and the python-threatexchange exchange
(``vigil.interop.pytx``) both call :func:`check_page`, so a page that one of them refuses
the other refuses too, with the same message naming the record. It touches no database
and no network: it takes the bytes of a page and the chain so far (the checkpoint), and
returns what verified, converted to bank records, and why the rest (if any) was refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vigil.banks.entry import EntryRecord, Labels
from vigil.exchange.records import (
    Descriptor,
    FeedError,
    VerifiedPage,
    WireRecord,
    parse_page,
    verify_page,
)
from vigil.formats.limits import Limits

_NO_EXTRA: dict[str, Any] = {}


def _labels(body: dict[str, Any]) -> Labels:
    lab = body.get("labels") or {}
    cat = lab.get("category")
    return Labels(category=(cat[0], cat[1]) if cat else None, series=lab.get("series"),
                  victim_status=lab.get("victim_status", "unknown"),
                  tags=tuple(lab.get("tags") or ()), note=lab.get("note"))


def _label_key(lab: dict[str, Any] | None) -> bytes:
    return orjson.dumps(lab, option=orjson.OPT_SORT_KEYS) if lab else b""


def to_entry_records(d: Descriptor, records: list[tuple[dict[str, Any], WireRecord]],
                     ) -> list[EntryRecord]:
    """Feed records as bank records; a record that is not a valid entry names its seq.

    Records with the same labels share one ``Labels`` object: it is validated once, and
    ``Banks.apply`` derives (and serialises) its columns once per object, not per record.
    """
    out = []
    prefix = f"{d}#"
    labels: dict[bytes, Labels] = {}
    for body, _ in records:
        try:
            if body["op"] == "remove":
                out.append(EntryRecord(body["type"], body["value"], op="remove"))
            else:
                # provenance: the origin's sequence number is the entry's id in its source
                # (a shared empty ``extra``: nothing to serialise per entry)
                # (a picture's derived data, checked by parse_body, is kept as it came)
                extra = {"vpdq": body["frames"]} if body.get("frames") else \
                    dict(body["derived"]) if body.get("derived") else _NO_EXTRA
                # the label set's key: its JSON text (sorted keys; one C call per record)
                key = _label_key(body.get("labels"))
                lab = labels.get(key)
                if lab is None:
                    lab = labels[key] = _labels(body)
                out.append(EntryRecord(body["type"], body["value"], lab,
                                       body.get("quality"), source_id=f"{prefix}{body['seq']}",
                                       extra=extra))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise FeedError(f"feed {d} record seq {body.get('seq')}: not a valid entry "
                            f"({exc})") from None
    return out


@dataclass(frozen=True, slots=True)
class CheckedPage:
    """One page after checking: its records up to the last verified checkpoint (parsed
    bodies with their wire form, and as bank records), where the chain now ends, the
    feed's head as the page states it, and why the rest was refused (None: all of it)."""

    head: int
    verified: VerifiedPage
    entries: list[EntryRecord]

    @property
    def error(self) -> str | None:
        return self.verified.error

    @property
    def last_seq(self) -> int:
        return self.verified.last_seq

    @property
    def last_hash(self) -> str:
        return self.verified.last_hash


def check_page(d: Descriptor, key: Ed25519PublicKey, after: int, prev_hash: str,
               content: bytes | bytearray, limits: Limits | None = None) -> CheckedPage:
    """Check the page ``content`` (the JSON bytes of ``GET /v1/feeds/{bank}``) of feed
    ``d`` after the checkpoint (``after``, ``prev_hash``) against the origin's ``key``.

    The page is checked within ``limits`` before it is parsed (``parse_page``). Raises
    FeedError, naming what is wrong, when the page is malformed or of another feed, and
    when it holds no record although the feed's head (as the page states it) is past
    ``after``: records are missing, and ending there would look like a complete pull. A
    record that verified but is not a valid entry refuses the whole page (nothing of it
    is kept).
    """
    limits = limits or Limits.from_env()
    page = parse_page(content, limits)
    if page.descriptor != d:
        raise FeedError(f"feed {d}: the page is of another feed ({page.descriptor})")
    head = page.head
    if not page.records:
        if after < head:
            raise FeedError(f"feed {d}: a page with no records after seq {after}, but the "
                            f"feed's head is seq {head}; records {after + 1}-{head} are "
                            "missing. Stopped there: what verified before is kept, the next "
                            "pull resumes from it")
        return CheckedPage(head, VerifiedPage([], after, prev_hash, None), [])
    vp = verify_page(d, key, after, prev_hash, page.records, limits)
    try:
        entries = to_entry_records(d, vp.records)
    except FeedError as exc:  # signed, but not an entry: refuse the whole page
        return CheckedPage(head, VerifiedPage([], after, prev_hash, str(exc)), [])
    return CheckedPage(head, vp, entries)


__all__ = ["CheckedPage", "check_page", "to_entry_records"]
