"""POST /v1/match, /v1/hash, /v1/match/file: matching a batch of signals, hashing a file.

The caller's agency bounds what it can match: only its own banks are searched (sharing
with other agencies comes with federation). What a lead shows depends on the caller's
roles: matchers get bank, category and distance only; analysts also get the labels.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from vigil.api.routes.bodies import LimitedJsonRoute
from vigil.api.routes.upload import hash_response, read_upload, signals_of_bytes
from vigil.api.runtime import metrics
from vigil.api.runtime.auth import allowed, remote_of, require
from vigil.api.runtime.state import NodeState
from vigil.api.schemas.models import (
    BankName,
    Category,
    FileMatchResponse,
    HashResponse,
    MatchOut,
    MatchRequest,
    MatchResponse,
    SignalResult,
    VideoDetail,
)
from vigil.api.schemas.problems import ERROR_RESPONSES, ApiError
from vigil.matching import (
    DEFAULT_MIN_QUALITY,
    DEFAULT_THRESHOLD,
    Match,
    Outcome,
    queries_of,
    video_detail,
)
from vigil.matching import Query as MatchQuery
from vigil.node import PrincipalInfo
from vigil.signals import HashOptions
from vigil.signals.options import VariantOption
from vigil.victimid.annotate import notes_for

router = APIRouter(prefix="/v1", tags=["matching"], responses=ERROR_RESPONSES,
                   route_class=LimitedJsonRoute)
OCTET = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


def series_notes_of(request: Request, outcomes: list[Outcome]) -> dict[str, dict[str, Any]]:
    """The series registry's notes on the leads' series (one batch): identified by whom,
    claimed by whom. Analysts see them with the labels; matchers see neither."""
    return notes_for(request.app.state.node.engine,
                     (m.entry.labels.series for o in outcomes for m, _ in o.leads()))


def _match_out(m: Match, signals: list[str], full: bool,
               notes: dict[str, dict[str, Any]] | None = None) -> MatchOut:
    lab = m.entry.labels
    cat = Category(scheme=lab.category[0], value=lab.category[1]) if lab.category else None
    out = MatchOut(bank=m.entry.bank, distance=int(m.distance), signal_type=m.signal_type,
                   signals=signals, variant=m.variant, category=cat, inliers=m.inliers,
                   video=VideoDetail.model_validate(video_detail(m.video)) if m.video else None)
    if full:
        out.entry_id, out.agency = m.entry.id, m.entry.origin_agency
        out.series, out.victim_status = lab.series, lab.victim_status
        out.tags, out.note = list(lab.tags), lab.note
        if notes and lab.series in notes:
            out.series_status = notes[lab.series]
    return out


def disagreement(o: Outcome) -> bool:
    """Whether agencies label what matched differently: categories that differ between
    the matched entries of different origin agencies (each keeps its own label)."""
    cats: dict[str, set[tuple[str, str]]] = {}
    for m in o.matches:
        if m.entry.labels.category is not None:
            cats.setdefault(m.entry.origin_agency, set()).add(m.entry.labels.category)
    return len(cats) > 1 and len(set().union(*cats.values())) > 1


def wanted_banks(node: NodeState, caller: PrincipalInfo,
                 banks: list[str] | None) -> set[str] | None:
    """The banks to search: the caller's own, or those it named if all are its own
    (None if not: the caller is told which are unknown)."""
    own = node.own_banks(caller.agency)
    if banks is None:
        return own
    return set(banks) if own.issuperset(banks) else None


def _wanted(request: Request, caller: PrincipalInfo, banks: list[str] | None) -> set[str]:
    node = request.app.state.node
    wanted = wanted_banks(node, caller, banks)
    if wanted is None:  # another agency's bank is "unknown" too: its existence is not disclosed
        unknown = sorted(set(banks or ()) - node.own_banks(caller.agency))
        raise ApiError(404, f"no bank named {', '.join(map(repr, unknown[:5]))}", "banks")
    return wanted


def filter_outcome(o: Outcome, caller: PrincipalInfo, wanted: set[str]) -> None:
    """Keep only the matches in the caller's agency's wanted banks."""
    o.matches = [m for m in o.matches
                 if m.entry.agency == caller.agency and m.entry.bank in wanted]


def _audit_match(request: Request, caller: PrincipalInfo, signals: list[tuple[str, str]],
                 matched: int, **extra: object) -> None:
    node = request.app.state.node
    node.audit.append("match", agency=caller.agency, actor=caller.label,
                      remote=remote_of(request),
                      detail={"signals": len(signals), "matched": matched,
                              "digest": node.audit.digest_signals(signals), **extra})
    metrics.SIGNALS.inc(len(signals))
    metrics.MATCHED.inc(matched)


@router.post("/match", response_model=MatchResponse, response_model_exclude_none=True,
             summary="Match a batch of signals (up to 10,000)")
def match(req: MatchRequest, request: Request,
          caller: Annotated[PrincipalInfo, Depends(require("match"))]) -> MatchResponse:
    wanted = _wanted(request, caller, req.banks)
    items = [[MatchQuery(s.type, s.value, s.quality, tuple((s.variants or {}).items()),
                         derived=tuple((n, h, s.quality if s.quality is not None else 100)
                                       for n, h in (s.derived or {}).items()))]
             for s in req.signals]
    try:
        outcomes = request.app.state.node.matcher.match(
            items, threshold=req.threshold, min_quality=req.min_quality,
            variants=req.variants)
    except ValueError as exc:
        raise ApiError(422, str(exc), "body") from None
    full = allowed(caller, "labels.read")
    results = []
    for o in outcomes:
        filter_outcome(o, caller, wanted)
    notes = series_notes_of(request, outcomes) if full else {}
    for i, o in enumerate(outcomes):
        leads = [_match_out(m, s, full, notes) for m, s in o.leads()]
        results.append(SignalResult(index=i, skipped=o.skipped, matches=leads,
                                    disagreement=disagreement(o) or None))
    matched = sum(1 for r in results if r.matches)
    _audit_match(request, caller, [(s.type, s.value) for s in req.signals], matched,
                 threshold=req.threshold,
                 dihedral=any(s.variants for s in req.signals),
                 # named only when asked for: the lean path (no variants) audits alike
                 **({"variants": req.variants} if req.variants != "off" else {}))
    return MatchResponse(signals=len(results), matched=matched, results=results)


def _options(dihedral: bool, reference: bool, variants: VariantOption = "off") -> HashOptions:
    return HashOptions(mode="reference" if reference else "fast", dihedral=dihedral,
                       variants=variants)


@router.post("/hash", response_model=HashResponse, response_model_exclude_none=True,
             openapi_extra=OCTET, summary="Hash an uploaded file (held in memory, never stored)")
async def hash_upload(request: Request,
                      caller: Annotated[PrincipalInfo, Depends(require("hash"))],
                      dihedral: bool = False, reference: bool = False) -> HashResponse:
    data = await read_upload(request, request.app.state.node.settings.max_upload_bytes)
    r = await run_in_threadpool(signals_of_bytes, data, _options(dihedral, reference))
    return hash_response(r)


@router.post("/match/file", response_model=FileMatchResponse, response_model_exclude_none=True,
             openapi_extra=OCTET, summary="Hash an uploaded file and match its signals")
async def match_file(
        request: Request, caller: Annotated[PrincipalInfo, Depends(require("match"))],
        dihedral: bool = False, reference: bool = False,
        threshold: Annotated[int, Query(ge=0, le=64)] = DEFAULT_THRESHOLD,
        min_quality: Annotated[int, Query(ge=0, le=100)] = DEFAULT_MIN_QUALITY,
        banks: Annotated[list[BankName] | None, Query(max_length=1000)] = None,
        variants: Annotated[VariantOption, Query(
            description="also match edited copies: borders (framed, letter-boxed), crops "
            "(cropped, captioned; against banks with a crop ladder), all, features (all, "
            "plus a second stage for rotated and heavily cropped copies: candidates within "
            "a wide PDQ radius confirmed by the picture's local features; about twice "
            "the hashing time of all, see docs/crops.md), or off")] = "off",
        ) -> FileMatchResponse:
    wanted = await run_in_threadpool(_wanted, request, caller, banks)
    data = await read_upload(request, request.app.state.node.settings.max_upload_bytes)
    r = await run_in_threadpool(signals_of_bytes, data, _options(dihedral, reference, variants))
    queries = queries_of(r, dihedral)
    [o] = await run_in_threadpool(lambda: request.app.state.node.matcher.match(
        [queries], threshold=threshold, min_quality=min_quality, variants=variants))
    filter_outcome(o, caller, wanted)
    full = allowed(caller, "labels.read")
    notes = await run_in_threadpool(series_notes_of, request, [o]) if full else {}
    leads = [_match_out(m, s, full, notes) for m, s in o.leads()]
    await run_in_threadpool(_audit_match, request, caller,
                            [(q.signal_type, q.value) for q in queries], 1 if leads else 0,
                            threshold=threshold, dihedral=dihedral, variants=variants,
                            file=True)
    return FileMatchResponse(signals=hash_response(r), matches=leads, skipped=o.skipped,
                             disagreement=disagreement(o) or None)
