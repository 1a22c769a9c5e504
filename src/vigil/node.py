"""A node's identity and its principals: who this node is, who may use it, with what token.

* ``init_node`` creates the node's agency, an Ed25519 key pair and an audit key, and the
  first admin with a token that is shown once. Keys live under ``VIGIL_HOME/keys`` with
  0600 permissions, never in the database: a database dump or replica must not be enough
  to sign feeds as this agency (federation) or to forge the audit chain.
* Principals are users or services of an agency with roles; tokens are 32 random bytes,
  shown once, stored only as their SHA-256, and expire and can be revoked.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import re
import secrets
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.store.models import utcnow
from vigil.store.models_node import Agency, Principal, Token

#: ``peer``: another agency's node, pulling the feeds shared with its agency (nothing else)
ROLES = ("admin", "curator", "analyst", "matcher", "auditor", "peer")
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


def authenticate(engine: Engine, token: str, cache: AuthCache | None = None,
                 ) -> tuple[PrincipalInfo | None, str]:
    """The principal a bearer token stands for, or None and why not (never the token).

    With a ``cache``, a token found valid is remembered (by its SHA-256) for the cache's
    TTL at most; failures are never cached, so every refused token is looked up again.
    """
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None, "malformed token"
    key = hash_token(token)
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            return hit, "ok"
        generation = cache.generation()  # before the read: a revocation after it wins
    info, reason, expires = check_token_hashes(engine, [key])[key]
    if info is not None and expires is not None and cache is not None:
        cache.put(key, info, expires, generation)
    return info, reason


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


# ---- caches of the hot path --------------------------------------------------------------

#: how long a worker trusts a token it has checked, at most (seconds)
AUTH_CACHE_SECONDS = 5.0


class AuthCache:
    """Token hash -> principal, per worker, for ``ttl`` seconds at most.

    * Keys are the tokens' SHA-256 (as stored), never the tokens.
    * Only successes are cached: an unknown, revoked or expired token costs a lookup every
      time and can never be remembered as good, and guessing fills nothing.
    * A cached token still stops at its own expiry (checked on every hit), not up to
      ``ttl`` later.
    * ``invalidate()`` drops everything (revocations are rare); a lookup that started
      before an invalidation does not store its (possibly stale) answer after it.
    * ``epoch`` (optional) is a counter shared by the node's workers (``EpochFile``): when
      another worker bumps it (it revoked a token), this cache drops everything on its next
      use. Revocations elsewhere (another host, the CLI) are bounded by ``ttl``.
    * At most ``max_size`` entries; the oldest go first.
    """

    def __init__(self, ttl: float = AUTH_CACHE_SECONDS, max_size: int = 10_000, *,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 epoch: Callable[[], int] | None = None) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self._clock, self._wall, self._epoch = clock, wall, epoch
        self._seen_epoch = epoch() if epoch is not None else 0
        self._generation = 0
        self._entries: dict[str, tuple[PrincipalInfo, float, float]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def _check_epoch(self) -> None:
        if self._epoch is not None and self._epoch() != self._seen_epoch:
            with self._lock:
                self._seen_epoch = self._epoch()
                self._entries.clear()
                self._generation += 1

    def generation(self) -> int:
        """Take before reading the store; ``put`` with it stores only if nothing was
        invalidated in between."""
        self._check_epoch()
        return self._generation

    def get(self, key: str) -> PrincipalInfo | None:
        self._check_epoch()
        hit = self._entries.get(key)
        if hit is None:
            return None
        principal, expires, deadline = hit
        if self._clock() >= deadline or self._wall() >= expires:
            self._entries.pop(key, None)
            return None
        return principal

    def put(self, key: str, principal: PrincipalInfo, expires_at: datetime,
            generation: int) -> None:
        if self.ttl <= 0:
            return
        self._check_epoch()
        with self._lock:
            if generation != self._generation:
                return  # invalidated while this answer was read: it may be stale
            while len(self._entries) >= self.max_size:
                self._entries.pop(next(iter(self._entries)))
            self._entries.pop(key, None)
            self._entries[key] = (principal, expires_at.timestamp(), self._clock() + self.ttl)

    def invalidate(self) -> None:
        with self._lock:
            self._entries.clear()
            self._generation += 1

    def due(self, within: float) -> list[str]:
        """The keys whose TTL ends within ``within`` seconds: to re-check before then."""
        limit = self._clock() + within
        return [k for k, (_, _, deadline) in list(self._entries.items()) if deadline <= limit]

    def drop(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def revalidate(self, engine: Engine, within: float) -> int:
        """Re-check in the store the tokens whose TTL ends within ``within`` seconds, and
        keep those still valid for another TTL; the others go.

        Why: an expired entry sent the next requests of a busy client — every one already
        in flight — through the full authentication path at once, a stall every TTL
        (150-220 ms at 64 clients, measured). Checked ahead, a token in use never lapses,
        and every entry has still been confirmed by the store within the TTL. Returns how
        many were re-checked.
        """
        keys = self.due(within)
        if not keys:
            return 0
        generation = self.generation()  # before the read: a revocation after it wins
        for key, (info, _, expires) in check_token_hashes(engine, keys).items():
            if info is not None and expires is not None:
                self.put(key, info, expires, generation)
            else:
                self.drop(key)
        return len(keys)


class EpochFile:
    """Counters shared by every process of a node on one host: a small memory-mapped file.

    A process that changes what others cache (revokes a token, creates a bank) bumps a
    counter after its transaction commits; the others compare it on every use (a read
    from shared memory, no system call) and drop their cache when it moved.
    """

    SLOTS: ClassVar[dict[str, int]] = {"auth": 0, "banks": 1}
    _SIZE = 8 * 8

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < self._SIZE:
                os.ftruncate(fd, self._SIZE)  # zero-filled; racing creators agree
            self._mm = mmap.mmap(fd, self._SIZE, mmap.MAP_SHARED)
        finally:
            os.close(fd)
        self.path = path

    def read(self, name: str) -> int:
        return int(struct.unpack_from("<Q", self._mm, 8 * self.SLOTS[name])[0])

    def reader(self, name: str) -> Callable[[], int]:
        off = 8 * self.SLOTS[name]
        mm, unpack = self._mm, struct.unpack_from
        return lambda: int(unpack("<Q", mm, off)[0])

    def bump(self, name: str) -> None:
        off = 8 * self.SLOTS[name]
        with open(self.path, "rb") as lock:  # serialise bumps of several processes
            fcntl.flock(lock, fcntl.LOCK_EX)
            value = struct.unpack_from("<Q", self._mm, off)[0]
            struct.pack_into("<Q", self._mm, off, (value + 1) & 0xFFFF_FFFF_FFFF_FFFF)

    def close(self) -> None:
        self._mm.close()


def epoch_file(home: Path) -> EpochFile:
    """The node's shared counters under ``VIGIL_HOME/run``; a CLI that revokes a token or
    disables a user can ``epoch_file(home).bump("auth")`` so running workers notice at once."""
    return EpochFile(home / "run" / "cache-epochs")
