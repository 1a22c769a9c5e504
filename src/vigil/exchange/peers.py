"""Peers: the nodes this node pulls feeds from, and the agencies whose keys it trusts.

A peer is added with the key its administrators gave out of band (``vigil init`` prints
it); the key the peer reports must match it, so a wrong URL or a man in the middle is
caught at ``peer add``, not after a sync. The bearer token the peer issued to this node
is kept in ``VIGIL_HOME/keys/peers/NAME.token`` (0600), never in the database.

Feeds that reach this node through a peer but originate elsewhere are checked against
the *origin's* key, which must be trusted here explicitly (``vigil peer trust``).
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from sqlalchemy import Engine

from vigil.banks.text import FieldError, peer_name
from vigil.exchange import repo
from vigil.exchange.records import FeedError, public_key
from vigil.exchange.repo import PeerInfo
from vigil.node import check_code, ensure_agency, keys_dir


class PeerError(Exception):
    """A peer operation cannot be done as asked (unknown peer, key mismatch...)."""


def token_path(home: Path, name: str) -> Path:
    return keys_dir(home) / "peers" / f"{name}.token"


def peer_token(home: Path, name: str) -> str:
    try:
        return token_path(home, name).read_text().strip()
    except OSError as exc:
        raise PeerError(f"cannot read the token for peer {name!r} "
                        f"({token_path(home, name)}): {exc.strerror}") from None


def _save_token(home: Path, name: str, token: str) -> None:
    path = token_path(home, name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token.strip() + "\n")
    os.replace(tmp, path)


def trusted_key(engine: Engine, agency: str) -> str | None:
    """The Ed25519 public key (hex) this node trusts for ``agency``, if any."""
    return repo.agency_key(engine, agency)


def trust(engine: Engine, agency: str, key_hex: str, name: str | None = None,
          jurisdiction: str = "XX") -> None:
    """Trust ``key_hex`` as ``agency``'s feed-signing key (refuses to silently replace one)."""
    agency = check_code(agency)
    public_key(key_hex)  # validates
    key_hex = key_hex.strip().lower()
    ensure_agency(engine, agency, name, jurisdiction)
    refused = repo.set_agency_key(engine, agency, key_hex)
    if refused == "local":
        raise PeerError(f"{agency} is this node's own agency")
    if refused is not None:
        raise PeerError(f"{agency} already has a different trusted key "
                        f"({refused[:16]}…); remove the peer first if it changed")


def fetch_identity(url: str, token: str, timeout: float = 15) -> dict[str, str]:
    """What a node says it is (``GET /v1/node``), using the token it issued to us."""
    try:
        r = httpx.get(url.rstrip("/") + "/v1/node", timeout=timeout,
                      headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        raise PeerError(f"cannot reach {url}: {exc}") from None
    if r.status_code != 200:
        raise PeerError(f"{url}/v1/node answered {r.status_code}: {r.text[:200]}")
    return r.json()  # type: ignore[no-any-return]


def add_peer(engine: Engine, home: Path, name: str, url: str, key_hex: str, token: str,
             by: str | None = None) -> PeerInfo:
    """Register a peer: ask it who it is, and refuse it unless its key is ``key_hex``."""
    try:
        name = peer_name(name)
    except FieldError as exc:
        raise PeerError(f"invalid peer name (e.g. hk): {exc.reason}") from None
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise PeerError(f"peer URL must start with http:// or https://, got {url!r}")
    public_key(key_hex)
    key_hex = key_hex.strip().lower()
    if repo.peer_exists(engine, name):
        raise PeerError(f"a peer named {name!r} exists (vigil peer remove {name} first)")
    ident = fetch_identity(url, token)
    if ident.get("public_key", "").lower() != key_hex:
        raise PeerError(f"{url} presents key {ident.get('public_key', '')[:16]}…, not the "
                        f"key given ({key_hex[:16]}…): wrong URL, or someone in between")
    agency, aname, juris = ident["agency"], ident.get("name"), ident.get("jurisdiction", "XX")
    trust(engine, agency, key_hex, aname, juris)
    _save_token(home, name, token)
    repo.insert_peer(engine, name, agency, url, by)
    return get_peer(engine, name)


def get_peer(engine: Engine, name: str) -> PeerInfo:
    p = repo.peer_info(engine, name)
    if p is None:
        known = repo.peer_names(engine)
        raise PeerError(f"no peer named {name!r}" + (
            f"; peers: {', '.join(known)}" if known else "; none yet (vigil peer add)"))
    return p


def list_peers(engine: Engine) -> list[PeerInfo]:
    return repo.list_peers(engine)


def remove_peer(engine: Engine, home: Path, name: str) -> None:
    """Forget a peer and its token. Its mirror banks stay (read-only) until removed."""
    if not repo.delete_peer(engine, name):
        raise PeerError(f"no peer named {name!r}")
    token_path(home, name).unlink(missing_ok=True)


__all__ = ["FeedError", "PeerError", "PeerInfo", "add_peer", "fetch_identity", "get_peer",
           "list_peers", "peer_token", "remove_peer", "trust", "trusted_key"]
