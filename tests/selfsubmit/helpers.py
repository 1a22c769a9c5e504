"""Shared pieces of the self-submission tests: a case's items, and the recovery key a
browser would make (ECDSA P-256, signatures as WebCrypto's raw r||s)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from vigil.selfsubmit import keys


def item(n: int, quality: int = 90) -> dict[str, Any]:
    """A picture's hashes, distinct per ``n`` (benign: derived from the number)."""
    seed = f"picture-{n}".encode()
    return {"kind": "image", "pdq": hashlib.sha256(seed + b"p").hexdigest(),
            "quality": quality, "md5": hashlib.md5(seed).hexdigest(),
            "sha256": hashlib.sha256(seed).hexdigest()}


class RecoveryKey:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())

    @property
    def public(self) -> str:
        der = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode()

    def sign(self, action: str, case: str, challenge: str) -> str:
        der = self.key.sign(keys.message(action, case, challenge), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return base64.b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).decode()
