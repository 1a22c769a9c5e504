"""Where notices go: an SMTP relay, or an outbox folder.

Both are ``Mailer``s. The outbox writes each message to ``<message id>.eml`` through a
temporary file and a rename, so sending the same message again after a crash replaces
the file with the same one: the outbox is exactly-once by construction. SMTP cannot be:
see vigil.takedown.schedule for how the loop narrows the window.
"""

from __future__ import annotations

import os
import re
import smtplib
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol


class MailError(Exception):
    """The message could not be handed over; the notice stays due."""


class Mailer(Protocol):
    def send(self, msg: EmailMessage) -> None:
        """Hand the message over, or raise ``MailError``."""
        ...


class SmtpMailer:
    def __init__(self, relay: str, timeout: float = 30.0) -> None:
        host, _, port = relay.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"VIGIL_TAKEDOWN_SMTP must be host:port, got {relay[:80]!r}")
        self.host, self.port, self.timeout = host, int(port), timeout

    def send(self, msg: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
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
