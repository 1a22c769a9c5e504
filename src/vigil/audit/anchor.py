"""The anchor: the audit chain's newest (id, MAC), kept outside the database and keyed.

Why outside: cutting records off the end of the log leaves a chain that verifies on its
own; the anchor remembers how far the log went. Why keyed (an HMAC with the node's audit
key over the id, the record's MAC and the time it was written): an anchor is a plain file,
and without the key anyone who can write it could rewind it to the cut they made. Someone
holding the key can still rewind both; peers' witnessed heads (``vigil.audit.witness``)
catch that.

The file is written in place: one JSON document padded with spaces to a fixed
``ANCHOR_BYTES``, so a shorter one never leaves bytes of a longer one behind and a write
stays inside one disk block. Why not a new file and a rename each time: that cost ~0.6 ms
per group commit (an inode per batch), and a server writes it hundreds of times a second.
``anchor.lock`` serialises the writers of every process of the host.
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from vigil.audit.records import ANCHOR_BYTES, canonical, derive_key, timestamp
from vigil.store.models import utcnow

log = logging.getLogger("vigil.audit")


@dataclass(frozen=True, slots=True)
class Anchor:
    """What an anchor file says: the newest record's id and MAC, when, and its own MAC
    (None in an anchor written by a Vigil before anchors were keyed)."""

    id: int
    hash: str
    at: str | None = None
    mac: str | None = None


def anchor_mac(key: bytes, last_id: int, mac: str, at: str) -> str:
    """The anchor's MAC under the node's audit key (a key of its own, derived from it)."""
    body = canonical({"id": last_id, "hash": mac, "at": at})
    return hmac.digest(derive_key(key, b"anchor"), body, "sha256").hex()


def parse_anchor(raw: bytes) -> Anchor | None:
    """An anchor file's content, or None if it holds none (empty, or not an anchor)."""
    with contextlib.suppress(ValueError, KeyError, TypeError):
        d = json.loads(raw)
        at, mac = d.get("at"), d.get("mac")
        return Anchor(int(d["id"]), str(d["hash"]), None if at is None else str(at),
                      None if mac is None else str(mac))
    return None


def read_anchor(folder: Path) -> Anchor | None:
    """The anchor in ``folder``, or None when there is none (or it is unreadable)."""
    try:
        return parse_anchor((folder / "anchor.json").read_bytes())
    except OSError:
        return None


def check_anchor(anchor: Anchor, key: bytes) -> str | None:
    """Why ``anchor`` cannot be trusted (None if its MAC verifies under ``key``)."""
    if anchor.mac is None or anchor.at is None:
        return ("the anchor file carries no MAC: rewritten without the node's audit key, or "
                "written by a Vigil before anchors were keyed (then the next append "
                "replaces it)")
    if not hmac.compare_digest(anchor_mac(key, anchor.id, anchor.hash, anchor.at), anchor.mac):
        return ("the anchor file's MAC does not verify under the node's audit key "
                "(rewritten by someone without the key)")
    return None


class AnchorFile:
    """Moves one folder's anchor forward after each commit, keyed, never going back."""

    def __init__(self, folder: Path, key: bytes) -> None:
        self.folder = folder
        self._key = key
        #: the newest id this process knows the anchor file holds (it never goes back)
        self._anchored = 0
        self._fd: int | None = None
        self._lock = threading.Lock()  # flock does not exclude this process's threads
        self._refused = False  # an untrustworthy anchor was found and kept (logged once)

    def advance(self, last_id: int, mac: str) -> None:
        """Record (``last_id``, ``mac``) unless the file already holds a newer record.

        An anchor whose MAC does not verify is evidence of tampering: it is left as it is
        (``vigil audit verify`` reports it) and logged, never overwritten. One with no MAC
        at all was written by an older Vigil and is replaced.
        """
        if last_id <= self._anchored or self._refused:
            return  # this process already saw the anchor at least this far
        with self._lock:
            lock = self._lock_file()
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                fd = os.open(self.folder / "anchor.json", os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    current = parse_anchor(os.pread(fd, 4096, 0))
                    if current is not None and current.mac is not None \
                            and check_anchor(current, self._key) is not None:
                        self._refused = True
                        log.error("audit anchor %s does not verify under the audit key; "
                                  "left as found (evidence) and no longer moved: run "
                                  "`vigil audit verify`", self.folder / "anchor.json")
                        return
                    if current is not None and current.id >= last_id:
                        self._anchored = current.id
                        return
                    at = timestamp(utcnow())
                    doc = json.dumps({"id": last_id, "hash": mac, "at": at,
                                      "mac": anchor_mac(self._key, last_id, mac, at)}).encode()
                    os.pwrite(fd, doc.ljust(ANCHOR_BYTES - 1) + b"\n", 0)
                    if os.fstat(fd).st_size > ANCHOR_BYTES:  # written by an older Vigil
                        os.ftruncate(fd, ANCHOR_BYTES)
                    self._anchored = last_id
                finally:
                    os.close(fd)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _lock_file(self) -> int:
        """The lock file's descriptor, opened once (the folder made then too)."""
        if self._fd is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.folder / "anchor.lock",
                               os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        return self._fd
