"""Case numbers and PINs: random, shown once, and the PIN kept only as a slow salted hash.

Why scrypt (stdlib ``hashlib.scrypt``): a PIN is short, so a stolen table of fast hashes
would give every PIN up in seconds; scrypt at N=2^14, r=8 costs ~16 MiB and tens of
milliseconds per guess, and the node rate-limits guesses on top (``throttle``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 14, 8, 1
PIN_DIGITS = 10
#: case numbers avoid letters people confuse (0/O, 1/I/L)
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def new_case_number() -> str:
    """``SS-XXXX-XXXX``: 8 random characters of a 31-letter alphabet (~40 bits)."""
    s = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    return f"SS-{s[:4]}-{s[4:]}"


def normal_case_number(text: str) -> str:
    """A case number as typed (any case, spaces) in its stored form."""
    return "".join(text.split()).upper()[:32]


def new_pin() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(PIN_DIGITS))


def hash_pin(pin: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(pin, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


def verify_pin(pin: str, stored: str | None) -> bool:
    """Whether ``pin`` is the one ``stored`` was made from. With ``stored`` None (no such
    case) the same work is done, so timing reveals nothing about whether a case exists."""
    if stored is None:
        _scrypt(pin, b"\0" * 16, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        return False
    kind, n, r, p, salt, digest = stored.split("$")
    if kind != "scrypt":
        return False
    got = _scrypt(pin, base64.b64decode(salt), int(n), int(r), int(p))
    return hmac.compare_digest(got, base64.b64decode(digest))


def _scrypt(pin: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(pin.encode()[:64], salt=salt, n=n, r=r, p=p, maxmem=64 << 20,
                          dklen=32)
