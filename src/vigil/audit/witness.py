"""Signed audit heads: what a node's peers keep of its audit log, so a rewind shows.

Why: the chain, the head row and the keyed anchor all live with the node. Someone holding
the node's audit key (an insider, or whoever took the machine) can cut the log, re-chain
what follows and rewrite the anchor, and the node's own check then passes. So, as
Certificate Transparency's gossip does, a node signs its current head — (agency, last
record id, that record's MAC, when) — with its Ed25519 node key, and each peer that syncs
from it keeps a copy. The node later checks its chain against every copy it can obtain:
a witnessed record that is gone or different means the log was rewound, whatever key was
used. A head says nothing about the records' contents (the MAC is keyed), only how far
the log went.

The message signed is ``"vigil-audit-head\\0" + canonical(head)``, a domain of its own so
that a signature over a feed checkpoint can never pass for one over a head.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from vigil.audit.records import canonical, timestamp
from vigil.store.models import utcnow

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX128 = re.compile(r"^[0-9a-f]{128}$")
_AT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
_AGENCY = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,63}$")  # as vigil.node.check_code
MAX_ID = 2**62


@dataclass(frozen=True, slots=True)
class SignedHead:
    """A node's audit head, signed by that node: how far its log went, and when."""

    agency: str
    id: int
    hash: str
    at: str
    sig: str

    def body(self) -> dict[str, Any]:
        return {"agency": self.agency, "id": self.id, "hash": self.hash, "at": self.at}

    def as_dict(self) -> dict[str, Any]:
        return {**self.body(), "sig": self.sig}

    @classmethod
    def parse(cls, data: Any) -> SignedHead:
        """From its JSON form (a peer's answer: outside data); ValueError names the field."""
        if not isinstance(data, dict):
            raise ValueError("an audit head must be a JSON object")
        agency, id_, hash_, at, sig = (data.get(k) for k in ("agency", "id", "hash", "at", "sig"))
        if not isinstance(agency, str) or not _AGENCY.match(agency):
            raise ValueError("audit head field 'agency': an agency code such as SG-SPF")
        if type(id_) is not int or not 0 <= id_ <= MAX_ID:
            raise ValueError(f"audit head field 'id': an integer from 0 to {MAX_ID}")
        if not isinstance(hash_, str) or not _HEX64.match(hash_):
            raise ValueError("audit head field 'hash': 64 lowercase hex characters")
        if not isinstance(at, str) or not _AT.match(at):
            raise ValueError("audit head field 'at': a UTC time as YYYY-MM-DDTHH:MM:SS.ffffffZ")
        if not isinstance(sig, str) or not _HEX128.match(sig):
            raise ValueError("audit head field 'sig': 128 lowercase hex characters")
        return cls(agency, id_, hash_, at, sig)


def head_message(agency: str, last_id: int, mac: str, at: str) -> bytes:
    return b"vigil-audit-head\0" + canonical(
        {"agency": agency, "id": last_id, "hash": mac, "at": at})


def sign_head(key: Ed25519PrivateKey, agency: str, last_id: int, mac: str,
              at: str | None = None) -> SignedHead:
    """This node's head (``last_id``, ``mac``), signed now (or at ``at``)."""
    at = at or timestamp(utcnow())
    return SignedHead(agency, last_id, mac, at,
                      key.sign(head_message(agency, last_id, mac, at)).hex())


def check_head(head: SignedHead, key: Ed25519PublicKey) -> bool:
    """Whether ``head`` was signed by the holder of ``key``."""
    try:
        key.verify(bytes.fromhex(head.sig), head_message(head.agency, head.id, head.hash,
                                                         head.at))
        return True
    except (InvalidSignature, ValueError):
        return False
