"""An index directory whose manifest is not what the engine wrote is refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vigil.index import ExactIndex, HammingIndex


@pytest.mark.parametrize("text", ["[1, 2]", '"vigil.hamming-index"', "null", "7"])
def test_a_manifest_that_is_not_a_json_object_is_refused_naming_the_file(
        tmp_path: Path, text: str) -> None:
    h = HammingIndex()
    h.add(np.zeros((1, 32), np.uint8), np.array([1], np.int64))
    h.save(tmp_path / "h")
    (tmp_path / "h" / "manifest.json").write_text(text)
    with pytest.raises(ValueError, match=r"h/manifest.json holds no index manifest"):
        HammingIndex.load(tmp_path / "h")
    ExactIndex(16).save(tmp_path / "e")
    (tmp_path / "e" / "manifest.json").write_text(text)
    with pytest.raises(ValueError, match=r"e/manifest.json holds no index manifest"):
        ExactIndex.load(tmp_path / "e")
