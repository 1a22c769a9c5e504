"""/v1/urls and /v1/notices on a real `vigil serve`, with the notice loop running inside
it: reported URLs with bad input each end with a clear error while the node stays up,
and the good one is noticed over SMTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from tests.exchange.conftest import make_node
from tests.takedown.conftest import AGENCY, Smtp, WebHost, corpus, fill_bank
from tests.takedown.test_crash import T0, _start, _stop
from vigil.takedown.clock import FileClock

pytestmark = pytest.mark.shared


def _redirect(to: str) -> Callable[[BaseHTTPRequestHandler], None]:
    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(302)
        h.send_header("location", to)
        h.send_header("content-length", "0")
        h.end_headers()
    return route


def _drip(h: BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("content-type", "image/jpeg")
    h.send_header("content-length", "100000")
    h.end_headers()
    try:
        for _ in range(100):
            h.wfile.write(b"\xff")
            h.wfile.flush()
            time.sleep(0.1)
    except OSError:
        pass


def _wait(predicate: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_urls_and_notices_over_http(tmp_path: Path, shared: Path, smtp: Smtp,
                                    web: Callable[[str], WebHost]) -> None:
    node = make_node(tmp_path, AGENCY, "SG")
    assert node.engine is not None
    photos = corpus(shared, 2)
    fill_bank(node.engine, {photos[0]: "S-7"})
    h = web("127.0.0.20")
    h.files["/good.jpg"] = (photos[0].read_bytes(), "image/jpeg")
    h.files["/page.html"] = (b"<html>hi</html>", "text/html")
    h.files["/big.jpg"] = (photos[1].read_bytes() * 200, "image/jpeg")
    h.routes["/loop"] = _redirect("/loop2")
    h.routes["/loop2"] = _redirect("/loop")
    h.routes["/private"] = _redirect("http://192.168.0.1/x.jpg")
    h.routes["/drip.jpg"] = _drip
    clock = FileClock(tmp_path / "clock")
    clock.set(T0)
    env = {**node.env, "VIGIL_TAKEDOWN_INTERVAL": "0.3", "VIGIL_TAKEDOWN_SMTP": smtp.address,
           "VIGIL_TAKEDOWN_ALLOW_NETWORKS": "127.0.0.0/8",
           "VIGIL_TAKEDOWN_MAX_BYTES": "1000000", "VIGIL_TAKEDOWN_FETCH_SECONDS": "1.5",
           "VIGIL_TAKEDOWN_CLOCK_FILE": str(clock.path)}
    url, proc = _start(node.home, env)
    try:
        admin = {"Authorization": f"Bearer {node.admin_token}"}
        c = httpx.Client(base_url=url, headers=admin, timeout=30)
        # bad URLs are refused at the door, all or nothing, the bad one named
        r = c.post("/v1/urls", json={"urls": [
            {"url": h.url("/good.jpg"), "case": "C-1"},
            {"url": "ftp://example.com/x.jpg", "case": "C-1"}]})
        assert r.status_code == 422 and r.headers["content-type"].startswith(
            "application/problem+json")
        assert "body.urls[1]" in r.text and "http" in r.json()["detail"]
        for bad in ("not a url", "http://user:pw@example.com/x", "http:///x", "x" * 5000):
            r = c.post("/v1/urls", json={"urls": [{"url": bad, "case": "C-1"}]})
            assert r.status_code == 422, (bad, r.text)
        r = c.post("/v1/urls", json={"urls": [{"url": h.url("/good.jpg"), "case": "C\u202e1"}]})
        assert r.status_code == 422 and "case" in r.json()["detail"]
        assert c.get("/v1/urls").json() == []
        r = c.put(f"/v1/notices/contacts/{h.ip}", json={"email": "abuse@h",
                                                        "escalation_email": "boss@h"})
        assert r.status_code == 200, r.text
        assert c.put("/v1/notices/contacts/x.example.com",
                     json={"email": "not-an-address"}).status_code == 422
        paths = ("/good.jpg", "/page.html", "/big.jpg", "/loop", "/private", "/drip.jpg",
                 "/missing.jpg")
        r = c.post("/v1/urls", json={"urls": [{"url": h.url(p), "case": "C-1"}
                                              for p in paths]})
        assert r.status_code == 200 and r.json()["added"] == 7
        assert c.post("/v1/urls", json={"urls": [{"url": h.url("/good.jpg"),
                                                  "case": "C-1"}]}).json()["known"] == 1
        smtp.wait(1)
        _wait(lambda: all(u["state"] != "new" for u in c.get("/v1/urls").json()))
        urls = {u["url"].rsplit("/", 1)[1]: u for u in c.get("/v1/urls").json()}
        assert urls["good.jpg"]["state"] == "matched"
        assert urls["missing.jpg"]["state"] == "gone"
        expected = {"page.html": "content type", "big.jpg": "over the limit",
                    "loop": "loop", "private": "192.168.0.1", "drip.jpg": "longer than"}
        for name, words in expected.items():
            u = urls[name]
            assert u["state"] in ("refused", "error"), u
            assert words in (u["last_error"] or ""), u
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200  # still up
        detail = c.get(f"/v1/urls/{urls['good.jpg']['id']}").json()
        assert detail["fetches"][0]["address"] == h.ip

        notices = c.get("/v1/notices").json()
        assert len(notices) == 1 and notices[0]["state"] == "sent"
        nid = notices[0]["id"]
        assert notices[0]["categories"] == [{"scheme": "us", "value": "1"}]
        one = c.get(f"/v1/notices/{nid}").json()
        assert [m["number"] for m in one["messages"]] == [1]
        r = c.post(f"/v1/notices/{nid}/acknowledge", json={})
        assert r.status_code == 200 and r.json()["state"] == "acknowledged", r.text
        assert c.post(f"/v1/notices/{nid}/acknowledge", json={}).status_code == 409
        assert c.get("/v1/notices/999999").status_code == 404
        assert c.get("/v1/notices", params={"state": "bogus"}).status_code == 400

        # past the deadline: the host report lists it; a day later removal is verified
        clock.set(T0 + timedelta(hours=49))
        smtp.wait(2)
        report = c.get("/v1/notices/report").json()
        assert report["totals"]["past_deadline"] == 1
        h.files.pop("/good.jpg")
        clock.set(T0 + timedelta(hours=74))
        _wait(lambda: c.get(f"/v1/notices/{nid}").json()["state"] == "removed")
        page = c.get("/v1/notices/report", params={"format": "html"})
        assert page.headers["content-type"].startswith("text/html")
        assert "Content-Security-Policy" in page.text and "<svg" in page.text
        assert "://" not in page.text
        s = c.get("/v1/notices/series/S-7/report").json()
        assert s["sightings"] == 1 and s["removed"] == 1
        assert "good.jpg" not in str(s)

        # who may: an analyst reads notices; nobody without a token
        with httpx.Client(base_url=url, timeout=30, headers={
                "Authorization": f"Bearer {node.analyst_token}"}) as a:
            assert a.get("/v1/notices").status_code == 200
        assert httpx.get(f"{url}/v1/notices", timeout=5).status_code == 401
        c.close()
    finally:
        _stop(proc)
        node.engine.dispose()
