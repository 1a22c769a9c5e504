"""Witnessing at sync: keep the peer's signed audit head, hand back the furthest one kept,
and collect the heads of this node's log that the peer kept (``vigil.audit.witness``).

Why at sync: it is the one moment two nodes talk anyway, and it happens every minute in a
running node. What each side gains:

* the syncing node holds the peer's heads, and notices at once if the peer's log went
  back (its head is behind one it showed before);
* the peer gets back the furthest head of its own log that was seen — also after a
  rewind, when it is the evidence — and ``vigil audit verify`` on the peer checks its log
  against it;
* the syncing node collects the heads the peer holds of *its* log (when the peer syncs
  from it too), so its own ``vigil audit verify`` can check against them, even if its
  local copies were deleted along with the records.

A peer running a Vigil that predates witnesses answers 404 (or a proxy in front of it
405/501 to a POST): nothing more is exchanged and the sync goes on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import httpx
from sqlalchemy import Engine

from vigil.audit import SignedHead, check_head, witness_store
from vigil.exchange import repo
from vigil.exchange.peers import PeerError
from vigil.exchange.records import answer_limits, public_key
from vigil.formats.limits import JsonError, Limits, load_json
from vigil.node import signing_key

#: heads asked for per request when collecting the ones a peer holds of this node
PAGE = 1000
#: answers meaning "this peer does not take part in witnessing", not an error
UNSUPPORTED = (404, 405, 501)


class Answer(Protocol):
    """A peer's answer as the sync's client reads it (bounded in size)."""

    @property
    def status_code(self) -> int: ...
    @property
    def content(self) -> bytes | bytearray: ...


class Client(Protocol):
    """What witnessing needs of the sync's HTTP client."""

    limits: Limits

    def get(self, path: str, **params: Any) -> Answer: ...

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response: ...


def _json(client: Client, r: Answer, where: str, items: int) -> Any:
    """A peer's answer parsed within limits (a head is a handful of values)."""
    try:
        return load_json(bytes(r.content), answer_limits(client.limits, items, 8, depth=3))
    except JsonError as exc:
        raise PeerError(f"{where}: malformed answer: {exc}") from None


def exchange_heads(client: Client, engine: Engine, home: Path, local: str, peer: str,
                   peer_agency: str) -> tuple[int | None, str | None]:
    """Witness ``peer``'s audit log and collect what it witnessed of ours.

    Returns (the peer's head id now kept, or None if the peer has no head to give; a
    problem to report, or None). A peer whose log went back is a problem, not an error:
    everything else of the sync stands.
    """
    r = client.get("/v1/audit/head")
    if r.status_code in UNSUPPORTED:
        return None, None
    if r.status_code != 200:
        raise PeerError(f"{peer}: /v1/audit/head answered {r.status_code}")
    try:
        head = SignedHead.parse(_json(client, r, f"{peer}: /v1/audit/head", 1))
    except ValueError as exc:
        raise PeerError(f"{peer}: /v1/audit/head: {exc}") from None
    key_hex = repo.agency_key(engine, peer_agency)
    if head.agency != peer_agency or key_hex is None \
            or not check_head(head, public_key(key_hex)):
        raise PeerError(f"{peer}: its audit head is not signed by {peer_agency}'s key")
    before = witness_store.newest(engine, peer_agency, local)
    witness_store.keep(engine, head, local)
    problem = None
    if before is not None and (head.id < before.id or (head.id == before.id
                                                       and head.hash != before.hash)):
        problem = (f"{peer_agency}'s audit log went back: at {before.at} it reached record "
                   f"{before.id}, now it ends at record {head.id} (records were cut or "
                   f"rewritten; {peer_agency}'s `vigil audit verify` shows which)")
    furthest = before if before is not None and before.id > head.id else head
    r = client.post("/v1/audit/witnessed", furthest.as_dict())
    if r.status_code not in (204, *UNSUPPORTED):
        raise PeerError(f"{peer}: /v1/audit/witnessed refused the head it signed "
                        f"({r.status_code})")
    _collect(client, engine, home, local, peer, peer_agency)
    return head.id, problem


def _collect(client: Client, engine: Engine, home: Path, local: str, peer: str,
             peer_agency: str) -> None:
    """Keep the heads of this node's log that the peer holds (signed by this node)."""
    mine = signing_key(home).public_key()
    seen = witness_store.newest(engine, local, peer_agency)
    after = seen.id if seen is not None else 0
    while True:
        r = client.get("/v1/audit/witnessed", after_id=after, limit=PAGE)
        if r.status_code in UNSUPPORTED:
            return
        if r.status_code != 200:
            raise PeerError(f"{peer}: /v1/audit/witnessed answered {r.status_code}")
        doc = _json(client, r, f"{peer}: /v1/audit/witnessed", PAGE)
        items = doc.get("heads") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise PeerError(f"{peer}: /v1/audit/witnessed: no list of heads")
        for item in items:
            try:
                h = SignedHead.parse(item)
            except ValueError as exc:
                raise PeerError(f"{peer}: /v1/audit/witnessed: {exc}") from None
            if h.agency != local or not check_head(h, mine):
                raise PeerError(f"{peer}: /v1/audit/witnessed holds a head this node did "
                                f"not sign (record {h.id})")
            witness_store.keep(engine, h, peer_agency)
            after = max(after, h.id)
        if len(items) < PAGE:
            return
