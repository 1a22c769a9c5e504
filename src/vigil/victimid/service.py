"""The series registry's operations: create, describe, claim, renew, release, identify,
close, clues.

Every change is one record appended to this node's own chain (signed, hash-chained: see
``vigil.victimid.sync``), made only after the fold says it is valid *here*: a claim on an
unknown series, an identified series claimed again, another agency's series created or
changed here — each is refused with a :class:`SeriesError` naming the series and the rule.
A claim while another agency holds a live lease is not refused: it is recorded and
*contested*, so both agencies see the conflict after their next sync.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from vigil.exchange.records import Descriptor, canonical, genesis, record_hash, sign_checkpoint
from vigil.node import check_code
from vigil.victimid import registry
from vigil.victimid.model import (
    DEFAULT_LEASE,
    Event,
    SeriesError,
    SeriesState,
    check_fields,
    check_series_id,
    fold,
    iso,
    namespace,
)
from vigil.victimid.registry import ClueInfo, StoredRecord

#: the "bank" name of a registry chain's descriptor (the feed machinery's signing domain)
CHAIN = "~series-registry"
MAX_CLUE = 4000


def descriptor(agency: str) -> Descriptor:
    """The descriptor an agency's registry chain is signed under (never a bank's)."""
    return Descriptor(agency, CHAIN, (), False)


def make_record(key: Ed25519PrivateKey, origin: str, seq: int, prev: str | None, kind: str,
                series_id: str, fields: dict[str, Any], at: str) -> StoredRecord:
    """Record ``seq`` of ``origin``'s chain: canonical body, its hash, a signature (every
    record is signed: a registry changes by hand, a few records a minute, so a page of
    them always ends on a signed record)."""
    d = descriptor(origin)
    body = canonical({"seq": seq, "prev": prev or genesis(d), "at": at, "kind": kind,
                      "series": series_id, "fields": fields})
    h = record_hash(body)
    return StoredRecord(origin, seq, series_id, kind, at, body, h,
                        sign_checkpoint(key, d, seq, h))


@dataclass(frozen=True, slots=True)
class Change:
    """What an operation did: the series after it, and a note (e.g. contested)."""

    state: SeriesState
    seq: int
    note: str | None = None


class Registry:
    """This node's series registry (``agency`` is the node's own)."""

    def __init__(self, engine: Engine, key: Ed25519PrivateKey | None, agency: str) -> None:
        """``key``: the node's signing key; None for a registry only read from."""
        self.engine, self.key, self.agency = engine, key, agency

    # ---- reading -------------------------------------------------------------------------

    def states(self, series_ids: Iterable[str] | None = None, now: datetime | None = None,
               ) -> dict[str, SeriesState]:
        """Series state by id (the ones known here among ``series_ids``; all if None)."""
        out = {}
        for sid, events in registry.events_of(self.engine, series_ids).items():
            s = fold(sid, events, now)
            if s is not None:
                out[sid] = s
        return out

    def get(self, series_id: str, now: datetime | None = None) -> SeriesState:
        check_series_id(series_id)
        s = self.states([series_id], now).get(series_id)
        if s is None:
            raise SeriesError(f"no series {series_id} is known here (created here or pulled "
                              "from a peer)", series_id, 404)
        return s

    # ---- changing ------------------------------------------------------------------------

    def _append(self, kind: str, series_id: str, fields: dict[str, Any],
                now: datetime | None = None) -> Change:
        fields = check_fields(kind, fields, series_id)
        at = iso(now or datetime.now(UTC))
        events = registry.events_of(self.engine, [series_id]).get(series_id, [])
        before = fold(series_id, events, now)
        if kind != "series" and before is None:
            raise SeriesError(f"no series {series_id} is known here; a {kind} needs the "
                              "series first (create it, or sync from its origin)", series_id,
                              404)
        probe = Event(self.agency, 1 << 62, at, kind, series_id, fields)
        after = fold(series_id, [*events, probe], now)
        assert after is not None
        refused = [r for r in after.refused if r["seq"] == probe.seq and
                   r["origin"] == self.agency]
        if refused:
            raise SeriesError(f"series {series_id}: {kind} refused: {refused[0]['reason']} "
                              f"(status {before.status if before else 'unknown'})",
                              series_id)
        key = self.key
        if key is None:
            raise SeriesError("this registry was opened to read only (no signing key)",
                              series_id, 500)
        rec = registry.append(self.engine, lambda seq, prev: make_record(
            key, self.agency, seq, prev, kind, series_id, fields, at), self.agency)
        state = self.get(series_id, now)
        note = None
        if kind == "claim" and state.holder is not None and state.holder.agency != self.agency:
            note = (f"contested: {state.holder.agency} holds a live claim until "
                    f"{state.holder.expires}; both agencies see the conflict after the next sync")
        return Change(state, rec.seq, note)

    def create(self, series_id: str, fields: dict[str, Any] | None = None,
               now: datetime | None = None) -> Change:
        """A new series in this agency's namespace (``AGENCY:LOCAL``)."""
        check_series_id(series_id)
        if namespace(series_id) != self.agency:
            raise SeriesError(f"series {series_id} is in {namespace(series_id)}'s namespace; "
                              f"this node ({self.agency}) creates only {self.agency}:… series",
                              series_id)
        if self.states([series_id]):
            raise SeriesError(f"series {series_id} exists already", series_id)
        return self._append("series", series_id, fields or {}, now)

    def describe(self, series_id: str, fields: dict[str, Any],
                 now: datetime | None = None) -> Change:
        """Replace a series' shared description (origin only)."""
        s = self.get(series_id)
        if s.origin != self.agency:
            raise SeriesError(f"series {series_id} belongs to {s.origin}; only it may change "
                              "it", series_id, 403)
        merged = {k: v for k, v in s.as_dict().items() if k in (
            "aliases", "victims", "offender_identified", "country", "country_confidence",
            "tags") and v is not None}
        merged.update(fields)
        return self._append("series", series_id, merged, now)

    def claim(self, series_id: str, lease: timedelta = DEFAULT_LEASE,
              now: datetime | None = None) -> Change:
        return self._append("claim", series_id,
                            {"lease_seconds": int(lease.total_seconds())}, now)

    def renew(self, series_id: str, lease: timedelta = DEFAULT_LEASE,
              now: datetime | None = None) -> Change:
        return self._append("renew", series_id,
                            {"lease_seconds": int(lease.total_seconds())}, now)

    def release(self, series_id: str, now: datetime | None = None) -> Change:
        return self._append("release", series_id, {}, now)

    def identify(self, series_id: str, contact_role: str, case_ref: str = "",
                 now: datetime | None = None) -> Change:
        return self._append("identify", series_id,
                            {"contact_role": contact_role, "case_ref": case_ref}, now)

    def close(self, series_id: str, now: datetime | None = None) -> Change:
        return self._append("close", series_id, {}, now)

    def merge(self, series_id: str, other: str, now: datetime | None = None) -> Change:
        """Link another series (another agency's, or this one's) to this agency's series as
        an alias: each agency keeps its own id, and both ids name the same victim."""
        check_series_id(other)
        if other == series_id:
            raise SeriesError(f"series {series_id} cannot be merged with itself", series_id,
                              422)
        s = self.get(series_id)
        return self.describe(series_id, {"aliases": sorted({*s.aliases, other})}, now)

    # ---- clues (local unless granted) ----------------------------------------------------

    def add_clue(self, series_id: str, text: str, grants: Sequence[str] = (),
                 by: str | None = None) -> ClueInfo:
        """A free-text clue: stays on this node unless ``grants`` names agencies it may
        go to (they pull it at their next sync; no other agency ever receives it)."""
        self.get(series_id)
        text = text.strip()
        if not text or len(text) > MAX_CLUE:
            raise SeriesError(f"series {series_id}: a clue is 1 to {MAX_CLUE} characters",
                              series_id, 422)
        codes = [check_code(g) for g in grants]
        return registry.add_clue(self.engine, self.agency, series_id, text, codes, by)

    def clues(self, series_id: str) -> list[ClueInfo]:
        return registry.clues_of(self.engine, series_id)
