"""Bank operations: create banks, apply adds/relabels/removals, read them back.

Every write goes through ``Banks.apply`` (or helpers built on it) so that each change to
an entry is one row in the bank's append-only change log, with a gap-free sequence
number, in the same transaction as the entry itself. Imports run in batches inside ONE
transaction: a failing import leaves the bank exactly as it was.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.entry import EntryRecord, Labels
from vigil.schemes import SCHEMES
from vigil.store.bulk import bulk_insert, bulk_insert_columns
from vigil.store.models import Bank, Change, Entry, utcnow
from vigil.store.models_exchange import Feed

BATCH_SIZE = 5000
#: pg_advisory_xact_lock key that orders change-log appends ("vigilchg")
CHANGE_LOCK = 0x7669_6769_6C63_6867 & 0x7FFF_FFFF_FFFF_FFFF
_EMPTY: dict[str, Any] = {}
#: the entry columns a ``StoredEntry`` needs (read as plain rows on the match path)
_STORED = (Entry.id, Entry.bank_id, Entry.signal_type, Entry.value, Entry.quality,
           Entry.category_scheme, Entry.category, Entry.series, Entry.victim_status,
           Entry.tags, Entry.note, Entry.origin_agency, Entry.source, Entry.source_id,
           Entry.seq, Entry.removed, Entry.extra)
# built once: their cache keys are computed once, not on every match request
_BY_IDS = select(*_STORED).where(Entry.id.in_(bindparam("ids", expanding=True)))
_BY_VALUES = select(*_STORED).where(Entry.signal_type == bindparam("type"),
                                    Entry.value.in_(bindparam("values", expanding=True)),
                                    Entry.removed.is_(False))


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
        return EntryRecord(self.signal_type, self.value, self.labels, self.quality,
                           "remove" if self.removed else "add", self.source_id, self.extra)


def current_user() -> str:
    """Who is acting: ``VIGIL_USER`` or the operating-system user (recorded in the log)."""
    try:
        return os.environ.get("VIGIL_USER") or getpass.getuser()
    except Exception:
        return "unknown"


def _label_columns(labels: Labels) -> dict[str, Any]:
    scheme, cat = labels.category if labels.category else (None, None)
    return {"category_scheme": scheme, "category": cat, "series": labels.series,
            "victim_status": labels.victim_status, "tags": labels.tags,
            "note": labels.note}


def _labels_of(row: Any) -> Labels:
    cat = (row.category_scheme, row.category) if row.category_scheme else None
    return Labels(category=cat, series=row.series, victim_status=row.victim_status,
                  tags=tuple(row.tags or ()), note=row.note)


def _snapshot(cols: dict[str, Any]) -> dict[str, Any]:
    """The labels a change record carries (what a feed will publish)."""
    return {k: cols[k] for k in ("category_scheme", "category", "series", "victim_status",
                                 "tags", "note")}


#: rows added per engine since its last ANALYZE (PostgreSQL)
_GROWN: dict[int, int] = {}
ANALYZE_MIN_ROWS = 20_000


def _analyze_if_grown(engine: Engine, added: int) -> None:
    """ANALYZE the bank tables after they grew by a fifth (and at least 20,000 rows).

    The existence check of every write looks entries up by (type, value); on a table
    that grew in bulk since PostgreSQL last sampled it, the planner has no idea and
    walked every entry of the type: 0.35-0.6 s per lookup of 900 values at 1M entries,
    against 0.02 s after ANALYZE (measured by bench/federation.py). Autovacuum may be
    off, or simply behind a bulk import or a first mirror sync; this does not wait for it.
    """
    key = id(engine)
    grown = _GROWN.get(key, 0) + added
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT reltuples FROM pg_class "
                                 "WHERE oid = to_regclass('entries')")).scalar() or 0
        if grown < max(ANALYZE_MIN_ROWS, 0.2 * max(0.0, float(rows))):
            _GROWN[key] = grown
            return
        conn.execute(text("ANALYZE entries"))
        conn.execute(text("ANALYZE changes"))
        conn.commit()
    _GROWN[key] = 0


#: the optimistic path inserts a batch's entries sorted by (type, value) (see _insert_columns)
SORTED_INSERTS = True
_LABEL_KEYS = ("category_scheme", "category", "series", "victim_status", "tags", "note")


def _new_entry_ids(s: Session, n: int) -> list[int]:
    """``n`` ids for new entries, taken before inserting them (so none are read back).
    SQLite: after the largest (``apply`` holds the write lock, so no one else inserts);
    PostgreSQL: a block of the table's sequence in one statement (``apply`` holds the
    change-log lock every writer takes; anyone else taking an id inside the block makes
    the insert fail on the primary key, and the batch takes the full path)."""
    if s.get_bind().dialect.name == "sqlite":
        start = (s.execute(text("SELECT max(id) FROM entries")).scalar() or 0) + 1
        return list(range(start, start + n))
    last = s.execute(text("SELECT setval(pg_get_serial_sequence('entries', 'id'), "
                          "nextval(pg_get_serial_sequence('entries', 'id')) + :n - 1)"),
                     {"n": n}).scalar_one()
    return list(range(last - n + 1, last + 1))


def _cols(memo: dict[int, dict[str, Any]], labels: Labels) -> dict[str, Any]:
    """A Labels object's entry columns, derived once per object in a batch."""
    cols = memo.get(id(labels))
    if cols is None:
        cols = memo[id(labels)] = _label_columns(labels)
    return cols


class _Optimism:
    """When ``apply(optimistic=True)`` tries the optimistic path: every batch while it
    works; after a batch had to fall back (the bank held one of its values), the next
    1, 3, 7 … (at most 63) batches take the full path, so a bank that holds most of
    the values (a resync) pays for few failed attempts."""

    def __init__(self) -> None:
        self.skip = 0
        self.backoff = 0

    def now(self) -> bool:
        if self.skip:
            self.skip -= 1
            return False
        return True

    def succeeded(self) -> None:
        self.backoff = 0

    def failed(self) -> None:
        self.backoff = min(2 * self.backoff + 1, 63)
        self.skip = self.backoff


class _Seqs:
    """Hands out a bank's sequence numbers while ``apply`` holds the bank row's lock."""

    def __init__(self, first: int) -> None:
        self.next = first

    def take(self, n: int) -> int:
        first = self.next
        self.next += n
        return first


class Banks:
    """The bank layer over one store (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, user: str | None = None) -> None:
        self.engine = engine
        self.user = user or current_user()

    # ---- banks -------------------------------------------------------------------------

    def create(self, name: str, agency: str, description: str = "",
               default_scheme: str | None = None) -> BankInfo:
        """Create an empty bank; the name must be new."""
        name, agency = name.strip(), agency.strip()
        if not name or len(name) > 100 or any(c in name for c in "/\\\n\t"):
            raise BankError(f"invalid bank name {name!r}: 1-100 characters, no slashes")
        if not agency:
            raise BankError("a bank needs an owning agency (e.g. --agency SG-SPF)")
        if default_scheme is not None and default_scheme not in SCHEMES:
            raise BankError(f"unknown category scheme {default_scheme!r}; "
                            f"known: {', '.join(SCHEMES)}")
        now = utcnow()
        try:
            with Session(self.engine) as s, s.begin():
                s.add(Bank(name=name, agency=agency, description=description,
                           default_scheme=default_scheme, created_at=now, updated_at=now,
                           last_seq=0))
        except IntegrityError:
            raise BankError(f"a bank named {name!r} already exists") from None
        return self.get(name)

    def _bank(self, s: Session, name: str) -> Bank:
        bank = s.scalar(select(Bank).where(Bank.name == name))
        if bank is None:
            known = s.scalars(select(Bank.name).order_by(Bank.name).limit(20)).all()
            hint = f"; banks: {', '.join(known)}" if known else "; no banks yet (vigil bank create)"
            raise BankError(f"no bank named {name!r}{hint}")
        return bank

    def _info(self, s: Session, bank: Bank) -> BankInfo:
        n = s.scalar(select(func.count()).select_from(Entry)
                     .where(Entry.bank_id == bank.id, Entry.removed.is_(False))) or 0
        return BankInfo(bank.id, bank.name, bank.agency, bank.description, bank.default_scheme,
                        bank.created_at, bank.updated_at, bank.last_seq, n)

    def get(self, name: str) -> BankInfo:
        with Session(self.engine) as s:
            return self._info(s, self._bank(s, name))

    def last_seq(self, name: str) -> int:
        """The bank's newest change sequence number. Not ``get(name).last_seq``: ``get``
        counts the bank's live entries, a scan of the whole bank (1.5 s at 10M entries,
        10 s with cold pages; it made every single add through the API that slow)."""
        with Session(self.engine) as s:
            return self._bank(s, name).last_seq

    def names(self) -> set[str]:
        """Bank names only: cheap (``list`` counts every bank's entries)."""
        with Session(self.engine) as s:
            return set(s.scalars(select(Bank.name)))

    def list(self) -> list[BankInfo]:
        with Session(self.engine) as s:
            return [self._info(s, b) for b in s.scalars(select(Bank).order_by(Bank.name))]

    def stats(self, name: str) -> BankStats:
        """Counts per signal type, category and victim status — never the signals."""
        with Session(self.engine) as s:
            bank = self._bank(s, name)
            live = (Entry.bank_id == bank.id, Entry.removed.is_(False))
            by_type = dict(s.execute(select(Entry.signal_type, func.count()).where(*live)
                                     .group_by(Entry.signal_type)).all())
            by_cat: dict[str, int] = {}
            for scheme, cat, n in s.execute(
                    select(Entry.category_scheme, Entry.category, func.count()).where(*live)
                    .group_by(Entry.category_scheme, Entry.category)):
                by_cat[f"{scheme}:{cat}" if scheme else "uncategorised"] = n
            by_victim = dict(s.execute(select(Entry.victim_status, func.count()).where(*live)
                                       .group_by(Entry.victim_status)).all())
            series = s.scalar(select(func.count(func.distinct(Entry.series))).where(*live)) or 0
            removed = s.scalar(select(func.count()).select_from(Entry).where(
                Entry.bank_id == bank.id, Entry.removed.is_(True))) or 0
            return BankStats(self._info(s, bank), by_type, by_cat, by_victim, series, removed)

    # ---- writes --------------------------------------------------------------------------

    def apply(self, name: str, records: Iterable[EntryRecord], *, source: str | None = None,
              origin_agency: str | None = None, batch_size: int = BATCH_SIZE,
              progress: Callable[[int], None] | None = None, mirror: bool = False,
              before_commit: Callable[[Session], None] | None = None,
              optimistic: bool = False) -> ApplyResult:
        """Apply add/remove records to a bank in one transaction, logging every change.

        An ``add`` of a signal already in the bank replaces its labels (logged as
        ``update``, or not at all when nothing changed); an ``add`` of a removed signal
        brings it back; a ``remove`` of an unknown signal is counted as ``not_found``.
        If anything raises (a malformed record from a strict reader, a database error),
        the whole call is rolled back.

        A mirror bank (pulled from a peer) is read-only: only the feed sync writes to it
        (``mirror=True``), and ``before_commit`` lets it store its checkpoint in the same
        transaction as the entries, so a crash can never separate the two.

        ``optimistic``: write each batch's adds as new entries without looking their values
        up first (a savepoint; the unique (bank, type, value) constraint catches a value the
        bank holds, and that batch then takes the full path). For a first mirror sync or an
        import of new values: the lookups were a large part of their time. The result is
        the same either way (tests compare the two); after a batch that had to fall back,
        the next batches take the full path for a while (``_Optimism``).
        """
        result = ApplyResult()
        fast = _Optimism() if optimistic else None
        with Session(self.engine) as s, s.begin():
            bank = self._bank(s, name)
            if not mirror:
                self._check_writable(s, bank)
            dialect = s.get_bind().dialect.name
            if dialect == "sqlite":
                # Take SQLite's write lock now (the driver only begins a transaction before
                # its first write): the reads below then see what this transaction writes
                # over, and a savepoint of an optimistic batch is never the outermost one
                # (releasing that would commit).
                s.execute(text("UPDATE banks SET last_seq = last_seq WHERE id = :i"),
                          {"i": bank.id})
            if dialect == "postgresql":
                # Change ids must commit in id order, or an index tailing the log could step
                # over a change that commits late: all writers (every bank) queue here.
                # SQLite has a single writer anyway.
                s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHANGE_LOCK})
                # Every query here is an index lookup; a table that grows inside this one
                # transaction has no statistics, so rule sequential scans out for it.
                s.execute(text("SET LOCAL enable_seqscan = off"))
            # Lock the bank row for the whole transaction: writers to one bank queue here,
            # so sequence numbers are handed out without gaps and in commit order.
            seqs = _Seqs(s.execute(select(Bank.last_seq).where(Bank.id == bank.id)
                                   .with_for_update()).scalar_one() + 1)
            agency = origin_agency or bank.agency
            batch: list[EntryRecord] = []
            for rec in records:
                batch.append(rec)
                if len(batch) >= batch_size:
                    self._apply_batch(s, bank, batch, source, agency, result, seqs, fast)
                    if progress:
                        progress(len(batch))
                    batch = []
            if batch:
                self._apply_batch(s, bank, batch, source, agency, result, seqs, fast)
                if progress:
                    progress(len(batch))
            if result.changes:
                # One UPDATE at the end: updating the row per batch made PostgreSQL's
                # foreign-key checks against it slower with every batch.
                s.execute(update(Bank).where(Bank.id == bank.id)
                          .values(updated_at=utcnow(), last_seq=seqs.next - 1))
            if before_commit is not None:
                before_commit(s)
        if result.added and self.engine.dialect.name == "postgresql":
            _analyze_if_grown(self.engine, result.added)
        return result

    @staticmethod
    def _check_writable(s: Session, bank: Bank) -> None:
        origin = s.scalar(select(Feed.descriptor).where(Feed.bank_id == bank.id,
                                                        Feed.mirror.is_(True)))
        if origin is not None:
            raise ReadOnlyBankError(f"bank {bank.name!r} is a read-only mirror of another "
                                    "agency's bank; record an opinion (agree/dispute) "
                                    "instead of editing it")

    def is_mirror(self, name: str) -> bool:
        """Whether ``name`` is a mirror of a peer's bank (read-only here)."""
        with Session(self.engine) as s:
            bank = self._bank(s, name)
            return s.scalar(select(Feed.id).where(Feed.bank_id == bank.id,
                                                  Feed.mirror.is_(True))) is not None

    def _apply_batch(self, s: Session, bank: Bank, batch: list[EntryRecord], source: str | None,
                     agency: str, result: ApplyResult, seqs: _Seqs,
                     fast: _Optimism | None = None) -> None:
        final: dict[tuple[str, str], EntryRecord] = {}
        for rec in batch:  # within a batch, the last record for a signal wins
            final[(rec.signal_type, rec.value)] = rec
        now = utcnow()
        label_cols: dict[int, dict[str, Any]] = {}  # per distinct Labels object
        if fast is not None and fast.now():
            adds = [(k, r) for k, r in final.items() if r.op == "add"]
            if adds and self._insert_new(s, bank, adds, source, agency, result, seqs, now,
                                         label_cols):
                fast.succeeded()
                final = {k: r for k, r in final.items() if r.op != "add"}
                if not final:
                    return
            elif adds:
                fast.failed()
        existing: dict[tuple[str, str], Any] = {}
        for t in {t for t, _ in final}:
            values = sorted(v for tt, v in final if tt == t)
            for i in range(0, len(values), 900):
                # By (type, value) only, bank filtered here: with the bank in the WHERE,
                # PostgreSQL without statistics walked the bank's rows by its (bank, seq)
                # index, slower with every batch of an import.
                q = select(Entry).where(Entry.signal_type == t,
                                        Entry.value.in_(values[i:i + 900]))
                for row in s.execute(q).scalars():
                    if row.bank_id == bank.id:
                        existing[(row.signal_type, row.value)] = row
        new: list[tuple[tuple[str, str], EntryRecord]] = []
        updates: list[tuple[str, Entry, dict[str, Any]]] = []
        for key, rec in final.items():
            cols = _cols(label_cols, rec.labels)
            row = existing.get(key)
            if rec.op == "remove":
                if row is None or row.removed:
                    result.not_found += 1
                else:
                    updates.append(("remove", row, {"removed": True}))
                continue
            if row is None:
                new.append((key, rec))
            elif row.removed:
                updates.append(("add", row, {**cols, "removed": False, "quality": rec.quality,
                                             "source": source, "source_id": rec.source_id,
                                             "extra": rec.extra}))
            elif _snapshot(cols) != _snapshot(_label_columns(_labels_of(row))):
                updates.append(("update", row, cols))
            else:
                result.unchanged += 1
        n = len(new) + len(updates)
        if not n:
            return
        seq = seqs.take(n)
        changes: list[dict[str, Any]] = []
        if new:
            changes = self._insert(s, bank, new, source, agency, seq, now, label_cols)
            result.added += len(new)
            seq += len(new)
        if updates:
            rows = []
            for i, (op, row, cols) in enumerate(updates):
                rows.append({"id": row.id, **cols, "seq": seq + i, "updated_at": now})
                merged = {**_label_columns(_labels_of(row)), **cols}
                changes.append({"bank_id": bank.id, "seq": seq + i, "op": op, "entry_id": row.id,
                                "signal_type": row.signal_type, "at": now, "by": self.user,
                                "labels": _snapshot(merged)})
                if op == "remove":
                    result.removed += 1
                elif op == "add":
                    result.added += 1
                else:
                    result.updated += 1
            s.execute(update(Entry), rows)
        bulk_insert(s.connection(), Change.__table__, changes)

    def _insert(self, s: Session, bank: Bank, new: list[tuple[tuple[str, str], EntryRecord]],
                source: str | None, agency: str, seq: int, now: datetime,
                label_cols: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert ``new`` as entries with sequence numbers from ``seq``; returns their
        change rows (the caller inserts them, with any others of the batch)."""
        inserts: list[dict[str, Any]] = []
        snapshots: list[dict[str, Any]] = []  # the labels each insert's change carries
        for i, (_, rec) in enumerate(new):
            cols = _cols(label_cols, rec.labels)
            snap = label_cols.get(-id(rec.labels))
            if snap is None:
                snap = label_cols[-id(rec.labels)] = _snapshot(cols)
            snapshots.append(snap)
            inserts.append({**cols, "signal_type": rec.signal_type, "value": rec.value,
                            "quality": rec.quality, "origin_agency": agency,
                            "source": source, "source_id": rec.source_id,
                            "added_by": self.user, "added_at": now, "updated_at": now,
                            "removed": False, "extra": rec.extra or _EMPTY,
                            "bank_id": bank.id, "seq": seq + i})
        # Core executemany (no RETURNING) is several times faster on SQLite; the new
        # ids are then read back by their sequence numbers, unique within the bank.
        bulk_insert(s.connection(), Entry.__table__, inserts)
        ids = dict(s.execute(select(Entry.seq, Entry.id).where(
            Entry.bank_id == bank.id, Entry.seq.between(seq, seq + len(inserts) - 1))).all())
        return [{"bank_id": bank.id, "seq": d["seq"], "op": "add", "entry_id": ids[d["seq"]],
                 "signal_type": d["signal_type"], "at": now, "by": self.user, "labels": snap}
                for d, snap in zip(inserts, snapshots, strict=True)]

    def _insert_columns(self, s: Session, bank: Bank,
                        new: list[tuple[tuple[str, str], EntryRecord]], source: str | None,
                        agency: str, seq: int, now: datetime,
                        label_cols: dict[int, dict[str, Any]]) -> None:
        """``_insert`` and its change rows, built column by column with ids taken up front
        (no dict per row, no read-back): what the optimistic path writes. Same rows as
        ``_insert`` + the change rows of ``_apply_batch`` (tests compare the two paths)."""
        n = len(new)
        # Entries go in in (type, value) order, ids ascending in that order, so the table
        # and both (type, value) indexes are written front to back instead of at random
        # places; the change log keeps the records' order (its seqs and entry ids).
        order = sorted(range(n), key=lambda i: new[i][0]) if SORTED_INSERTS else range(n)
        recs = [new[i][1] for i in order]
        ids = _new_entry_ids(s, n)
        entry_of = [0] * n
        for k, i in enumerate(order):
            entry_of[i] = ids[k]
        labs: dict[int, tuple[Any, ...]] = {}
        snaps: dict[int, dict[str, Any]] = {}
        for r in recs:
            if id(r.labels) not in labs:
                cols = _cols(label_cols, r.labels)
                labs[id(r.labels)] = tuple(cols[k] for k in _LABEL_KEYS)
                snaps[id(r.labels)] = _snapshot(cols)
        by_rec = [labs[id(r.labels)] for r in recs]
        label_columns = dict(zip(_LABEL_KEYS, (list(c) for c in zip(*by_rec, strict=True)),
                                 strict=True))
        bulk_insert_columns(s.connection(), Entry.__table__, {
            "id": ids, "bank_id": [bank.id] * n, "signal_type": [r.signal_type for r in recs],
            "value": [r.value for r in recs], "quality": [r.quality for r in recs],
            **label_columns, "origin_agency": [agency] * n, "source": [source] * n,
            "source_id": [r.source_id for r in recs], "added_by": [self.user] * n,
            "added_at": [now] * n, "updated_at": [now] * n, "seq": [seq + i for i in order],
            "removed": [False] * n, "extra": [r.extra or _EMPTY for r in recs]})
        bulk_insert_columns(s.connection(), Change.__table__, {
            "bank_id": [bank.id] * n, "seq": list(range(seq, seq + n)), "op": ["add"] * n,
            "entry_id": entry_of, "signal_type": [k[0] for k, _ in new], "at": [now] * n,
            "by": [self.user] * n, "labels": [snaps[id(r.labels)] for _, r in new]})

    def _insert_new(self, s: Session, bank: Bank, adds: list[tuple[tuple[str, str], EntryRecord]],
                    source: str | None, agency: str, result: ApplyResult, seqs: _Seqs,
                    now: datetime, label_cols: dict[int, dict[str, Any]]) -> bool:
        """The optimistic path: insert ``adds`` as new entries in a savepoint; False (and
        nothing written) if the bank already holds one of the values."""
        first = seqs.next
        dbapi_error = getattr(s.get_bind().dialect.dbapi, "IntegrityError", IntegrityError)
        try:
            with s.begin_nested():
                self._insert_columns(s, bank, adds, source, agency, seqs.take(len(adds)),
                                     now, label_cols)
        except (IntegrityError, dbapi_error):
            seqs.next = first
            return False
        result.added += len(adds)
        return True

    # ---- reads ---------------------------------------------------------------------------

    def entries(self, name: str, include_removed: bool = False,
                chunk: int = 10_000) -> Iterator[StoredEntry]:
        """Stream a bank's entries in sequence order (for export and index rebuilds)."""
        with Session(self.engine) as s:
            bank = self._bank(s, name)
            q = select(Entry).where(Entry.bank_id == bank.id).order_by(Entry.seq)
            if not include_removed:
                q = q.where(Entry.removed.is_(False))
            for row in s.execute(q.execution_options(yield_per=chunk)).scalars():
                yield self._stored(row, bank)

    @staticmethod
    def _stored(row: Entry, bank: Bank) -> StoredEntry:
        return StoredEntry(row.id, bank.name, bank.agency, row.signal_type, row.value,
                           row.quality, _labels_of(row), row.origin_agency, row.source,
                           row.source_id, row.seq, row.removed, dict(row.extra or {}))

    def _bank_names(self, conn: Connection) -> dict[int, tuple[str, str]]:
        return {i: (n, a) for i, n, a in conn.execute(select(Bank.id, Bank.name, Bank.agency))}

    def _rows(self, query: Any, params: dict[str, Any],
              banks: Mapping[int, tuple[str, str]] | None) -> Iterator[StoredEntry]:
        """``StoredEntry`` from plain rows (no ORM objects: several times cheaper per hit).
        ``banks`` (id -> (name, agency), e.g. a server's cache) is read from the store
        only when it is not given or lacks a row's bank."""
        # autocommit: one statement needs no BEGIN and no ROLLBACK (two round trips fewer)
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            rows = conn.execute(query, params).all()
            if rows and (banks is None or any(r.bank_id not in banks for r in rows)):
                banks = self._bank_names(conn)
        for r in rows:
            bank, agency = banks[r.bank_id]  # type: ignore[index]
            yield StoredEntry(r.id, bank, agency, r.signal_type, r.value, r.quality,
                              _labels_of(r), r.origin_agency, r.source, r.source_id, r.seq,
                              r.removed, dict(r.extra or {}))

    def by_ids(self, ids: Iterable[int], banks: Mapping[int, tuple[str, str]] | None = None,
               ) -> dict[int, StoredEntry]:
        """Entries by id (matchers resolve index hits with this), removed ones included.

        ``banks``: bank id -> (name, agency) if the caller holds it (see ``_rows``).
        """
        wanted = sorted(set(ids))
        out: dict[int, StoredEntry] = {}
        for i in range(0, len(wanted), 900):
            for e in self._rows(_BY_IDS, {"ids": wanted[i:i + 900]}, banks):
                out[e.id] = e
        return out

    def find(self, signal_type: str, values: list[str],
             bank_names: list[str] | None = None,
             banks: Mapping[int, tuple[str, str]] | None = None) -> list[StoredEntry]:
        """Live entries with exactly these values (opaque signals are matched this way)."""
        out: list[StoredEntry] = []
        for i in range(0, len(values), 900):
            out += [e for e in self._rows(_BY_VALUES, {"type": signal_type,
                                                       "values": values[i:i + 900]}, banks)
                    if bank_names is None or e.bank in bank_names]
        return out

    def entries_of_series(self, name: str, series: str) -> list[StoredEntry]:
        """Live entries of one series in a bank (for relabelling a whole series)."""
        return [e for e in self.entries(name) if e.labels.series == series]
