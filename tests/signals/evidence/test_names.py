"""``escape``'s fast path for plain names against the per-character reference."""

from __future__ import annotations

import random

import pytest

from vigil.signals.evidence.names import escape, escape_each, unescape

PLAIN = [b"a.jpg", b"DCIM/100APPLE/IMG_0001.JPG", b" spaced name (1).png", b"~!@#$%^&*()"]
AWKWARD = [b"a!/b", b"back\\slash", b"tab\there", b"del\x7f", b"nl\n", b"caf\xc3\xa9",
           b"bad\xff\xfe", b"rtl\xe2\x80\xaeexe.jpg", b"", b"!", b"/!", b"end!"]


@pytest.mark.parametrize("raw", PLAIN + AWKWARD)
def test_escape_equals_the_reference(raw: bytes) -> None:
    assert escape(raw) == escape_each(raw)
    assert unescape(escape(raw)[0]) == raw


def test_escape_equals_the_reference_on_random_names() -> None:
    rng = random.Random(7)
    alphabet = bytes(range(256))
    for _ in range(5000):
        n = rng.randint(0, 24)
        # Mostly printable ASCII with a few odd bytes, so both paths are taken often.
        raw = bytes(rng.choice(alphabet) if rng.random() < 0.08 else rng.randint(0x20, 0x7E)
                    for _ in range(n))
        assert escape(raw) == escape_each(raw), raw
