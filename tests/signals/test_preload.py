"""The workers' fork server preloads the hashing code compiled (``vigil.signals.preload``)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_preload_compiles_the_pdq_kernels() -> None:
    """In a fresh interpreter (as the fork server is): after the import, PDQ's kernels
    have compiled signatures, which every worker forked from it inherits."""
    code = ("from vigil.signals import pdq_luma as p\n"
            "before = len(p._hash_kernel.signatures)\n"
            "import vigil.signals.preload\n"
            "print(before, len(p._hash_kernel.signatures), len(p._downscale_any.signatures))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, check=True).stdout.split()
    assert out[0] == "0", "nothing is compiled before the preload"
    assert int(out[1]) >= 1 and int(out[2]) >= 1


def test_start_early_is_harmless_when_no_worker_follows() -> None:
    """A scan with nothing left to hash starts the fork server for nothing: the process
    still exits at once and cleanly."""
    code = ("from vigil.signals.runner import start_early\n"
            "start_early(2)\n"
            "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
