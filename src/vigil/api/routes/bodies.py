"""JSON request bodies are checked against the node's limits before anything parses them.

Why: FastAPI hands a JSON body to ``json.loads`` and then to pydantic whole. A body of a
few megabytes can hold a million keys or values, each of which becomes a Python object
and, once pydantic refuses it, an error report: one such request took 4.6 s and 700 MB.
Every route with a JSON body is a :class:`LimitedJsonRoute`: it reads the body (already
capped at ``VIGIL_MAX_JSON_BYTES`` by ``vigil.api.server.limits``) and walks its tokens
(``vigil.formats.limits.check_json``: nesting, values, items, string length) without
building them; only a body within the limits reaches FastAPI's parser.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from vigil.api.schemas.problems import ApiError
from vigil.formats.limits import JsonError, JsonLimits, check_json

#: bodies up to this size are checked on the event loop; bigger ones in a thread
INLINE_BYTES = 64 << 10


def refusal(exc: JsonError) -> ApiError:
    """The problem for a body that is not JSON (400) or crosses a limit (422)."""
    field = f"body.{exc.where}" if exc.where else "body"
    return ApiError(400 if exc.syntax else 422, exc.reason, field)


async def check_body(body: bytes, limits: JsonLimits) -> None:
    """Raise ApiError unless ``body`` is JSON within ``limits``."""
    try:
        if len(body) <= INLINE_BYTES:
            check_json(body, limits)
        else:
            await run_in_threadpool(check_json, body, limits)
    except JsonError as exc:
        raise refusal(exc) from None


class LimitedJsonRoute(APIRoute):
    """An APIRoute whose JSON body, if it has one, passes ``check_body`` first."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def limited(request: Request) -> Response:
            body = await request.body()  # kept by the request: FastAPI reads it from there
            if body:
                await check_body(body, request.app.state.node.settings.json_limits)
            return await handler(request)

        return limited
