"""Takedown: reported URLs (``/v1/urls``) and notices (``/v1/notices``), their contacts and
reports. The notice loop itself runs inside ``vigil serve`` (vigil.takedown.worker).

URLs and notices are the node's own records; reading them needs ``takedown.read``,
reporting URLs and moving notices on ``takedown.write``, and every change is audited.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import Field

from vigil.api.routes.bodies import LimitedJsonRoute
from vigil.api.runtime.auth import remote_of, require
from vigil.api.schemas.models import Strict
from vigil.api.schemas.problems import ERROR_RESPONSES, ApiError
from vigil.node import UNKNOWN_JURISDICTION, PrincipalInfo, agency_jurisdiction, signing_key
from vigil.takedown import contacts, forward, intake, repo, reports
from vigil.takedown.clock import clock_from_env

router = APIRouter(prefix="/v1", tags=["takedown"], responses=ERROR_RESPONSES,
                   route_class=LimitedJsonRoute)
Reader = Annotated[PrincipalInfo, Depends(require("takedown.read"))]
Writer = Annotated[PrincipalInfo, Depends(require("takedown.write"))]
Peer = Annotated[PrincipalInfo, Depends(require("feeds.read"))]
PathId = Annotated[int, Path(ge=1, le=2**62)]
After = Annotated[int, Query(ge=0, le=2**62)]
#: the reports answer JSON, or a page with ?format=html
JSON_OR_HTML: dict[int | str, dict[str, Any]] = {200: {"content": {
    "application/json": {}, "text/html": {"schema": {"type": "string"}}}}}
#: URLs one request may report
MAX_URLS = 10_000


class UrlIn(Strict):
    url: str = Field(max_length=4096)
    case: str = Field(max_length=1000)


class UrlsIn(Strict):
    urls: list[UrlIn] = Field(min_length=1, max_length=MAX_URLS)


class ContactIn(Strict):
    email: str = Field(max_length=320)
    escalation_email: str | None = Field(default=None, max_length=320)
    name: str = Field(default="", max_length=1000)
    country: str | None = Field(default=None, max_length=2)


class StepIn(Strict):
    """A step of a notice's lifecycle carries nothing yet: send ``{}`` (every POST of the
    node is JSON)."""


def _engine(request: Request) -> Any:
    return request.app.state.node.engine


def _audit(request: Request, caller: PrincipalInfo, action: str, target: str | None,
           **detail: object) -> None:
    request.app.state.node.audit.append(action, agency=caller.agency, actor=caller.label,
                                        target=target, remote=remote_of(request),
                                        detail=detail)


@router.post("/urls", summary="Report URLs (each with a case reference)")
def add_urls(body: UrlsIn, request: Request, caller: Writer) -> dict[str, Any]:
    """All URLs are checked first: one bad URL refuses the request (its index named) and
    nothing is added. A URL already reported is answered with its existing record."""
    checked = []
    for i, u in enumerate(body.urls):
        try:
            checked.append(intake.check(u.url, u.case))
        except intake.IntakeError as exc:
            raise ApiError(422, str(exc), f"body.urls[{i}]") from None
    now = clock_from_env().now()
    rows = [intake.add(_engine(request), r, caller.label, now) for r in checked]
    added = sum(1 for _, new in rows if new)
    _audit(request, caller, "takedown.url.add", None, added=added,
           known=len(rows) - added)
    return {"added": added, "known": len(rows) - added,
            "urls": [r.to_json() for r, _ in rows]}


@router.get("/urls", summary="Reported URLs")
def list_urls(request: Request, caller: Reader,
              state: Annotated[str | None, Query(max_length=16)] = None,
              case: Annotated[str | None, Query(max_length=200)] = None,
              after: After = 0,
              limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> list[dict[str, Any]]:
    return [r.to_json() for r in repo.list_urls(_engine(request), state, case, limit, after)]


@router.get("/urls/{url_id}", summary="A reported URL and its fetches")
def get_url(url_id: PathId, request: Request, caller: Reader) -> dict[str, Any]:
    row = repo.get_url(_engine(request), url_id)
    if row is None:
        raise ApiError(404, f"no url {url_id}", "url_id")
    return {**row.to_json(), "fetches": repo.fetches(_engine(request), url_id)}


@router.get("/notices", summary="Takedown notices")
def list_notices(request: Request, caller: Reader,
                 state: Annotated[str | None, Query(max_length=16)] = None,
                 host: Annotated[str | None, Query(max_length=255)] = None,
                 case: Annotated[str | None, Query(max_length=200)] = None,
                 after: After = 0,
                 limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
                 ) -> list[dict[str, Any]]:
    if state is not None and state not in (*repo.STATES, "active"):
        raise ApiError(400, f"state must be one of {', '.join(repo.STATES)} or active",
                       "query.state")
    return [n.to_json() for n in repo.list_notices(_engine(request), state, host, case,
                                                   limit, after)]


@router.get("/notices/report", responses=JSON_OR_HTML,
            summary="Time to removal and re-uploads per host (JSON or HTML)")
def host_report(request: Request, caller: Reader,
                format: Annotated[str, Query(pattern="^(json|html)$")] = "json") -> Any:
    engine = _engine(request)
    report = reports.host_report(repo.list_notices(engine, limit=10_000_000),
                                 repo.links(engine), clock_from_env().now())
    return HTMLResponse(reports.html_page(report)) if format == "html" else report


@router.get("/notices/forwarded",
            summary="Notices of hosts in the caller's jurisdiction, signed (peers only)")
def forwarded(request: Request, caller: Peer, after: After = 0,
              limit: Annotated[int, Query(ge=1, le=forward.MAX_ITEMS)] = forward.MAX_ITEMS,
              ) -> dict[str, Any]:
    """A partner node pulls the notices whose host is in its jurisdiction, to notice the
    host itself (hotline to hotline); ``next`` is the cursor of its next pull. An agency
    whose jurisdiction this node does not know (``XX``) is forwarded nothing."""
    node = request.app.state.node
    juris = agency_jurisdiction(node.engine, caller.agency) or UNKNOWN_JURISDICTION
    page = forward.outgoing(node.engine, signing_key(node.settings.home),
                            node.identity.agency, caller.agency,
                            "" if juris == UNKNOWN_JURISDICTION else juris, after, limit)
    if page["items"]:
        node.audit.append("takedown.forward", agency=node.identity.agency,
                          actor=caller.label, target=caller.agency,
                          remote=remote_of(request), detail={"notices": len(page["items"])})
    return page


@router.get("/notices/series/{series}/report", responses=JSON_OR_HTML,
            summary="A series' recirculation report: no content, no content URLs")
def series_report(request: Request, caller: Reader,
                  series: Annotated[str, Path(max_length=200)],
                  format: Annotated[str, Query(pattern="^(json|html)$")] = "json") -> Any:
    engine = _engine(request)
    report = reports.series_report(series, repo.list_notices(engine, limit=10_000_000),
                                   repo.links(engine), clock_from_env().now())
    return HTMLResponse(reports.html_page(report)) if format == "html" else report


@router.get("/notices/contacts", summary="Hosts' contacts")
def list_contacts(request: Request, caller: Reader) -> list[dict[str, Any]]:
    return [c.to_json() for c in repo.list_contacts(_engine(request))]


@router.put("/notices/contacts/{domain}", summary="Set a host's contact")
def set_contact(domain: Annotated[str, Path(max_length=255)], body: ContactIn,
                request: Request, caller: Writer) -> dict[str, Any]:
    try:
        c = contacts.check(domain, body.email, body.escalation_email, body.name, body.country)
    except contacts.ContactError as exc:
        raise ApiError(422, str(exc), "body") from None
    repo.set_contact(_engine(request), c, clock_from_env().now())
    _audit(request, caller, "takedown.contact.set", c.domain)
    return c.to_json()


@router.get("/notices/{notice_id}", summary="A notice, its messages and its re-upload links")
def get_notice(notice_id: PathId, request: Request, caller: Reader) -> dict[str, Any]:
    engine = _engine(request)
    n = repo.get_notice(engine, notice_id)
    if n is None:
        raise ApiError(404, f"no notice {notice_id}", "notice_id")
    pairs = repo.links(engine, [notice_id])
    return {**n.to_json(),
            "reupload_of": sorted(b for a, b in pairs if a == notice_id),
            "reuploaded_as": sorted(a for a, b in pairs if b == notice_id),
            "messages": [{"number": s.seq, "kind": s.kind, "to": s.to_addr,
                          "state": s.state, "message_id": s.message_id,
                          "sent_at": s.sent_at.isoformat() if s.sent_at else None}
                         for s in repo.sends(engine, notice_id)]}


def _step(request: Request, caller: PrincipalInfo, notice_id: int, action: str,
          ) -> dict[str, Any]:
    try:
        n = repo.set_state(_engine(request), notice_id, action, clock_from_env().now())
    except repo.TakedownError as exc:
        status = 404 if str(exc).startswith("no notice") else 409
        raise ApiError(status, str(exc), "notice_id") from None
    _audit(request, caller, f"takedown.notice.{action}", str(notice_id), host=n.domain)
    return n.to_json()


@router.post("/notices/{notice_id}/acknowledge", summary="The host acknowledged a notice")
def acknowledge(notice_id: PathId, body: StepIn, request: Request, caller: Writer,
                ) -> dict[str, Any]:
    return _step(request, caller, notice_id, "acknowledge")


@router.post("/notices/{notice_id}/close", summary="Close a notice")
def close(notice_id: PathId, body: StepIn, request: Request, caller: Writer,
          ) -> dict[str, Any]:
    return _step(request, caller, notice_id, "close")
