"""Who this node is: its agency, its keys, and ``vigil init``.

``init_node`` creates the node's agency, an Ed25519 key pair and an audit key, and the
first admin with a token that is shown once. Keys live under ``VIGIL_HOME/keys`` with
0600 permissions, never in the database: a database dump or replica must not be enough
to sign feeds as this agency (federation) or to forge the audit chain.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from vigil.banks.text import FieldError, label
from vigil.node.principals import (
    DEFAULT_TOKEN_DAYS,
    NodeError,
    check_code,
    create_principal,
    issue_token,
)
from vigil.store.models import utcnow
from vigil.store.models_node import Agency

AGENCY_NAME_MAX = 200
_JURISDICTION = re.compile(r"[A-Z]{2}[A-Z0-9-]{0,5}")


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    agency: str
    name: str
    jurisdiction: str
    public_key: str


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
    if (folder / "node.key").exists():
        raise NodeError(f"keys already exist in {folder}; this node is already initialised")
    key = Ed25519PrivateKey.generate()
    _write_secret(folder / "node.key", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    pub = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    (folder / "node.pub").write_text(pub.hex() + "\n")
    # an audit key made by changes before `vigil init` (vigil.cli._audit) is kept: the
    # audit log it started goes on under it
    if not (folder / "audit.key").exists():
        _write_secret(folder / "audit.key", secrets.token_bytes(32))
    return pub.hex()


def init_node(engine: Engine, home: Path, agency: str, name: str, jurisdiction: str,
              admin: str = "admin", days: int = DEFAULT_TOKEN_DAYS) -> tuple[NodeIdentity, str]:
    """Create the node's identity, keys and first admin; returns the admin's token (once)."""
    agency = check_code(agency)
    jurisdiction = check_jurisdiction(jurisdiction)
    if not name.strip():
        raise NodeError("the agency needs a name (--name)")
    name = check_agency_name(name)
    if identity(engine) is not None:
        raise NodeError("this node is already initialised (vigil token create for new tokens)")
    pub = _create_keys(home)
    with Session(engine) as s, s.begin():
        s.add(Agency(code=agency, name=name, jurisdiction=jurisdiction, local=True,
                     public_key=pub, created_at=utcnow()))
    p = create_principal(engine, agency, admin, ["admin"], "user", created_by="vigil init")
    token, _ = issue_token(engine, p.id, days, "first admin token (vigil init)")
    return NodeIdentity(agency, name, jurisdiction, pub), token


def check_jurisdiction(code: str) -> str:
    """An ISO 3166 code (``SG``, ``KR``, ``GB-SCT``), upper-cased; NodeError if not."""
    code = code.strip().upper()
    if not _JURISDICTION.fullmatch(code):
        raise NodeError(f"invalid jurisdiction {code!r}: an ISO 3166 code such as SG")
    return code


def check_agency_name(name: str) -> str:
    """An agency's name as people read it (label text, at most 200 characters)."""
    try:
        return label(name, "name", AGENCY_NAME_MAX)
    except FieldError as exc:
        raise NodeError(f"invalid agency name: {exc.reason}") from None


def identity(engine: Engine) -> NodeIdentity | None:
    """This node's identity, or None before ``vigil init``."""
    with Session(engine) as s:
        a = s.scalar(select(Agency).where(Agency.local.is_(True)))
        if a is None:
            return None
        return NodeIdentity(a.code, a.name, a.jurisdiction, a.public_key or "")


#: the jurisdiction of an agency whose jurisdiction this node has not been told
UNKNOWN_JURISDICTION = "XX"


def ensure_agency(engine: Engine, code: str, name: str | None = None,
                  jurisdiction: str = UNKNOWN_JURISDICTION) -> None:
    """Register another agency (whose principals this node serves) if it is new.

    ``name`` and ``jurisdiction`` may come from a peer (``GET /v1/node``): they are
    checked like this node's own. An agency first met without them (``vigil peer grant``
    knows only its code: jurisdiction ``XX``, unknown) learns them when they come, as
    forwarding notices to the partner of a host's country needs its jurisdiction."""
    code = check_code(code)
    name = check_agency_name(name) if name and name.strip() else None
    jurisdiction = check_jurisdiction(jurisdiction)
    with Session(engine) as s, s.begin():
        a = s.get(Agency, code)
        if a is None:
            s.add(Agency(code=code, name=name or code, jurisdiction=jurisdiction, local=False,
                         created_at=utcnow()))
        elif not a.local and a.jurisdiction == UNKNOWN_JURISDICTION:
            a.jurisdiction = jurisdiction
            if name and a.name == code:
                a.name = name


def agency_jurisdiction(engine: Engine, code: str) -> str | None:
    """The ISO 3166 jurisdiction of a known agency (``XX`` when not yet known)."""
    with Session(engine) as s:
        a = s.get(Agency, code)
        return a.jurisdiction if a is not None else None
