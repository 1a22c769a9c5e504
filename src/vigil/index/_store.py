"""On-disk layout shared by the indexes: a directory of ``.npy`` files plus a JSON manifest.

Why not pickle: an index file may come from another machine, and unpickling runs code.
Why ``.npy``: ``np.load(mmap_mode="r")`` maps it in milliseconds, and several worker
processes mapping the same files share one copy in the page cache.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST = "manifest.json"


def write_index_dir(
    path: str | Path, manifest: dict[str, Any], arrays: dict[str, np.ndarray]
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
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
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


def read_manifest(path: str | Path, fmt: str, max_version: int) -> dict[str, Any]:
    """Read and check the manifest: a clear error beats mis-reading a foreign directory."""
    file = Path(path) / MANIFEST
    if not file.is_file():
        raise FileNotFoundError(f"no index manifest at {file}")
    manifest = json.loads(file.read_text())
    if manifest.get("format") != fmt:
        raise ValueError(f"{path} holds format {manifest.get('format')!r}, expected {fmt!r}")
    version = manifest.get("version")
    if not isinstance(version, int) or version > max_version:
        raise ValueError(
            f"{path} has format version {version!r}; this Vigil reads <= {max_version}"
        )
    return manifest


def load_array(path: str | Path, name: str, mmap: bool, writable: bool = False) -> np.ndarray:
    """Load one array; memory-mapped read-only unless it must be modified in place."""
    file = Path(path) / f"{name}.npy"
    if writable:
        return np.array(np.load(file, allow_pickle=False))
    return np.load(file, mmap_mode="r" if mmap else None, allow_pickle=False)
