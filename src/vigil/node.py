"""A node's identity and its principals: who this node is, who may use it, with what token.

* ``init_node`` creates the node's agency, an Ed25519 key pair and an audit key, and the
  first admin with a token that is shown once. Keys live under ``VIGIL_HOME/keys`` with
  0600 permissions, never in the database: a database dump or replica must not be enough
  to sign feeds as this agency (federation) or to forge the audit chain.
* Principals are users or services of an agency with roles; tokens are 32 random bytes,
  shown once, stored only as their SHA-256, and expire and can be revoked.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.store.models import utcnow
from vigil.store.models_node import Agency, Principal, Token

ROLES = ("admin", "curator", "analyst", "matcher", "auditor")
KINDS = ("user", "service")
TOKEN_PREFIX = "vgl_"
DEFAULT_TOKEN_DAYS = 90
MAX_TOKEN_DAYS = 3650
_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,63}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")


class NodeError(Exception):
    """A node operation cannot be done as asked (already initialised, unknown user...)."""


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    agency: str
    name: str
    jurisdiction: str
    public_key: str


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


# ---- keys --------------------------------------------------------------------------------

def keys_dir(home: Path) -> Path:
    return home / "keys"


def _write_secret(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 from the start (never world-readable, not even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def audit_key(home: Path) -> bytes:
    """The node's secret audit key (chain MACs and digests of queried signals)."""
    path = keys_dir(home) / "audit.key"
    try:
        return path.read_bytes()
    except OSError as exc:
        raise NodeError(f"cannot read the audit key {path}: {exc.strerror}; "
                        "run `vigil init` first") from exc


def signing_key(home: Path) -> Ed25519PrivateKey:
    """The node's Ed25519 private key (for signed feeds, issue on federation)."""
    data = (keys_dir(home) / "node.key").read_bytes()
    key = serialization.load_pem_private_key(data, password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def _create_keys(home: Path) -> str:
    folder = keys_dir(home)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    if (folder / "node.key").exists() or (folder / "audit.key").exists():
        raise NodeError(f"keys already exist in {folder}; this node is already initialised")
    key = Ed25519PrivateKey.generate()
    _write_secret(folder / "node.key", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    pub = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    (folder / "node.pub").write_text(pub.hex() + "\n")
    _write_secret(folder / "audit.key", secrets.token_bytes(32))
    return pub.hex()


# ---- identity ----------------------------------------------------------------------------

def check_code(code: str) -> str:
    code = code.strip()
    if not _CODE.match(code):
        raise NodeError(f"invalid agency code {code!r}: upper-case letters, digits, - and _ "
                        "(e.g. SG-SPF)")
    return code


def init_node(engine: Engine, home: Path, agency: str, name: str, jurisdiction: str,
              admin: str = "admin", days: int = DEFAULT_TOKEN_DAYS) -> tuple[NodeIdentity, str]:
    """Create the node's identity, keys and first admin; returns the admin's token (once)."""
    agency = check_code(agency)
    jurisdiction = jurisdiction.strip().upper()
    if not re.fullmatch(r"[A-Z]{2}[A-Z0-9-]{0,5}", jurisdiction):
        raise NodeError(f"invalid jurisdiction {jurisdiction!r}: an ISO 3166 code such as SG")
    if not name.strip():
        raise NodeError("the agency needs a name (--name)")
    if identity(engine) is not None:
        raise NodeError("this node is already initialised (vigil token create for new tokens)")
    pub = _create_keys(home)
    with Session(engine) as s, s.begin():
        s.add(Agency(code=agency, name=name.strip(), jurisdiction=jurisdiction, local=True,
                     public_key=pub, created_at=utcnow()))
    p = create_principal(engine, agency, admin, ["admin"], "user", created_by="vigil init")
    token, _ = issue_token(engine, p.id, days, "first admin token (vigil init)")
    return NodeIdentity(agency, name.strip(), jurisdiction, pub), token


def identity(engine: Engine) -> NodeIdentity | None:
    """This node's identity, or None before ``vigil init``."""
    with Session(engine) as s:
        a = s.scalar(select(Agency).where(Agency.local.is_(True)))
        if a is None:
            return None
        return NodeIdentity(a.code, a.name, a.jurisdiction, a.public_key or "")


def ensure_agency(engine: Engine, code: str, name: str | None = None,
                  jurisdiction: str = "XX") -> None:
    """Register another agency (whose principals this node serves) if it is new."""
    code = check_code(code)
    with Session(engine) as s, s.begin():
        if s.get(Agency, code) is None:
            s.add(Agency(code=code, name=name or code, jurisdiction=jurisdiction, local=False,
                         created_at=utcnow()))


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
    if not _NAME.match(name):
        raise NodeError(f"invalid name {name!r}: 1-100 of letters, digits, . _ @ -")
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
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    with Session(engine) as s, s.begin():
        p = s.get(Principal, principal_id)
        if p is None or p.disabled:
            raise NodeError(f"no active principal with id {principal_id}")
        t = Token(principal_id=principal_id, token_hash=hash_token(token),
                  description=description[:200], created_at=now,
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
        return bool(res.rowcount)


def authenticate(engine: Engine, token: str) -> tuple[PrincipalInfo | None, str]:
    """The principal a bearer token stands for, or None and why not (never the token)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None, "malformed token"
    with Session(engine) as s:
        row = s.execute(select(Token, Principal)
                        .join(Principal, Principal.id == Token.principal_id)
                        .where(Token.token_hash == hash_token(token))).first()
    if row is None:
        return None, "unknown token"
    t, p = row
    if t.revoked_at is not None:
        return None, "revoked token"
    expires = t.expires_at if t.expires_at.tzinfo else t.expires_at.replace(tzinfo=utcnow().tzinfo)
    if expires <= utcnow():
        return None, "expired token"
    if p.disabled:
        return None, "disabled principal"
    return _pinfo(p), "ok"
