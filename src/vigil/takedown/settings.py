"""The takedown workflow's settings, from the environment (docs/takedown.md lists them).

Read once by whoever starts the loop (``vigil serve``, ``vigil notice run``); invalid
values are refused with the variable's name.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from vigil.takedown.fetch import FetchLimits, Network
from vigil.takedown.mail import SmtpRelay


@dataclass(frozen=True, slots=True)
class Settings:
    """How the notice loop runs and where its messages go."""

    limits: FetchLimits = field(default_factory=FetchLimits)
    #: re-notice every this long until removal is verified (Project Arachnid: 24 h)
    renotice: timedelta = timedelta(hours=24)
    #: escalate to the second contact this long after the notice opened (Take It Down: 48 h)
    deadline: timedelta = timedelta(hours=48)
    #: SMTP relay ``host:port``; without one, messages are written to ``outbox``
    smtp: str | None = None
    #: how to reach the relay: TLS mode, login, CA (vigil.takedown.mail.SmtpRelay)
    relay: SmtpRelay | None = None
    outbox: Path | None = None
    sender: str = "takedown@vigil.invalid"
    #: how often the loop inside ``vigil serve`` looks for due work (0: never)
    interval: float = 60.0
    #: a worker's hold on a row it took; longer than any one fetch or send
    lease: timedelta = timedelta(minutes=5)
    #: retry a URL whose fetch failed after this long, at most ``max_checks`` times
    retry: timedelta = timedelta(hours=1)
    max_checks: int = 5
    #: fetches at once within one cycle
    concurrency: int = 8
    #: how often ``vigil serve`` pulls the notices partners forwarded (0: never)
    forward_interval: float = 300.0


def _num(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw[:40]!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {raw[:40]!r}")
    return value


def _networks(raw: str) -> tuple[Network, ...]:
    out = []
    for part in raw.split(","):
        if part.strip():
            try:
                out.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise ValueError(f"VIGIL_TAKEDOWN_ALLOW_NETWORKS: {part.strip()[:60]!r} is "
                                 "not a network (e.g. 127.0.0.0/8)") from None
    return tuple(out)


def from_env(home: Path | None = None) -> Settings:
    """Settings from ``VIGIL_TAKEDOWN_*`` (and the outbox under ``home`` by default)."""
    limits = FetchLimits(
        max_bytes=int(_num("VIGIL_TAKEDOWN_MAX_BYTES", 32 * 1024 * 1024)),
        total_seconds=_num("VIGIL_TAKEDOWN_FETCH_SECONDS", 30.0),
        max_redirects=int(_num("VIGIL_TAKEDOWN_MAX_REDIRECTS", 5)),
        allow_networks=_networks(os.environ.get("VIGIL_TAKEDOWN_ALLOW_NETWORKS", "")))
    smtp = os.environ.get("VIGIL_TAKEDOWN_SMTP") or None
    relay = None
    if smtp:
        pw = os.environ.get("VIGIL_TAKEDOWN_SMTP_PASSWORD_FILE")
        ca = os.environ.get("VIGIL_TAKEDOWN_SMTP_CA")
        relay = SmtpRelay.parse(smtp, os.environ.get("VIGIL_TAKEDOWN_SMTP_SECURITY") or None,
                                os.environ.get("VIGIL_TAKEDOWN_SMTP_USER") or None,
                                Path(pw) if pw else None, Path(ca) if ca else None)
    outbox = os.environ.get("VIGIL_TAKEDOWN_OUTBOX")
    return Settings(
        limits=limits,
        renotice=timedelta(hours=_num("VIGIL_TAKEDOWN_RENOTICE_HOURS", 24.0)),
        deadline=timedelta(hours=_num("VIGIL_TAKEDOWN_DEADLINE_HOURS", 48.0)),
        smtp=smtp,
        relay=relay,
        outbox=Path(outbox) if outbox else (home / "outbox" if home else None),
        sender=os.environ.get("VIGIL_TAKEDOWN_FROM") or "takedown@vigil.invalid",
        interval=_num("VIGIL_TAKEDOWN_INTERVAL", 60.0),
        concurrency=max(1, int(_num("VIGIL_TAKEDOWN_CONCURRENCY", 8))),
        forward_interval=_num("VIGIL_TAKEDOWN_FORWARD_INTERVAL", 300.0))
