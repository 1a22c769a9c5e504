"""The FastAPI application factory: one ``NodeState`` per worker, routers, limits, errors."""

from __future__ import annotations

import gc
import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from sqlalchemy import Engine
from starlette.types import ASGIApp

from vigil import __version__
from vigil.api.routes import (
    admin,
    banks,
    exchange,
    hma,
    match,
    ops,
    selfsubmit,
    series,
    takedown,
)
from vigil.api.runtime.metrics import RequestMetrics
from vigil.api.runtime.settings import Settings
from vigil.api.runtime.state import NodeState
from vigil.api.schemas import problems
from vigil.api.server.fastmatch import FastMatch
from vigil.api.server.limits import BodyLimits
from vigil.api.server.nul import RefuseNul
from vigil.api.server.review import PREFIX, ReviewPortal, review_root
from vigil.api.server.wire import LastResort
from vigil.exchange.periodic import PeerSyncThread, interval_from_env
from vigil.store import make_engine
from vigil.takedown.worker import TakedownThread


def registries(engine: Engine, home: Path, audit: Any) -> None:
    """The periodic sync's second half: every peer's series registry (vigil.victimid)."""
    from vigil.node import identity
    from vigil.victimid.sync import sync_all as sync_registries

    ident = identity(engine)
    for r in sync_registries(engine, home):
        audit.append("series.sync", outcome="ok" if r.error is None else "failed",
                     agency=ident.agency if ident else None, actor=f"peer-sync/{r.peer}",
                     target=r.peer, detail={"records": r.after - r.before, "hits": r.hits,
                                            "clues": r.clues, "error": r.error})


DESCRIPTION = """Each agency's Vigil node: hash files, match signals against the agency's
banks, curate banks, and read the audit trail. Authenticate with
`Authorization: Bearer <token>` (tokens come from `vigil init` / `POST /v1/tokens`).
Errors are RFC 9457 `application/problem+json`."""


#: the collector's thresholds in a worker (CPython's default: 700, 10, 10). Why: a match
#: request briefly holds several hundred container objects, so at the default a young
#: collection ran every ~30 requests (~50 a second per worker, 19 ms of each second) and
#: a full one every ~2.5 s, up to 17 ms long, stalling the worker's every connection.
#: With 10,000 objects net growth before a young collection: 2 collections in 12 s at 64
#: clients; 8 alternating pairs on the 10M bench: −8% to +22% requests/s (median +5%),
#: p99 lower in 7 (bench/HISTORY.md). Cycles are still collected.
GC_THRESHOLDS = (10_000, 20, 100)

#: (older FastAPI versions have no ``telemetry`` argument, and no such hooks)
_NO_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False,
                   "operation_spans": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters else {})


def create_app(engine: Engine | None = None, settings: Settings | None = None) -> FastAPI:
    """The app for one worker (every route; the lean match path is ``create_asgi``'s).
    The store must be migrated and the node initialised."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        eng = engine or make_engine()
        node = NodeState(eng, settings)
        node.start()
        peers = PeerSyncThread(eng, settings.home, node.audit, interval_from_env(),
                               banks_changed=node.banks_changed,
                               also=lambda: registries(eng, settings.home, node.audit))
        peers.start()
        notices = TakedownThread.from_env(eng, node.matcher, node.identity.agency,
                                          settings.home)
        notices.start()
        app.state.node = node
        # What start-up made (modules, compiled kernels, the store's metadata, caches)
        # lives as long as the worker: out of the collector's sight, a full collection
        # no longer walks ~150k objects (80-100 ms, measured) while requests wait.
        gc.collect()
        gc.freeze()
        before = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        try:
            yield
        finally:
            gc.set_threshold(*before)
            notices.stop()
            peers.stop()
            node.stop()
            if engine is None:
                eng.dispose()

    # FastAPI's built-in OpenTelemetry hooks are off: the node exports Prometheus metrics
    # (vigil.api.runtime.metrics) and no traces, and with no provider configured the hooks only
    # looked the providers up in os.environ three times a request (~10% of a worker's
    # CPU under load, bench/HISTORY.md).
    app = FastAPI(title="Vigil node", version=__version__, description=DESCRIPTION,
                  lifespan=lifespan, **_NO_TELEMETRY)
    problems.install(app)
    for r in (ops.router, match.router, banks.router, admin.router, exchange.router,
              hma.router, takedown.router, selfsubmit.router, series.router):
        app.include_router(r)
    app.mount(PREFIX, ReviewPortal(lambda: app.state.node, review_root(),
                                   _review_app_maker(app, settings)))
    app.add_middleware(RefuseNul)  # inside BodyLimits, which bounds the bodies it reads
    app.add_middleware(BodyLimits, settings=settings)
    app.add_middleware(RequestMetrics)
    return app


def _review_app_maker(app: FastAPI, settings: Settings) -> Callable[..., ASGIApp]:
    """How the review portal opens a scan: the review app over this node's store, its
    exposure ledger and its audit log, with the node's caps (``Settings.review_caps``:
    the ``VIGIL_REVIEW_*`` settings, docs/review.md)."""
    from vigil.review.web import review_app

    def make(folder: Path, reviewer: Callable[[Request], str],
             admin: Callable[[Request], bool]) -> ASGIApp:
        node = app.state.node

        def audit(action: str, target: str | None = None, **detail: Any) -> object:
            return node.audit.append(action, agency=node.identity.agency,
                                     actor=detail.get("reviewer"), target=target,
                                     detail=detail)

        return review_app(folder, node.engine, reviewer, audit=audit, admin=admin,
                          caps=settings.review_caps)

    return make


def create_asgi() -> ASGIApp:
    """What ``vigil serve``'s workers run: the app with the lean match path in front of
    it, outside even Starlette's own middleware (error pages, body limits, the router),
    which a plain match request would otherwise pass through twice (in and out) for
    nothing. Anything the lean path does not answer goes to the app whole."""
    settings = Settings.from_env()
    app = create_app(settings=settings)
    if not settings.fast_match:
        return LastResort(app)
    return LastResort(FastMatch(app, max_json_bytes=settings.max_json_bytes))
