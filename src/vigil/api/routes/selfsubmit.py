"""Self-submission (issue 18): the page at ``/submit/`` and its JSON API under
``/submit/api/``. No account: a victim proves a case is theirs with its PIN or by
signing a one-time challenge with the case's recovery key.

Thin: bodies are size-checked (``items.MAX_BODY_BYTES``, far below the node's general JSON
limit: a case is a few dozen hashes) and walked within the JSON limits before parsing;
everything else is ``vigil.selfsubmit.cases``. Refusals are problem documents with a
``code`` the page translates. Every submission, check, withdrawal and refused PIN is
audited; a hash value never is.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vigil.api.routes.bodies import check_body
from vigil.api.runtime.auth import remote_of
from vigil.api.schemas.problems import PROBLEM, ApiError, problem_body
from vigil.selfsubmit import cases, page
from vigil.selfsubmit.items import MAX_BODY_BYTES, MAX_ITEMS

router = APIRouter(include_in_schema=False)
ACTOR = "self-submission"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubmitIn(_In):
    concern: str = Field(max_length=32)
    consent: bool
    public_key: str = Field(max_length=400)
    items: list[dict[str, Any]] = Field(max_length=MAX_ITEMS + 1)


class CaseIn(_In):
    case: str = Field(max_length=64)


class ProofIn(CaseIn):
    pin: str | None = Field(default=None, max_length=64)
    challenge: str | None = Field(default=None, max_length=64)
    signature: str | None = Field(default=None, max_length=200)


def _refuse(request: Request, status: int, field: str | None, message: str,
            code: str) -> JSONResponse:
    body = problem_body(status, f"{field}: {message}" if field else message, request.url.path)
    body["code"] = code
    if field:
        body["errors"] = [{"field": field, "message": message}]
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


async def _body(request: Request, model: type[BaseModel]) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, f"body: {len(raw):,} bytes exceed the limit of {MAX_BODY_BYTES:,} "
                            "for a self-submission")
    await check_body(raw, request.app.state.node.settings.json_limits)
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        e = exc.errors()[0]
        where = ".".join(str(p) for p in e.get("loc", ())) or "body"
        raise ApiError(422, str(e.get("msg", "invalid")), f"body.{where}") from None


def _audit(request: Request, action: str, target: str | None, outcome: str = "ok",
           **detail: object) -> None:
    node = request.app.state.node
    node.audit.append(action, outcome=outcome, agency=node.identity.agency, actor=ACTOR,
                      target=target, remote=remote_of(request), detail=detail)


@router.get("/submit")
def submit_root() -> Response:
    return RedirectResponse("/submit/", status_code=308)


@router.get("/submit/{name:path}")
def submit_file(name: str) -> Response:
    found = page.read(name or "index.html")
    if found is None:
        raise ApiError(404, f"no page file {name[:100]!r}")
    data, media = found
    return Response(data, media_type=media, headers=page.HEADERS)


@router.post("/submit/api/cases", status_code=201)
async def submit_case(request: Request) -> Response:
    body = await _body(request, SubmitIn)
    node, remote = request.app.state.node, remote_of(request)
    try:
        done = await run_in_threadpool(cases.submit, node.engine, node.identity.agency,
                                       body.items, body.concern, body.consent,
                                       body.public_key, remote)
    except cases.CaseError as exc:
        await run_in_threadpool(_audit, request, "selfsubmit.submit", None, "denied",
                                reason=exc.code)
        return _refuse(request, exc.status, exc.field and f"body.{exc.field}", exc.message,
                       exc.code)
    node.banks_changed()
    await run_in_threadpool(_audit, request, "selfsubmit.submit", done.number,
                            items=done.items, signals=done.signals, concern=body.concern)
    return JSONResponse({"case": done.number, "pin": done.pin, "items": done.items,
                         "signals": done.signals}, status_code=201,
                        headers={"Cache-Control": "no-store"})


@router.post("/submit/api/challenge")
async def challenge(request: Request) -> Response:
    body = await _body(request, CaseIn)
    node = request.app.state.node
    try:
        nonce = await run_in_threadpool(cases.challenge, node.engine, body.case,
                                        remote_of(request))
    except cases.CaseError as exc:
        return _refuse(request, exc.status, None, exc.message, exc.code)
    return JSONResponse({"challenge": nonce}, headers={"Cache-Control": "no-store"})


async def _proven(request: Request, action: str) -> Response:
    body = await _body(request, ProofIn)
    node = request.app.state.node
    proof = cases.Proof(body.pin, body.challenge, body.signature)
    remote = remote_of(request)
    removed = 0
    try:
        if action == "status":
            st = await run_in_threadpool(cases.status, node.engine, body.case, proof, remote)
        else:
            st, removed = await run_in_threadpool(cases.withdraw, node.engine, body.case,
                                                  proof, remote)
    except cases.CaseError as exc:
        await run_in_threadpool(_audit, request, f"selfsubmit.{action}", None, "denied",
                                reason=exc.code)
        return _refuse(request, exc.status, None, exc.message, exc.code)
    by = "pin" if body.pin is not None else "recovery-key"
    if action == "status":
        await run_in_threadpool(_audit, request, "selfsubmit.status", st.number, by=by)
    else:
        await run_in_threadpool(_audit, request, "selfsubmit.withdraw", st.number, by=by,
                                removed=removed)
    return JSONResponse(st.to_json(), headers={"Cache-Control": "no-store"})


@router.post("/submit/api/status")
async def status(request: Request) -> Response:
    return await _proven(request, "status")


@router.post("/submit/api/withdraw")
async def withdraw(request: Request) -> Response:
    return await _proven(request, "withdraw")
