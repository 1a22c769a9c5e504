"""The registry between nodes: serving this node's chain, pulling a peer's, verified.

A peer's registry chain is pulled like a bank feed (``GET /v1/registry/feed``), and
checked the same way before any of it is kept: the answer within limits
(``vigil.formats.limits``), every record's hash, its ``prev`` link to the record before
(from the cursor's last verified hash, starting at the chain's genesis), its exact
fields (``model.check_fields``), and the origin's Ed25519 signature on the page's last
record — which covers the whole chain up to it. A record that creates or changes a series
in another agency's namespace is a forgery and stops the chain at that record, naming
both. What verified is kept with the new cursor in one transaction (bulk insert).

Only the peer's own chain is pulled (a registry is not passed on): every node of an
operation syncs with every other. Hit notices and granted clues are pulled after the
chain, as opinions are: each answer holds only what is for the calling agency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from vigil.exchange.peers import PeerError, peer_token, trusted_key
from vigil.exchange.records import check_signature, genesis, public_key, record_hash
from vigil.exchange.repo import peer_info, peer_names
from vigil.exchange.sync import PeerClient, problem_of
from vigil.formats.limits import JsonError, JsonLimits, Limits, load_json
from vigil.node import identity
from vigil.victimid import registry
from vigil.victimid.model import (
    KINDS,
    SERIES_ID,
    SeriesError,
    check_fields,
    namespace,
    parse_iso,
)
from vigil.victimid.registry import ClueInfo, HitNotice, StoredRecord
from vigil.victimid.service import descriptor

MAX_PAGE = 10_000
_BODY = JsonLimits(depth=4, values=400, items=80, string=200)
_HEX64 = frozenset("0123456789abcdef")


class RegistryFeedError(Exception):
    """A peer's registry answer cannot be trusted; the message names the record."""


def serve_page(engine: Engine, local: str, after: int, limit: int) -> dict[str, Any]:
    """This node's chain after ``after`` (every record is signed: a page ends on one)."""
    head, rows = registry.records_after(engine, local, after, max(1, min(limit, MAX_PAGE)))
    return {"origin": local, "head": head, "records": [[r.body, r.hash, r.sig] for r in rows]}


def _answer(data: bytes | bytearray, limits: Limits, items: int, per: int) -> Any:
    try:
        return load_json(bytes(data), JsonLimits(depth=4, values=items * per + 64,
                                                 items=max(items, 32),
                                                 string=limits.max_record_bytes))
    except JsonError as exc:
        raise RegistryFeedError(f"malformed registry answer: {exc}") from None


def verify_page(data: bytes | bytearray, origin: str, key_hex: str, after: int, prev: str,
                limits: Limits) -> tuple[int, list[StoredRecord], str | None]:
    """(head, verified records, why the rest was refused) of a page of ``origin``'s chain.
    Records are kept only up to the last signature that verified."""
    doc = _answer(data, limits, MAX_PAGE, 4)
    if not isinstance(doc, dict) or doc.get("origin") != origin:
        raise RegistryFeedError(f"registry of {origin}: the answer is not {origin}'s chain")
    head, recs = doc.get("head"), doc.get("records")
    if type(head) is not int or head < 0 or not isinstance(recs, list):
        raise RegistryFeedError(f"registry of {origin}: malformed page (head, records)")
    key = public_key(key_hex)
    d = descriptor(origin)
    out: list[StoredRecord] = []
    signed = 0
    error = None
    seq = after
    for i, rec in enumerate(recs):
        where = f"registry of {origin}, record {seq + 1}"
        try:
            if not (isinstance(rec, list) and len(rec) == 3 and isinstance(rec[0], str)
                    and isinstance(rec[1], str) and (rec[2] is None or isinstance(rec[2], str))):
                raise RegistryFeedError(f"{where}: not [body, hash, signature]")
            body, h, sig = rec
            if record_hash(body) != h:
                raise RegistryFeedError(f"{where}: its hash does not match its body")
            try:
                b = load_json(body, _BODY)
            except JsonError as exc:
                raise RegistryFeedError(f"{where}: malformed body: {exc}") from None
            if not isinstance(b, dict) or b.get("seq") != seq + 1 or type(b["seq"]) is not int:
                raise RegistryFeedError(f"{where}: out of order")
            if b.get("prev") != prev:
                raise RegistryFeedError(f"{where}: does not follow the record before it "
                                        "(the chain is broken)")
            kind, sid, at, fields = b.get("kind"), b.get("series"), b.get("at"), b.get("fields")
            if kind not in KINDS or not isinstance(sid, str) or not SERIES_ID.fullmatch(sid):
                raise RegistryFeedError(f"{where}: unknown kind or malformed series id")
            if not isinstance(at, str) or len(at) != 27:
                raise RegistryFeedError(f"{where}: malformed time")
            try:
                parse_iso(at)
                if not isinstance(fields, dict):
                    raise SeriesError(f"series {sid}: fields must be an object", sid)
                check_fields(kind, fields, sid)
            except (ValueError, SeriesError) as exc:
                raise RegistryFeedError(f"{where}: {exc}") from None
            if set(b) != {"seq", "prev", "at", "kind", "series", "fields"}:
                raise RegistryFeedError(f"{where}: unexpected keys")
            if kind in ("series", "close") and namespace(sid) != origin:
                raise RegistryFeedError(
                    f"{where}: {origin} may not create, change or close series {sid}, which "
                    f"is {namespace(sid)}'s (a forged record); refused")
            if sig is not None and not check_signature(key, d, seq + 1, h, sig):
                raise RegistryFeedError(f"{where}: its signature does not verify with "
                                        f"{origin}'s key")
            out.append(StoredRecord(origin, seq + 1, sid, kind, at, body, h, sig))
            if sig is not None:
                signed = len(out)
            seq, prev = seq + 1, h
        except RegistryFeedError as exc:
            error = str(exc)
            break
        del i
    if len(out) > signed and error is None:
        error = f"registry of {origin}: the page does not end on a signed record"
    return head, out[:signed], error


def _hits(data: bytes | bytearray, limits: Limits) -> list[HitNotice]:
    doc = _answer(data, limits, MAX_PAGE, 8)
    items = doc.get("hits") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise RegistryFeedError("malformed hit notices: no 'hits' list")
    out = []
    for i, it in enumerate(items):
        try:
            assert isinstance(it, dict)
            rid, sid, n, case, at = (it["id"], it["series"], it["items"], it["case_ref"],
                                     it["at"])
            assert type(rid) is int and rid > 0 and type(n) is int and n >= 0
            assert isinstance(sid, str) and SERIES_ID.fullmatch(sid)
            assert isinstance(case, str) and len(case) <= 100 and case.isprintable()
            when = datetime.fromisoformat(at[:64]) if isinstance(at, str) else None
            assert when is not None
        except (AssertionError, KeyError, ValueError, TypeError):
            raise RegistryFeedError(f"malformed hit notices: hits[{i}]") from None
        out.append(HitNotice(rid, "", sid, n, case, when))
    return out


def _clues(data: bytes | bytearray, limits: Limits) -> list[ClueInfo]:
    doc = _answer(data, limits, MAX_PAGE, 8)
    items = doc.get("clues") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise RegistryFeedError("malformed clues: no 'clues' list")
    out = []
    for i, it in enumerate(items):
        try:
            assert isinstance(it, dict)
            rid, sid, text, at = it["id"], it["series"], it["text"], it["at"]
            assert type(rid) is int and rid > 0 and isinstance(text, str) and len(text) <= 4000
            assert isinstance(sid, str) and SERIES_ID.fullmatch(sid)
            when = datetime.fromisoformat(at[:64]) if isinstance(at, str) else None
            assert when is not None
        except (AssertionError, KeyError, ValueError, TypeError):
            raise RegistryFeedError(f"malformed clues: clues[{i}]") from None
        out.append(ClueInfo(rid, "", sid, text, (), when, None))
    return out


@dataclass(slots=True)
class RegistrySync:
    """What one peer's registry sync did."""

    peer: str
    agency: str = ""
    before: int = 0
    after: int = 0
    head: int = 0
    hits: int = 0
    clues: int = 0
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"peer": self.peer, "agency": self.agency, "from": self.before,
                "to": self.after, "head": self.head, "hits": self.hits, "clues": self.clues,
                "error": self.error}


def sync_peer(engine: Engine, home: Path, peer: str, page_size: int = 5000,
              timeout: float = 60) -> RegistrySync:
    """Pull ``peer``'s registry chain, then the hit notices and clues it holds for us."""
    out = RegistrySync(peer)
    ident = identity(engine)
    p = peer_info(engine, peer)
    if ident is None or p is None:
        out.error = "no node identity (vigil init)" if ident is None else f"no peer {peer!r}"
        return out
    out.agency = p.agency
    key_hex = trusted_key(engine, p.agency)
    if key_hex is None:
        out.error = f"no trusted key for {p.agency} (vigil peer trust)"
        return out
    c = registry.cursor(engine, peer, p.agency, genesis(descriptor(p.agency)))
    out.before = out.after = c.last_seq
    client = PeerClient(p.url, peer_token(home, peer), timeout)
    try:
        seq, prev = c.last_seq, c.last_hash
        while True:
            r = client.get("/v1/registry/feed", after=seq, limit=page_size)
            if r.status_code == 404:  # a peer running a Vigil without a registry
                out.notes.append(f"{peer} has no series registry (404); nothing pulled")
                return out
            if r.status_code != 200:
                raise PeerError(f"{p.url}/v1/registry/feed answered {r.status_code}: "
                                f"{problem_of(r)}")
            head, recs, error = verify_page(r.content, p.agency, key_hex, seq, prev,
                                            client.limits)
            out.head = head
            if recs and not registry.store_page(engine, peer, seq, recs):
                raise RegistryFeedError(f"registry of {p.agency}: cursor moved under us "
                                        "(a concurrent sync); nothing kept from this page")
            if recs:
                seq, prev = recs[-1].seq, recs[-1].hash
                out.after = seq
            if error is not None:
                raise RegistryFeedError(error)
            if not recs or seq >= head:
                break
        c = registry.cursor(engine, peer, p.agency, genesis(descriptor(p.agency)))
        after = c.hits_after
        while True:
            r = client.get("/v1/registry/hits", after=after)
            if r.status_code != 200:
                raise PeerError(f"{p.url}/v1/registry/hits answered {r.status_code}: "
                                f"{problem_of(r)}")
            hits = [h for h in _hits(r.content, client.limits)
                    if namespace(h.series_id) == ident.agency]
            if not hits:
                break
            out.hits += registry.keep_hits(engine, p.agency, hits)
            after = max(h.id for h in hits)
            registry.set_cursor(engine, peer, hits_after=after)
        after = c.clues_after
        while True:
            r = client.get("/v1/registry/clues", after=after)
            if r.status_code != 200:
                raise PeerError(f"{p.url}/v1/registry/clues answered {r.status_code}: "
                                f"{problem_of(r)}")
            clues = _clues(r.content, client.limits)
            if not clues:
                break
            out.clues += registry.keep_clues(engine, p.agency, clues)
            after = max(x.id for x in clues)
            registry.set_cursor(engine, peer, clues_after=after)
    except (PeerError, RegistryFeedError) as exc:
        out.error = str(exc)
        registry.set_cursor(engine, peer, error=out.error)
    finally:
        client.close()
    return out


def sync_all(engine: Engine, home: Path, peers: list[str] | None = None) -> list[RegistrySync]:
    """Every peer's registry (or these peers'), one after the other."""
    return [sync_peer(engine, home, n) for n in (peers or peer_names(engine))]


def hits_json(hits: list[HitNotice]) -> dict[str, Any]:
    return {"hits": [{"id": h.id, "series": h.series_id, "items": h.items,
                      "case_ref": h.case_ref, "at": h.at.isoformat()} for h in hits]}


def clues_json(clues: list[ClueInfo]) -> dict[str, Any]:
    return {"clues": [{"id": c.id, "series": c.series_id, "text": c.text,
                       "at": c.created_at.isoformat()} for c in clues]}


__all__ = ["RegistryFeedError", "RegistrySync", "clues_json", "hits_json",
           "serve_page", "sync_all", "sync_peer", "verify_page"]
