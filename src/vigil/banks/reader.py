"""Reading a store's entries: by id, by value, a whole bank, a series.

``EntryReader`` is the entry source the matcher resolves index hits with
(``vigil.matching.EntrySource``), and what exports stream from. Reads on the match path
use plain rows, not ORM objects (several times cheaper per hit).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select
from sqlalchemy.orm import Session

from vigil.banks.model import StoredEntry, find_bank, labels_of
from vigil.store.models import Bank, Entry

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


class EntryReader:
    """Read-only access to every bank's entries in one store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def names(self) -> set[str]:
        """Bank names only: cheap (no entry is counted)."""
        with Session(self.engine) as s:
            return set(s.scalars(select(Bank.name)))

    def entries(self, name: str, include_removed: bool = False,
                chunk: int = 10_000) -> Iterator[StoredEntry]:
        """Stream a bank's entries in sequence order (for export and index rebuilds)."""
        with Session(self.engine) as s:
            bank = find_bank(s, name)
            q = select(Entry).where(Entry.bank_id == bank.id).order_by(Entry.seq)
            if not include_removed:
                q = q.where(Entry.removed.is_(False))
            for row in s.execute(q.execution_options(yield_per=chunk)).scalars():
                yield self._stored(row, bank)

    @staticmethod
    def _stored(row: Entry, bank: Bank) -> StoredEntry:
        return StoredEntry(row.id, bank.name, bank.agency, row.signal_type, row.value,
                           row.quality, labels_of(row), row.origin_agency, row.source,
                           row.source_id, row.seq, row.removed, dict(row.extra or {}))

    def _bank_names(self, conn: Connection) -> dict[int, tuple[str, str]]:
        return {i: (n, a) for i, n, a in conn.execute(select(Bank.id, Bank.name, Bank.agency))}

    def _rows(self, query: Any, params: dict[str, Any],
              banks: Mapping[int, tuple[str, str]] | None) -> Iterator[StoredEntry]:
        """``StoredEntry`` from plain rows (no ORM objects: several times cheaper per hit).
        ``banks`` (id -> (name, agency), e.g. a server's cache) is read from the store
        only when it is not given or lacks a row's bank."""
        # autocommit: one statement needs no BEGIN and no ROLLBACK (two round trips fewer)
        directory = banks if banks is not None else {}
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            rows = conn.execute(query, params).all()
            if any(r.bank_id not in directory for r in rows):
                directory = self._bank_names(conn)
        for r in rows:
            bank, agency = directory[r.bank_id]
            yield StoredEntry(r.id, bank, agency, r.signal_type, r.value, r.quality,
                              labels_of(r), r.origin_agency, r.source, r.source_id, r.seq,
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
