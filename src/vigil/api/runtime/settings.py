"""Service settings, read once from the environment (every uvicorn worker reads the same)."""

from __future__ import annotations

import ipaddress
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from vigil.formats.limits import JsonLimits, Limits
from vigil.review.ledger import Caps
from vigil.store import vigil_home

MiB = 1 << 20
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: JSON request bodies: arrays and objects nest at most this deep (the deepest model, a
#: match request's signal variants, is 4), and hold at most this many items or keys (a
#: batch of signals or entries is at most 10,000); a string or key is at most this long
JSON_DEPTH = 16
JSON_ITEMS = 10_000
JSON_STRING = 64 << 10


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def _networks(name: str) -> tuple[Network, ...]:
    """Addresses and networks (``10.0.0.5, 10.1.0.0/16, ::1``), separated by commas or
    spaces; an address is a network of one."""
    out = []
    for item in (os.environ.get(name) or "").replace(",", " ").split():
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{name}: {item[:60]!r} is not an IP address or network "
                             "(e.g. 127.0.0.1 or 10.0.0.0/8)") from None
    return tuple(out)


def _bool(name: str, default: bool) -> bool:
    raw = (os.environ.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be 1/0, true/false, yes/no or on/off, got {raw!r}")


def _number(name: str, default: float, lo: float, hi: float, unit: str) -> float:
    """A number from the environment within ``[lo, hi]``; a clear error naming it."""
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and lo <= value <= hi):
        what = f"a number of {unit}" if unit else "a number"
        raise ValueError(f"{name} must be {what} from {lo:g} to {hi:g}, got {raw[:40]!r}")
    return value


#: the review workspace's caps (``vigil.review.ledger.Caps``): environment variable,
#: default, range and unit; the same defaults and ranges as ``vigil review``'s options
REVIEW_CAPS = {
    "VIGIL_REVIEW_CLEAR_MINUTES": (20.0, 0.0, 1440.0, "minutes"),
    "VIGIL_REVIEW_BREAK_MINUTES": (5.0, 0.0, 1440.0, "minutes"),
    "VIGIL_REVIEW_DAILY_MINUTES": (60.0, 0.0, 1440.0, "minutes"),
    "VIGIL_REVIEW_REVEAL_SECONDS": (5.0, 0.5, 30.0, "seconds"),
    "VIGIL_REVIEW_LIGHT_WEIGHT": (0.5, 0.0, 1.0, ""),
}


def review_caps_from_env() -> Caps:
    """The exposure caps of every reviewer of this node's workspace (docs/review.md).

    Why settings of the node and not of a page: a cap is the agency's welfare policy, the
    same for every reviewer and every scan, and only the server enforces it."""
    v = {name: _number(name, *spec) for name, spec in REVIEW_CAPS.items()}
    return Caps(run_seconds=v["VIGIL_REVIEW_CLEAR_MINUTES"] * 60,
                break_seconds=v["VIGIL_REVIEW_BREAK_MINUTES"] * 60,
                daily_seconds=v["VIGIL_REVIEW_DAILY_MINUTES"] * 60,
                reveal_seconds=v["VIGIL_REVIEW_REVEAL_SECONDS"],
                light_weight=v["VIGIL_REVIEW_LIGHT_WEIGHT"])


@dataclass(frozen=True, slots=True)
class Settings:
    """Limits and places. Every limit answers a 4xx problem when crossed, never a 500."""

    home: Path
    #: JSON request bodies (10,000 signals with dihedral variants fit in ~6 MiB)
    max_json_bytes: int = 8 * MiB
    #: uploaded files for /v1/hash, /v1/match/file, entries/file: held in memory only
    max_upload_bytes: int = 64 * MiB
    #: bulk imports (streamed into one transaction, never held whole)
    max_import_bytes: int = 4096 * MiB
    max_signals: int = 10_000
    #: how often each worker tails the change log (seconds)
    sync_interval: float = 0.5
    #: serve plain ``POST /v1/match`` requests on the lean path (``vigil.api.server.fastmatch``);
    #: off (``VIGIL_FAST_MATCH=0``) every request goes through the FastAPI route
    fast_match: bool = True
    #: JSON values (scalars, arrays, objects) in one request body: 10,000 signals with
    #: all their dihedral variants take ~120,000; 10,000 entries with ten tags ~210,000
    max_json_values: int = 250_000
    #: the format readers' and the feed receiver's limits (``VIGIL_MAX_DEPTH``, ...)
    limits: Limits = field(default_factory=Limits)
    #: reverse proxies whose ``X-Forwarded-For`` the node believes (empty: none; the
    #: address of the connection is the caller's)
    trusted_proxies: tuple[Network, ...] = ()
    #: exposure caps of the review workspace at /review (``VIGIL_REVIEW_*_MINUTES``, ...)
    review_caps: Caps = field(default_factory=Caps)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            home=vigil_home(),
            max_json_bytes=_int("VIGIL_MAX_JSON_BYTES", 8 * MiB),
            max_upload_bytes=_int("VIGIL_MAX_UPLOAD_BYTES", 64 * MiB),
            max_import_bytes=_int("VIGIL_MAX_IMPORT_BYTES", 4096 * MiB),
            sync_interval=float(os.environ.get("VIGIL_SYNC_INTERVAL") or 0.5),
            fast_match=_bool("VIGIL_FAST_MATCH", True),
            max_json_values=_int("VIGIL_MAX_JSON_VALUES", 250_000),
            limits=Limits.from_env(),
            trusted_proxies=_networks("VIGIL_TRUSTED_PROXIES"),
            review_caps=review_caps_from_env(),
        )

    @property
    def json_limits(self) -> JsonLimits:
        """The limits of one JSON request body, checked before it is parsed."""
        return JsonLimits(depth=JSON_DEPTH, values=self.max_json_values, items=JSON_ITEMS,
                          string=JSON_STRING)

    @property
    def index_folder(self) -> Path:
        return self.home / "indexes" / "main"

    @property
    def audit_folder(self) -> Path:
        return self.home / "audit"
