"""The review app over real HTTP on loopback: headers, bounded derivatives, sessions the
server counts, caps refused with 403, and bad input answered with clear messages."""

from __future__ import annotations

import io
import time

import httpx
from PIL import Image
from sqlalchemy import Engine

from tests.review.conftest import REVIEWER, Case, Served, serve, token_of
from vigil.review.derive import MAX_BYTES
from vigil.review.ledger import Caps
from vigil.review.web import CSP
from vigil.triage.thumbs import MAX_SIDE


def _client(s: Served) -> tuple[httpx.Client, str]:
    c = httpx.Client(base_url=s.base, timeout=30)
    return c, token_of(c)


def test_pages_carry_a_strict_policy_and_no_hash(served: Served) -> None:
    c, _ = _client(served)
    r = c.get("/", follow_redirects=True)
    assert r.status_code == 200 and r.url.path == "/unit/0"
    assert r.headers["content-security-policy"] == CSP
    assert "default-src 'none'" in CSP and "unsafe-inline" not in CSP
    assert r.headers["x-frame-options"] == "DENY"
    for it in served.session.queue.items.values():
        assert it.sha256 not in r.text
    assert "known material: <span id=\"known-count\">2</span>" in r.text
    for path in ("/me", "/admin", "/export", "/break", "/static/review.js"):
        assert c.get(path).status_code == 200, path


def test_images_are_bounded_derivatives_and_lower_levels_need_a_session(
        served: Served) -> None:
    c, token = _client(served)
    items = list(served.session.queue.items)
    for item in items:
        r = c.get(f"/item/{item}/image")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert len(r.content) <= MAX_BYTES
        im = Image.open(io.BytesIO(r.content))
        assert max(im.size) <= MAX_SIDE and im.mode == "L"
    item = items[0]
    refused = c.get(f"/item/{item}/image?level=0")
    assert refused.status_code == 403 and "viewing session" in refused.text
    s = c.post("/view/start", json={"item": item, "level": 0},
               headers={"X-Review-Token": token}).json()
    clear = c.get(f"/item/{item}/image?level=0&session={s['session']}")
    assert clear.status_code == 200 and len(clear.content) <= MAX_BYTES
    assert clear.headers["cache-control"] == "no-store"
    other = c.get(f"/item/{items[1]}/image?level=0&session={s['session']}")
    assert other.status_code == 403  # the session is for one item
    c.post("/view/stop", json={"session": s["session"]}, headers={"X-Review-Token": token})
    assert c.get(f"/item/{item}/image?level=0&session={s['session']}").status_code == 403


def test_bad_decisions_get_clear_messages(served: Served) -> None:
    c, token = _client(served)
    h = {"X-Review-Token": token}
    item = served.session.queue.units[0].items[0]
    r = c.post("/decide", json={"item": item, "category": "7"}, headers=h)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == ("category: '7' is not a category of scheme 'us'; "
                                  "allowed: 0, 1, 2, 3, 4, 5")
    r = c.post("/decide", json={"item": 999999, "category": "1"}, headers=h)
    assert r.status_code == 404
    assert "item 999999 is not in this scan's review queue" in r.json()["detail"]
    # a form post gets a page saying the same
    r = c.post("/decide", data={"item": "999999", "category": "1", "token": token})
    assert r.status_code == 404 and "item 999999 is not in this scan" in r.text
    assert c.post("/decide", json={"item": item, "category": "1"}).status_code == 403
    assert c.post("/decide", json={"item": item, "category": "1"},
                  headers={**h, "Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert c.post("/decide", content=b"x" * 20_000, headers={
        **h, "content-type": "application/json"}).status_code == 413
    assert c.post("/decide", json={"item": item, "scope": "all", "category": "1"},
                  headers=h).status_code == 422
    ok = c.post("/decide", json={"item": item, "category": "1"}, headers=h)
    assert ok.status_code == 200
    again = c.post("/decide", json={"item": item, "category": "2"}, headers=h)
    assert again.status_code == 409 and "already decided" in again.json()["detail"]
    assert c.post("/series", json={"item": item, "series": "bad\u202eseries"},
                  headers=h).status_code == 422


def test_form_actions_redirect_to_the_next_undecided_item(served: Served) -> None:
    c, token = _client(served)
    unit = served.session.queue.units[0]
    r = c.post("/decide", data={"item": str(unit.items[0]), "category": "1", "token": token,
                                "scope": "group"}, follow_redirects=True)
    assert r.status_code == 200 and r.url.path == "/unit/1"
    assert "3 items decided: us 1 · CAM: child abuse material." in r.text
    r = c.post("/undo", data={"token": token, "pos": "1"}, follow_redirects=True)
    assert r.url.path == "/unit/0" and "Undone: 3 items decided" in r.text


def test_the_cap_refuses_clear_view_with_403(case: Case, case_engine: Engine) -> None:
    s = serve(case, case_engine, Caps(run_seconds=1.0, break_seconds=120, reveal_seconds=5))
    try:
        c, token = _client(s)
        h = {"X-Review-Token": token}
        item = s.session.queue.units[0].items[0]
        v = c.post("/view/start", json={"item": item, "level": 0}, headers=h).json()
        time.sleep(1.2)
        c.post("/view/beat", json={"session": v["session"]}, headers=h)
        c.post("/view/stop", json={"session": v["session"]}, headers=h)
        r = c.post("/view/start", json={"item": item, "level": 0}, headers=h)
        assert r.status_code == 403
        body = r.json()
        assert body["detail"] == ("clear view refused: 1 second of exposure without a break: "
                                  "take a break of 2 minutes")
        assert body["break_url"] == "/break"
        page = c.get("/unit/0")
        assert page.status_code == 403 and "Time for a break" in page.text
        assert c.get(f"/item/{item}/image").status_code == 403
        me = c.get("/me").text
        assert "Clear view is paused" in me
    finally:
        s.stop()
    assert REVIEWER


def _bounded_grey(data: bytes) -> Image.Image:
    assert len(data) <= MAX_BYTES
    im = Image.open(io.BytesIO(data))
    assert im.format == "JPEG" and im.mode == "L" and max(im.size) <= MAX_SIDE
    return im


def test_a_video_shows_its_keyframes_as_bounded_derivatives_counted_like_pictures(
        served: Served) -> None:
    c, token = _client(served)
    h = {"X-Review-Token": token}
    q = served.session.queue
    [video] = [it for it in q.items.values() if it.kind == "video"]
    photo = next(it for it in q.items.values() if it.kind == "image")
    assert video.frames >= 4
    page = c.get(f"/unit/{q.unit_of[video.id]}")
    assert page.status_code == 200 and f'data-frames="{video.frames}"' in page.text
    assert f"{video.frames} keyframes" in page.text
    blurred = []
    for k in range(video.frames):
        assert f"/item/{video.id}/image?level=3&amp;frame={k}" in page.text
        r = c.get(f"/item/{video.id}/image?frame={k}")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        _bounded_grey(r.content)
        blurred.append(r.content)
    assert c.get(f"/item/{video.id}/image?frame={video.frames}").status_code == 404
    assert c.get(f"/item/{video.id}/image?frame=x").status_code == 422
    assert c.get(f"/item/{photo.id}/image?frame=0").status_code == 404  # a picture has none
    # below the default blur only inside a viewing session of this item, like its picture
    assert c.get(f"/item/{video.id}/image?frame=1&level=0").status_code == 403
    s = c.post("/view/start", json={"item": video.id, "level": 0}, headers=h).json()
    clear = c.get(f"/item/{video.id}/image?frame=1&level=0&session={s['session']}")
    assert clear.status_code == 200 and clear.headers["cache-control"] == "no-store"
    assert _bounded_grey(clear.content).size and clear.content != blurred[1]
    assert c.get(f"/item/{photo.id}/image?level=0&session={s['session']}").status_code == 403
    c.post("/view/stop", json={"session": s["session"]}, headers=h)
    assert c.get(f"/item/{video.id}/image?frame=1&level=0&session={s['session']}"
                 ).status_code == 403


def test_a_scan_from_before_keyframes_shows_its_videos_one_frame(
        case: Case, case_engine: Engine) -> None:
    import sqlite3

    with sqlite3.connect(case.scan / "scan.db") as conn:  # as an older Vigil wrote it
        conn.execute("DROP TABLE keyframes")
    s = serve(case, case_engine)
    try:
        c, _ = _client(s)
        q = s.session.queue
        [video] = [it for it in q.items.values() if it.kind == "video"]
        assert video.frames == 0 and video.thumb
        page = c.get(f"/unit/{q.unit_of[video.id]}")
        assert page.status_code == 200 and "one keyframe" in page.text
        assert "&amp;frame=" not in page.text
        r = c.get(f"/item/{video.id}/image")
        assert r.status_code == 200
        _bounded_grey(r.content)
        assert c.get(f"/item/{video.id}/image?frame=0").status_code == 404
    finally:
        s.stop()
