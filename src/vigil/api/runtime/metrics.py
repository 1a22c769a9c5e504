"""Prometheus metrics: requests, latencies, matches, index size and lag.

Under several uvicorn workers each worker counts for itself; when
``PROMETHEUS_MULTIPROC_DIR`` is set (``vigil serve`` sets it) every worker writes its
samples there and ``/metrics`` adds them up, so one scrape sees the whole node.
Labels are route templates (``/v1/banks/{name}``), never bank names or signals.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: adds every worker's samples to a registry; prometheus_client leaves it unannotated
_multiprocess_collector: Callable[[CollectorRegistry], object] = (
    multiprocess.MultiProcessCollector)

REQUESTS = Counter("vigil_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("vigil_http_request_duration_seconds", "HTTP request latency",
                    ["route"], buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1,
                                        2.5, 5, 10))
SIGNALS = Counter("vigil_match_signals_total", "Signals submitted for matching")
FAST_MATCHES = Counter("vigil_match_fast_requests_total",
                       "POST /v1/match requests answered on the lean path "
                       "(vigil.api.server.fastmatch)")
FAST_ENTRY_MISSES = Counter(
    "vigil_match_fast_entry_misses_total",
    "Lean-path requests matched again in a thread: a hit's entry was not in the worker's "
    "cache (vigil.api.runtime.entries.CachedEntries.cached_only)")
MATCHED = Counter("vigil_match_matched_total", "Submitted signals that matched")
INDEX_SIZE = Gauge("vigil_index_entries", "Entries in the index", ["signal_type"],
                   multiprocess_mode="max")
INDEX_LAG = Gauge("vigil_index_lag_changes", "Change-log records not yet in the index",
                  multiprocess_mode="max")
INDEX_AGE = Gauge("vigil_index_sync_age_seconds", "Seconds since the index last synced",
                  multiprocess_mode="max")


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        _multiprocess_collector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


class RequestMetrics:
    """Pure ASGI middleware timing every request by its route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(msg: Message) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            REQUESTS.labels(scope["method"], name, str(status)).inc()
            LATENCY.labels(name).observe(time.perf_counter() - start)
