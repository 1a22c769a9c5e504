"""Authentication (bearer tokens) and authorisation (roles -> permissions), deny by default.

Every /v1 route names one permission; a caller gets it only if one of its roles grants
it. Anything not granted here is denied. Every failure is audited (without the token).
Each worker remembers tokens it found valid for a few seconds (``vigil.node.AuthCache``;
revocation bounds in ``vigil.api.runtime.state``); refused tokens are looked up every time.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Coroutine, Iterable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vigil.api.runtime.auth_cache import AuthCache
from vigil.api.runtime.settings import Network
from vigil.api.schemas.problems import ApiError
from vigil.node import ROLES, TOKEN_PREFIX, PrincipalInfo, hash_token

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
    "banks.share": frozenset({"admin"}),  # what leaves the agency is the admin's decision
    "opinions.write": frozenset({"admin", "curator", "analyst"}),
    "feeds.read": frozenset({"peer"}),  # a peer agency's node, and only that
    # reported URLs and takedown notices (vigil.takedown)
    "takedown.read": frozenset({"admin", "curator", "analyst"}),
    "takedown.write": frozenset({"admin", "curator", "analyst"}),
    # the review workspace (/review): categorising a scan's unknown material
    "review": frozenset({"admin", "curator", "analyst"}),
    # the series registry of victim identification (vigil.victimid): analysts read, the
    # victim-ID desk claims and identifies
    "series.read": frozenset({"admin", "curator", "analyst", "victim-id"}),
    "series.write": frozenset({"admin", "victim-id"}),
}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: hops of X-Forwarded-For looked at (a chain of proxies is short)
_MAX_HOPS = 16

bearer = HTTPBearer(auto_error=False, description="A Vigil token: `Authorization: Bearer vgl_…`")


def allowed(p: PrincipalInfo, permission: str) -> bool:
    return bool(PERMISSIONS[permission].intersection(p.roles))


def client_address(client: tuple[str, int] | list[Any] | None,
                   headers: Iterable[tuple[bytes, bytes]],
                   trusted: tuple[Network, ...]) -> str | None:
    """The caller's IP address, as the audit log records it.

    The connection's own address, unless it comes from a proxy the operator trusts
    (``VIGIL_TRUSTED_PROXIES``): then the nearest address in ``X-Forwarded-For`` that is
    not itself a trusted proxy, read from the right (a client can prepend anything, but
    only a trusted proxy appends). Only a valid IP address is ever returned (normalised);
    a forwarded value that is not one is ignored, so no header text reaches the log.
    """
    peer = _ip(client[0]) if client else None
    if peer is None or not trusted or not _within(peer, trusted):
        return None if peer is None else peer.compressed
    hops: list[str] = []
    for name, value in headers:
        if name == b"x-forwarded-for":
            hops += value.decode("latin-1").split(",")
    nearest = peer
    for hop in reversed(hops[-_MAX_HOPS:]):
        addr = _ip(hop.strip())
        if addr is None:
            break  # not an address: believe nothing to its left
        nearest = addr
        if not _within(addr, trusted):
            break
    return nearest.compressed


def _ip(text: str) -> IPAddress | None:
    try:
        addr = ipaddress.ip_address(text[:64])
    except ValueError:
        return None
    mapped = getattr(addr, "ipv4_mapped", None)
    return mapped or addr


def _within(addr: IPAddress, networks: tuple[Network, ...]) -> bool:
    return any(addr.version == n.version and addr in n for n in networks)


def remote_of(request: Request) -> str | None:
    """The caller's address (:func:`client_address`) for a route's audit records."""
    trusted = request.app.state.node.settings.trusted_proxies
    return client_address(request.scope.get("client"), request.scope["headers"], trusted)


def cached_principal(cache: AuthCache, token: str) -> PrincipalInfo | None:
    """The principal of a token this worker checked less than the cache's TTL ago (no I/O)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    return cache.get(hash_token(token))


def require(permission: str) -> Callable[..., Coroutine[Any, Any, PrincipalInfo]]:
    """A dependency: the authenticated caller, if it holds ``permission``."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    async def dependency(request: Request, creds: Annotated[
            HTTPAuthorizationCredentials | None, Depends(bearer)]) -> PrincipalInfo:
        # async: a token in the worker's cache is checked on the event loop, without a
        # thread hand-off; the store and the audit log are only touched in a thread.
        node = request.app.state.node
        path = request.url.path
        principal = None
        if creds is None or creds.scheme.lower() != "bearer":
            reason = "missing bearer token"
        else:
            principal = cached_principal(node.auth_cache, creds.credentials)
            if principal is None:
                principal, reason = await run_in_threadpool(node.authenticate,
                                                            creds.credentials)
        if principal is None:
            await node.audit.append_async("auth.failure", outcome="denied", target=path,
                                          remote=remote_of(request), detail={"reason": reason})
            raise ApiError(401, f"authorization: {reason}",
                           headers={"WWW-Authenticate": 'Bearer realm="vigil"'})
        if not allowed(principal, permission):
            await node.audit.append_async(
                "auth.denied", outcome="denied", agency=principal.agency,
                actor=principal.label, target=path, remote=remote_of(request),
                detail={"permission": permission, "roles": list(principal.roles)})
            raise ApiError(403, f"your roles ({', '.join(principal.roles)}) do not grant "
                                f"{permission}")
        request.state.principal = principal
        return principal

    return dependency
