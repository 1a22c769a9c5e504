"""Audit records of the commands that change a node's state.

Every change — through the API or the command line — is one record in the node's audit
log. Here, the command line's side: the actor is the local operator
(``local/<VIGIL_USER or the OS user>``), the agency is the node's (none before ``vigil
init``), and each action and its details are the ones the API records for the same change
(``tests/cli/test_audit_records.py`` holds the two to each other).

The log is opened *before* the change is made (``opened``), so a command that cannot
record its change refuses with a clear error and changes nothing.

Before ``vigil init`` (``vigil bank …`` works without a node): the first change creates
the audit key in ``$VIGIL_HOME/keys`` (0600, in a 0700 folder), the log starts there, and
``vigil init`` later adopts that key, so the chain runs unbroken from the first change. A
store that already has records or an identity but whose key is not in this
``VIGIL_HOME`` is refused: appending under another key would break the chain.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from vigil.audit import AuditEntry, AuditLog
from vigil.banks import current_user
from vigil.banks.model import ApplyResult
from vigil.cli._app import fail
from vigil.node import NodeError, audit_key, identity, keys_dir


def local_actor() -> str:
    """Who acts at this terminal, as audit records name them."""
    return f"local/{current_user()}"


class LocalAudit:
    """Appends the records of one command's changes, as the local operator."""

    def __init__(self, engine: Engine, log: AuditLog, agency: str | None) -> None:
        self.engine = engine
        self.log = log
        self.agency = agency

    def record(self, action: str, target: str | None = None, *, outcome: str = "ok",
               **detail: Any) -> AuditEntry:
        """One record; ``detail`` as the API's record of the same change has it (its
        ``agency`` is a detail, e.g. the agency a bank is shared with: the record's own
        agency is always the node's)."""
        return self.log.append(action, outcome=outcome, agency=self.agency,
                               actor=local_actor(), target=target, detail=detail)

    def bank_change(self, action: str, bank: str, result: ApplyResult, last_seq: int,
                    **extra: Any) -> AuditEntry:
        """A change to a bank's entries, with the counts the API records for it."""
        return self.record(action, bank, added=result.added, updated=result.updated,
                           removed=result.removed, unchanged=result.unchanged,
                           not_found=result.not_found, skipped=len(result.skipped),
                           last_seq=last_seq, **extra)


def _start_key(home: Path) -> bytes:
    """Create the audit key for a store with no node yet (``vigil init`` adopts it)."""
    folder = keys_dir(home)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(folder / "audit.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another command made it meanwhile: use that one
        return (folder / "audit.key").read_bytes()
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def opened(engine: Engine, home: Path | None = None) -> LocalAudit:
    """The audit log of this store, ready before any change is made (see the module)."""
    from vigil.store import vigil_home

    home = home or vigil_home()
    ident = identity(engine)
    log_dir = home / "audit"
    if (keys_dir(home) / "audit.key").exists():
        try:
            key = audit_key(home)
        except NodeError as exc:
            fail(str(exc))
    else:
        if ident is not None:
            fail(f"this store belongs to node {ident.agency}, but its audit key is not in "
                 f"{keys_dir(home)}: set VIGIL_HOME to the node's home (nothing was changed)")
        probe = AuditLog(engine, b"-", None)  # reads the head only: no key needed
        if probe.head()[0] > 0:
            fail(f"this store's audit log was started under another VIGIL_HOME (no audit key "
                 f"in {keys_dir(home)}): set VIGIL_HOME to it (nothing was changed)")
        key = _start_key(home)
    return LocalAudit(engine, AuditLog(engine, key, log_dir),
                      ident.agency if ident is not None else None)
