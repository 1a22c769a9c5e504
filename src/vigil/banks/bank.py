"""Bank operations: create banks, apply adds/relabels/removals, read them back.

Every write goes through ``Banks.apply`` (or helpers built on it) so that each change to
an entry is one row in the bank's append-only change log, with a gap-free sequence
number, in the same transaction as the entry itself. Imports run in batches inside ONE
transaction: a failing import leaves the bank exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.banks.entry import EntryRecord, Labels
from vigil.banks.model import (
    ApplyResult,
    BankError,
    BankInfo,
    BankStats,
    ReadOnlyBankError,
    current_user,
    find_bank,
    label_columns,
    label_snapshot,
    labels_of,
)
from vigil.banks.text import FieldError, agency_code, bank_name, free_text
from vigil.banks.travel import DERIVED_KEYS, FEATURES_KEY, derived_of
from vigil.schemes import SCHEMES
from vigil.store.bulk import bulk_insert, bulk_insert_columns
from vigil.store.dialects import analyze_if_grown, begin_change_log_write, reserve_entry_ids
from vigil.store.models import Bank, Change, Entry, utcnow
from vigil.store.models_exchange import Feed

BATCH_SIZE = 5000
_EMPTY: dict[str, Any] = {}
SORTED_INSERTS = True
_LABEL_KEYS = ("category_scheme", "category", "series", "victim_status", "tags", "note")
# Named here because inside ``Banks`` the name ``list`` is its method, not the type.
#: a batch's new entries: ((signal type, value), record)
_NewEntries = list[tuple[tuple[str, str], EntryRecord]]
#: rows of a bulk insert, column name -> value
_Rows = list[dict[str, Any]]
DESCRIPTION_MAX = 2000
_FIELD_WORDS = {"name": "bank name", "agency": "agency code"}


def _cols(memo: dict[int, dict[str, Any]], labels: Labels) -> dict[str, Any]:
    """A Labels object's entry columns, derived once per object in a batch."""
    cols = memo.get(id(labels))
    if cols is None:
        cols = memo[id(labels)] = label_columns(labels)
    return cols


def _new_derived(held: dict[str, Any] | None, given: dict[str, Any],
                 mirror: bool) -> dict[str, Any] | None:
    """An entry's new ``extra`` when a record changes its derived data, else None (see
    ``Banks.apply``): a mirror's record replaces the derived data whole; a local record
    replaces the parts it carries (new crop-ladder codes keep the entry's features)."""
    new, old = derived_of(given), derived_of(held) or {}
    if new is None and not mirror:
        return None
    target = (new or {}) if mirror else {**old, **(new or {})}
    if target == old:
        return None
    kept = {k: v for k, v in (held or {}).items() if k not in DERIVED_KEYS}
    return {**kept, **target}


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

    def __init__(self, engine: Engine, user: str | None = None, *,
                 on_created: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self.user = user or current_user()
        #: told after a new bank is committed (a server's workers cache the bank list)
        self.on_created = on_created

    # ---- banks -------------------------------------------------------------------------

    def create(self, name: str, agency: str, description: str = "",
               default_scheme: str | None = None, *, crop_ladder: bool = False) -> BankInfo:
        """Create an empty bank; the name must be new.

        ``crop_ladder``: files banked here keep derived PDQ codes of sub-windows of each
        picture, so cropped, framed and captioned copies match (``vigil.matching.variants``).

        The name, agency code and description are checked at the door
        (``vigil.banks.text``): a bank's name is printed by every command and travels to
        peers inside mirror names, so it can hold nothing that hides or forges output.
        """
        if not agency.strip():
            raise BankError("a bank needs an owning agency (e.g. --agency SG-SPF)")
        try:
            name = bank_name(name)
            agency = agency_code(agency)
            description = free_text(description, "description", DESCRIPTION_MAX)
        except FieldError as exc:
            raise BankError(f"invalid {_FIELD_WORDS.get(exc.field or '', exc.field)}: "
                            f"{exc.reason}") from None
        if default_scheme is not None and default_scheme not in SCHEMES:
            raise BankError(f"unknown category scheme {default_scheme!r}; "
                            f"known: {', '.join(SCHEMES)}")
        now = utcnow()
        try:
            with Session(self.engine) as s, s.begin():
                s.add(Bank(name=name, agency=agency, description=description,
                           default_scheme=default_scheme, created_at=now, updated_at=now,
                           last_seq=0, **({"crop_ladder": True} if crop_ladder else {})))
        except IntegrityError:
            raise BankError(f"a bank named {name!r} already exists") from None
        if self.on_created is not None:
            self.on_created()
        return self.get(name)

    def create_mirror(self, name: str, agency: str, description: str, *, descriptor: str,
                      origin: str, first_hash: str, peer: str) -> BankInfo:
        """Create a read-only mirror bank of a peer's feed, with its feed row.

        Both in one transaction: the feed row is what makes a bank read-only, so a mirror
        must never exist, even for a moment, as a bank anyone could write to.
        ``descriptor`` names the feed (its canonical text), ``first_hash`` is the chain's
        genesis, ``peer`` the node it is pulled from.
        """
        now = utcnow()
        try:
            with Session(self.engine) as s, s.begin():
                bank = Bank(name=name, agency=agency, description=description,
                            default_scheme=None, created_at=now, updated_at=now, last_seq=0)
                s.add(bank)
                s.flush()
                s.add(Feed(bank_id=bank.id, mirror=True, descriptor=descriptor, origin=origin,
                           last_seq=0, last_hash=first_hash, peer=peer, active=True))
        except IntegrityError:
            raise BankError(f"a bank named {name!r} already exists") from None
        if self.on_created is not None:
            self.on_created()
        return self.get(name)

    def _info(self, s: Session, bank: Bank) -> BankInfo:
        n = s.scalar(select(func.count()).select_from(Entry)
                     .where(Entry.bank_id == bank.id, Entry.removed.is_(False))) or 0
        return BankInfo(bank.id, bank.name, bank.agency, bank.description, bank.default_scheme,
                        bank.created_at, bank.updated_at, bank.last_seq, n)

    def get(self, name: str) -> BankInfo:
        with Session(self.engine) as s:
            return self._info(s, find_bank(s, name))

    def crop_ladder(self, name: str) -> bool:
        """Whether files banked in ``name`` keep derived PDQ codes (a crop ladder)."""
        with Session(self.engine) as s:
            return bool(s.scalar(select(Bank.crop_ladder).where(Bank.id == find_bank(s, name).id)))

    def set_crop_ladder(self, name: str, *, mirror: bool = False) -> bool:
        """Make ``name`` keep derived codes from now on; True if it did not before.

        The flag only ever goes on: codes already banked stay indexed. For a bank that
        had none, its entries' derived codes reach the indexes as their changes are
        replayed, so an entry must get its codes (``apply``: an update) after this. A
        mirror takes its origin's flag from the feed sync only (``mirror=True``).
        """
        with Session(self.engine) as s, s.begin():
            bank = find_bank(s, name)
            if not mirror:
                self._check_writable(s, bank)
            if bank.crop_ladder:
                return False
            s.execute(update(Bank).where(Bank.id == bank.id).values(crop_ladder=True))
            return True

    def require(self, name: str) -> None:
        """``BankError`` naming the banks there are unless ``name`` is one. Cheap, unlike
        ``get``, which counts the bank's live entries (0.26 s at 1M entries): a command
        that only checks its ``--bank`` argument should not pay that before it starts."""
        with Session(self.engine) as s:
            find_bank(s, name)

    def last_seq(self, name: str) -> int:
        """The bank's newest change sequence number. Not ``get(name).last_seq``: ``get``
        counts the bank's live entries, a scan of the whole bank (1.5 s at 10M entries,
        10 s with cold pages; it made every single add through the API that slow)."""
        with Session(self.engine) as s:
            return find_bank(s, name).last_seq

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
            bank = find_bank(s, name)
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
            featured = 0
            if bank.crop_ladder:  # only such banks keep features: others need no JSON scan
                featured = s.scalar(select(func.count()).select_from(Entry).where(
                    *live, Entry.signal_type == "pdq",
                    Entry.extra[FEATURES_KEY].as_string().is_not(None))) or 0
            return BankStats(self._info(s, bank), by_type, by_cat, by_victim, series, removed,
                             featured)

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

        A PDQ entry's derived data (``vigil.banks.travel``) changes with an ``add`` that
        carries other derived data than the entry holds (logged as ``update``): on a
        local bank, it replaces the parts the record carries, and an ``add`` without any
        keeps what the entry has (a relabel, a re-import of a hash list); on a mirror,
        the record is the entry as its origin holds it, so derived data it lacks goes.

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
            bank = find_bank(s, name)
            if not mirror:
                self._check_writable(s, bank)
            begin_change_log_write(s, bank.id)
            # Lock the bank row for the whole transaction: writers to one bank queue here,
            # so sequence numbers are handed out without gaps and in commit order.
            seqs = _Seqs(s.execute(select(Bank.last_seq).where(Bank.id == bank.id)
                                   .with_for_update()).scalar_one() + 1)
            agency = origin_agency or bank.agency
            batch: list[EntryRecord] = []
            for rec in records:
                batch.append(rec)
                if len(batch) >= batch_size:
                    self._apply_batch(s, bank, batch, source, agency, result, seqs, fast,
                                      mirror)
                    if progress:
                        progress(len(batch))
                    batch = []
            if batch:
                self._apply_batch(s, bank, batch, source, agency, result, seqs, fast, mirror)
                if progress:
                    progress(len(batch))
            if result.changes:
                # One UPDATE at the end: updating the row per batch made PostgreSQL's
                # foreign-key checks against it slower with every batch.
                s.execute(update(Bank).where(Bank.id == bank.id)
                          .values(updated_at=utcnow(), last_seq=seqs.next - 1))
            if before_commit is not None:
                before_commit(s)
        analyze_if_grown(self.engine, result.added)
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
            bank = find_bank(s, name)
            return s.scalar(select(Feed.id).where(Feed.bank_id == bank.id,
                                                  Feed.mirror.is_(True))) is not None

    def _apply_batch(self, s: Session, bank: Bank, batch: Sequence[EntryRecord],
                     source: str | None,
                     agency: str, result: ApplyResult, seqs: _Seqs,
                     fast: _Optimism | None = None, mirror: bool = False) -> None:
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
        existing: dict[tuple[str, str], Entry] = {}
        for t in {t for t, _ in final}:
            values = sorted(v for tt, v in final if tt == t)
            for i in range(0, len(values), 900):
                # By (type, value) only, bank filtered here: with the bank in the WHERE,
                # PostgreSQL without statistics walked the bank's rows by its (bank, seq)
                # index, slower with every batch of an import.
                q = select(Entry).where(Entry.signal_type == t,
                                        Entry.value.in_(values[i:i + 900]))
                for held in s.execute(q).scalars():
                    if held.bank_id == bank.id:
                        existing[(held.signal_type, held.value)] = held
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
            else:
                extra = _new_derived(row.extra, rec.extra, mirror)
                if extra is not None:
                    updates.append(("update", row, {**cols, "extra": extra}))
                elif label_snapshot(cols) != label_snapshot(label_columns(labels_of(row))):
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
                merged = {**label_columns(labels_of(row)), **cols}
                changes.append({"bank_id": bank.id, "seq": seq + i, "op": op, "entry_id": row.id,
                                "signal_type": row.signal_type, "at": now, "by": self.user,
                                "labels": label_snapshot(merged)})
                if op == "remove":
                    result.removed += 1
                elif op == "add":
                    result.added += 1
                else:
                    result.updated += 1
            s.execute(update(Entry), rows)
        bulk_insert(s.connection(), Change.__table__, changes)

    def _insert(self, s: Session, bank: Bank, new: _NewEntries,
                source: str | None, agency: str, seq: int, now: datetime,
                label_cols: dict[int, dict[str, Any]]) -> _Rows:
        """Insert ``new`` as entries with sequence numbers from ``seq``; returns their
        change rows (the caller inserts them, with any others of the batch)."""
        inserts: list[dict[str, Any]] = []
        snapshots: list[dict[str, Any]] = []  # the labels each insert's change carries
        for i, (_, rec) in enumerate(new):
            cols = _cols(label_cols, rec.labels)
            snap = label_cols.get(-id(rec.labels))
            if snap is None:
                snap = label_cols[-id(rec.labels)] = label_snapshot(cols)
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
                        new: _NewEntries, source: str | None,
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
        ids = reserve_entry_ids(s, n)
        entry_of = [0] * n
        for k, i in enumerate(order):
            entry_of[i] = ids[k]
        labs: dict[int, tuple[Any, ...]] = {}
        snaps: dict[int, dict[str, Any]] = {}
        for r in recs:
            if id(r.labels) not in labs:
                cols = _cols(label_cols, r.labels)
                labs[id(r.labels)] = tuple(cols[k] for k in _LABEL_KEYS)
                snaps[id(r.labels)] = label_snapshot(cols)
        by_rec = [labs[id(r.labels)] for r in recs]
        label_values = dict(zip(_LABEL_KEYS, (list(c) for c in zip(*by_rec, strict=True)),
                                 strict=True))
        bulk_insert_columns(s.connection(), Entry.__table__, {
            "id": ids, "bank_id": [bank.id] * n, "signal_type": [r.signal_type for r in recs],
            "value": [r.value for r in recs], "quality": [r.quality for r in recs],
            **label_values, "origin_agency": [agency] * n, "source": [source] * n,
            "source_id": [r.source_id for r in recs], "added_by": [self.user] * n,
            "added_at": [now] * n, "updated_at": [now] * n, "seq": [seq + i for i in order],
            "removed": [False] * n, "extra": [r.extra or _EMPTY for r in recs]})
        bulk_insert_columns(s.connection(), Change.__table__, {
            "bank_id": [bank.id] * n, "seq": list(range(seq, seq + n)), "op": ["add"] * n,
            "entry_id": entry_of, "signal_type": [k[0] for k, _ in new], "at": [now] * n,
            "by": [self.user] * n, "labels": [snaps[id(r.labels)] for _, r in new]})

    def _insert_new(self, s: Session, bank: Bank, adds: _NewEntries,
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
