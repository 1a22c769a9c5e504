"""A banked video matches when uploaded to the node, over real HTTP (the Matcher's video
path through the node's index service, which once had no video search at all)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.conftest import Node, wait_for

pytestmark = pytest.mark.shared


def _upload(c, path: str, data: bytes, **params):  # type: ignore[no-untyped-def]
    r = c.post(path, content=data, params=params,
               headers={"Content-Type": "application/octet-stream"})
    assert r.status_code in (200, 201), r.text
    return r.json()


def test_banked_video_matches_an_upload_with_percentages_and_ranges(
        node: Node, bank: str, shared: Path) -> None:
    videos = shared / "fixtures/video/sample-videos"
    banked = (videos / "chair-orig-22-sd-bar.mp4").read_bytes()
    variant = (videos / "chair-22-with-small-logo-bar.mp4").read_bytes()
    other = (videos / "doorknob-hd-no-bar.mp4").read_bytes()
    with node.client("curator") as cur, node.client("analyst") as ana:
        added = _upload(cur, f"/v1/banks/{bank}/entries/file", banked, series="V1",
                        category="us:1")
        assert added["added"] == 4  # MD5, SHA-1, SHA-256 and one vPDQ entry

        def hit() -> bool:
            return bool(_upload(ana, "/v1/match/file", variant, banks=[bank])["matches"])

        wait_for(hit, timeout=10)
        res = _upload(ana, "/v1/match/file", variant, banks=[bank])
        assert res["signals"]["vpdq"] and res["signals"]["vpdq_frames"] > 10
        [m] = res["matches"]
        assert m["signal_type"] == "vpdq" and m["series"] == "V1" and m["bank"] == bank
        v = m["video"]
        assert v["query_pct"] >= 80 and v["compared_pct"] >= 80
        assert v["query_ranges"] and v["compared_ranges"]
        assert all(0 <= a <= b for a, b in v["query_ranges"] + v["compared_ranges"])
        # a different video does not match; the exact upload matches on every signal
        assert _upload(ana, "/v1/match/file", other, banks=[bank])["matches"] == []
        [exact] = _upload(ana, "/v1/match/file", banked, banks=[bank])["matches"]
        assert set(exact["signals"]) == {"md5", "sha1", "sha256", "vpdq"}
