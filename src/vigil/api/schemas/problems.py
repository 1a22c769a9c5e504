"""RFC 9457 problem details: every error the API returns has this one shape.

A client (or a person reading a log) gets the status, a short title, a detail that names
the field at fault, and for validation errors the list of fields. Values that may be
hashes are never echoed back (hash lists are sensitive; error bodies end up in logs).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("vigil.api")
PROBLEM = "application/problem+json"
TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
          405: "Method not allowed", 409: "Conflict", 413: "Content too large",
          414: "URI too long", 415: "Unsupported media type", 422: "Invalid request",
          429: "Too many requests", 431: "Request header fields too large",
          500: "Internal error", 503: "Not ready"}


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem: ``type`` is a stable URI per kind of problem."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None


class ApiError(Exception):
    """An expected failure with its status, the field at fault and a message for people."""

    def __init__(self, status: int, detail: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.field, self.headers = status, detail, field, headers


def problem_body(status: int, detail: str | None, instance: str | None = None,
                 errors: list[FieldError] | None = None) -> dict[str, Any]:
    """The problem document for ``status`` as JSON-ready data."""
    slug = TITLES.get(status, "Error").lower().replace(" ", "-")
    return Problem(type=f"https://vigil.invalid/problems/{slug}",
                   title=TITLES.get(status, "Error"), status=status, detail=detail,
                   instance=instance, errors=errors).model_dump(exclude_none=True)


def problem(status: int, detail: str | None, request: Request | None = None,
            errors: list[FieldError] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    instance = request.url.path if request is not None else None
    return JSONResponse(problem_body(status, detail, instance, errors), status_code=status,
                        media_type=PROBLEM, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc) or "body"


def _message(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errs = exc.errors()
    fields = [FieldError(field=_field(e.get("loc", ())), message=_message(e)) for e in errs[:50]]
    status = 400 if any(e.get("type") == "json_invalid" for e in errs) else 422
    first = fields[0] if fields else FieldError(field="body", message="invalid request")
    more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
    return problem(status, f"{first.field}: {first.message}{more}", request, fields)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code)
    return problem(exc.status_code, detail, request, headers=getattr(exc, "headers", None))


async def _api(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    errors = [FieldError(field=exc.field, message=exc.detail)] if exc.field else None
    detail = f"{exc.field}: {exc.detail}" if exc.field else exc.detail
    return problem(exc.status, detail, request, errors, exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path,
              exc_info=exc)
    return problem(500, "an internal error occurred; the node's log has the details", request)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(ApiError, _api)
    app.add_exception_handler(Exception, _unexpected)


#: Documented on every operation, so clients (and schemathesis) know the error shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "description": TITLES[code],
           "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    for code in (400, 401, 403, 404, 409, 413, 415, 422)
}
