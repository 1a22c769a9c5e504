"""What a submission may hold, checked at the door: hashes only, within limits.

A picture brings its PDQ (with quality), MD5 and SHA-256; a video its MD5 and SHA-256.
Flat pictures (PDQ quality under 50) are refused: their hashes match too easily, so a
partner would receive leads on pictures that are not the victim's.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from vigil.banks import EntryRecord, Labels

#: pictures and videos one case may hold
MAX_ITEMS = 20
#: the JSON body of a submission (a picture's hashes are ~250 bytes)
MAX_BODY_BYTES = 32 * 1024
MIN_QUALITY = 50
CONCERNS = {"under18": "concern:under-18", "adult": "concern:adult-intimate"}
#: every self-submitted entry carries these tags: matches on them are leads to review,
#: never an automatic action (takedown skips them)
TAGS = ("self-submitted", "unverified")
SOURCE = "self-submitted"


class ItemError(ValueError):
    """A submission that cannot be taken, with the field at fault and a message for
    the person (the page shows it)."""

    def __init__(self, field: str, message: str, code: str) -> None:
        super().__init__(message)
        self.field, self.message, self.code = field, message, code


@dataclass(frozen=True, slots=True)
class Item:
    kind: str  # image | video
    signals: tuple[tuple[str, str], ...]
    quality: int | None


def check_items(raw: list[dict[str, Any]]) -> list[Item]:
    if not raw:
        raise ItemError("items", "choose at least one picture or video", "empty")
    if len(raw) > MAX_ITEMS:
        raise ItemError("items", f"at most {MAX_ITEMS} pictures or videos in one case",
                        "too-many")
    out = []
    for i, it in enumerate(raw):
        where = f"items[{i}]"
        kind = it.get("kind")
        if kind not in ("image", "video"):
            raise ItemError(f"{where}.kind", "kind must be image or video", "invalid")
        signals = []
        for t in (("pdq", "md5", "sha256") if kind == "image" else ("md5", "sha256")):
            v = it.get(t)
            if not isinstance(v, str):
                raise ItemError(f"{where}.{t}", f"{t} is missing", "invalid")
            try:
                rec = EntryRecord(t, v)
            except ValueError as exc:
                raise ItemError(f"{where}.{t}", str(exc), "invalid") from None
            signals.append((rec.signal_type, rec.value))
        quality = None
        if kind == "image":
            q = it.get("quality")
            if not isinstance(q, int) or isinstance(q, bool) or not 0 <= q <= 100:
                raise ItemError(f"{where}.quality", "quality must be 0..100", "invalid")
            if q < MIN_QUALITY:
                raise ItemError(f"{where}.quality",
                                f"picture {i + 1} is too plain (almost one colour) to be "
                                "recognised later; choose another picture", "flat")
            quality = q
        out.append(Item(kind, tuple(signals), quality))
    return out


def records(items: list[Item], concern: str) -> list[EntryRecord]:
    """The bank records of ``items``: one source id per picture, so a match reports a
    picture once whichever of its signals matched."""
    labels = Labels(tags=(*TAGS, CONCERNS[concern]))
    out = []
    for it in items:
        sid = f"self-{secrets.token_hex(8)}"
        for t, v in it.signals:
            out.append(EntryRecord(t, v, labels, it.quality if t == "pdq" else None,
                                   source_id=sid))
    return out
