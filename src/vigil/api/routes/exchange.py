"""Federation endpoints: this node's identity, feeds for peer agencies, sharing rules,
and opinions on mirrored entries.

* ``GET /v1/feeds`` and ``GET /v1/feeds/{bank}`` answer only principals with the ``peer``
  role, and only for banks shared with *their* agency; any other bank answers 403 (the
  same for a bank that does not exist, so existence is not disclosed). Every feed read is
  audited.
* Sharing rules are the admin's: what leaves the agency is a policy decision.
* Audit heads (``/v1/audit/head``, ``/v1/audit/witnessed``): peers keep this node's signed
  audit head when they sync, and hand back what they kept; this node keeps their copies,
  against which ``vigil audit verify`` checks the log (``vigil.audit.witness``).
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import APIRouter, Depends, Query, Request, Response

from vigil.api.routes.bodies import LimitedJsonRoute
from vigil.api.runtime.auth import remote_of, require
from vigil.api.schemas.exchange import (
    AgencyCode,
    AuditHead,
    AuditHeadList,
    DescriptorOut,
    FeedList,
    FeedOut,
    FeedPage,
    NodeOut,
    OpinionIn,
    OpinionList,
    OpinionOut,
    ShareIn,
    ShareOut,
)
from vigil.api.schemas.models import BankName
from vigil.api.schemas.problems import ERROR_RESPONSES, ApiError
from vigil.audit import SignedHead, check_head, sign_head, witness_store
from vigil.banks import BankError
from vigil.exchange import feeds, opinions, rules
from vigil.exchange.opinions import OpinionInfo
from vigil.node import PrincipalInfo, signing_key

router = APIRouter(prefix="/v1", tags=["federation"], responses=ERROR_RESPONSES,
                   route_class=LimitedJsonRoute)
Peer = Annotated[PrincipalInfo, Depends(require("feeds.read"))]
Sharer = Annotated[PrincipalInfo, Depends(require("banks.share"))]
Reader = Annotated[PrincipalInfo, Depends(require("banks.read"))]
Opiner = Annotated[PrincipalInfo, Depends(require("opinions.write"))]


@lru_cache(maxsize=4)
def _key(home: Path) -> Ed25519PrivateKey:
    return signing_key(home)


def _audit(request: Request, caller: PrincipalInfo, action: str, target: str,
           outcome: str = "ok", **detail: object) -> None:
    """Feed and sharing records belong to this node's agency (its data, its auditors),
    whoever the caller is; the actor names the peer agency's principal."""
    node = request.app.state.node
    node.audit.append(action, outcome=outcome, agency=node.identity.agency,
                      actor=caller.label, target=target, remote=remote_of(request),
                      detail=detail)


@router.get("/node", response_model=NodeOut, summary="This node's agency and public key")
def node_identity(request: Request,
                  caller: Annotated[PrincipalInfo, Depends(require("self"))]) -> NodeOut:
    i = request.app.state.node.identity
    return NodeOut(agency=i.agency, name=i.name, jurisdiction=i.jurisdiction,
                   public_key=i.public_key)


@router.get("/feeds", response_model=FeedList, summary="The feeds shared with the caller's agency")
def list_feeds(request: Request, caller: Peer) -> FeedList:
    node = request.app.state.node
    items = feeds.offered(node.engine, node.identity.agency, caller.agency)
    _audit(request, caller, "feed.list", "/v1/feeds", feeds=len(items))
    return FeedList(feeds=[FeedOut(bank=f.bank, descriptor=DescriptorOut(**f.descriptor.as_dict()),
                                   head=f.head, crop_ladder=f.crop_ladder) for f in items])


@router.get("/feeds/{bank}", response_model=FeedPage,
            summary="A page of a bank's signed change feed after a sequence number")
def read_feed(bank: BankName, request: Request, caller: Peer,
              after: Annotated[int, Query(ge=0, le=2**62)] = 0,
              limit: Annotated[int, Query(ge=1, le=feeds.MAX_PAGE)] = 5000) -> Response:
    node = request.app.state.node
    try:
        p = feeds.page(node.engine, _key(node.settings.home), node.identity.agency,
                       caller.agency, bank, after, limit)
    except feeds.FeedAccessError:
        _audit(request, caller, "feed.read", bank, outcome="denied", after=after,
               reason="not shared with the caller's agency")
        raise ApiError(403, f"bank {bank!r} is not shared with {caller.agency}", "bank") \
            from None
    _audit(request, caller, "feed.read", bank, after=after, records=len(p.records),
           head=p.head)
    # the bodies are stored canonical texts: write them out as they are, no model round trip
    body = json.dumps({"feed": p.descriptor.as_dict(), "head": p.head,
                       "records": [r.as_list() for r in p.records]},
                      ensure_ascii=False, separators=(",", ":")).encode()
    if "gzip" in request.headers.get("accept-encoding", "") and len(body) > 1024:
        # a page compresses ~4x (each record repeats the hash before it); level 1 costs
        # ~10 ms per MB here, far less than sending the bytes over a real network
        return Response(gzip.compress(body, compresslevel=1, mtime=0),
                        media_type="application/json",
                        headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
    return Response(body, media_type="application/json")


# ---- sharing rules -------------------------------------------------------------------------

def _own_bank(request: Request, caller: PrincipalInfo, bank: str) -> None:
    if request.app.state.node.bank_agency(bank) != caller.agency:
        raise ApiError(404, f"no bank named {bank!r}", "bank")


def _share_out(r: rules.RuleInfo) -> ShareOut:
    return ShareOut(bank=r.bank, agency=r.agency, fields=list(r.fields), reshare=r.reshare,
                    created_at=r.created_at, created_by=r.created_by)


@router.get("/banks/{bank}/shares", response_model=list[ShareOut],
            summary="Who a bank is shared with, and what of it")
def list_shares(bank: BankName, request: Request, caller: Sharer) -> list[ShareOut]:
    _own_bank(request, caller, bank)
    return [_share_out(r) for r in rules.rules(request.app.state.node.engine, bank)]


@router.put("/banks/{bank}/shares/{agency}", response_model=ShareOut,
            summary="Share a bank with a peer agency (create or replace the rule)")
def put_share(bank: BankName, agency: AgencyCode, body: ShareIn, request: Request,
              caller: Sharer) -> ShareOut:
    _own_bank(request, caller, bank)
    try:
        fields = None if body.fields is None else [str(f) for f in body.fields]
        r = rules.share(request.app.state.node.engine, bank, agency, fields,
                        body.reshare, by=caller.label)
    except BankError as exc:
        raise ApiError(409, str(exc), "bank") from None
    _audit(request, caller, "bank.share", bank, agency=agency, fields=list(r.fields),
           reshare=r.reshare)
    return _share_out(r)


@router.delete("/banks/{bank}/shares/{agency}", status_code=204,
               summary="Stop sharing a bank with a peer agency")
def delete_share(bank: BankName, agency: AgencyCode, request: Request,
                 caller: Sharer) -> Response:
    _own_bank(request, caller, bank)
    if not rules.unshare(request.app.state.node.engine, bank, agency):
        raise ApiError(404, f"bank {bank!r} is not shared with {agency}", "agency")
    _audit(request, caller, "bank.unshare", bank, agency=agency)
    return Response(status_code=204)


# ---- opinions ------------------------------------------------------------------------------

def _op_out(o: OpinionInfo) -> OpinionOut:
    return OpinionOut(id=o.id, bank=o.bank, agency=o.agency, signal_type=o.signal_type,
                      value=o.value, opinion=o.opinion, reason=o.reason, by=o.by, at=o.at,
                      origin=o.origin, origin_bank=o.origin_bank)


@router.post("/banks/{bank}/opinions", response_model=OpinionList, status_code=201,
             summary="Agree with or dispute entries of a mirrored bank")
def add_opinion(bank: BankName, body: OpinionIn, request: Request,
                caller: Opiner) -> OpinionList:
    _own_bank(request, caller, bank)
    try:
        made = opinions.record(request.app.state.node.engine, bank, caller.agency,
                               [(s.type, s.value) for s in body.signals], body.opinion,
                               body.reason, by=caller.label)
    except (BankError, ValueError) as exc:
        raise ApiError(422, str(exc), "signals") from None
    _audit(request, caller, "bank.opinion", bank, opinion=body.opinion, signals=len(made))
    return OpinionList(opinions=[_op_out(o) for o in made])


@router.get("/banks/{bank}/opinions", response_model=OpinionList,
            summary="Opinions on a bank's entries (ours on a mirror, peers' on our bank)")
def bank_opinions(bank: BankName, request: Request, caller: Reader) -> OpinionList:
    _own_bank(request, caller, bank)
    return OpinionList(opinions=[_op_out(o) for o in
                                 opinions.of_bank(request.app.state.node.engine, bank)])


@router.get("/opinions", response_model=OpinionList,
            summary="Opinions this node holds on the caller agency's banks (for its sync)")
def opinions_for_peer(request: Request, caller: Peer,
                      after: Annotated[int, Query(ge=0, le=2**62)] = 0) -> OpinionList:
    items = opinions.about_origin(request.app.state.node.engine, caller.agency, after)
    _audit(request, caller, "opinion.read", "/v1/opinions", after=after, opinions=len(items))
    return OpinionList(opinions=[_op_out(o) for o in items])


# ---- audit heads: witnesses of each other's logs --------------------------------------------

@router.get("/audit/head", response_model=AuditHead,
            summary="This node's audit head, signed (a peer keeps it as a witness)")
def audit_head(request: Request, caller: Peer) -> AuditHead:
    node = request.app.state.node
    last_id, mac = node.audit.head()
    return AuditHead(**sign_head(_key(node.settings.home), node.identity.agency, last_id,
                                 mac).as_dict())


@router.post("/audit/witnessed", status_code=204,
             summary="Hand back a head of this node's audit log that the caller witnessed")
def hand_back_head(body: AuditHead, request: Request, caller: Peer) -> Response:
    node = request.app.state.node
    head = SignedHead(**body.model_dump())
    if head.agency != node.identity.agency \
            or not check_head(head, _key(node.settings.home).public_key()):
        raise ApiError(422, "not a head of this node's audit log signed by this node", "body")
    if witness_store.keep(node.engine, head, caller.agency):
        _audit(request, caller, "audit.witnessed", f"audit record {head.id}", id=head.id,
               signed_at=head.at)
    return Response(status_code=204)


@router.get("/audit/witnessed", response_model=AuditHeadList,
            summary="Heads of the caller's audit log that this node witnessed")
def heads_of_caller(request: Request, caller: Peer,
                    after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 1000) -> AuditHeadList:
    node = request.app.state.node
    held = witness_store.held(node.engine, caller.agency, witness=node.identity.agency,
                              after_id=after_id, limit=limit)
    return AuditHeadList(heads=[AuditHead(**w.head.as_dict()) for w in held])
