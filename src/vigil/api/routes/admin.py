"""Who am I, users and services, tokens, and the audit log.

Admins manage the principals of their own agency only; principals of other agencies
(partners' services) are registered by the node's operator with ``vigil user create``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from vigil import node as nodes
from vigil.api.routes.bodies import LimitedJsonRoute
from vigil.api.runtime.auth import remote_of, require
from vigil.api.schemas.models import (
    AuditOut,
    Me,
    TokenCreate,
    TokenCreated,
    TokenOut,
    UserCreate,
    UserOut,
)
from vigil.api.schemas.problems import ERROR_RESPONSES, ApiError
from vigil.node import NodeError, PrincipalInfo, TokenInfo

router = APIRouter(prefix="/v1", tags=["principals and audit"], responses=ERROR_RESPONSES,
                   route_class=LimitedJsonRoute)
Admin = Annotated[PrincipalInfo, Depends(require("principals.manage"))]
PathId = Annotated[int, Path(ge=1, le=2**62)]


def _user(p: PrincipalInfo) -> UserOut:
    return UserOut(id=p.id, agency=p.agency, name=p.name, kind=p.kind, roles=list(p.roles),
                   disabled=p.disabled, created_at=p.created_at)


def _token(t: TokenInfo) -> TokenOut:
    return TokenOut(id=t.id, user_id=t.principal_id, user=t.principal,
                    description=t.description, created_at=t.created_at,
                    expires_at=t.expires_at, revoked_at=t.revoked_at)


def _audit(request: Request, caller: PrincipalInfo, action: str, target: str,
           **detail: object) -> None:
    request.app.state.node.audit.append(action, agency=caller.agency, actor=caller.label,
                                        target=target, remote=remote_of(request),
                                        detail=detail)


def _own_user(request: Request, caller: PrincipalInfo, user_id: int) -> PrincipalInfo:
    p = nodes.get_principal(request.app.state.node.engine, user_id)
    if p is None or p.agency != caller.agency:
        raise ApiError(404, f"no user with id {user_id}", "user_id")
    return p


@router.get("/me", response_model=Me, summary="The caller: agency, name and roles")
def me(request: Request, caller: Annotated[PrincipalInfo, Depends(require("self"))]) -> Me:
    return Me(agency=caller.agency, name=caller.name, kind=caller.kind,
              roles=list(caller.roles), node_agency=request.app.state.node.identity.agency)


@router.get("/users", response_model=list[UserOut], summary="Users and services of your agency")
def list_users(request: Request, caller: Admin) -> list[UserOut]:
    return [_user(p) for p in nodes.principals(request.app.state.node.engine, caller.agency)]


@router.post("/users", response_model=UserOut, status_code=201, summary="Create a user or service")
def create_user(body: UserCreate, request: Request, caller: Admin) -> UserOut:
    try:
        p = nodes.create_principal(request.app.state.node.engine, caller.agency, body.name,
                                   list(body.roles), body.kind, created_by=caller.label)
    except NodeError as exc:
        raise ApiError(409, str(exc), "name") from None
    _audit(request, caller, "user.create", p.label, roles=list(p.roles), kind=p.kind)
    return _user(p)


@router.delete("/users/{user_id}", response_model=UserOut,
               summary="Disable a user or service and revoke its tokens")
def disable_user(user_id: PathId, request: Request, caller: Admin) -> UserOut:
    p = _own_user(request, caller, user_id)
    n = nodes.disable_principal(request.app.state.node.engine, p.id)
    request.app.state.node.auth_changed()  # every worker drops its cached tokens now
    _audit(request, caller, "user.disable", p.label, tokens_revoked=n)
    return _user(nodes.get_principal(request.app.state.node.engine, p.id))  # type: ignore[arg-type]


@router.get("/tokens", response_model=list[TokenOut], summary="Tokens of your agency (no secrets)")
def list_tokens(request: Request, caller: Admin,
                user_id: Annotated[int | None, Query(ge=1, le=2**62)] = None) -> list[TokenOut]:
    return [_token(t) for t in nodes.tokens(request.app.state.node.engine, caller.agency,
                                            user_id)]


@router.post("/tokens", response_model=TokenCreated, status_code=201,
             summary="Create a token (shown once)")
def create_token(body: TokenCreate, request: Request, caller: Admin) -> TokenCreated:
    p = _own_user(request, caller, body.user_id)
    try:
        token, t = nodes.issue_token(request.app.state.node.engine, p.id, body.days,
                                     body.description)
    except NodeError as exc:
        raise ApiError(409, str(exc), "user_id") from None
    _audit(request, caller, "token.create", p.label, token_id=t.id, days=body.days)
    return TokenCreated(**_token(t).model_dump(), token=token)


@router.delete("/tokens/{token_id}", response_model=TokenOut, summary="Revoke a token")
def revoke_token(token_id: PathId, request: Request, caller: Admin) -> TokenOut:
    engine = request.app.state.node.engine
    owner = nodes.token_owner(engine, token_id)
    if owner is None or owner.agency != caller.agency:
        raise ApiError(404, f"no token with id {token_id}", "token_id")
    nodes.revoke_token(engine, token_id)
    request.app.state.node.auth_changed()  # every worker drops its cached tokens now
    _audit(request, caller, "token.revoke", owner.label, token_id=token_id)
    [t] = [t for t in nodes.tokens(engine, caller.agency, owner.id) if t.id == token_id]
    return _token(t)


@router.get("/audit", response_model=list[AuditOut], summary="Read the audit log (filtered)")
def read_audit(request: Request,
               caller: Annotated[PrincipalInfo, Depends(require("audit.read"))],
               action: Annotated[str | None, Query(max_length=64,
                                                   description="prefix, e.g. bank.")] = None,
               actor: Annotated[str | None, Query(max_length=200)] = None,
               outcome: Annotated[str | None, Query(pattern="^(ok|denied|failed)$")] = None,
               since: datetime | None = None, until: datetime | None = None,
               after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[AuditOut]:
    # An auditor reads its own agency's records, and the anonymous auth failures.
    since, until = (None if d is None else (d if d.tzinfo else d.replace(tzinfo=UTC))
                    .astimezone(UTC) for d in (since, until))
    recs = request.app.state.node.audit.records(
        action=action, actor=actor, outcome=outcome, since=since, until=until,
        after_id=after_id, limit=limit, agency=caller.agency, with_anonymous=True)
    return [AuditOut(id=r.id, at=r.at, agency=r.agency, actor=r.actor, action=r.action,
                     outcome=r.outcome, target=r.target, remote=r.remote, detail=r.detail,
                     hash=r.hash)
            for r in recs]
