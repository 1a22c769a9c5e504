"""A video match in words and as plain data, the same in every output (CLI, API, scan)."""

from __future__ import annotations

from vigil.index.video import VideoMatch


def video_detail(vm: VideoMatch) -> dict[str, object]:
    """A video match as plain data: both percentages and the matched time ranges."""
    s = vm.score
    return {"query_pct": round(s.query_pct, 1), "compared_pct": round(s.compared_pct, 1),
            "query_frames": f"{s.query_matched}/{s.query_frames}",
            "compared_frames": f"{s.compared_matched}/{s.compared_frames}",
            "query_ranges": [[round(a, 3), round(b, 3)] for a, b in vm.query_ranges],
            "compared_ranges": [[round(a, 3), round(b, 3)] for a, b in vm.compared_ranges]}


def describe_video(vm: VideoMatch) -> str:
    """One line for people: "92% of this video, 100% of the bank video, 0:00-0:12 ~ 0:03-0:15"."""
    def span(r: list[tuple[float, float]]) -> str:
        return ", ".join(f"{a // 60:.0f}:{a % 60:04.1f}-{b // 60:.0f}:{b % 60:04.1f}"
                         for a, b in r[:3]) + (" …" if len(r) > 3 else "")
    s = vm.score
    return (f"{s.query_pct:.0f}% of this video, {s.compared_pct:.0f}% of the bank video; "
            f"{span(vm.query_ranges)} ~ {span(vm.compared_ranges)}")
