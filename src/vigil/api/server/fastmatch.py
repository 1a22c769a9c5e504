"""A lean path for the common ``POST /v1/match``: the same answer, without the framework.

Why: a single-signal match costs ~0.1 ms of index search, but through FastAPI it cost
2–3 ms of worker CPU (routing, dependency solving, pydantic in and out, a thread hand-off;
bench/HISTORY.md), which capped a 2-core node far below 2,000 requests/s. This ASGI
app, in front of the whole FastAPI app, answers on the event loop the requests it fully
understands: a cached token that grants ``match``, a JSON body of known hash types that
it validates itself, the caller's own banks. Everything else — a token not in this
worker's cache, anything odd or invalid in the body (so every error message), an unknown
bank, an exception, a lead on a series of the registry (whose notes are read from the
store) — is handed, untouched (the body replayed), to the FastAPI route in
``vigil.api.routes.match``, which stays the reference: tests send the same requests to both and
compare the bytes.

Matching, filtering, labels shown per role and the audit record are the same functions
the route uses; only parsing and serialising differ (orjson, plain dicts built in the
models' field order, ``None`` left out as ``response_model_exclude_none`` does).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.types import Message, Receive, Scope, Send

from vigil.api.routes.match import disagreement, filter_outcome, wanted_banks
from vigil.api.runtime import metrics
from vigil.api.runtime.auth import allowed, cached_principal, client_address
from vigil.api.runtime.entries import EntriesNotCached
from vigil.api.runtime.state import NodeState
from vigil.api.schemas.models import MAX_SIGNALS, exact_signal
from vigil.api.server.eager import EagerResponse
from vigil.matching import DEFAULT_MIN_QUALITY, DEFAULT_THRESHOLD, Match, Outcome, Query
from vigil.node import PrincipalInfo
from vigil.signals import DIHEDRAL_NAMES
from vigil.victimid.annotate import names_a_series

log = logging.getLogger("vigil.api")
PATH = "/v1/match"
#: the signal types this path validates itself; any other goes to the reference route
TYPES = frozenset({"pdq", "md5", "sha1", "sha256"})
VARIANTS = frozenset(DIHEDRAL_NAMES[1:])
REQUEST_KEYS = frozenset({"signals", "threshold", "min_quality", "banks"})
SIGNAL_KEYS = frozenset({"type", "value", "quality", "variants"})
#: the most JSON values a body this path parses may hold (counted from its bytes before
#: parsing, so a hostile body never costs more than this): a signal with all its
#: variants is 12
MAX_VALUES = 16 * MAX_SIGNALS + 64
#: batches up to this many signals are matched on the event loop; bigger ones in a thread
INLINE_SIGNALS = 16
_HEADERS = [(b"content-type", b"application/json")]


@dataclass(frozen=True, slots=True)
class FastRequest:
    """A match request this path takes: signals normalised as the route's model does."""

    queries: list[Query]
    threshold: int
    min_quality: int
    banks: list[str] | None


def _int_in(v: Any, lo: int, hi: int) -> bool:
    return type(v) is int and lo <= v <= hi


def _bank_name(v: Any) -> bool:
    return (type(v) is str and 1 <= len(v) <= 100
            and not any(c in v for c in "/\\\n\t"))


def parse(body: bytes) -> FastRequest | None:
    """The request, if it is plainly valid; None sends it to the reference route.

    Deliberately strict: only exact JSON types (no ``"31"`` for 31, no ``true`` for 1),
    known hash types in lowercase, hash values exactly (no whitespace around them), no
    unknown keys. Whatever is refused here is not an error: the route decides, with its
    full validation and its error messages. A body with more values than a valid request
    can have (counted from its separators and brackets, an upper bound) is not parsed
    here at all: the route's own limits refuse it.
    """
    if body.count(b",") + body.count(b"[") + body.count(b"{") > MAX_VALUES:
        return None
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(doc) is not dict or not REQUEST_KEYS.issuperset(doc):
        return None
    signals = doc.get("signals")
    threshold = doc.get("threshold", DEFAULT_THRESHOLD)
    min_quality = doc.get("min_quality", DEFAULT_MIN_QUALITY)
    banks = doc.get("banks")
    if (type(signals) is not list or not 1 <= len(signals) <= MAX_SIGNALS
            or not _int_in(threshold, 0, 64) or not _int_in(min_quality, 0, 100)):
        return None
    if banks is not None and (type(banks) is not list or len(banks) > 1000
                              or not all(_bank_name(b) for b in banks)):
        return None
    queries = []
    for s in signals:
        q = _query(s)
        if q is None:
            return None
        queries.append(q)
    return FastRequest(queries, threshold, min_quality, banks)


def _query(s: Any) -> Query | None:
    if type(s) is not dict or not SIGNAL_KEYS.issuperset(s):
        return None
    t, v, quality, variants = s.get("type"), s.get("value"), s.get("quality"), s.get("variants")
    if t not in TYPES or type(v) is not str or not 1 <= len(v) <= 1024:
        return None
    if quality is not None and not _int_in(quality, 0, 100):
        return None
    try:
        value = exact_signal(t, v)
        pairs: tuple[tuple[str, str], ...] = ()
        if variants is not None:
            if t != "pdq" or type(variants) is not dict or not VARIANTS.issuperset(variants):
                return None
            if not all(type(h) is str for h in variants.values()):
                return None
            pairs = tuple((k, exact_signal("pdq", h)) for k, h in variants.items())
    except ValueError:
        return None
    return Query(t, value, quality, pairs)


def lead(m: Match, signals: list[str], full: bool) -> dict[str, Any]:
    """One lead as ``MatchOut`` serialises it with ``exclude_none`` (same keys, same order)."""
    e = m.entry
    lab = e.labels
    out: dict[str, Any] = {"bank": e.bank, "distance": int(m.distance),
                           "signal_type": m.signal_type, "signals": signals,
                           "variant": m.variant}
    if lab.category:
        out["category"] = {"scheme": lab.category[0], "value": lab.category[1]}
    if full:
        out["entry_id"] = e.id
        if e.origin_agency is not None:
            out["agency"] = e.origin_agency
        if lab.series is not None:
            out["series"] = lab.series
        if lab.victim_status is not None:
            out["victim_status"] = lab.victim_status
        out["tags"] = list(lab.tags)
        if lab.note is not None:
            out["note"] = lab.note
    return out


def result(i: int, o: Outcome, full: bool) -> dict[str, Any]:
    """One signal's result as ``SignalResult`` serialises it with ``exclude_none``."""
    r: dict[str, Any] = {"index": i, "matches": [lead(m, s, full) for m, s in o.leads()],
                         "skipped": o.skipped}
    if disagreement(o):
        r["disagreement"] = True
    return r


class FastMatch:
    """A pure ASGI app in front of the FastAPI app (``create_asgi``): serves what it can,
    passes the rest on."""

    def __init__(self, app: FastAPI, max_json_bytes: int) -> None:
        self.app = app  # its lifespan sets ``app.state.node``
        self.max_json_bytes = max_json_bytes
        self._requests = metrics.REQUESTS.labels("POST", PATH, "200")
        self._latency = metrics.LATENCY.labels(PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["path"] != PATH
                or scope["method"] != "POST"):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        caller, length = self._caller(scope)
        if caller is None:  # not ours to judge: the route authenticates and audits
            await self.app(scope, receive, send)
            return
        body, pending = await _read(receive, length)
        replay = _replayer(body, pending, receive)
        try:
            answer = (None if pending
                      else await self._answer(scope, caller, body, send))
        except Exception as exc:  # the route will answer (and log) properly
            first = (str(exc).splitlines() or [""])[0]  # not the statement's parameters
            log.warning("fast match fell back to the route: %s",
                        f"{type(exc).__name__}: {first}"[:200])
            answer = None
        if answer is None:
            await self.app(scope, replay, send)
            return
        response, signals, matched = answer
        # Audited: answered from the commit's callback (or right now), never by the route.
        response.start()
        await response.done
        self._requests.inc()
        metrics.FAST_MATCHES.inc()
        metrics.SIGNALS.inc(signals)
        metrics.MATCHED.inc(matched)
        self._latency.observe(time.perf_counter() - start)

    def _caller(self, scope: Scope) -> tuple[PrincipalInfo | None, int]:
        """The cached principal holding ``match`` and the declared body length, if the
        headers are what a plain JSON request with a known token has."""
        token = ctype = None
        length = -1
        for k, v in scope["headers"]:
            if k == b"authorization":
                token = v
            elif k == b"content-type":
                ctype = v
            elif k == b"content-length":
                length = int(v) if v.isdigit() else -1
        if (token is None or ctype is None or not 0 < length <= self.max_json_bytes
                or ctype.split(b";")[0].strip().lower() != b"application/json"):
            return None, length
        scheme, _, cred = token.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer":
            return None, length
        node = self.app.state.node
        p = cached_principal(node.auth_cache, cred.strip())
        if p is None or not allowed(p, "match"):
            return None, length
        return p, length

    async def _answer(self, scope: Scope, caller: PrincipalInfo, body: bytes, send: Send,
                      ) -> tuple[EagerResponse, int, int] | None:
        """The response (sent once the audit record is committed, from the commit's
        callback: ``vigil.api.server.eager``), signals and matched count; None: the route is
        to answer."""
        req = parse(body)
        if req is None:
            return None
        node: NodeState = self.app.state.node
        wanted = wanted_banks(node, caller, req.banks)
        if wanted is None:
            return None  # an unknown bank: the route says 404
        items = [[q] for q in req.queries]

        def run() -> list[Outcome]:
            found: list[Outcome] = node.matcher.match(items, threshold=req.threshold,
                                                      min_quality=req.min_quality)
            return found

        # Small batches are matched right here (a thread hand-off costs more than the
        # search) as long as their hits' entries are in the worker's cache; big ones,
        # those whose entries are to be read from the store (EntriesNotCached: the
        # search runs again there), or while the index is being synced, in a thread.
        outcomes = None
        if len(items) <= INLINE_SIGNALS and not node.index.lock.locked():
            try:
                with node.cached_entries.cached_only():
                    outcomes = run()
            except EntriesNotCached:
                metrics.FAST_ENTRY_MISSES.inc()
        if outcomes is None:
            outcomes = await run_in_threadpool(run)
        full = allowed(caller, "labels.read")
        for o in outcomes:
            filter_outcome(o, caller, wanted)
        if full and any(names_a_series(m.entry.labels.series)
                        for o in outcomes for m, _ in o.leads()):
            return None  # the route adds the series registry's notes (a store read)
        results = []
        matched = 0
        for i, o in enumerate(outcomes):
            r = result(i, o, full)
            matched += bool(r["matches"])
            results.append(r)
        payload = orjson.dumps({"signals": len(results), "matched": matched,
                                "results": results})
        response = EagerResponse(send, [
            {"type": "http.response.start", "status": 200,
             "headers": [*_HEADERS, (b"content-length", str(len(payload)).encode())]},
            {"type": "http.response.body", "body": payload}])
        signals = [(q.signal_type, q.value) for q in req.queries]
        remote = client_address(scope.get("client"), scope["headers"],
                                node.settings.trusted_proxies)
        # Last, so that nothing after it can fail and send the request to the route (which
        # would audit it a second time): once audited, it is answered.
        await node.audit.append_async(
            "match", agency=caller.agency, actor=caller.label,
            remote=remote,
            detail={"signals": len(signals), "matched": matched,
                    "digest": node.audit.digest_signals(signals),
                    "threshold": req.threshold,
                    "dihedral": any(q.variants for q in req.queries)},
            on_commit=response.start)
        return response, len(signals), matched


async def _read(receive: Receive, length: int) -> tuple[bytes, list[Message]]:
    """The body, if it arrives whole within its declared length; otherwise what was read
    so far, as messages to hand on (the route's limits then apply)."""
    chunks: list[bytes] = []
    seen = 0
    msgs: list[Message] = []
    while True:
        msg = await receive()
        msgs.append(msg)
        if msg["type"] != "http.request":
            return b"", msgs
        chunk = msg.get("body", b"")
        seen += len(chunk)
        if seen > length:
            return b"", msgs
        chunks.append(chunk)
        if not msg.get("more_body"):
            return b"".join(chunks), []


def _replayer(body: bytes, pending: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives the route the body this path already read, then the rest."""
    queue: list[Message] = list(pending) or [
        {"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay


