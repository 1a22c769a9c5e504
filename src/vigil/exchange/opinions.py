"""Opinions: what this agency thinks of entries it mirrors (agree, or dispute with a reason).

A mirror bank stays exactly what its origin signed; a local view of an entry is recorded
here instead, so it never alters the mirror and can be shared back: the origin pulls the
opinions about its own banks (``GET /v1/opinions``) at its next sync of this node, and a
dispute shows there next to the entry it is about. What a peer sends back is checked
within limits and field by field (:func:`parse_opinions`) before any of it is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from vigil.banks import BankError
from vigil.banks.entry import check_signal
from vigil.exchange import repo
from vigil.exchange.records import FeedError, answer_limits
from vigil.exchange.repo import OpinionInfo
from vigil.formats.limits import JsonError, Limits, load_json

KINDS = ("agree", "dispute")


def record(engine: Engine, bank: str, agency: str, signals: list[tuple[str, str]],
           opinion: str, reason: str = "", by: str | None = None) -> list[OpinionInfo]:
    """Record ``agency``'s opinion of signals of mirror bank ``bank`` (they must be in it)."""
    if opinion not in KINDS:
        raise BankError(f"opinion must be one of {', '.join(KINDS)}, got {opinion!r}")
    if opinion == "dispute" and not reason.strip():
        raise BankError("a dispute needs a reason (what is wrong with the entry)")
    sigs = [check_signal(t, v) for t, v in signals]
    b = repo.bank_facts(engine, bank)
    if b is None or b.agency != agency:
        raise BankError(f"no bank named {bank!r}")
    if b.mirror_of is None:
        raise BankError(f"bank {bank!r} is this agency's own bank; opinions are about "
                        "entries mirrored from other agencies (edit your own entries)")
    for t, v in sigs:
        if not repo.has_entry(engine, b.id, t, v):
            raise BankError(f"bank {bank!r} has no {t} entry with that value")
    return repo.add_opinions(engine, b, agency, sigs, opinion, reason.strip(), by)


def of_bank(engine: Engine, bank: str) -> list[OpinionInfo]:
    """Opinions about a bank's entries: ours on a mirror, or peers' on our own bank."""
    b = repo.bank_facts(engine, bank)
    if b is None:
        raise BankError(f"no bank named {bank!r}")
    return repo.opinions_of(engine, b)


def about_origin(engine: Engine, origin: str, after: int, limit: int = 10_000,
                 ) -> list[OpinionInfo]:
    """Local opinions on mirrors of ``origin``'s banks (what ``origin`` may pull back)."""
    return repo.opinions_about(engine, origin, after, limit)


@dataclass(frozen=True, slots=True)
class RemoteOpinion:
    """An opinion a peer holds about one of this node's banks, as its answer gave it."""

    id: int
    signal_type: str
    value: str
    opinion: str
    reason: str
    by: str | None
    at: datetime
    origin: str | None
    origin_bank: str | None


#: the most opinions one answer of ``GET /v1/opinions`` may carry (a node sends 10,000)
MAX_OPINIONS = 10_000


def parse_opinions(data: bytes | bytearray, limits: Limits) -> list[RemoteOpinion]:
    """A peer's ``GET /v1/opinions`` answer, checked within limits before it is parsed and
    field by field after (exact JSON types); FeedError names the opinion and the field."""
    try:
        doc = load_json(bytes(data), answer_limits(limits, MAX_OPINIONS, 16, depth=3))
    except JsonError as exc:
        raise FeedError(f"malformed opinions: {exc}") from None
    items = doc.get("opinions") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise FeedError("malformed opinions: no 'opinions' list")
    return [_remote(i, it) for i, it in enumerate(items)]


def _remote(i: int, it: Any) -> RemoteOpinion:
    def bad(field: str, what: str) -> FeedError:
        return FeedError(f"malformed opinions: opinions[{i}].{field} must be {what}")

    if not isinstance(it, dict):
        raise FeedError(f"malformed opinions: opinions[{i}] must be an object")
    rid = it.get("id")
    if type(rid) is not int or rid < 1:
        raise bad("id", "a positive number")
    text: dict[str, str | None] = {}
    for key in ("signal_type", "value", "opinion", "reason", "by", "origin", "origin_bank"):
        v = it.get(key)
        if v is not None and not isinstance(v, str):
            raise bad(key, "a string")
        text[key] = v
    for key in ("signal_type", "value", "opinion"):
        if not text[key]:
            raise bad(key, "a string")
    at = it.get("at")
    try:
        when = datetime.fromisoformat(at) if isinstance(at, str) and len(at) <= 64 else None
    except ValueError:
        when = None
    if when is None:
        raise bad("at", "an ISO 8601 date and time")
    return RemoteOpinion(rid, str(text["signal_type"]), str(text["value"]),
                         str(text["opinion"]), (text["reason"] or "")[:4000],
                         (text["by"] or "")[:200] or None, when, text["origin"],
                         text["origin_bank"])


def store_remote(engine: Engine, local: str, from_agency: str,
                 items: list[RemoteOpinion]) -> int:
    """Keep opinions a peer holds about this node's banks; returns how many were new.
    Opinions about another agency's banks, unknown banks, signals that are not valid or
    kinds that are not known are passed over."""
    kept = []
    for it in items:
        if it.origin != local or it.opinion not in KINDS or it.origin_bank is None:
            continue
        try:
            t, v = check_signal(it.signal_type, it.value)
        except ValueError:
            continue
        kept.append(repo.RemoteOpinion(it.id, it.origin_bank, t, v, it.opinion, it.reason,
                                       it.by, it.at))
    return repo.keep_remote_opinions(engine, local, from_agency, kept)


__all__ = ["KINDS", "OpinionInfo", "RemoteOpinion", "about_origin", "of_bank",
           "parse_opinions", "record", "store_remote"]
