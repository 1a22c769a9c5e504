"""Banks and entries: create, list, stats, add (by signal or file), relabel, remove,
import and export (streamed both ways). Banks are private to their agency: another
agency's bank answers 404, as if it did not exist.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from vigil.api.routes.bodies import LimitedJsonRoute
from vigil.api.routes.streams import BodyReader, stream_writer
from vigil.api.routes.upload import read_upload, signals_of_bytes
from vigil.api.runtime.auth import remote_of, require
from vigil.api.schemas.models import (
    BankCreate,
    BankOut,
    BankStatsOut,
    ChangeResult,
    EntriesAdd,
    EntriesRemove,
    LabelsIn,
    Relabel,
    VictimStatus,
)
from vigil.api.schemas.problems import ERROR_RESPONSES, ApiError
from vigil.banks import (
    ApplyResult,
    BankError,
    BankInfo,
    EntryReader,
    ReadOnlyBankError,
    StoredEntry,
)
from vigil.banks.entry import EntryRecord, Labels
from vigil.banks.files import records_of_file
from vigil.banks.text import FieldError
from vigil.exchange.rules import mirror_names
from vigil.formats import FORMATS, FormatError
from vigil.node import PrincipalInfo
from vigil.schemes import parse_category
from vigil.signals import HashOptions

log = logging.getLogger("vigil.api")
router = APIRouter(prefix="/v1/banks", tags=["banks"], responses=ERROR_RESPONSES,
                   route_class=LimitedJsonRoute)
FormatName = Literal["csv", "vics", "ncmec", "stopncii", "pdq-list", "vigil"]
# (NCMEC-style records are exported as JSON, the writer's default style)
MEDIA = {"csv": "text/csv", "vics": "application/json", "ncmec": "application/json",
         "stopncii": "application/json", "pdq-list": "text/plain",
         "vigil": "application/x-ndjson"}
ONLY_CARRIES = {"pdq-list": {"pdq"}}
#: skipped records an import answer lists one by one (the rest are counted)
MAX_SKIPPED_SHOWN = 1000
#: what an export holds back before its response starts (a failure before: a problem)
PRIME = 1 << 16
Reader = Annotated[PrincipalInfo, Depends(require("banks.read"))]
Writer = Annotated[PrincipalInfo, Depends(require("banks.write"))]
Exporter = Annotated[PrincipalInfo, Depends(require("banks.export"))]


def _own(request: Request, caller: PrincipalInfo, name: str) -> None:
    if request.app.state.node.bank_agency(name) != caller.agency:
        raise ApiError(404, f"no bank named {name!r}", "name")


def _out(b: BankInfo, mirrors: dict[str, str] | None = None) -> BankOut:
    return BankOut(name=b.name, agency=b.agency, description=b.description,
                   default_scheme=b.default_scheme, entries=b.entries, last_seq=b.last_seq,
                   created_at=b.created_at, updated_at=b.updated_at,
                   mirror_of=(mirrors or {}).get(b.name))


def _labels(li: LabelsIn, base: Labels | None = None, where: str = "body") -> Labels:
    """The labels of ``li`` over ``base``; a label the door refuses is a 422 naming it
    (the request models check the same rules first; this also covers ``base``)."""
    base = base or Labels()
    try:
        return Labels(category=parse_category(li.category) if li.category else base.category,
                      series=li.series if li.series is not None else base.series,
                      victim_status=li.victim_status or base.victim_status,
                      tags=tuple(li.tags) if li.tags is not None else base.tags,
                      note=li.note if li.note is not None else base.note)
    except FieldError as exc:
        raise ApiError(422, exc.reason, f"{where}.{exc.field}") from None


def _apply(request: Request, caller: PrincipalInfo, name: str, action: str,
           records: list[EntryRecord] | Iterator[EntryRecord], source: str = "api",
           **extra: object) -> ChangeResult:
    node = request.app.state.node
    try:
        r: ApplyResult = node.banks(caller.label).apply(name, records, source=source)
    except ReadOnlyBankError as exc:
        raise ApiError(409, str(exc), "name") from None
    except BankError as exc:
        raise ApiError(404, str(exc), "name") from None
    except FormatError as exc:
        node.audit.append(action, outcome="failed", agency=caller.agency, actor=caller.label,
                          target=name, remote=remote_of(request),
                          detail={"error": str(exc)[:300], **extra})
        raise ApiError(422, str(exc), "body") from None
    last = node.banks(caller.label).last_seq(name)
    node.audit.append(action, agency=caller.agency, actor=caller.label, target=name,
                      remote=remote_of(request),
                      detail={"added": r.added, "updated": r.updated, "removed": r.removed,
                              "unchanged": r.unchanged, "not_found": r.not_found,
                              "skipped": len(r.skipped), "last_seq": last, **extra})
    return ChangeResult(bank=name, added=r.added, updated=r.updated, unchanged=r.unchanged,
                        removed=r.removed, not_found=r.not_found, last_seq=last,
                        skipped=r.skipped[:1000])


@router.get("", response_model=list[BankOut], summary="Your agency's banks")
def list_banks(request: Request, caller: Reader) -> list[BankOut]:
    node = request.app.state.node
    mirrors = mirror_names(node.engine)
    return [_out(b, mirrors) for b in node.banks(caller.label).list()
            if b.agency == caller.agency]


@router.post("", response_model=BankOut, status_code=201, summary="Create a bank")
def create_bank(body: BankCreate, request: Request, caller: Writer) -> BankOut:
    node = request.app.state.node
    try:
        info = node.banks(caller.label).create(body.name, caller.agency, body.description,
                                               body.default_scheme,
                                               crop_ladder=body.crop_ladder)
    except BankError as exc:
        raise ApiError(409, str(exc), "name") from None
    node.audit.append("bank.create", agency=caller.agency, actor=caller.label,
                      target=info.name, remote=remote_of(request))
    return _out(info)


@router.get("/{name}", response_model=BankStatsOut, summary="A bank's counts (never hashes)")
def bank_stats(name: str, request: Request, caller: Reader) -> BankStatsOut:
    _own(request, caller, name)
    st = request.app.state.node.banks(caller.label).stats(name)
    base = _out(st.info, mirror_names(request.app.state.node.engine))
    return BankStatsOut(**base.model_dump(), by_signal_type=st.by_signal_type,
                        by_category=st.by_category, by_victim_status=st.by_victim_status,
                        series=st.series, removed=st.removed)


@router.post("/{name}/entries", response_model=ChangeResult, summary="Add entries by signal")
def add_entries(name: str, body: EntriesAdd, request: Request, caller: Writer) -> ChangeResult:
    _own(request, caller, name)
    records = []
    for i, e in enumerate(body.entries):
        where = f"body.entries.{i}"
        try:
            records.append(EntryRecord(e.type, e.value, _labels(e, where=where), e.quality,
                                       "add", e.source_id))
        except FieldError as exc:
            raise ApiError(422, exc.reason, f"{where}.{exc.field}") from None
    return _apply(request, caller, name, "bank.add", records)


@router.post("/{name}/entries/file", response_model=ChangeResult,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/octet-stream": {"schema": {"type": "string",
                                                         "format": "binary"}}}}},
             summary="Add an uploaded file's signals (held in memory, never stored)")
async def add_file(
        name: str, request: Request, caller: Writer,
        category: Annotated[str | None, Query(max_length=40)] = None,
        series: Annotated[str | None, Query(max_length=200)] = None,
        victim_status: VictimStatus | None = None,
        tag: Annotated[list[str] | None, Query(max_length=100)] = None,
        note: Annotated[str | None, Query(max_length=4000)] = None,
        reference: bool = True) -> ChangeResult:
    await run_in_threadpool(_own, request, caller, name)
    ladder = await run_in_threadpool(
        lambda: request.app.state.node.banks(caller.label).crop_ladder(name))
    try:
        labels = _labels(LabelsIn(category=category, series=series,
                                  victim_status=victim_status, tags=tag, note=note))
    except ValidationError as exc:
        e = exc.errors()[0]
        field = "query." + ".".join(str(p) for p in e["loc"])
        raise ApiError(422, str(e["msg"]).removeprefix("Value error, "), field) from None
    data = await read_upload(request, request.app.state.node.settings.max_upload_bytes)
    r = await run_in_threadpool(signals_of_bytes, data,
                                HashOptions(mode="reference" if reference else "fast",
                                            crop_ladder=ladder))
    if r.digests is None:
        raise ApiError(422, "the uploaded file could not be read", "body")
    recs = records_of_file(r, labels)
    return await run_in_threadpool(_apply, request, caller, name, "bank.add", recs,
                                   "api upload", file=True)


@router.patch("/{name}/entries", response_model=ChangeResult,
              summary="Relabel entries chosen by signal or by series")
def relabel(name: str, body: Relabel, request: Request, caller: Writer) -> ChangeResult:
    _own(request, caller, name)
    if (body.signals is None) == (body.of_series is None):
        raise ApiError(422, "give exactly one of signals and of_series", "body")
    banks = request.app.state.node.banks(caller.label)
    found: list[StoredEntry] = []
    if body.of_series is not None:
        found = EntryReader(banks.engine).entries_of_series(name, body.of_series)
    else:
        by_type: dict[str, list[str]] = {}
        for s in body.signals or []:
            by_type.setdefault(s.type, []).append(s.value)
        for t, values in by_type.items():
            found += EntryReader(banks.engine).find(t, sorted(set(values)), [name])
    recs = [EntryRecord(e.signal_type, e.value, _labels(body.set, e.labels, "body.set"),
                        e.quality, "add", e.source_id, e.extra) for e in found]
    return _apply(request, caller, name, "bank.relabel", recs, selected=len(found))


@router.post("/{name}/entries/remove", response_model=ChangeResult,
             summary="Remove entries (tombstones: the change log keeps them)")
def remove_entries(name: str, body: EntriesRemove, request: Request,
                   caller: Writer) -> ChangeResult:
    _own(request, caller, name)
    recs = [EntryRecord(s.type, s.value, op="remove") for s in body.signals]
    return _apply(request, caller, name, "bank.remove", recs)


@router.post("/{name}/import", response_model=ChangeResult,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/octet-stream": {"schema": {"type": "string",
                                                         "format": "binary"}}}}},
             summary="Bulk import a hash list (streamed; all or nothing by default)")
async def import_list(name: str, request: Request, caller: Writer, format: FormatName,
                      skip_invalid: bool = False) -> ChangeResult:
    await run_in_threadpool(_own, request, caller, name)
    reader = BodyReader(request.stream().__aiter__())
    skipped: list[str] = []
    more = 0

    def on_error(exc: FormatError) -> None:
        nonlocal more
        if len(skipped) < MAX_SKIPPED_SHOWN:
            skipped.append(str(exc))
        else:
            more += 1

    def run() -> ChangeResult:
        records = FORMATS[format].read(reader, on_error=on_error if skip_invalid else None,
                                       name="body", limits=request.app.state.node.settings.limits)
        res = _apply(request, caller, name, "bank.import", records, f"api import ({format})",
                     format=format)
        res.skipped = skipped + ([f"... and {more:,} more skipped records"] if more else [])
        return res

    try:
        return await run_in_threadpool(run)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(422, str(exc).splitlines()[0][:300], "body") from None


@router.get("/{name}/export", summary="Export a bank in an interchange format (streamed)",
            responses={200: {"content": {m: {} for m in set(MEDIA.values())},
                             "description": "the bank's live entries"}})
def export(name: str, request: Request, caller: Exporter,
           format: FormatName = "csv") -> StreamingResponse:
    """Stream the export; never let it end short while looking complete.

    The writer runs until its first 64 KiB before the response starts, so what it
    refuses early (an entry the format cannot carry, stored by an older version) is a
    409 problem. A failure after that ends the response without the final chunk of the
    chunked encoding: every HTTP client then reports an incomplete body (httpx
    ``RemoteProtocolError``, requests ``ChunkedEncodingError``, curl exit 18). Both are
    in the audit log as a failed ``bank.export``.
    """
    _own(request, caller, name)
    node = request.app.state.node
    banks = node.banks(caller.label)
    keep = ONLY_CARRIES.get(format)
    info = banks.get(name)
    detail = {"format": format, "entries": info.entries, "last_seq": info.last_seq}

    def audit(outcome: str = "ok", **more: object) -> None:
        node.audit.append("bank.export", outcome=outcome, agency=caller.agency,
                          actor=caller.label, target=name, remote=remote_of(request),
                          detail={**detail, **more})

    def records() -> Iterator[EntryRecord]:
        for e in EntryReader(banks.engine).entries(name):
            if keep is None or e.signal_type in keep:
                yield e.record()

    chunks = stream_writer(lambda sink: FORMATS[format].write(records(), sink), PRIME)
    head: list[bytes] = []
    sent = 0
    try:  # (a writer's sink flushes what it holds as an error passes: keep a whole chunk)
        for chunk in chunks:
            head.append(chunk)
            sent += len(chunk)
            if sent >= PRIME:
                break
    except ValueError as exc:  # a record the format cannot carry, before any byte went out
        audit("failed", error=str(exc)[:300])
        raise ApiError(409, f"cannot export as {format}: {exc}", "format") from None
    except Exception as exc:
        audit("failed", error=type(exc).__name__)
        raise
    audit()

    def body() -> Iterator[bytes]:
        nonlocal sent
        yield from head
        try:
            for chunk in chunks:
                sent += len(chunk)
                yield chunk
        except Exception as exc:
            log.error("export of bank %r as %s failed after %d bytes; the response ends "
                      "without its final chunk: %s", name, format, sent, exc)
            audit("failed", error=str(exc)[:300], bytes_sent=sent)
            raise  # the server closes the connection: the client sees an incomplete body

    ext = {"csv": "csv", "pdq-list": "txt", "vigil": "jsonl"}.get(format, "json")
    return StreamingResponse(body(), media_type=MEDIA[format], headers={
        "Content-Disposition": f'attachment; filename="export.{format}.{ext}"'})
