"""The case's recovery key: an ECDSA P-256 key pair made by the victim's browser (WebCrypto).

The node keeps only the public half. A status check or withdrawal can be proven with a
signature over a one-time challenge the node issued; a challenge is used once, so a
replayed signed request is refused.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import load_der_public_key

ALG = "ECDSA-P256"
#: a challenge must be answered within this long
CHALLENGE_TTL = timedelta(minutes=10)
#: base64 of a P-256 SubjectPublicKeyInfo is 124 characters
MAX_PUBLIC_KEY_CHARS = 200


class KeyError_(ValueError):
    """A public key or signature that cannot be used (message for people)."""


def check_public_key(b64: str) -> str:
    """A P-256 public key (SPKI DER, base64) as stored, or KeyError_."""
    if len(b64) > MAX_PUBLIC_KEY_CHARS:
        raise KeyError_("public_key: too long for a P-256 key")
    try:
        key = load_der_public_key(base64.b64decode(b64, validate=True))
    except (ValueError, binascii.Error, TypeError):
        raise KeyError_("public_key: not a public key (SPKI DER, base64)") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise KeyError_("public_key: only ECDSA P-256 keys are accepted")
    return b64


def new_challenge() -> str:
    return secrets.token_hex(24)


def message(action: str, case: str, challenge: str) -> bytes:
    """What the browser signs: the action, the case and the node's challenge."""
    return f"vigil-selfsubmit:{action}:{case}:{challenge}".encode()


def verify(public_b64: str, action: str, case: str, challenge: str, signature_b64: str) -> bool:
    """Whether ``signature_b64`` (WebCrypto's raw r||s, base64) signs the message."""
    try:
        raw = base64.b64decode(signature_b64, validate=True)
    except (ValueError, binascii.Error):
        return False
    if len(raw) != 64:
        return False
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key = load_der_public_key(base64.b64decode(public_b64))
    assert isinstance(key, ec.EllipticCurvePublicKey)
    try:
        key.verify(der, message(action, case, challenge), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def expired(issued_at: datetime, now: datetime) -> bool:
    if issued_at.tzinfo is None:
        issued_at = issued_at.replace(tzinfo=now.tzinfo)
    return now - issued_at > CHALLENGE_TTL
