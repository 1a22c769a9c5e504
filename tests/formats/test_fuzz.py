"""Hypothesis fuzzing of every import reader under a memory cap (``tests.formats.fuzz``):
nested, wide, oversized and mutated files give a clean parse or a FormatError — never
another exception, a hang or a MemoryError. A few seconds by default; ``-m slow`` runs
many more examples."""

from __future__ import annotations

import sys

import pytest

from tests.formats import fuzz

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS")


def test_fuzz_readers_briefly() -> None:
    fuzz.run("readers", examples=12)


@pytest.mark.slow
def test_fuzz_readers_long(request: pytest.FixtureRequest) -> None:
    if "slow" not in (request.config.getoption("-m") or ""):
        pytest.skip("long fuzzing: run with -m slow")
    fuzz.run("readers", examples=1000, timeout=3600)
