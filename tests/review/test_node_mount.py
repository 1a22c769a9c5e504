"""The review workspace inside a real `vigil serve`: browser sign-in with a node token,
who may review, the scans of VIGIL_REVIEW_ROOT and nothing else, each reviewer's own
ledger under their principal's name, and the keyboard page working under /review/NAME
in Chromium with no console error and no request outside the origin."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.api.conftest import _wait_ready, free_port
from tests.browser import Watched, browser_page  # noqa: F401
from tests.review.conftest import Case
from vigil.node import create_principal, ensure_agency, issue_token
from vigil.review.store import ReviewStore
from vigil.store import make_engine

AGENCY = "SG-SPF"


@dataclass
class Node:
    url: str
    tokens: dict[str, str]
    case: Case


@pytest.fixture
def node(case: Case) -> Iterator[Node]:
    yield from _node(case)


def _node(case: Case, **settings: str) -> Iterator[Node]:
    """A real `vigil serve` over the case, with extra environment ``settings``."""
    env = {**case.env(), "VIGIL_REVIEW_ROOT": str(case.root),
           "VIGIL_TAKEDOWN_INTERVAL": "0", "VIGIL_PEER_SYNC_INTERVAL": "0", **settings}
    init = subprocess.run([sys.executable, "-m", "vigil", "init", "--agency", AGENCY,
                           "--name", "Singapore police", "--jurisdiction", "SG"],
                          env=env, text=True, capture_output=True, timeout=120)
    assert init.returncode == 0, init.stderr
    engine = make_engine(case.url)
    tokens = {"admin": init.stdout.strip()}
    for role in ("analyst", "curator", "matcher"):
        p = create_principal(engine, AGENCY, f"{role}-1", [role])
        tokens[role] = issue_token(engine, p.id, 1)[0]
    ensure_agency(engine, "HK-POL", "Hong Kong police", "HK")
    p = create_principal(engine, "HK-POL", "hk-analyst", ["analyst"])
    tokens["other-agency"] = issue_token(engine, p.id, 1)[0]
    engine.dispose()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = case.root / "serve.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "vigil", "serve", "--port", str(port),
                                 "--log-level", "warning"], env=env, stdout=out, stderr=out)
    try:
        _wait_ready(url, proc, log)
        yield Node(url, tokens, case)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _signed_in(node: Node, role: str) -> httpx.Client:
    c = httpx.Client(base_url=node.url, timeout=30)
    r = c.post("/review/signin", data={"token": node.tokens[role]})
    assert r.status_code == 303, r.text
    return c


def _form_token(html: str) -> str:
    m = re.search(r'name="review-token" content="([^"]+)"', html)
    assert m is not None
    return m.group(1)


def test_sign_in_who_may_review_and_which_scans(node: Node) -> None:
    c = httpx.Client(base_url=node.url, timeout=30)
    # not signed in: the sign-in form, which every page of the workspace leads to
    for path in ("/review/", "/review/scan/", "/review/scan/unit/0"):
        r = c.get(path, follow_redirects=True)
        assert r.url.path == "/review/" and 'action="/review/signin"' in r.text, path
    # refused at sign-in, saying why, and no cookie
    for role, why in (("matcher", "do not grant review"),
                      ("other-agency", "own agency")):
        r = c.post("/review/signin", data={"token": node.tokens[role]})
        assert r.status_code == 403 and why in r.text and "set-cookie" not in r.headers
    r = c.post("/review/signin", data={"token": "vgl_" + "x" * 43})
    assert r.status_code == 401 and "set-cookie" not in r.headers
    assert c.post("/review/signin", data={"token": node.tokens["analyst"]},
                  headers={"sec-fetch-site": "cross-site"}).status_code == 403

    r = c.post("/review/signin", data={"token": node.tokens["analyst"]})
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/review" in cookie
    listing = c.get("/review/")
    assert listing.status_code == 200 and 'href="/review/scan/"' in listing.text
    assert "/review/home/" not in listing.text and "/review/seizure/" not in listing.text
    for bad in ("/review/home/", "/review/seizure/", "/review/..%2F..%2Fetc/",
                "/review/nope/unit/0"):
        assert c.get(bad).status_code == 404, bad

    # the scan's queue under /review/scan: links, forms and redirects carry the prefix
    r = c.get("/review/scan/", follow_redirects=True)
    assert r.status_code == 200 and r.url.path.startswith("/review/scan/unit/")
    assert 'content="/review/scan"' in r.text and 'href="/review/scan/me"' in r.text
    assert 'action="/review/scan/decide"' in r.text and 'href="/static/' not in r.text
    item = int(re.findall(r'name="item" value="(\d+)"', r.text)[0])
    token = _form_token(r.text)
    d = c.post("/review/scan/decide", data={"token": token, "item": str(item),
                                            "category": "1"})
    assert d.status_code == 303 and d.headers["location"].startswith("/review/scan/unit/")
    assert c.get(f"/review/scan/item/{item}/image").headers["content-type"] == "image/jpeg"
    # an analyst may not export into a bank; the totals page is for administrators
    assert c.post("/review/scan/export", data={"token": token, "bank": "review-bank"}
                  ).status_code == 403
    assert c.get("/review/scan/admin").status_code == 403

    # the decision is the principal's, in the scan; a curator reviews as themself and
    # can export
    decisions = ReviewStore(node.case.scan / "scan.db").decisions()
    assert {d.reviewer for d in decisions.values()} == {f"{AGENCY}/analyst-1"}
    cur = _signed_in(node, "curator")
    page = cur.get("/review/scan/", follow_redirects=True)
    assert f"{AGENCY}/curator-1" in page.text
    out = cur.post("/review/scan/export", data={"token": _form_token(page.text),
                                                 "bank": "review-bank"})
    assert out.status_code == 200 and 'id="export-items"' in out.text
    # signing out ends it
    form = {"content-type": "application/x-www-form-urlencoded"}
    assert c.post("/review/signout", headers=form).status_code == 303
    c.cookies.clear()
    assert c.get("/review/scan/unit/0").headers["location"] == "/review/"


def test_keyboard_review_under_the_node_in_chromium(node: Node,
                                                   browser_page: Watched) -> None:  # noqa: F811
    p = browser_page.page
    p.set_default_timeout(15_000)
    p.goto(node.url + "/review/")
    p.fill("#token", node.tokens["analyst"])
    with p.expect_navigation():
        p.keyboard.press("Enter")
    with p.expect_navigation():
        p.click("a[href='/review/scan/']")
    p.wait_for_selector("#unit[data-ready]")
    title = p.locator("#unit-title").inner_text()
    with p.expect_navigation():
        p.keyboard.press("1")  # decide the focused picture: us 1
    p.wait_for_selector("#unit[data-ready], #done-title")
    assert "decided: us 1" in p.locator("#status").inner_text(), title
    assert browser_page.errors == []
    assert browser_page.outside(node.url) == []
    assert all(urlpath.startswith("/review/") for urlpath in
               (r.url.removeprefix(node.url) for r in browser_page.requests)), \
        [r.url for r in browser_page.requests]
    assert os.environ.get("VIGIL_REVIEW_ROOT") is None  # the node's setting, not ours


@pytest.fixture
def strict_node(case: Case) -> Iterator[Node]:
    """Caps set low as node settings: 0.02 minutes (1.2 s) without a break, then a
    2-minute break."""
    yield from _node(case, VIGIL_REVIEW_CLEAR_MINUTES="0.02", VIGIL_REVIEW_BREAK_MINUTES="2")


def test_the_caps_are_settings_of_the_node_and_the_server_enforces_them(
        strict_node: Node) -> None:
    c = _signed_in(strict_node, "analyst")
    page = c.get("/review/scan/", follow_redirects=True)
    h = {"X-Review-Token": _form_token(page.text)}
    item = int(re.findall(r'name="item" value="(\d+)"', page.text)[0])
    v = c.post("/review/scan/view/start", json={"item": item, "level": 0}, headers=h)
    assert v.status_code == 200, v.text
    sid = v.json()["session"]
    time.sleep(1.5)
    c.post("/review/scan/view/beat", json={"session": sid}, headers=h)
    c.post("/review/scan/view/stop", json={"session": sid}, headers=h)
    r = c.post("/review/scan/view/start", json={"item": item, "level": 0}, headers=h)
    assert r.status_code == 403
    assert r.json()["detail"] == ("clear view refused: 1.2 seconds of exposure without a "
                                  "break: take a break of 2 minutes")
    assert r.json()["break_url"] == "/review/scan/break"
    refused = c.get("/review/scan/unit/0")
    assert refused.status_code == 403 and "Time for a break" in refused.text
    assert c.get(f"/review/scan/item/{item}/image").status_code == 403
    # another reviewer has their own ledger: not refused
    other = _signed_in(strict_node, "curator")
    page = other.get("/review/scan/", follow_redirects=True)
    assert page.status_code == 200
    r = other.post("/review/scan/view/start", json={"item": item, "level": 0},
                   headers={"X-Review-Token": _form_token(page.text)})
    assert r.status_code == 200


def test_a_cap_setting_out_of_range_stops_serve_with_its_name(case: Case) -> None:
    for name, value, said in (
            ("VIGIL_REVIEW_DAILY_MINUTES", "lots",
             "VIGIL_REVIEW_DAILY_MINUTES must be a number of minutes from 0 to 1440, got "
             "'lots'"),
            ("VIGIL_REVIEW_REVEAL_SECONDS", "60",
             "VIGIL_REVIEW_REVEAL_SECONDS must be a number of seconds from 0.5 to 30"),
            ("VIGIL_REVIEW_LIGHT_WEIGHT", "nan",
             "VIGIL_REVIEW_LIGHT_WEIGHT must be a number from 0 to 1")):
        r = subprocess.run([sys.executable, "-m", "vigil", "serve", "--port", "1"],
                           env={**case.env(), name: value}, text=True, capture_output=True,
                           timeout=120)
        assert r.returncode == 1, r.stderr
        assert said in " ".join(r.stderr.split()), r.stderr
        assert "Traceback" not in r.stderr


def test_the_cap_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from vigil.api.runtime.settings import review_caps_from_env
    from vigil.review.ledger import Caps

    assert review_caps_from_env() == Caps()
    monkeypatch.setenv("VIGIL_REVIEW_CLEAR_MINUTES", "15")
    monkeypatch.setenv("VIGIL_REVIEW_BREAK_MINUTES", " 10 ")
    monkeypatch.setenv("VIGIL_REVIEW_DAILY_MINUTES", "45.5")
    monkeypatch.setenv("VIGIL_REVIEW_REVEAL_SECONDS", "3")
    monkeypatch.setenv("VIGIL_REVIEW_LIGHT_WEIGHT", "1")
    assert review_caps_from_env() == Caps(run_seconds=900, break_seconds=600,
                                          daily_seconds=2730, reveal_seconds=3,
                                          light_weight=1.0)
    monkeypatch.setenv("VIGIL_REVIEW_CLEAR_MINUTES", "-1")
    with pytest.raises(ValueError, match="VIGIL_REVIEW_CLEAR_MINUTES must be a number of "
                                         "minutes from 0 to 1440, got '-1'"):
        review_caps_from_env()
