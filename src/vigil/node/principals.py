"""Who may use this node: principals (users and services of an agency) and their tokens.

Principals have roles; tokens are 32 random bytes, shown once, stored only as their
SHA-256, and expire and can be revoked. Checking a token against the store is here
(``check_token_hashes``); a server's cache of checked tokens is the API runtime's.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import CursorResult, Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.banks.text import FieldError, agency_code, label, principal_name
from vigil.store.models import utcnow
from vigil.store.models_node import Agency, Principal, Token

#: ``peer``: another agency's node, pulling the feeds shared with its agency (nothing else)
#: ``victim-id``: the victim-identification desk: claims series and marks them identified
ROLES = ("admin", "curator", "analyst", "matcher", "auditor", "peer", "victim-id")
KINDS = ("user", "service")
TOKEN_PREFIX = "vgl_"
DEFAULT_TOKEN_DAYS = 90
MAX_TOKEN_DAYS = 3650
TOKEN_DESCRIPTION_MAX = 200


class NodeError(Exception):
    """A node operation cannot be done as asked (already initialised, unknown user...)."""


@dataclass(frozen=True, slots=True)
class PrincipalInfo:
    id: int
    agency: str
    name: str
    kind: str
    roles: tuple[str, ...]
    disabled: bool
    created_at: datetime

    @property
    def label(self) -> str:
        """``AGENCY/name``: how audit records and change logs name the actor."""
        return f"{self.agency}/{self.name}"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    principal_id: int
    principal: str
    description: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


def check_code(code: str) -> str:
    """An agency code as ``vigil.banks.text.agency_code`` allows it; NodeError if not."""
    try:
        return agency_code(code)
    except FieldError as exc:
        raise NodeError(exc.reason) from None


def check_name(name: str) -> str:
    """A principal's name (letters and digits of any script, ``. _ - @``); NodeError if not."""
    try:
        return principal_name(name)
    except FieldError as exc:
        raise NodeError(f"invalid user name: {exc.reason}") from None


# ---- principals --------------------------------------------------------------------------

def _pinfo(p: Principal) -> PrincipalInfo:
    return PrincipalInfo(p.id, p.agency, p.name, p.kind, tuple(p.roles), p.disabled,
                         p.created_at)


def check_roles(roles: list[str]) -> list[str]:
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise NodeError(f"roles must be one or more of {', '.join(ROLES)}"
                        + (f"; unknown: {', '.join(bad)}" if bad else ""))
    return sorted(set(roles))


def create_principal(engine: Engine, agency: str, name: str, roles: list[str],
                     kind: str = "user", created_by: str | None = None) -> PrincipalInfo:
    """A new user or service of ``agency`` (which must be known to the node)."""
    name = check_name(name)
    if kind not in KINDS:
        raise NodeError(f"kind must be one of {', '.join(KINDS)}")
    roles = check_roles(roles)
    try:
        with Session(engine) as s, s.begin():
            if s.get(Agency, agency) is None:
                raise NodeError(f"unknown agency {agency!r}")
            p = Principal(agency=agency, name=name, kind=kind, roles=roles, disabled=False,
                          created_at=utcnow(), created_by=created_by)
            s.add(p)
            s.flush()
            return _pinfo(p)
    except IntegrityError:
        raise NodeError(f"{agency} already has a principal named {name!r}") from None


def principals(engine: Engine, agency: str | None = None) -> list[PrincipalInfo]:
    with Session(engine) as s:
        q = select(Principal).order_by(Principal.agency, Principal.name)
        if agency is not None:
            q = q.where(Principal.agency == agency)
        return [_pinfo(p) for p in s.scalars(q)]


def get_principal(engine: Engine, principal_id: int) -> PrincipalInfo | None:
    with Session(engine) as s:
        p = s.get(Principal, principal_id)
        return _pinfo(p) if p else None


def find_principal(engine: Engine, agency: str, name: str) -> PrincipalInfo | None:
    with Session(engine) as s:
        p = s.scalar(select(Principal).where(Principal.agency == agency,
                                             Principal.name == name))
        return _pinfo(p) if p else None


def disable_principal(engine: Engine, principal_id: int) -> int:
    """Disable a principal and revoke all its live tokens; returns how many were revoked."""
    now = utcnow()
    with Session(engine) as s, s.begin():
        s.execute(update(Principal).where(Principal.id == principal_id).values(disabled=True))
        res = s.execute(update(Token).where(Token.principal_id == principal_id,
                                            Token.revoked_at.is_(None)).values(revoked_at=now))
        assert isinstance(res, CursorResult)  # an UPDATE's result: it has a rowcount
        return res.rowcount or 0


# ---- tokens ------------------------------------------------------------------------------

def hash_token(token: str) -> str:
    """What the database keeps of a token: its SHA-256 (tokens have 256 bits of entropy,
    so a plain hash is enough; no salt or slow hash is needed)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def issue_token(engine: Engine, principal_id: int, days: int = DEFAULT_TOKEN_DAYS,
                description: str = "") -> tuple[str, TokenInfo]:
    """A new random token for a principal; the token itself is returned here only."""
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise NodeError(f"a token lives 1 to {MAX_TOKEN_DAYS} days, not {days}")
    if description.strip():
        try:
            description = label(description, "description", TOKEN_DESCRIPTION_MAX)
        except FieldError as exc:
            raise NodeError(f"invalid token description: {exc.reason}") from None
    else:
        description = ""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    with Session(engine) as s, s.begin():
        p = s.get(Principal, principal_id)
        if p is None or p.disabled:
            raise NodeError(f"no active principal with id {principal_id}")
        t = Token(principal_id=principal_id, token_hash=hash_token(token),
                  description=description, created_at=now,
                  expires_at=now + timedelta(days=days))
        s.add(t)
        s.flush()
        return token, _tinfo(t, p)


def _tinfo(t: Token, p: Principal) -> TokenInfo:
    return TokenInfo(t.id, p.id, f"{p.agency}/{p.name}", t.description, t.created_at,
                     t.expires_at, t.revoked_at)


def tokens(engine: Engine, agency: str | None = None,
           principal_id: int | None = None) -> list[TokenInfo]:
    with Session(engine) as s:
        q = select(Token, Principal).join(Principal, Principal.id == Token.principal_id)
        if agency is not None:
            q = q.where(Principal.agency == agency)
        if principal_id is not None:
            q = q.where(Principal.id == principal_id)
        return [_tinfo(t, p) for t, p in s.execute(q.order_by(Token.id))]


def token_owner(engine: Engine, token_id: int) -> PrincipalInfo | None:
    with Session(engine) as s:
        t = s.get(Token, token_id)
        if t is None:
            return None
        p = s.get(Principal, t.principal_id)
        return _pinfo(p) if p else None


def revoke_token(engine: Engine, token_id: int) -> bool:
    """Revoke a token; False if there is no such live token."""
    with Session(engine) as s, s.begin():
        res = s.execute(update(Token).where(Token.id == token_id, Token.revoked_at.is_(None))
                        .values(revoked_at=utcnow()))
        assert isinstance(res, CursorResult)  # an UPDATE's result: it has a rowcount
        return bool(res.rowcount)


def check_token_hashes(engine: Engine, keys: list[str],
                       ) -> dict[str, tuple[PrincipalInfo | None, str, datetime | None]]:
    """For each token hash: its principal (None if refused), why, and when it expires.

    One query for all of them: the cache's refresher re-checks every token in use with it.
    """
    with Session(engine) as s:
        rows = s.execute(select(Token.token_hash, Token.revoked_at, Token.expires_at, Principal)
                         .join(Principal, Principal.id == Token.principal_id)
                         .where(Token.token_hash.in_(keys))).all()
    found = {row[0]: row[1:] for row in rows}
    now = utcnow()
    out: dict[str, tuple[PrincipalInfo | None, str, datetime | None]] = {}
    for key in keys:
        if key not in found:
            out[key] = (None, "unknown token", None)
            continue
        revoked_at, expires, p = found[key]
        expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
        if revoked_at is not None:
            out[key] = (None, "revoked token", expires)
        elif expires <= now:
            out[key] = (None, "expired token", expires)
        elif p.disabled:
            out[key] = (None, "disabled principal", expires)
        else:
            out[key] = (_pinfo(p), "ok", expires)
    return out
