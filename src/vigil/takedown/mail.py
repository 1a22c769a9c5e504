"""Where notices go: an SMTP relay, or an outbox folder.

The relay is reached over TLS (STARTTLS or implicit TLS, the certificate verified) unless
it is on this machine, and with a login when one is configured; the password is read
from a file at each send, never kept in the environment or the settings.

Both are ``Mailer``s. The outbox writes each message to ``<message id>.eml`` through a
temporary file and a rename, so sending the same message again after a crash replaces
the file with the same one: the outbox is exactly-once by construction. SMTP cannot be:
see vigil.takedown.schedule for how the loop narrows the window.
"""

from __future__ import annotations

import ipaddress
import os
import re
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol


class MailError(Exception):
    """The message could not be handed over; the notice stays due."""


class Mailer(Protocol):
    def send(self, msg: EmailMessage) -> None:
        """Hand the message over, or raise ``MailError``."""
        ...


#: how the connection to the relay is protected: ``none`` (plain, only sensible for a
#: relay on this machine), ``starttls`` (upgrade on the submission port, 587) or ``tls``
#: (TLS from the first byte, 465). Certificates are always verified.
SECURITY = ("none", "starttls", "tls")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@dataclass(frozen=True, slots=True)
class SmtpRelay:
    """A relay and how to reach it (``VIGIL_TAKEDOWN_SMTP*``: docs/takedown.md)."""

    host: str
    port: int
    security: str
    user: str | None = None
    #: a file holding the password (never the password itself: it would show in the
    #: process's environment and in settings dumps)
    password_file: Path | None = None
    #: CA certificates to verify the relay with (default: the system's)
    cafile: Path | None = None

    @classmethod
    def parse(cls, relay: str, security: str | None = None, user: str | None = None,
              password_file: Path | None = None, cafile: Path | None = None) -> SmtpRelay:
        """Checked settings; ``security`` defaults to ``none`` for a relay on this
        machine and ``starttls`` for any other. Credentials never go in the clear."""
        host, _, port = relay.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"VIGIL_TAKEDOWN_SMTP must be host:port, got {relay[:80]!r}")
        chosen = security or ("none" if _loopback(host) else "starttls")
        if chosen not in SECURITY:
            raise ValueError(f"VIGIL_TAKEDOWN_SMTP_SECURITY must be one of "
                             f"{', '.join(SECURITY)}, got {chosen[:40]!r}")
        if user and chosen == "none" and not _loopback(host):
            raise ValueError("VIGIL_TAKEDOWN_SMTP_USER is set but the relay is reached "
                             "without TLS: set VIGIL_TAKEDOWN_SMTP_SECURITY to starttls or "
                             "tls (a password is never sent in the clear)")
        if user and password_file is None:
            raise ValueError("VIGIL_TAKEDOWN_SMTP_USER needs VIGIL_TAKEDOWN_SMTP_PASSWORD_FILE")
        return cls(host, int(port), chosen, user or None, password_file, cafile)


class SmtpMailer:
    def __init__(self, relay: str | SmtpRelay, timeout: float = 30.0) -> None:
        self.relay = relay if isinstance(relay, SmtpRelay) else SmtpRelay.parse(relay)
        self.host, self.port, self.timeout = self.relay.host, self.relay.port, timeout

    def _context(self) -> ssl.SSLContext:
        cafile = str(self.relay.cafile) if self.relay.cafile else None
        return ssl.create_default_context(cafile=cafile)

    def _password(self) -> str:
        assert self.relay.password_file is not None
        try:
            return self.relay.password_file.read_text().strip()
        except OSError as exc:
            raise MailError(f"cannot read the relay's password file "
                            f"{self.relay.password_file}: {exc.strerror}") from None

    def send(self, msg: EmailMessage) -> None:
        r = self.relay
        try:
            smtp: smtplib.SMTP
            if r.security == "tls":
                smtp = smtplib.SMTP_SSL(r.host, r.port, timeout=self.timeout,
                                        context=self._context())
            else:
                smtp = smtplib.SMTP(r.host, r.port, timeout=self.timeout)
            with smtp:
                if r.security == "starttls":
                    smtp.starttls(context=self._context())
                if r.user:
                    smtp.login(r.user, self._password())
                smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"the relay {self.host}:{self.port} refused or failed: "
                            f"{type(exc).__name__}: {str(exc)[:200]}") from None


class OutboxMailer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, msg: EmailMessage) -> None:
        name = re.sub(r"[^A-Za-z0-9.@_-]", "_", str(msg["Message-ID"]).strip("<>"))
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f".{name}.tmp"
            tmp.write_bytes(msg.as_bytes())
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, self.folder / f"{name}.eml")
        except OSError as exc:
            raise MailError(f"cannot write to the outbox {self.folder}: {exc}") from None
