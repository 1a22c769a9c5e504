"""What the banks domain hands out: bank metadata, stored entries, results and errors.

Plain frozen dataclasses, so the CLI, the API and the exchange can hold and compare them
without a database session; nothing here ever carries more than one bank's metadata or
one entry's signal.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.banks.entry import EntryRecord, Labels, stored_labels, stored_record
from vigil.banks.text import visible
from vigil.store.models import Bank


class BankError(Exception):
    """A bank operation the user asked for cannot be done (unknown bank, name taken...)."""


class ReadOnlyBankError(BankError):
    """A write to a mirror bank: only its origin changes it (through its feed)."""


@dataclass(frozen=True, slots=True)
class BankInfo:
    """A bank's metadata and size, without any of its signals."""

    id: int
    name: str
    agency: str
    description: str
    default_scheme: str | None
    created_at: datetime
    updated_at: datetime
    last_seq: int
    entries: int


@dataclass(frozen=True, slots=True)
class BankStats:
    """Counts that describe a bank without showing any hash: what ``bank show`` prints."""

    info: BankInfo
    by_signal_type: dict[str, int]
    by_category: dict[str, int]
    by_victim_status: dict[str, int]
    series: int
    removed: int
    #: live PDQ entries that keep local features for the second stage (crop-ladder banks)
    with_features: int = 0


@dataclass(slots=True)
class ApplyResult:
    """What an import or edit did: counts, and the records skipped with their reasons."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    not_found: int = 0
    skipped: list[str] = field(default_factory=list)

    @property
    def changes(self) -> int:
        return self.added + self.updated + self.removed


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """An entry as matchers and exporters see it: its signal, labels and provenance."""

    id: int
    bank: str
    agency: str
    signal_type: str
    value: str
    quality: int | None
    labels: Labels
    origin_agency: str
    source: str | None
    source_id: str | None
    seq: int
    removed: bool
    extra: dict[str, Any]

    def record(self) -> EntryRecord:
        """The entry as a record for writers (not checked again: it was, when stored)."""
        return stored_record(self.signal_type, self.value, self.labels, self.quality,
                             "remove" if self.removed else "add", self.source_id, self.extra)


def current_user() -> str:
    """Who is acting: ``VIGIL_USER`` or the operating-system user (recorded in the log),
    with anything invisible escaped (``vigil.banks.text.visible``): it is stored in every
    change record and shown to whoever reads the log."""
    try:
        user = os.environ.get("VIGIL_USER") or getpass.getuser()
    except Exception:
        return "unknown"
    return visible(user)[:100] or "unknown"


def label_columns(labels: Labels) -> dict[str, Any]:
    scheme, cat = labels.category if labels.category else (None, None)
    return {"category_scheme": scheme, "category": cat, "series": labels.series,
            "victim_status": labels.victim_status, "tags": labels.tags,
            "note": labels.note}


def labels_of(row: Any) -> Labels:
    """An entry row's labels, as stored (see ``stored_labels``)."""
    cat = (row.category_scheme, row.category) if row.category_scheme else None
    return stored_labels(cat, row.series, row.victim_status, tuple(row.tags or ()), row.note)


def label_snapshot(cols: dict[str, Any]) -> dict[str, Any]:
    """The labels a change record carries (what a feed will publish)."""
    return {k: cols[k] for k in ("category_scheme", "category", "series", "victim_status",
                                 "tags", "note")}


#: the optimistic path inserts a batch's entries sorted by (type, value) (see _insert_columns)


def find_bank(s: Session, name: str) -> Bank:
    """The bank row named ``name``; ``BankError`` naming the banks there are if none."""
    bank = s.scalar(select(Bank).where(Bank.name == name))
    if bank is None:
        known = s.scalars(select(Bank.name).order_by(Bank.name).limit(20)).all()
        hint = f"; banks: {', '.join(known)}" if known else "; no banks yet (vigil bank create)"
        raise BankError(f"no bank named {name!r}{hint}")
    return bank
