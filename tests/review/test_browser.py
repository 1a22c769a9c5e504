"""The review in a real browser (Debian's Chromium via Playwright), keyboard only.

What a reviewer does and what must hold while they do it: categorise the scan's groups
and items with number keys, export, and find the pictures in the bank with `vigil match`;
a held reveal counted to the second; a cap that ends in the break screen; and throughout,
no console error, no request outside the origin, nothing received larger than a
derivative.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.browser import Watched, browser_page  # noqa: F401
from tests.review.conftest import REVIEWER, Case, Served, serve
from vigil.banks import Banks
from vigil.review.derive import MAX_BYTES
from vigil.review.ledger import Caps


@dataclass
class Responses:
    """Every response the page received: (status, url, content-length)."""

    rows: list[tuple[int, str, int | None]] = field(default_factory=list)

    def images(self) -> list[tuple[int, str, int | None]]:
        return [r for r in self.rows if "/image" in r[1]]


def _watch(w: Watched) -> Responses:
    got = Responses()

    def on_response(resp: Any) -> None:
        n = resp.headers.get("content-length")
        got.rows.append((resp.status, resp.url, int(n) if n is not None else None))

    w.page.on("response", on_response)
    return got


def _clean(w: Watched, got: Responses, base: str, refused_ok: bool = False) -> None:
    """No console error (but the refusal a cap test provokes), nothing outside the origin,
    no picture larger than a derivative, no request for anything but the app's pages."""
    if refused_ok:
        assert all("403" in e for e in w.errors), w.errors
    else:
        assert w.errors == [], w.errors
    assert w.outside(base) == []
    for status, url, size in got.images():
        if status == 200:
            assert size is not None and size <= MAX_BYTES, (url, size)
    allowed = ("/unit/", "/item/", "/static/", "/view/", "/decide", "/series", "/undo",
               "/export", "/me", "/break", "/admin", "/favicon.ico")
    for r in w.requests:
        path = r.url.removeprefix(base)
        assert path == "/" or path.startswith(allowed), r.url


@pytest.fixture
def page(browser_page: Watched) -> Iterator[Watched]:  # noqa: F811
    browser_page.page.set_default_timeout(15_000)
    yield browser_page


def _ready(w: Watched) -> None:
    w.page.wait_for_selector("#unit[data-ready], #done-title, #break-title")


def _src_has(p: Any, text: str, timeout: float = 10.0) -> None:
    """Wait until the focused picture's URL holds ``text`` (polled from here: the page's
    policy forbids the string evaluation ``wait_for_function`` would use)."""
    deadline = time.monotonic() + timeout
    while text not in (p.locator("#focus-img").get_attribute("src") or ""):
        assert time.monotonic() < deadline, f"the picture never became {text}"
        time.sleep(0.05)


def _key(w: Watched, key: str) -> None:
    """Press a key that submits a form, and wait for the next page."""
    with w.page.expect_navigation():
        w.page.keyboard.press(key)
    _ready(w)


def test_keyboard_only_categorisation_banks_the_pictures(
        case: Case, case_engine: Engine, served: Served, page: Watched) -> None:
    got = _watch(page)
    p = page.page
    p.goto(served.base + "/")
    _ready(page)
    assert p.locator("#unit-title").inner_text().startswith("Group #1 · 3 items")
    _key(page, "1")  # the first picture of group A: us 1
    assert "(1 decided)" in p.locator("#unit-title").inner_text()
    assert "decided: us 1" in p.locator("#status").inner_text()
    _key(page, "g")  # the rest of group A as the last category
    assert p.locator("#unit-title").inner_text().startswith("Group #2 · 2 items")
    _key(page, "Shift+2")  # the whole of group B: us 2
    assert p.locator("#unit-title").inner_text() == "Single item"
    _key(page, "n")
    _key(page, "3")
    _key(page, "1")
    assert p.locator("#done-title").is_visible()
    with p.expect_navigation():
        p.keyboard.press("e")
    p.wait_for_selector("#export-form")
    with p.expect_navigation():
        p.keyboard.press("Enter")  # the bank field has the focus, filled with review-bank
    assert p.locator("#export-items").inner_text() == "7"
    _clean(page, got, served.base)

    decisions = served.session.store.decisions()
    by_cat: dict[str, int] = {}
    for d in decisions.values():
        if d.kind == "category":
            by_cat[f"{d.scheme}:{d.category}"] = by_cat.get(f"{d.scheme}:{d.category}", 0) + 4
    stats = Banks(case_engine).stats("review-bank").by_category
    assert set(stats) == set(by_cat) and stats["us:2"] == by_cat["us:2"] == 8
    assert by_cat["us:1"] - 2 <= stats["us:1"] <= by_cat["us:1"]  # shared PDQs: one entry
    files = [case.seizure / "phone" / n for n in case.groups["A"] if
             (case.seizure / "phone" / n).exists()]
    files += [case.seizure / "laptop" / n for n in case.groups["A"] + case.groups["B"]
              if (case.seizure / "laptop" / n).exists()]
    out = case.cli("match", *map(str, files), "--bank", "review-bank", "-q")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert {ln.split(": MATCH", 1)[0].rsplit("/", 1)[-1] for ln in lines} == set(
        case.groups["A"] + case.groups["B"])
    for ln in lines:
        name = ln.split(":", 1)[0].rsplit("/", 1)[-1]
        want = "us:1" if name in case.groups["A"] else "us:2"
        assert "MATCH bank review-bank" in ln and f" {want} " in ln, ln


def test_a_held_reveal_is_counted_to_the_second(served: Served, page: Watched) -> None:
    got = _watch(page)
    p = page.page
    p.goto(served.base + "/unit/0")
    _ready(page)
    p.keyboard.down("v")
    _src_has(p, "level=0")
    time.sleep(3.0)
    p.keyboard.up("v")
    _src_has(p, "level=3")
    ledger = served.session.ledger
    deadline = time.monotonic() + 5
    rows: list[Any] = []
    while time.monotonic() < deadline:
        rows = [r for r in ledger.figures(REVIEWER) if r[2] == "clear"]
        if rows:
            break
        time.sleep(0.1)
    assert len(rows) == 1
    assert 2.0 <= rows[0][3] <= 4.0, rows
    assert "Clear view ended" in p.locator("#status").inner_text()
    clear = [r for r in got.images() if "level=0" in r[1]]
    assert clear and all(s == 200 for s, _, _ in clear)
    # lowering the blur opens a counted session of its own
    p.keyboard.press("-")
    _src_has(p, "level=2")
    time.sleep(1.0)
    p.keyboard.press("=")
    _src_has(p, "level=3")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not [
            r for r in ledger.figures(REVIEWER) if r[2] == "light"]:
        time.sleep(0.1)
    assert [r for r in ledger.figures(REVIEWER) if r[2] == "light"]
    # the own-figures page shows it
    p.goto(served.base + "/me")
    assert float(p.locator("#today-clear").inner_text()) == pytest.approx(rows[0][3], abs=0.1)
    _clean(page, got, served.base)


def test_at_the_cap_clear_view_is_refused_and_the_break_screen_shows(
        case: Case, case_engine: Engine, page: Watched) -> None:
    s = serve(case, case_engine, Caps(run_seconds=1.0, break_seconds=120, reveal_seconds=5))
    try:
        got = _watch(page)
        p = page.page
        p.goto(s.base + "/unit/0")
        _ready(page)
        p.keyboard.down("v")
        _src_has(p, "level=0")
        time.sleep(2.0)
        p.keyboard.up("v")
        time.sleep(0.3)
        with p.expect_navigation():
            p.keyboard.down("v")
        p.keyboard.up("v")
        p.wait_for_selector("#break-title")
        assert p.locator("#break-title").inner_text() == "Time for a break"
        assert "without a break" in p.locator("#break-reason").inner_text()
        refused = [r for r in got.rows if r[1].endswith("/view/start") and r[0] == 403]
        assert refused, got.rows
        assert p.locator("img").count() == 0  # no picture at all on the break screen
        _clean(page, got, s.base, refused_ok=True)
    finally:
        s.stop()


def test_keys_that_do_nothing_say_so_and_help_opens(served: Served, page: Watched) -> None:
    p = page.page
    p.goto(served.base + "/unit/0")
    _ready(page)
    p.keyboard.press("7")
    assert "No category on key 7" in p.locator("#status").inner_text()
    p.keyboard.press("Shift+Slash")
    assert p.locator("#help").is_visible()
    p.keyboard.press("Escape")
    assert not p.locator("#help").is_visible()
    p.keyboard.press("j")
    assert "Item" in p.locator("#status").inner_text()
    assert page.errors == []


def _frame_srcs(p: Any) -> list[str]:
    return [img.get_attribute("src") or "" for img in p.locator("#frames img").all()]


def test_a_video_shows_its_keyframes_in_a_strip_revealed_together(
        served: Served, page: Watched) -> None:
    got = _watch(page)
    p = page.page
    q = served.session.queue
    [video] = [it for it in q.items.values() if it.kind == "video"]
    p.goto(served.base + f"/unit/{q.unit_of[video.id]}")
    _ready(page)
    assert p.locator("#frames").is_visible()
    srcs = _frame_srcs(p)
    assert len(srcs) == video.frames >= 4
    assert all("level=3" in s and f"frame={k}" in s for k, s in enumerate(srcs))
    # every keyframe loaded (a picture the browser decoded, not a broken image)
    deadline = time.monotonic() + 10
    while len([r for r in got.images() if "frame=" in r[1] and r[0] == 200]) < video.frames:
        assert time.monotonic() < deadline, got.images()
        time.sleep(0.05)
    # a held reveal shows the strip clearly too, inside the same counted session
    p.keyboard.down("v")
    _src_has(p, "level=0")
    deadline = time.monotonic() + 10
    while not all("level=0" in s and "session=" in s for s in _frame_srcs(p)):
        assert time.monotonic() < deadline, _frame_srcs(p)
        time.sleep(0.05)
    time.sleep(1.0)
    p.keyboard.up("v")
    _src_has(p, "level=3")
    assert all("level=3" in s for s in _frame_srcs(p))
    clear = [r for r in got.images() if "level=0" in r[1] and "frame=" in r[1]]
    assert clear and all(s == 200 for s, _, _ in clear), clear
    _clean(page, got, served.base)


def test_a_step_of_pictures_shows_no_keyframe_strip(served: Served, page: Watched) -> None:
    got = _watch(page)
    p = page.page
    p.goto(served.base + "/unit/0")
    _ready(page)
    assert not p.locator("#frames").is_visible() and _frame_srcs(p) == []
    p.keyboard.press("j")  # the next member of the group: still no strip
    assert _frame_srcs(p) == []
    _clean(page, got, served.base)
