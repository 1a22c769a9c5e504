"""HMA-compatible lookups: Hasher-Matcher-Actioner's routes, parameters and answer shapes,
so an integration written for HMA can point at a Vigil node (docs/interop.md).

Unlike HMA, every route needs a Vigil token (``Authorization: Bearer``) and every call is
in the audit log (a keyed digest of the signals, never the signals); lookups search the
caller's agency's own banks only, as ``/v1/match`` does; URLs are fetched only from hosts
the operator allowed (``vigil.interop.fetch``). Errors are Vigil's problem documents.
"""

from __future__ import annotations

import email.parser
import email.policy
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from vigil.api.routes.match import filter_outcome, wanted_banks
from vigil.api.routes.ops import MAX_SYNC_AGE
from vigil.api.routes.upload import read_upload, signals_of_bytes
from vigil.api.runtime import metrics
from vigil.api.runtime.auth import remote_of, require
from vigil.api.runtime.state import NodeState
from vigil.api.schemas.problems import ERROR_RESPONSES, ApiError
from vigil.interop import hma
from vigil.interop.fetch import FetchRefused, fetch
from vigil.matching import Query as MatchQuery
from vigil.node import PrincipalInfo
from vigil.signals import HashOptions

router = APIRouter(tags=["HMA-compatible"], responses=ERROR_RESPONSES)
Matcher = Annotated[PrincipalInfo, Depends(require("match"))]
Hasher = Annotated[PrincipalInfo, Depends(require("hash"))]
Anyone = Annotated[PrincipalInfo, Depends(require("self"))]
MULTIPART = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "properties": {ct: {"type": "string", "format": "binary"}
                                     for ct in hma.CONTENT_TYPES}}}}}}
#: parts a multipart upload may have (HMA takes one file)
MAX_PARTS = 4
Banks = Annotated[str | None, Query(max_length=10_000,
                                    description="comma-separated bank names to search")]


def _node(request: Request) -> NodeState:
    node: NodeState = request.app.state.node
    return node


def _banks(request: Request, caller: PrincipalInfo, banks: str | None) -> set[str]:
    names = None if not banks else [b.strip() for b in banks.split(",") if b.strip()]
    wanted = wanted_banks(_node(request), caller, names)
    if wanted is None:  # another agency's bank is "unknown" too: its existence is not disclosed
        unknown = sorted(set(names or ()) - _node(request).own_banks(caller.agency))
        raise ApiError(404, f"no bank named {', '.join(map(repr, unknown[:5]))}", "query.banks")
    return wanted


def _query(signal_type: str | None, signal: str | None) -> MatchQuery:
    if not signal or not signal_type:
        raise ApiError(400, "Either url or both signal and signal_type are required", "query")
    try:
        return hma.query_of(signal_type, signal)
    except hma.HmaRequestError as exc:
        raise ApiError(400, str(exc), f"query.{exc.field}") from None


def _lookup(request: Request, caller: PrincipalInfo, queries: dict[str, MatchQuery],
            wanted: set[str], route: str) -> dict[str, dict[str, list[dict[str, object]]]]:
    """Match each query; HMA's answer per signal type; one audit record for the call."""
    node = _node(request)
    names = list(queries)
    outcomes = node.matcher.match([[queries[n]] for n in names]) if names else []
    out = {}
    for name, o in zip(names, outcomes, strict=True):
        filter_outcome(o, caller, wanted)
        out[name] = hma.by_bank(o.matches)
    matched = sum(1 for v in out.values() if v)
    node.audit.append("match", agency=caller.agency, actor=caller.label,
                      remote=remote_of(request), target=route,
                      detail={"signals": len(names), "matched": matched, "via": "hma",
                              "digest": node.audit.digest_signals(
                                  (q.signal_type, q.value) for q in queries.values())})
    metrics.SIGNALS.inc(len(names))
    metrics.MATCHED.inc(matched)
    return out


def _audit_hash(request: Request, caller: PrincipalInfo, route: str, size: int,
                source: str) -> None:
    node = _node(request)
    node.audit.append("hash", agency=caller.agency, actor=caller.label,
                      remote=remote_of(request), target=route,
                      detail={"via": "hma", "bytes": size, "source": source})


def _content_type(name: str | None, mime: str) -> str:
    """HMA's content type: as given, or from the media type of what was fetched."""
    if name:
        if name not in hma.CONTENT_TYPES:
            raise ApiError(400, f"no such content_type: '{name[:40]}' (photo or video)",
                           "query.content_type")
        return name
    for ct, prefix in (("photo", "image"), ("video", "video")):
        if mime.lower().startswith(prefix):
            return ct
    raise ApiError(400, f"unsupported url ContentType: '{mime[:60]}', if you know the expected "
                        "type, provide it with the content_type query param",
                   "query.content_type")


def _types(content_type: str, types: str | None) -> tuple[str, ...]:
    allowed = hma.CONTENT_TYPES[content_type]
    if types is None:
        return allowed
    chosen = tuple(t.strip() for t in types.split(",") if t.strip())
    bad = [t for t in chosen if t not in allowed]
    if bad or not chosen:
        raise ApiError(400, f"signal type '{(bad or [''])[0][:40]}' doesn't exist or is "
                            f"disabled for {content_type}; known: {', '.join(allowed)}",
                       "query.types")
    return chosen


def _hash(data: bytes, content_type: str, types: tuple[str, ...]) -> dict[str, str]:
    r = signals_of_bytes(data, HashOptions(mode="reference"))
    if r.error is not None and r.digests is None:
        raise ApiError(422, f"the file could not be read: {r.error.cause}", "body")
    got = hma.file_signals(r, content_type)
    missing = [t for t in types if t not in got]
    if missing:
        raise ApiError(422, f"the file gives no {missing[0]} signal (not a {content_type} "
                            "this node can hash)", "body")
    return {t: got[t] for t in types}


async def _fetched(request: Request, url: str, content_type: str | None,
                   types: str | None) -> tuple[dict[str, str], int]:
    limit = _node(request).settings.max_upload_bytes
    try:
        data, mime = await run_in_threadpool(fetch, url, limit)
    except FetchRefused as exc:
        raise ApiError(exc.status, str(exc), "query.url") from None
    ct = _content_type(content_type, mime)
    return await run_in_threadpool(_hash, data, ct, _types(ct, types)), len(data)


async def _uploaded(request: Request) -> tuple[str, bytes]:
    """The one file of a ``multipart/form-data`` body, and the content type its field
    names (HMA: the field name is ``photo`` or ``video``)."""
    ctype = request.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        raise ApiError(400, "Missing multipart/form-data file upload", "body")
    body = await read_upload(request, _node(request).settings.max_upload_bytes)
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body)
    parts = list(msg.iter_parts()) if msg.is_multipart() else []
    files = [p for p in parts[:MAX_PARTS + 1] if p.get_filename() is not None]
    if len(parts) > MAX_PARTS or len(files) > 1:
        raise ApiError(400, "Only one file allowed per request", "body")
    if not files:
        raise ApiError(400, "Missing multipart/form-data file upload", "body")
    part = files[0]
    name = part.get_param("name", header="content-disposition")
    field = str(name) if isinstance(name, str) else ""
    if field not in hma.CONTENT_TYPES:
        raise ApiError(400, f"no such content_type: '{field[:40]}' (the file's form field "
                            "must be named photo or video)", "body")
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes) or not data:
        raise ApiError(422, "the uploaded file is empty", "body")
    return field, data


# ---- matching: /m/… --------------------------------------------------------------------------

@router.get("/m/raw_lookup", summary="HMA: look up one hash; matched bank_content_ids")
def raw_lookup(request: Request, caller: Matcher,
               signal: Annotated[str, Query(max_length=hma.MAX_SIGNAL_CHARS)],
               signal_type: Annotated[str, Query(max_length=40)],
               banks: Banks = None, include_distance: bool = False) -> dict[str, Any]:
    wanted = _banks(request, caller, banks)
    found = _lookup(request, caller, {signal_type: _query(signal_type, signal)}, wanted,
                    "/m/raw_lookup")[signal_type]
    matches = [m for ms in found.values() for m in ms]
    if include_distance:
        return {"matches": matches}
    return {"matches": [m["bank_content_id"] for m in matches]}


@router.get("/m/lookup", summary="HMA: look up a hash, or a fetched URL; matches by bank")
async def lookup_get(
        request: Request, caller: Matcher,
        signal: Annotated[str | None, Query(max_length=hma.MAX_SIGNAL_CHARS)] = None,
        signal_type: Annotated[str | None, Query(max_length=40)] = None,
        url: Annotated[str | None, Query(max_length=4000)] = None,
        content_type: Annotated[str | None, Query(max_length=40)] = None,
        types: Annotated[str | None, Query(max_length=400)] = None,
        banks: Banks = None, seed: Annotated[str | None, Query(max_length=200)] = None,
        bypass_coinflip: bool = False) -> dict[str, Any]:
    wanted = await run_in_threadpool(_banks, request, caller, banks)
    if not url:
        q = _query(signal_type, signal)
        assert signal_type is not None
        res = await run_in_threadpool(_lookup, request, caller, {signal_type: q}, wanted,
                                      "/m/lookup")
        return res[signal_type]
    hashes, size = await _fetched(request, url, content_type, types)
    await run_in_threadpool(_audit_hash, request, caller, "/m/lookup", size, "url")
    queries = {t: hma.query_of(t, s) for t, s in hashes.items()}
    res = await run_in_threadpool(_lookup, request, caller, queries, wanted, "/m/lookup")
    if signal_type is not None:
        return res.get(signal_type, {})
    return res


@router.post("/m/lookup", openapi_extra=MULTIPART,
             summary="HMA: hash an uploaded photo or video and look it up; matches by type")
async def lookup_post(request: Request, caller: Matcher, banks: Banks = None,
                      seed: Annotated[str | None, Query(max_length=200)] = None,
                      bypass_coinflip: bool = False) -> dict[str, Any]:
    wanted = await run_in_threadpool(_banks, request, caller, banks)
    ct, data = await _uploaded(request)
    hashes = await run_in_threadpool(_hash, data, ct, hma.CONTENT_TYPES[ct])
    queries = {t: hma.query_of(t, s) for t, s in hashes.items()}
    return await run_in_threadpool(_lookup, request, caller, queries, wanted, "/m/lookup")


@router.get("/m/index/status", summary="HMA: the index of each signal type")
def index_status(request: Request, caller: Matcher,
                 signal_type: Annotated[str | None, Query(max_length=40)] = None,
                 ) -> dict[str, Any]:
    st = _node(request).index.status()
    names = [n for n in hma.HMA_TYPES if signal_type in (None, n)]
    if not names:
        raise ApiError(400, f"No such signal type '{(signal_type or '')[:40]}'",
                       "query.signal_type")
    built_to = hma.built_to(st["lag_seconds"]) if st["error"] is None else -1
    out: dict[str, Any] = {}
    for n in names:
        size = int(st["sizes"].get(hma.SIGNAL_TYPES[n], 0))
        out[n] = {"present": built_to >= 0, "built_to": built_to, "size": size}
    return out


# ---- hashing: /h/… ---------------------------------------------------------------------------

@router.get("/h/hash", summary="HMA: fetch a URL (allowed hosts only) and hash it")
async def hash_url(request: Request, caller: Hasher,
                   url: Annotated[str, Query(max_length=4000)],
                   content_type: Annotated[str | None, Query(max_length=40)] = None,
                   types: Annotated[str | None, Query(max_length=400)] = None,
                   ) -> dict[str, str]:
    hashes, size = await _fetched(request, url, content_type, types)
    await run_in_threadpool(_audit_hash, request, caller, "/h/hash", size, "url")
    return hashes


@router.post("/h/hash", openapi_extra=MULTIPART, summary="HMA: hash an uploaded photo or video")
async def hash_post(request: Request, caller: Hasher) -> dict[str, str]:
    ct, data = await _uploaded(request)
    hashes = await run_in_threadpool(_hash, data, ct, hma.CONTENT_TYPES[ct])
    await run_in_threadpool(_audit_hash, request, caller, "/h/hash", len(data), "upload")
    return hashes


# ---- status ----------------------------------------------------------------------------------

@router.get("/status", response_class=PlainTextResponse,
            summary="HMA: I-AM-ALIVE, or 503 while the index is not loaded or stale",
            responses={503: {"content": {"text/plain": {}}}})
def status(request: Request, caller: Anyone) -> PlainTextResponse:
    st = _node(request).index.status()
    if st["error"] is not None:
        return PlainTextResponse("INDEX-NOT-LOADED", status_code=503)
    if st["lag_changes"] > 0 and st["lag_seconds"] > max(
            MAX_SYNC_AGE, _node(request).settings.sync_interval * 2):
        return PlainTextResponse("INDEX-STALE", status_code=503)
    return PlainTextResponse("I-AM-ALIVE")
