"""The workers' fork server preloads the hashing code compiled (``vigil.signals.preload``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


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
    code = ("from vigil.signals.forkstart import start_early\n"
            "start_early(2)\n"
            "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr



def _scan_cli(patch: str, evidence: Path, out: Path, *options: str
              ) -> subprocess.CompletedProcess[str]:
    """``vigil scan EVIDENCE --out OUT --no-match -q OPTIONS`` in a fresh interpreter,
    after ``patch`` (which records into ``seen``, printed as the last line at exit)."""
    code = ("import sys\n"
            "seen = []\n" + patch +
            "sys.argv = ['vigil', 'scan', sys.argv[1], '--out', sys.argv[2], '--no-match',"
            " '-q', *sys.argv[3:]]\n"
            "from vigil.cli import app\n"
            "try:\n"
            "    app()\n"
            "finally:\n"
            "    print(seen, flush=True)\n")
    return subprocess.run([sys.executable, "-c", code, str(evidence), str(out), *options],
                          capture_output=True, text=True, timeout=300)


def test_vigil_scan_starts_the_fork_server_before_importing_the_scan(tmp_path: Path) -> None:
    """``vigil scan -j 2`` starts the workers' fork server first, so it loads while the
    command imports the scan's code (``vigil.triage.scan``)."""
    from vigil.demo.synthetic import synthetic_image

    ev = tmp_path / "ev"
    ev.mkdir()
    synthetic_image(1, (160, 120)).save(ev / "a.png")
    r = _scan_cli("import vigil.signals.forkstart as f\n"
                  "f.start_early = lambda jobs: seen.append(('vigil.triage.scan' in sys.modules,"
                  " jobs))\n", ev, tmp_path / "out", "-j", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    # the command's own early start, then run_scan's (a no-op once the server runs)
    assert r.stdout.strip().splitlines()[-1] == "[(False, 2), (True, 2)]"
    assert (tmp_path / "out" / "report.html").exists()


def test_starting_the_fork_server_loads_no_hashing_code() -> None:
    """The module that starts the fork server, and the package around it, load nothing
    heavy: the server loads that code while the command loads it too, not after."""
    code = ("import sys\n"
            "import vigil.signals.forkstart\n"
            "heavy = ('numpy', 'PIL', 'numba', 'av', 'vigil.signals.pipeline')\n"
            "print(' '.join(m for m in heavy if m in sys.modules) or 'none')\n"
            "import vigil.signals as s\n"
            "print(all(getattr(s, n) is getattr(sys.modules['vigil.signals.' + s._WHERE[n]], n)"
            " for n in s.__all__), sorted(s._WHERE) == sorted(s.__all__))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, check=True)
    assert r.stdout.split("\n")[:2] == ["none", "True True"]


def test_vigil_scan_on_ray_connects_before_importing_the_scan(tmp_path: Path) -> None:
    """``vigil scan --ray`` connects and warms Ray's workers first (``connect_early``),
    before importing the scan's code; a cluster it cannot reach fails the command there,
    with the reason."""
    patch = ("import vigil.triage.raylink as r\n"
             "def early(address, spill, cpus):\n"
             "    seen.append((address, 'vigil.triage.scan' in sys.modules, spill.name,"
             " cpus))\n"
             "    raise r.ClusterError('no cluster here')\n"
             "r.connect_early = early\n")
    r = _scan_cli(patch, tmp_path, tmp_path / "out", "-j", "3", "--ray", "auto")
    assert r.returncode != 0
    assert r.stdout.strip().splitlines()[-1] == "[('auto', False, 'ray-spill', 3)]"
    assert "no cluster here" in r.stderr
