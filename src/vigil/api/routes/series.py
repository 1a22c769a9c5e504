"""Victim identification: the series registry (``/v1/series``) and its peer side
(``/v1/registry/…``).

* Reading series needs ``series.read`` (analysts, curators, the victim-ID desk); creating,
  claiming, identifying and closing need ``series.write`` (the ``victim-id`` role, or the
  admin). Every change is audited. A refused change (an invalid transition, an unknown
  series, another agency's series) answers a problem document naming the series and the
  rule.
* Peers (role ``peer``) pull this node's signed registry chain, the hit notices queued for
  *their* series, and the clues granted to *their* agency — nothing else.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path as FsPath
from typing import Annotated, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import Field

from vigil.api.routes.bodies import LimitedJsonRoute
from vigil.api.runtime.auth import remote_of, require
from vigil.api.schemas.models import Strict
from vigil.api.schemas.problems import ERROR_RESPONSES, ApiError
from vigil.node import PrincipalInfo, signing_key
from vigil.victimid import registry
from vigil.victimid.model import SeriesError, parse_lease
from vigil.victimid.service import Change, Registry
from vigil.victimid.sync import MAX_PAGE, clues_json, hits_json, serve_page

router = APIRouter(prefix="/v1", tags=["victim identification"], responses=ERROR_RESPONSES,
                   route_class=LimitedJsonRoute)
Reader = Annotated[PrincipalInfo, Depends(require("series.read"))]
Writer = Annotated[PrincipalInfo, Depends(require("series.write"))]
Peer = Annotated[PrincipalInfo, Depends(require("feeds.read"))]
SeriesId = Annotated[str, Path(min_length=3, max_length=100)]
After = Annotated[int, Query(ge=0, le=2**62)]


class SeriesIn(Strict):
    """A new series (or, on PATCH, the fields to change). Victims are opaque refs."""

    id: str = Field(default="", max_length=100)
    aliases: list[str] | None = Field(default=None, max_length=32)
    victims: list[str] | None = Field(default=None, max_length=64)
    offender_identified: bool | None = None
    country: str | None = Field(default=None, max_length=2)
    country_confidence: int | None = Field(default=None, ge=0, le=100)
    tags: list[str] | None = Field(default=None, max_length=32)

    def fields(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, exclude={"id"})


class ClaimIn(Strict):
    lease: str = Field(default="30d", max_length=12)


class IdentifyIn(Strict):
    contact_role: str = Field(max_length=80)
    case_ref: str = Field(default="", max_length=100)


class EmptyIn(Strict):
    """A release or a close carries nothing: send ``{}``."""


class ClueIn(Strict):
    text: str = Field(min_length=1, max_length=4000)
    grants: list[str] = Field(default_factory=list, max_length=64)


@lru_cache(maxsize=4)
def _key(home: FsPath) -> Ed25519PrivateKey:
    return signing_key(home)


def _reg(request: Request) -> Registry:
    node = request.app.state.node
    return Registry(node.engine, _key(node.settings.home), node.identity.agency)


def _audit(request: Request, caller: PrincipalInfo, action: str, target: str,
           outcome: str = "ok", **detail: object) -> None:
    node = request.app.state.node
    node.audit.append(action, outcome=outcome, agency=node.identity.agency,
                      actor=caller.label, target=target, remote=remote_of(request),
                      detail=detail)


def _refused(request: Request, caller: PrincipalInfo, action: str, sid: str,
             exc: SeriesError) -> ApiError:
    _audit(request, caller, action, sid, outcome="denied", reason=str(exc))
    return ApiError(exc.status, str(exc), "series")


def _change(request: Request, caller: PrincipalInfo, action: str, sid: str,
            do: Any, **detail: Any) -> dict[str, Any]:
    try:
        ch: Change = do(_reg(request))
    except SeriesError as exc:
        raise _refused(request, caller, action, sid, exc) from None
    _audit(request, caller, action, sid, status=ch.state.status, seq=ch.seq, **detail)
    return {**ch.state.as_dict(), "note": ch.note}


@router.get("/series", summary="Every series known here, with its status")
def list_series(request: Request, caller: Reader,
                status: Annotated[str | None, Query(max_length=20)] = None,
                ) -> list[dict[str, Any]]:
    states = sorted(_reg(request).states().values(), key=lambda s: s.id)
    return [s.as_dict() for s in states if status is None or s.status == status]


@router.get("/series/hits", summary="Hit notices peers sent about this agency's series")
def received_hits(request: Request, caller: Reader) -> dict[str, Any]:
    got = registry.received_hits(request.app.state.node.engine)
    return {"hits": [{"series": h.series_id, "finder": h.agency, "items": h.items,
                      "case_ref": h.case_ref, "at": h.at.isoformat()} for h in got]}


@router.post("/series", status_code=201, summary="Create a series in this agency's namespace")
def create_series(body: SeriesIn, request: Request, caller: Writer) -> dict[str, Any]:
    return _change(request, caller, "series.create", body.id,
                   lambda r: r.create(body.id, body.fields()))


@router.get("/series/{series_id}", summary="One series: status, claims, conflicts")
def get_series(series_id: SeriesId, request: Request, caller: Reader) -> dict[str, Any]:
    try:
        reg = _reg(request)
        s = reg.get(series_id)
    except SeriesError as exc:
        raise ApiError(exc.status, str(exc), "series") from None
    own = [{"id": c.id, "text": c.text, "grants": list(c.grants), "origin": c.origin}
           for c in reg.clues(series_id)]
    return {**s.as_dict(), "clues": own}


@router.patch("/series/{series_id}", summary="Change a series' description (origin only)")
def update_series(series_id: SeriesId, body: SeriesIn, request: Request,
                  caller: Writer) -> dict[str, Any]:
    return _change(request, caller, "series.update", series_id,
                   lambda r: r.describe(series_id, body.fields()))


def _lease(request: Request, caller: PrincipalInfo, action: str, sid: str, text: str) -> Any:
    try:
        return parse_lease(text)
    except SeriesError as exc:
        raise _refused(request, caller, action, sid, exc) from None


@router.post("/series/{series_id}/claim", summary="Claim a series (a lease; may be contested)")
def claim(series_id: SeriesId, body: ClaimIn, request: Request,
          caller: Writer) -> dict[str, Any]:
    lease = _lease(request, caller, "series.claim", series_id, body.lease)
    return _change(request, caller, "series.claim", series_id,
                   lambda r: r.claim(series_id, lease), lease=body.lease)


@router.post("/series/{series_id}/renew", summary="Renew this agency's claim")
def renew(series_id: SeriesId, body: ClaimIn, request: Request,
          caller: Writer) -> dict[str, Any]:
    lease = _lease(request, caller, "series.renew", series_id, body.lease)
    return _change(request, caller, "series.renew", series_id,
                   lambda r: r.renew(series_id, lease), lease=body.lease)


@router.post("/series/{series_id}/release", summary="Release this agency's claim")
def release(series_id: SeriesId, body: EmptyIn, request: Request,
            caller: Writer) -> dict[str, Any]:
    return _change(request, caller, "series.release", series_id,
                   lambda r: r.release(series_id))


@router.post("/series/{series_id}/identify", summary="Mark a series identified")
def identify(series_id: SeriesId, body: IdentifyIn, request: Request,
             caller: Writer) -> dict[str, Any]:
    return _change(request, caller, "series.identify", series_id,
                   lambda r: r.identify(series_id, body.contact_role, body.case_ref),
                   contact_role=body.contact_role)


@router.post("/series/{series_id}/close", summary="Close a series (origin only)")
def close(series_id: SeriesId, body: EmptyIn, request: Request,
          caller: Writer) -> dict[str, Any]:
    return _change(request, caller, "series.close", series_id, lambda r: r.close(series_id))


@router.post("/series/{series_id}/clues", status_code=201,
             summary="A free-text clue: local unless granted to named agencies")
def add_clue(series_id: SeriesId, body: ClueIn, request: Request,
             caller: Writer) -> dict[str, Any]:
    try:
        c = _reg(request).add_clue(series_id, body.text, body.grants, by=caller.label)
    except (SeriesError, ValueError) as exc:
        status = exc.status if isinstance(exc, SeriesError) else 422
        _audit(request, caller, "series.clue", series_id, outcome="denied", reason=str(exc))
        raise ApiError(status, str(exc), "series") from None
    _audit(request, caller, "series.clue", series_id, clue=c.id, grants=list(c.grants))
    return {"id": c.id, "series": series_id, "grants": list(c.grants)}


# ---- the peer side -------------------------------------------------------------------------

@router.get("/registry/feed", summary="This node's signed series registry chain after a seq")
def registry_feed(request: Request, caller: Peer, after: After = 0,
                  limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 5000) -> Response:
    node = request.app.state.node
    page = serve_page(node.engine, node.identity.agency, after, limit)
    _audit(request, caller, "series.feed", "/v1/registry/feed", after=after,
           records=len(page["records"]), head=page["head"])
    # the bodies are the stored canonical texts, written out as they are
    return Response(json.dumps(page, ensure_ascii=False, separators=(",", ":")).encode(),
                    media_type="application/json")


@router.get("/registry/hits", summary="Hit notices queued for the caller's agency's series")
def registry_hits(request: Request, caller: Peer, after: After = 0) -> dict[str, Any]:
    node = request.app.state.node
    got = registry.hits_for(node.engine, caller.agency, after, MAX_PAGE)
    _audit(request, caller, "series.hits.read", "/v1/registry/hits", after=after,
           hits=len(got))
    return hits_json(got)


@router.get("/registry/clues", summary="Clues this node granted to the caller's agency")
def registry_clues(request: Request, caller: Peer, after: After = 0) -> dict[str, Any]:
    node = request.app.state.node
    got = registry.clues_granted(node.engine, node.identity.agency, caller.agency, after,
                                 MAX_PAGE)
    _audit(request, caller, "series.clues.read", "/v1/registry/clues", after=after,
           clues=len(got))
    return clues_json(got)
