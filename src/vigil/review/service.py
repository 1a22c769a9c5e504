"""One scan under review: the queue, the decisions, the derivatives and the ledger together.

The web app (``vigil.review.web``) is a thin shell over this: every rule (what may be
decided, in which scheme, what is shown at which blur, when clear view is refused) lives
here, so a second interface (the node's API, a test) obeys the same rules.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.banks.entry import Labels
from vigil.banks.text import FieldError
from vigil.review.derive import (
    DEFAULT_LEVEL,
    LEVELS,
    DerivativeError,
    Derivatives,
    placeholder,
)
from vigil.review.ledger import Ledger, Opened
from vigil.review.queue import ItemInfo, ReviewQueue, Unit
from vigil.review.scan import check_scan_folder
from vigil.review.series import SeriesCatalog
from vigil.review.sqlqueue import SqlQueue
from vigil.review.store import AlreadyDecided, Decision, ReviewStore
from vigil.schemes import SCHEMES, check_category


class ReviewError(Exception):
    """A request the review cannot carry out; ``status`` is the HTTP status it maps to."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def scheme_keys(scheme: str) -> list[tuple[str, str, str]]:
    """(key, value, description) per category: Project VIC's digits are its values
    (0-5); other schemes take 1, 2, 3... in the scheme's order (UK A/B/C = 1/2/3)."""
    values = SCHEMES[scheme].values
    if all(v.isdigit() and len(v) == 1 for v in values):
        return [(v, v, d) for v, d in values.items()]
    return [(str(i), v, d) for i, (v, d) in enumerate(values.items(), start=1)][:9]


@dataclass(frozen=True, slots=True)
class UnitView:
    """What the page shows for one unit: its undecided items and where it stands."""

    unit: Unit
    items: list[ItemInfo]
    decided: int
    last_category: tuple[str, str] | None
    series: dict[int, str]
    #: when settling (round 3): per item, the two decisions that disagree, with who made
    #: them ("us:1 by SG-SPF/ana")
    earlier: dict[int, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Agreement:
    """First decisions against second opinions (see ``ReviewSession.agreement``)."""

    items: int
    agree: int
    kappa: float | None
    pairs: dict[tuple[str, str], int]
    disagreements: list[tuple[int, str, str]]  # (item, first, second)
    #: disagreements settled in round 3, and how (item -> the settled decision)
    settled: dict[int, str] = field(default_factory=dict)

    @property
    def share(self) -> float | None:
        return self.agree / self.items if self.items else None


def _key(d: Decision) -> str:
    return f"{d.scheme}:{d.category}" if d.kind == "category" else d.kind


class ReviewSession:
    """A scan opened for review, shared by every reviewer working on it."""

    def __init__(self, folder: Path, scheme: str, ledger: Ledger,
                 series: SeriesCatalog | None = None, bank: str | None = None,
                 round_: int = 1) -> None:
        if scheme not in SCHEMES:
            raise ReviewError(400, f"unknown category scheme {scheme!r}; known: "
                                   f"{', '.join(SCHEMES)}", "scheme")
        self.folder = folder
        self.db_path = check_scan_folder(folder)
        self.store = ReviewStore(self.db_path)
        self.queue: ReviewQueue = SqlQueue(self.store.conn, self.store.lock)
        self.scheme = scheme
        self.keys = scheme_keys(scheme)
        self.ledger = ledger
        self.series_catalog = series
        self.bank = bank
        self.derivatives = Derivatives()
        if round_ not in (1, 2, 3):
            raise ReviewError(400, "round must be 1 (review), 2 (second opinion) or 3 "
                                   "(settle disagreements)", "round")
        #: 1: the review; 2: a second opinion on items another reviewer decided; 3: the
        #: decision that settles a disagreement between the first two (what is exported)
        self.round = round_

    def close(self) -> None:
        self.store.close()

    # ---- reading -----------------------------------------------------------------------

    def item(self, item_id: int) -> ItemInfo:
        it = self.queue.items.get(item_id)
        if it is None:
            raise ReviewError(404, f"item {item_id} is not in this scan's review queue (it "
                                   "does not exist, or it is known material)", "item")
        return it

    def unit(self, pos: int) -> Unit:
        if not 0 <= pos < len(self.queue.units):
            raise ReviewError(404, f"there is no queue position {pos} (the queue has "
                                   f"{len(self.queue.units)})", "pos")
        return self.queue.units[pos]

    def hidden(self, reviewer: str) -> set[str]:
        """The items not to show this reviewer: those decided in this round, and in a
        second opinion every item without a first decision by someone else."""
        done = self.store.decided(self.round)
        if self.round == 1:
            return done
        if self.round == 3:
            return (set(self.queue.by_sha) - self._disputed()) | done
        return (set(self.queue.by_sha) - self._eligible(reviewer)) | done

    def _disputed(self) -> set[str]:
        """Items whose second opinion differs from their first decision."""
        first, second = self.store.decisions(1), self.store.decisions(2)
        return {s for s, d in second.items() if s in first and s in self.queue.by_sha
                and _key(first[s]) != _key(d)}

    def _eligible(self, reviewer: str) -> set[str]:
        return {s for s, d in self.store.decisions(1).items()
                if d.reviewer != reviewer and s in self.queue.by_sha}

    def view(self, pos: int, reviewer: str) -> UnitView:
        unit = self.unit(pos)
        decided = self.hidden(reviewer)
        left = self.queue.remaining(unit, decided)
        shas = [self.queue.items[i].sha256 for i in unit.items]
        series = self.store.series_of()
        earlier: dict[int, tuple[str, str]] = {}
        if self.round == 3:
            first, second = self.store.decisions(1), self.store.decisions(2)
            for i in left:
                sha = self.queue.items[i].sha256
                if sha in first and sha in second:
                    earlier[i] = (f"{_key(first[sha])} by {first[sha].reviewer}",
                                  f"{_key(second[sha])} by {second[sha].reviewer}")
        return UnitView(unit, [self.queue.items[i] for i in left], len(unit.items) - len(left),
                        self.store.last_category(reviewer, shas),
                        {i: series[self.queue.items[i].sha256] for i in unit.items
                         if self.queue.items[i].sha256 in series}, earlier)

    def first_open(self, reviewer: str, start: int = 0, step: int = 1) -> int | None:
        return self.queue.next_open(start, self.hidden(reviewer), step)

    def progress(self, reviewer: str) -> dict[str, Any]:
        hidden = self.hidden(reviewer)
        decided = self.store.decided(self.round)
        if self.round == 1:
            items = len(self.queue.items)
        elif self.round == 3:
            items = len(self._disputed() | (decided & set(self.queue.by_sha)))
        else:
            items = len(self._eligible(reviewer) | (decided & set(self.queue.by_sha)))
        return {"units": len(self.queue.units), "open_units": self.queue.open_units(hidden),
                "items": items, "round": self.round,
                "decided": self.queue.decided_count(decided),
                "known_items": self.queue.known_items,
                "known_by_category": self.queue.known_by_category,
                "counts": self.store.counts()}

    # ---- deciding ----------------------------------------------------------------------

    def _targets(self, item_id: int, scope: str) -> tuple[Unit, list[int]]:
        it = self.item(item_id)
        unit = self.queue.units[self.queue.unit_of[it.id]]
        if scope == "item":
            return unit, [it.id]
        if scope == "group":
            return unit, list(unit.items)
        raise ReviewError(422, f"scope must be item or group, not {scope!r}", "scope")

    def decide(self, reviewer: str, item_id: int, scope: str, kind: str,
               category: str | None) -> int:
        """Record a decision for an item or the undecided rest of its group; the action id.

        A category must be one of the session's scheme (``check_category``'s message names
        the allowed ones); deciding an item already decided is a conflict (409)."""
        unit, targets = self._targets(item_id, scope)
        scheme: str | None = None
        if kind == "category":
            if category is None or not category.strip():
                raise ReviewError(422, "a category is needed (or decide not relevant)",
                                  "category")
            try:
                scheme, category = check_category(self.scheme, category)
            except ValueError as exc:
                raise ReviewError(422, str(exc), "category") from None
        elif kind == "not_relevant":
            category = None
        else:
            raise ReviewError(422, f"kind must be category or not_relevant, not {kind!r}",
                              "kind")
        decided = self.hidden(reviewer)
        shas = [self.queue.items[i].sha256 for i in targets]
        if scope == "item" and shas[0] in decided:
            if self.round == 3 and not self.store.is_decided(shas[0], 3):
                raise ReviewError(409, f"item {item_id} has no disagreement to settle (its "
                                       "first decision and second opinion agree, or it has "
                                       "no second opinion)", "item")
            if self.round == 2 and not self.store.is_decided(shas[0], 2):
                raise ReviewError(409, f"item {item_id} has no first decision by another "
                                       "reviewer to give a second opinion on", "item")
            raise ReviewError(409, f"item {item_id} is already decided; undo that decision "
                                   "first", "item")
        todo = [s for s in shas if s not in decided]
        ids = [i for i in targets if self.queue.items[i].sha256 not in decided]
        if not todo:
            raise ReviewError(409, "every item of this group is already decided", "item")
        try:
            aid = self.store.decide(reviewer, todo, kind, scheme, category,
                                    {"pos": unit.pos, "scope": scope, "kind": kind,
                                     "category": f"{scheme}:{category}" if scheme else None,
                                     "first": ids[0], "round": self.round},
                                    self.round)
        except AlreadyDecided as exc:
            raise ReviewError(409, str(exc), "item") from None
        key = f"{scheme}:{category}" if scheme else "not_relevant"
        self.ledger.categorise(self.store.scan_id, ids, key)
        self._audit("review.decide", reviewer=reviewer, action_id=aid, items=len(todo),
                    category=key, scope=scope, round=self.round)
        return aid

    def add_to_series(self, reviewer: str, item_id: int, scope: str, name: str) -> int:
        """Put an item (or its whole group) in a series, existing or new; the action id."""
        unit, targets = self._targets(item_id, scope)
        try:
            series = Labels(series=name).series
        except (FieldError, ValueError) as exc:
            raise ReviewError(422, str(exc), "series") from None
        if series is None:
            raise ReviewError(422, "a series needs a name", "series")
        new = series not in set(self.series_names())
        aid = self.store.link_series(reviewer, [self.queue.items[i].sha256 for i in targets],
                                     series, new,
                                     {"pos": unit.pos, "scope": scope, "first": targets[0]})
        self._audit("review.series", reviewer=reviewer, action_id=aid, items=len(targets),
                    series=series, new=new)
        return aid

    def undo(self, reviewer: str) -> tuple[int, int] | None:
        """Undo the reviewer's latest action; (its id, the first item it touched) or None."""
        done = self.store.undo(reviewer)
        if done is None:
            return None
        action, shas = done
        ids = [self.queue.by_sha[s] for s in shas if s in self.queue.by_sha]
        if action.kind == "decide":
            self.ledger.categorise(self.store.scan_id, ids, "undecided")
        self._audit("review.undo", reviewer=reviewer, action_id=action.id, items=len(shas),
                    undone=action.kind)
        return action.id, (ids[0] if ids else -1)

    def agreement(self) -> Agreement:
        """How the second opinions compare with the first decisions: counts per pair of
        categories, the share that agree, Cohen's kappa, and the items that disagree."""
        first, second = self.store.decisions(1), self.store.decisions(2)
        both = [s for s in second if s in first and s in self.queue.by_sha]
        pairs = Counter((_key(first[s]), _key(second[s])) for s in both)
        agree = sum(n for (a, b), n in pairs.items() if a == b)
        n = len(both)
        kappa = None
        if n:
            po = agree / n
            one, two = Counter(a for a, _ in pairs.elements()), Counter(b for _, b in
                                                                         pairs.elements())
            pe = sum(one[c] * two[c] for c in one) / (n * n)
            kappa = 1.0 if pe == 1 else (po - pe) / (1 - pe)
        disagree = sorted((self.queue.by_sha[s], _key(first[s]), _key(second[s]))
                          for s in both if _key(first[s]) != _key(second[s]))
        third = self.store.decisions(3)
        settled = {self.queue.by_sha[s]: _key(d) for s, d in third.items()
                   if s in self.queue.by_sha}
        return Agreement(n, agree, kappa, dict(pairs), disagree, settled)

    def _audit(self, action: str, **detail: Any) -> None:
        if self.ledger.audit is not None:
            self.ledger.audit(action, self.store.scan_id, **detail)

    def series_names(self) -> list[str]:
        names = list(self.store.new_series())
        if self.series_catalog is not None and self.bank is not None:
            names = list(dict.fromkeys([*self.series_catalog.names(self.bank), *names]))
        return names

    def category_of(self, item_id: int) -> str:
        d = self.store.decisions().get(self.item(item_id).sha256)
        if d is None:
            return "undecided"
        return f"{d.scheme}:{d.category}" if d.kind == "category" else d.kind

    # ---- seeing ------------------------------------------------------------------------

    def open_view(self, reviewer: str, item_id: int, level: int) -> Opened:
        """Open a viewing session below the default blur (``CapReached`` at a cap)."""
        if level not in LEVELS or level == DEFAULT_LEVEL:
            raise ReviewError(422, f"a viewing session is for levels 0-{DEFAULT_LEVEL - 1}",
                              "level")
        it = self.item(item_id)
        return self.ledger.start(reviewer, self.store.scan_id, it.id, level,
                                 self.category_of(it.id))

    def image(self, reviewer: str, item_id: int, level: int, session: int | None,
              frame: int | None = None) -> bytes:
        """The derivative of an item at ``level`` (of a video's keyframe ``frame``, or of its
        thumbnail); below the default only inside an open viewing session of this reviewer
        for this item (403 otherwise): a video's keyframes are seen, and counted, together."""
        it = self.item(item_id)
        if frame is not None and not 0 <= frame < it.frames:
            raise ReviewError(404, f"item {item_id} has no keyframe {frame} (it has "
                                   f"{it.frames})", "frame")
        if level not in LEVELS:
            raise ReviewError(422, f"level must be one of {', '.join(map(str, LEVELS))}",
                              "level")
        if level < DEFAULT_LEVEL and (session is None or not self.ledger.allows(
                reviewer, session, it.id, level)):
            raise ReviewError(403, "a lowered blur or a clear view needs an open viewing "
                                   "session (it ended, or a cap was reached)", "session")
        if frame is None:
            key, thumb = it.sha256, self.store.thumbnail(it.sha256)
        else:
            key, thumb = f"{it.sha256}#{frame}", self.store.keyframe(it.sha256, frame)
        if thumb is None:  # scanned with --thumbnails none, or not decodable
            return placeholder()
        try:
            return self.derivatives.get(key, level, thumb)
        except DerivativeError:  # a damaged stored thumbnail: say nothing, show nothing
            return placeholder()
