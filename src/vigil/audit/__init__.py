"""The node's audit log: append-only, hash-chained, keyed, verifiable (see ``log``), its
keyed anchor (``anchor``), and the signed heads peers keep as witnesses (``witness``)."""

from vigil.audit import witness_store
from vigil.audit.anchor import Anchor, read_anchor
from vigil.audit.log import AuditLog
from vigil.audit.records import GENESIS, OUTCOMES, AuditEntry, VerifyReport
from vigil.audit.witness import SignedHead, check_head, sign_head

__all__ = ["GENESIS", "OUTCOMES", "Anchor", "AuditEntry", "AuditLog", "SignedHead",
           "VerifyReport", "check_head", "read_anchor", "sign_head", "witness_store"]
