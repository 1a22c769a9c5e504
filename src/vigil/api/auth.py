"""Authentication (bearer tokens) and authorisation (roles -> permissions), deny by default.

Every /v1 route names one permission; a caller gets it only if one of its roles grants
it. Anything not granted here is denied. Every failure is audited (without the token).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vigil.api.problems import ApiError
from vigil.node import ROLES, PrincipalInfo, authenticate

#: permission -> roles that grant it. Admin is the node's trust root and holds all.
PERMISSIONS: dict[str, frozenset[str]] = {
    "self": frozenset(ROLES),  # who am I
    "match": frozenset({"admin", "analyst", "matcher"}),
    "hash": frozenset({"admin", "curator", "analyst", "matcher"}),
    "labels.read": frozenset({"admin", "curator", "analyst"}),  # series, victim, tags, note
    "banks.read": frozenset({"admin", "curator", "analyst"}),
    "banks.write": frozenset({"admin", "curator"}),
    "banks.export": frozenset({"admin", "curator"}),
    "principals.manage": frozenset({"admin"}),
    "audit.read": frozenset({"admin", "auditor"}),
}

bearer = HTTPBearer(auto_error=False, description="A Vigil token: `Authorization: Bearer vgl_…`")


def allowed(p: PrincipalInfo, permission: str) -> bool:
    return bool(PERMISSIONS[permission].intersection(p.roles))


def remote_of(request: Request) -> str | None:
    return request.client.host if request.client else None


def require(permission: str) -> Callable[..., PrincipalInfo]:
    """A dependency: the authenticated caller, if it holds ``permission``."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def dependency(request: Request, creds: Annotated[
            HTTPAuthorizationCredentials | None, Depends(bearer)]) -> PrincipalInfo:
        node = request.app.state.node
        path = request.url.path
        if creds is None or creds.scheme.lower() != "bearer":
            reason = "missing bearer token"
            principal = None
        else:
            principal, reason = authenticate(node.engine, creds.credentials)
        if principal is None:
            node.audit.append("auth.failure", outcome="denied", target=path,
                              remote=remote_of(request), detail={"reason": reason})
            raise ApiError(401, f"authorization: {reason}",
                           headers={"WWW-Authenticate": 'Bearer realm="vigil"'})
        if not allowed(principal, permission):
            node.audit.append("auth.denied", outcome="denied", agency=principal.agency,
                              actor=principal.label, target=path, remote=remote_of(request),
                              detail={"permission": permission, "roles": list(principal.roles)})
            raise ApiError(403, f"your roles ({', '.join(principal.roles)}) do not grant "
                                f"{permission}")
        request.state.principal = principal
        return principal

    return dependency
