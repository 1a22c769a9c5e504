"""The store behind the series registry: chains of records, cursors, clues, hit notices.

The only module of ``vigil.victimid`` that opens ORM sessions. Records are read back into
:class:`~vigil.victimid.model.Event` by series, in batches (``IN`` lists), so a scan's
hits cost one query per few hundred series, not one per hit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.store.models_victimid import (
    SeriesClue,
    SeriesCursor,
    SeriesEvent,
    SeriesHitIn,
    SeriesHitOut,
    SeriesNote,
    SeriesNotifyRule,
)
from vigil.victimid.model import Event, fold

#: series ids per ``IN`` list
BATCH = 500


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A chain record as stored and as it travels: seq, body text, hash, signature."""

    origin: str
    seq: int
    series_id: str
    kind: str
    at: str
    body: str
    hash: str
    sig: str | None


def _event(origin: str, seq: int, body: str) -> Event:
    b = orjson.loads(body)
    return Event(origin, seq, b["at"], b["kind"], b["series"], b.get("fields") or {})


def chain_end(s: Session, origin: str) -> tuple[int, str | None]:
    """(seq, hash) of the last record of ``origin``'s chain here; (0, None) if none."""
    row = s.execute(select(SeriesEvent.seq, SeriesEvent.hash)
                    .where(SeriesEvent.origin == origin)
                    .order_by(SeriesEvent.seq.desc()).limit(1)).first()
    return (0, None) if row is None else (int(row[0]), str(row[1]))


def append(engine: Engine, build: Any, origin: str, tries: int = 5) -> StoredRecord:
    """Append one record to ``origin``'s chain. ``build(seq, prev_hash)`` returns the
    record; a concurrent writer that took the same seq makes this try again."""
    for attempt in range(tries):
        try:
            with Session(engine) as s, s.begin():
                seq, prev = chain_end(s, origin)
                rec: StoredRecord = build(seq + 1, prev)
                s.execute(insert(SeriesEvent).values(
                    origin=rec.origin, seq=rec.seq, series_id=rec.series_id, kind=rec.kind,
                    at=rec.at, body=rec.body, hash=rec.hash, sig=rec.sig))
                _refresh(s, [rec.series_id])
            return rec
        except IntegrityError:
            if attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


def events_of(engine: Engine, series_ids: Iterable[str] | None = None,
              ) -> dict[str, list[Event]]:
    """The records of these series (all series if None), by series id."""
    out: dict[str, list[Event]] = {}
    q = select(SeriesEvent.series_id, SeriesEvent.origin, SeriesEvent.seq, SeriesEvent.body)
    with Session(engine) as s:
        if series_ids is not None:
            return _events(s, series_ids)
        for sid, origin, seq, body in s.execute(q):
            out.setdefault(sid, []).append(_event(origin, int(seq), body))
    return out


def series_ids(engine: Engine) -> list[str]:
    with Session(engine) as s:
        return sorted(s.scalars(select(SeriesEvent.series_id).distinct()))


def records_after(engine: Engine, origin: str, after: int, limit: int,
                  ) -> tuple[int, list[StoredRecord]]:
    """(head, records after ``after``) of ``origin``'s chain, at most ``limit``."""
    with Session(engine) as s:
        head = chain_end(s, origin)[0]
        rows = s.execute(select(SeriesEvent).where(SeriesEvent.origin == origin,
                                                   SeriesEvent.seq > after)
                         .order_by(SeriesEvent.seq).limit(limit)).scalars().all()
        return head, [StoredRecord(r.origin, r.seq, r.series_id, r.kind, r.at, r.body, r.hash,
                                   r.sig) for r in rows]


# ---- cursors -------------------------------------------------------------------------------

def cursor(engine: Engine, peer: str, agency: str, genesis: str) -> SeriesCursor:
    """The cursor of ``peer`` (made at its chain's start if new; detached)."""
    with Session(engine, expire_on_commit=False) as s, s.begin():
        c = s.get(SeriesCursor, peer)
        if c is None or c.agency != agency:
            if c is not None:
                s.delete(c)
                s.flush()
            c = SeriesCursor(peer=peer, agency=agency, last_seq=0, last_hash=genesis,
                             hits_after=0, clues_after=0)
            s.add(c)
        return c


def store_page(engine: Engine, peer: str, expected: int, records: Sequence[StoredRecord],
               ) -> bool:
    """Keep verified ``records`` and move the cursor past them, in one transaction; False
    (nothing kept) if the cursor is no longer at ``expected`` (a concurrent sync)."""
    if not records:
        return True
    last = records[-1]
    with Session(engine) as s, s.begin():
        moved = s.execute(update(SeriesCursor)
                          .where(SeriesCursor.peer == peer, SeriesCursor.last_seq == expected)
                          .values(last_seq=last.seq, last_hash=last.hash, error=None,
                                  synced_at=datetime.now(UTC)))
        if moved.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
            s.rollback()
            return False
        s.execute(insert(SeriesEvent), [
            {"origin": r.origin, "seq": r.seq, "series_id": r.series_id, "kind": r.kind,
             "at": r.at, "body": r.body, "hash": r.hash, "sig": r.sig} for r in records])
        _refresh(s, {r.series_id for r in records})
    return True


def _events(s: Session, ids: Iterable[str]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = {}
    q = select(SeriesEvent.series_id, SeriesEvent.origin, SeriesEvent.seq, SeriesEvent.body)
    ordered = sorted(set(ids))
    for i in range(0, len(ordered), BATCH):
        for sid, origin, seq, body in s.execute(
                q.where(SeriesEvent.series_id.in_(ordered[i:i + BATCH]))):
            out.setdefault(sid, []).append(_event(origin, int(seq), body))
    return out


def _refresh(s: Session, ids: Iterable[str]) -> None:
    """Fold these series again and keep their notes (in the caller's transaction)."""
    now = datetime.now(UTC)
    rows = []
    for sid, events in _events(s, ids).items():
        st = fold(sid, events, now)
        if st is not None:
            rows.append({"series_id": sid, "note": orjson.dumps(st.note()).decode(),
                         "valid_until": st.valid_until()})
    keys = [r["series_id"] for r in rows]
    for i in range(0, len(keys), BATCH):
        s.execute(delete(SeriesNote).where(SeriesNote.series_id.in_(keys[i:i + BATCH])))
    if rows:
        s.execute(insert(SeriesNote), rows)


def notes(engine: Engine, ids: Iterable[str], now: str,
          ) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """(notes still valid at ``now`` by series id, ids whose note lapsed) of these series;
    ids with no note are series not known here."""
    kept: dict[str, dict[str, Any]] = {}
    stale: list[str] = []
    ordered = sorted(set(ids))
    with engine.connect() as c:  # plain rows, one statement compiled for every batch
        for i in range(0, len(ordered), BATCH):
            for sid, text, until in c.execute(_NOTES_OF, {"ids": ordered[i:i + BATCH]}):
                if until > now:
                    kept[sid] = orjson.loads(text)
                else:
                    stale.append(sid)
    return kept, stale


_NOTES_OF = select(SeriesNote.series_id, SeriesNote.note, SeriesNote.valid_until).where(
    SeriesNote.series_id.in_(bindparam("ids", expanding=True)))


def set_cursor(engine: Engine, peer: str, **values: Any) -> None:
    with Session(engine) as s, s.begin():
        s.execute(update(SeriesCursor).where(SeriesCursor.peer == peer).values(**values))


# ---- hit notices ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class HitNotice:
    """A hit notice: a series' material turned up in ``agency``'s case (no hash, no path)."""

    id: int
    agency: str  #: the finder (received) or the origin it is for (queued)
    series_id: str
    items: int
    case_ref: str
    at: datetime


def queue_hits(engine: Engine, hits: Sequence[tuple[str, str, int, str]]) -> list[int]:
    """Queue (origin, series id, items, case ref) notices; their ids."""
    ids = []
    with Session(engine) as s, s.begin():
        for origin, sid, items, case in hits:
            h = SeriesHitOut(origin=origin, series_id=sid, items=items, case_ref=case,
                             at=datetime.now(UTC))
            s.add(h)
            s.flush()
            ids.append(h.id)
    return ids


def set_notify(engine: Engine, agency: str, allow: bool, by: str | None) -> bool:
    """Allow (or stop) hit notices to ``agency``; whether anything changed."""
    with Session(engine) as s, s.begin():
        row = s.get(SeriesNotifyRule, agency)
        if allow and row is None:
            s.add(SeriesNotifyRule(agency=agency, created_at=datetime.now(UTC),
                                   created_by=by))
            return True
        if not allow and row is not None:
            s.delete(row)
            return True
        return False


def notify_agencies(engine: Engine) -> set[str]:
    with Session(engine) as s:
        return set(s.scalars(select(SeriesNotifyRule.agency)))


def hits_for(engine: Engine, origin: str, after: int, limit: int) -> list[HitNotice]:
    with Session(engine) as s:
        rows = s.scalars(select(SeriesHitOut).where(SeriesHitOut.origin == origin,
                                                    SeriesHitOut.id > after)
                         .order_by(SeriesHitOut.id).limit(limit)).all()
        return [HitNotice(r.id, r.origin, r.series_id, r.items, r.case_ref, r.at) for r in rows]


def keep_hits(engine: Engine, finder: str, hits: Sequence[HitNotice]) -> int:
    """Keep notices ``finder`` sent (idempotent by its ids); how many were new."""
    new = 0
    with Session(engine) as s, s.begin():
        known = set(s.scalars(select(SeriesHitIn.remote_id).where(
            SeriesHitIn.finder == finder, SeriesHitIn.remote_id.in_([h.id for h in hits]))))
        for h in hits:
            if h.id not in known:
                s.add(SeriesHitIn(finder=finder, remote_id=h.id, series_id=h.series_id,
                                  items=h.items, case_ref=h.case_ref, at=h.at))
                new += 1
    return new


def received_hits(engine: Engine, series_id: str | None = None) -> list[HitNotice]:
    with Session(engine) as s:
        q = select(SeriesHitIn).order_by(SeriesHitIn.at, SeriesHitIn.id)
        if series_id is not None:
            q = q.where(SeriesHitIn.series_id == series_id)
        return [HitNotice(r.id, r.finder, r.series_id, r.items, r.case_ref, r.at)
                for r in s.scalars(q)]


# ---- clues ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ClueInfo:
    id: int
    origin: str
    series_id: str
    text: str
    grants: tuple[str, ...]
    created_at: datetime
    created_by: str | None


def _clue(c: SeriesClue) -> ClueInfo:
    return ClueInfo(c.remote_id or c.id, c.origin, c.series_id, c.text,
                    tuple(c.grants.split()), c.created_at, c.created_by)


def add_clue(engine: Engine, origin: str, series_id: str, text: str, grants: Sequence[str],
             by: str | None) -> ClueInfo:
    with Session(engine, expire_on_commit=False) as s, s.begin():
        c = SeriesClue(origin=origin, series_id=series_id, text=text,
                       grants=" ".join(sorted(set(grants))), created_at=datetime.now(UTC),
                       created_by=by)
        s.add(c)
    return _clue(c)


def clues_of(engine: Engine, series_id: str) -> list[ClueInfo]:
    with Session(engine) as s:
        return [_clue(c) for c in s.scalars(select(SeriesClue).where(
            SeriesClue.series_id == series_id).order_by(SeriesClue.id))]


def clues_granted(engine: Engine, origin: str, agency: str, after: int, limit: int,
                  ) -> list[ClueInfo]:
    """This node's own clues granted to ``agency`` (filtered in SQL by a LIKE on the
    space-separated list, then exactly here)."""
    with Session(engine) as s:
        rows = s.scalars(select(SeriesClue).where(
            SeriesClue.origin == origin, SeriesClue.id > after,
            SeriesClue.grants.contains(agency)).order_by(SeriesClue.id).limit(limit)).all()
        return [_clue(c) for c in rows if agency in c.grants.split()]


def keep_clues(engine: Engine, origin: str, clues: Sequence[ClueInfo]) -> int:
    new = 0
    with Session(engine) as s, s.begin():
        known = set(s.scalars(select(SeriesClue.remote_id).where(
            SeriesClue.origin == origin, SeriesClue.remote_id.in_([c.id for c in clues]))))
        for c in clues:
            if c.id not in known:
                s.add(SeriesClue(origin=origin, remote_id=c.id, series_id=c.series_id,
                                 text=c.text, grants="", created_at=c.created_at,
                                 created_by=c.created_by))
                new += 1
    return new


def overlaps(engine: Engine, limit: int = 1000) -> list[tuple[str, str, int]]:
    """Pairs of series whose entries share a signal (the same type and value, in any two
    banks, local or mirrored), with how many signals they share, most first."""
    from sqlalchemy.orm import aliased

    from vigil.store.models import Entry

    a, b = aliased(Entry), aliased(Entry)
    n = func.count(func.distinct(a.signal_type + ":" + a.value))
    q = (select(a.series, b.series, n)
         .join(b, (a.signal_type == b.signal_type) & (a.value == b.value))
         .where(a.series.is_not(None), b.series.is_not(None), a.series < b.series,
                a.removed.is_(False), b.removed.is_(False))
         .group_by(a.series, b.series).order_by(n.desc(), a.series, b.series).limit(limit))
    with Session(engine) as s:
        return [(str(x), str(y), int(k)) for x, y, k in s.execute(q)]


def count_records(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(SeriesEvent)) or 0)
