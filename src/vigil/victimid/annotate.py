"""Series state on match and scan hits, and the hit notices they queue.

Why a mapping built once: a scan can hold a million hits on a few series. The series of
all hits are loaded in one batch (``Registry.states``), each folded once, and every hit
is then annotated with one dict lookup by its entry's ``series`` label (the label the
origin's signed bank feed carried). ``bench/victimid.py`` measures the cost against
matching without it; ``annotate_reference`` is the plain per-hit version the tests
compare it with.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from vigil.victimid import registry
from vigil.victimid.model import (
    CASE_REF,
    SERIES_ID,
    SeriesError,
    SeriesState,
    fold,
    iso,
    namespace,
)
from vigil.victimid.service import Registry


def note(s: SeriesState) -> dict[str, Any]:
    """What a hit says about its series (``SeriesState.note``)."""
    return s.note()


def series_notes(reg: Registry, series: Iterable[str | None]) -> dict[str, dict[str, Any]]:
    """Notes of the distinct series among ``series`` (labels of hits): ``notes_for``."""
    return notes_for(reg.engine, series)


def notes_for(engine: Engine, series: Iterable[str | None]) -> dict[str, dict[str, Any]]:
    """Notes of the distinct series among ``series`` (labels of hits), loaded in batches
    from the notes kept with every change (``registry.notes``: one row per series, still
    valid until its first lease ends); a series whose note lapsed is folded again. A label
    that names no known series has none."""
    ids = {x for x in set(series) if x and SERIES_ID.fullmatch(x)}
    if not ids:
        return {}
    now = datetime.now(UTC)
    kept, stale = registry.notes(engine, ids, iso(now))
    for sid, events in registry.events_of(engine, stale).items() if stale else ():
        st = fold(sid, events, now)
        if st is not None:
            kept[sid] = st.note()
    return kept


def names_a_series(label: str | None) -> bool:
    """Whether a hit's series label is a registry id (``AGENCY:LOCAL``) worth looking up."""
    return bool(label) and SERIES_ID.fullmatch(label or "") is not None


def annotate(labels: Iterable[str | None], notes: Mapping[str, dict[str, Any]],
             ) -> list[dict[str, Any] | None]:
    """Each hit's note: one lookup by its series label."""
    get = notes.get
    return [get(x) if x else None for x in labels]


def annotate_reference(engine: Engine, labels: Iterable[str | None],
                       ) -> list[dict[str, Any] | None]:
    """The same, the simple way: every hit folds its series from the store on its own."""
    out: list[dict[str, Any] | None] = []
    for x in labels:
        events = registry.events_of(engine, [x]).get(x, []) if x else []
        s = fold(x, events) if x and events else None
        out.append(note(s) if s is not None else None)
    return out


def queue_hits(reg: Registry, labels: Iterable[str | None], case_ref: str,
               notes: Mapping[str, dict[str, Any]]) -> list[tuple[str, str, int]]:
    """Queue a hit notice for each series another agency originated among the hits (one
    per series: its item count, the finder's case reference; no hash, path or picture),
    where a rule allows notices to that agency (``vigil series notify``; deny by default).
    Returns (origin, series, items) of each notice queued."""
    return queue_hits_ruled(reg, labels, case_ref, notes)[0]


def queue_hits_ruled(reg: Registry, labels: Iterable[str | None], case_ref: str,
                     notes: Mapping[str, dict[str, Any]],
                     ) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, int]]]:
    """``queue_hits``, and the notices withheld for want of a rule."""
    if not CASE_REF.fullmatch(case_ref):
        raise SeriesError(f"case reference {case_ref[:40]!r}: letters, digits and ' :._/#-' "
                          "(at most 100)", None, 422)
    counts = Counter(x for x in labels if x and x in notes and namespace(x) != reg.agency)
    allowed = registry.notify_agencies(reg.engine)
    hits = [(namespace(sid), sid, n) for sid, n in sorted(counts.items())]
    send = [h for h in hits if h[0] in allowed]
    registry.queue_hits(reg.engine, [(o, s, n, case_ref) for o, s, n in send])
    return send, [h for h in hits if h[0] not in allowed]
