"""On-disk layout shared by the indexes: a directory of ``.npy`` files plus a JSON manifest.

Why not pickle: an index file may come from another machine, and unpickling runs code.
Why ``.npy``: ``np.load(mmap_mode="r")`` maps it in milliseconds, and several worker
processes mapping the same files share one copy in the page cache.

Huge pages: at 10M codes every probe of a search is a random read over ~1 GiB of tables,
so with 4 KiB pages nearly every one also misses the TLB. Mapped files get
``MADV_HUGEPAGE`` (page cache read in 2 MiB folios, mapped with 2 MiB entries where the
kernel can); a freshly written file is dropped from the page cache once it is on disk,
because the writes left it in small folios that would stay small. Measured on a 10M
generation: 0.27-0.31 -> 0.23 ms per single-code search (bench/HISTORY.md).
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

MANIFEST = "manifest.json"


def write_index_dir(
    path: str | Path, manifest: dict[str, Any], arrays: dict[str, NDArray[Any]]
) -> None:
    """Write arrays and manifest to a fresh sibling directory, then swap it into place.

    The swap keeps a reader (or this very index, memory-mapped from ``path``) from ever
    seeing a half-written index: mapped files stay valid after they are unlinked.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        for name, arr in arrays.items():
            _save(tmp / f"{name}.npy", np.ascontiguousarray(arr))
        full = dict(manifest)
        full["arrays"] = sorted(arrays)
        (tmp / MANIFEST).write_text(json.dumps(full, indent=2, sort_keys=True))
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            old.rmdir()
            target.rename(old)
        tmp.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


#: files at least this big are flushed and dropped from the page cache once written
DROP_CACHE_BYTES = 64 << 20


def _save(file: Path, arr: NDArray[Any]) -> None:
    """``np.save``, then for a big array: flush it and drop it from the page cache, so
    that readers map it afresh in huge pages (see the module docstring)."""
    with open(file, "wb") as f:
        np.save(f, arr, allow_pickle=False)
        if arr.nbytes >= DROP_CACHE_BYTES and hasattr(os, "posix_fadvise"):
            f.flush()
            os.fsync(f.fileno())
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def _advise_huge(arr: NDArray[Any]) -> None:
    """Ask for huge pages on a memory-mapped array; silently nothing where unsupported."""
    m = getattr(arr, "_mmap", None)
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if m is None or advice is None:
        return
    with contextlib.suppress(OSError, ValueError):  # THP off or absent: 4 KiB pages
        m.madvise(advice)


def read_manifest(path: str | Path, fmt: str, max_version: int) -> dict[str, Any]:
    """Read and check the manifest: a clear error beats mis-reading a foreign directory."""
    file = Path(path) / MANIFEST
    if not file.is_file():
        raise FileNotFoundError(f"no index manifest at {file}")
    manifest = json.loads(file.read_text())
    if not isinstance(manifest, dict):
        raise ValueError(f"{file} holds no index manifest (not a JSON object)")
    if manifest.get("format") != fmt:
        raise ValueError(f"{path} holds format {manifest.get('format')!r}, expected {fmt!r}")
    version = manifest.get("version")
    if not isinstance(version, int) or version > max_version:
        raise ValueError(
            f"{path} has format version {version!r}; this Vigil reads <= {max_version}"
        )
    return manifest


def load_array(path: str | Path, name: str, mmap: bool, writable: bool = False,
               ) -> NDArray[Any]:
    """Load one array; memory-mapped read-only unless it must be modified in place."""
    file = Path(path) / f"{name}.npy"
    if writable:
        return np.array(np.load(file, allow_pickle=False))
    # a np.memmap when mapped (kept as such: ``_advise_huge`` needs its ``_mmap``)
    arr: NDArray[Any] = np.load(file, mmap_mode="r" if mmap else None, allow_pickle=False)
    if mmap:
        _advise_huge(arr)
    return arr
