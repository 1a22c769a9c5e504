"""A worker's cache of bank entries by id, kept honest by the change log the index tails.

Why: a match that hits must show the entry's bank and labels, and reading them from the
store cost a round trip and ~0.2–0.3 ms of CPU per request (more than the index search);
known material recurs, so the same entries are read again and again. Every change to an
indexed entry (add, relabel, remove) passes through the index's tail, which drops that
entry here (and everything after a rebuild), so a cached entry is at most one index sync
interval older than the store — the same bound as the index itself. Entries of types the
index does not tail (vPDQ, opaque types) are never cached.

A read that started before an invalidation does not store what it read
(``generation``), so an entry changed while it was being read is not kept stale.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from vigil.banks import StoredEntry
from vigil.banks.indexes import INDEXED_TYPES
from vigil.matching.protocols import BankDirectory, EntrySource

#: entries kept per worker (a few hundred bytes each). Not more: cached entries are
#: objects the garbage collector walks in every full collection (measured: 50k entries
#: 21 ms, 200k entries 100 ms, a pause for every request on the worker)
DEFAULT_SIZE = 50_000


class EntryCache:
    """Entry id -> ``StoredEntry``, least recently used out first; thread-safe."""

    def __init__(self, max_size: int = DEFAULT_SIZE) -> None:
        self.max_size = max_size
        self.generation = 0
        self.hits = self.misses = 0
        self._entries: OrderedDict[int, StoredEntry] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get_many(self, ids: Iterable[int]) -> tuple[dict[int, StoredEntry], list[int]]:
        """The cached entries of ``ids`` and the ids not cached."""
        found: dict[int, StoredEntry] = {}
        missing: list[int] = []
        with self._lock:
            for i in ids:
                e = self._entries.get(i)
                if e is None:
                    missing.append(i)
                else:
                    self._entries.move_to_end(i)
                    found[i] = e
            self.hits += len(found)
            self.misses += len(missing)
        return found, missing

    def put_many(self, entries: Iterable[StoredEntry], generation: int) -> None:
        """Keep entries read from the store, unless anything was dropped since the read
        began (``generation`` taken before it)."""
        with self._lock:
            if generation != self.generation:
                return
            for e in entries:
                if e.signal_type in INDEXED_TYPES:
                    self._entries[e.id] = e
                    self._entries.move_to_end(e.id)
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)

    def drop(self, ids: Iterable[int] | None) -> None:
        """Forget these entries (None: all of them); the index's tail calls this."""
        with self._lock:
            self.generation += 1
            if ids is None:
                self._entries.clear()
            else:
                for i in ids:
                    self._entries.pop(i, None)


class EntriesNotCached(Exception):
    """``CachedEntries.by_ids`` would have read the store, inside ``cached_only()``."""


class CachedEntries:
    """An entry source (``vigil.matching.EntrySource``) whose ``by_ids`` (how matches
    resolve their hits) reads through a cache; ``find`` and ``names`` go to the source."""

    def __init__(self, source: EntrySource, cache: EntryCache) -> None:
        self.source = source
        self.cache = cache
        self._local = threading.local()

    @contextmanager
    def cached_only(self) -> Iterator[None]:
        """In this thread, for the block: ``by_ids`` raises ``EntriesNotCached`` instead
        of reading the store.

        Why: the lean match path matches on the event loop, where a store read blocks
        every other request of the worker; after a start or a rebuild (an empty cache)
        that was a read on most hits, and 64 clients saw the node at half speed for
        seconds. On a miss the path matches again in a thread instead.
        """
        self._local.cached_only = True
        try:
            yield
        finally:
            self._local.cached_only = False

    def names(self) -> set[str]:
        return self.source.names()

    def by_ids(self, ids: Iterable[int], banks: BankDirectory | None = None,
               ) -> dict[int, StoredEntry]:
        found, missing = self.cache.get_many(set(ids))
        if missing and getattr(self._local, "cached_only", False):
            raise EntriesNotCached(f"{len(missing)} entries not cached")
        if missing:
            generation = self.cache.generation  # before the read
            read = self.source.by_ids(missing, banks)
            self.cache.put_many(read.values(), generation)
            found.update(read)
        return found

    def find(self, signal_type: str, values: list[str], bank_names: list[str] | None = None,
             banks: BankDirectory | None = None) -> list[StoredEntry]:
        return self.source.find(signal_type, values, bank_names, banks)
