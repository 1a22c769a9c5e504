"""Body size and media-type limits, enforced before and while a body is read.

Oversized bodies are refused from ``Content-Length`` when the client sends one, and by
counting bytes as they arrive otherwise (chunked uploads), so no worker ever buffers more
than its limit. The media type is checked per kind of route: JSON for API bodies, raw
bytes for file uploads (multipart would be spooled to a temporary file, and uploaded
media must never touch the disk). It is checked only for a request some route takes:
``PUT /v1/match`` is a 405 and ``POST /v1/nowhere`` a 404, whatever their media type.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.api.runtime.settings import Settings
from vigil.api.schemas.problems import problem

UPLOAD_SUFFIXES = ("/v1/hash", "/v1/match/file", "/entries/file")
IMPORT_SUFFIX = "/import"
#: HMA-compatible uploads (vigil.api.routes.hma): multipart, parsed in memory, never spooled
MULTIPART_PATHS = ("/m/lookup", "/h/hash")
#: the review workspace (vigil.api.server.review): a browser's forms, or the page's JSON
REVIEW_PREFIX = "/review/"
REVIEW_TYPES = ("application/x-www-form-urlencoded", "application/json")
#: its largest body is a decision's few fields (the review app bounds them again)
MAX_REVIEW_BYTES = 64 * 1024


def route_kind(path: str) -> str:
    if path.startswith(REVIEW_PREFIX):
        return "review"
    if path in MULTIPART_PATHS:
        return "multipart"
    if path.endswith(UPLOAD_SUFFIXES):
        return "upload"
    if path.endswith(IMPORT_SUFFIX):
        return "import"
    return "json"


class BodyLimits:
    """Pure ASGI middleware (no buffering of its own)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.limits = {"upload": settings.max_upload_bytes, "import": settings.max_import_bytes,
                       "json": settings.max_json_bytes,
                       "multipart": settings.max_upload_bytes,
                       "review": MAX_REVIEW_BYTES}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        kind = route_kind(scope["path"])
        limit = self.limits[kind]
        headers = dict(scope["headers"])
        ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower().decode(
            "latin-1")
        refusal = None
        if not _routed(scope):
            pass  # the router answers 404 or 405; the body is still counted below
        elif kind == "json" and ctype != "application/json":
            refusal = (415, f"content-type: send application/json, not {ctype or 'nothing'}")
        elif kind == "upload" and ctype != "application/octet-stream":
            refusal = (415, "content-type: send the file's bytes as application/octet-stream "
                            f"(not {ctype or 'nothing'}; multipart is not accepted)")
        elif kind == "review" and ctype not in REVIEW_TYPES:
            refusal = (415, f"content-type: send a form or application/json, not "
                            f"{ctype or 'nothing'}")
        elif kind == "multipart" and ctype != "multipart/form-data":
            refusal = (415, f"content-type: send multipart/form-data, not {ctype or 'nothing'}")
        else:
            try:
                declared = int(headers.get(b"content-length", b"-1"))
            except ValueError:
                declared = -1
            if declared > limit:
                refusal = (413, f"body: {declared:,} bytes exceed the limit of {limit:,}")
        if refusal is not None:
            await _drain(receive, limit)
            await problem(*refusal)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, f"body: more than the limit of {limit:,} bytes")
            return msg

        started = False

        async def sending(msg: Message) -> None:
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, counted, sending)
        except HTTPException as exc:
            # A middleware that reads the body before the router (RefuseNul) is outside
            # the exception handlers: its 413 is answered here, as the router's would be.
            if exc.status_code != 413 or started:
                raise
            await problem(413, str(exc.detail))(scope, receive, send)


def _routed(scope: Scope) -> bool:
    """Whether a route of the app takes this method and path."""
    router = getattr(scope.get("app"), "router", None)
    if router is None:
        return True
    return any(route.matches(scope)[0] is Match.FULL for route in router.routes)


async def _drain(receive: Receive, limit: int) -> None:
    """Read (a bounded part of) a refused body so the connection stays usable."""
    seen = 0
    while seen <= min(limit, 1 << 20):
        msg = await receive()
        if msg["type"] != "http.request":
            return
        seen += len(msg.get("body", b""))
        if not msg.get("more_body"):
            return
