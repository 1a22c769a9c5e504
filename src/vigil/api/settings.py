"""Service settings, read once from the environment (every uvicorn worker reads the same)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vigil.store import vigil_home

MiB = 1 << 20


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def _bool(name: str, default: bool) -> bool:
    raw = (os.environ.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be 1/0, true/false, yes/no or on/off, got {raw!r}")


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
    #: serve plain ``POST /v1/match`` requests on the lean path (``vigil.api.fastmatch``);
    #: off (``VIGIL_FAST_MATCH=0``) every request goes through the FastAPI route
    fast_match: bool = True

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            home=vigil_home(),
            max_json_bytes=_int("VIGIL_MAX_JSON_BYTES", 8 * MiB),
            max_upload_bytes=_int("VIGIL_MAX_UPLOAD_BYTES", 64 * MiB),
            max_import_bytes=_int("VIGIL_MAX_IMPORT_BYTES", 4096 * MiB),
            sync_interval=float(os.environ.get("VIGIL_SYNC_INTERVAL") or 0.5),
            fast_match=_bool("VIGIL_FAST_MATCH", True),
        )

    @property
    def index_folder(self) -> Path:
        return self.home / "indexes" / "main"

    @property
    def audit_folder(self) -> Path:
        return self.home / "audit"
