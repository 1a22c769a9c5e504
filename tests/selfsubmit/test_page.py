"""The page end to end on real nodes over loopback, in headless Chromium (issue 18,
tests 1-6): pick two photos, only hashes leave the browser, `vigil match` on a resized
copy hits the self-submission bank, the status shows one match, and a withdrawal signed
with the recovery file stops the hashes matching on the origin and two peers after one
sync, each node's audit log recording it. Bad inputs give clear messages; every language
has every message."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.browser import Watched, browser_page  # noqa: F401
from tests.exchange.conftest import FedNode, make_node
from tests.selfsubmit.helpers import RecoveryKey, item
from vigil.selfsubmit import BANK
from vigil.selfsubmit.page import LANGUAGES, STATIC, message_keys

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, FedNode]]:
    """The origin (SG) and two peers (HK, KR) that pull from it."""
    root = tmp_path_factory.mktemp("selfsubmit")
    ns = {code: make_node(root, agency, j) for code, agency, j in (
        ("sg", "SG-SPF", "SG"), ("hk", "HK-POL", "HK"), ("kr", "KR-KNPA", "KR"))}
    try:
        for n in ns.values():
            n.start()
        ns["hk"].add_peer("sg", ns["sg"])
        ns["kr"].add_peer("sg", ns["sg"])
        yield ns
    finally:
        for n in ns.values():
            n.stop()
            if n.engine is not None:
                n.engine.dispose()


def _open(w: Watched, url: str, lang: str = "en") -> None:
    w.page.goto(f"{url}/submit/?lang={lang}")
    w.page.wait_for_selector(f"body[data-ready='{lang}']")


def _matches(node: FedNode, path: Path) -> list[dict[str, object]]:
    r = node.cli("match", str(path), "--json", "-q")
    return [m for line in r.stdout.splitlines() for m in json.loads(line)["matches"]]


def _audit(node: FedNode, action: str) -> list[dict[str, object]]:
    r = node.cli("audit", "list", "--json", "--action", action, check=False)
    return [json.loads(x) for x in r.stdout.splitlines() if x.strip()]


def test_submit_match_status_withdraw_everywhere(browser_page: Watched,  # noqa: F811
                                                 nodes: dict[str, FedNode], shared: Path,
                                                 tmp_path: Path) -> None:
    sg, hk, kr = nodes["sg"], nodes["hk"], nodes["kr"]
    photos = sorted((shared / "corpus" / "bsds500").rglob("*.jpg"))[200:202]
    w = browser_page
    _open(w, sg.url)
    # 1. two photos: their hashes appear; case number and PIN are shown
    w.page.set_input_files("#files", [str(p) for p in photos])
    # (waits by selector: the page's policy forbids the evaluated strings of wait_for_function)
    w.page.locator("#items li[data-pdq]").nth(1).wait_for()
    w.page.check("input[name=concern][value=under18]")
    w.page.check("#consent")
    w.page.click("#send")
    w.page.wait_for_selector("#done:not([hidden])")
    number = w.page.text_content("#case-number") or ""
    pin = w.page.text_content("#case-pin") or ""
    assert number.startswith("SS-") and len(pin) == 10
    with w.page.expect_download() as dl:
        w.page.click("#recovery")
    recovery = tmp_path / "recovery.json"
    dl.value.save_as(recovery)
    assert json.loads(recovery.read_text())["vigil_self_case"] == number
    # no image bytes left the browser: every request body is small, all to the node
    assert w.outside(sg.url) == []
    posts = [r for r in w.requests if r.method == "POST"]
    assert len(posts) == 1 and 0 < posts[0].body_bytes < 2048 * len(photos)
    assert all(r.body_bytes < 2048 * len(photos) for r in w.requests)
    # 2. `vigil match` on a resized copy hits the self-submission bank
    small = tmp_path / "resized.jpg"
    with Image.open(photos[0]) as im:
        im.resize((im.width * 3 // 4, im.height * 3 // 4)).save(small, quality=85)
    hits = _matches(sg, small)
    assert [h["bank"] for h in hits] == [BANK]
    assert "unverified" in hits[0]["tags"]  # type: ignore[operator]
    listed = sg.cli("selfcases", "list").stdout
    assert f"{number}  active" in listed and "matches=1" in listed
    assert all(h["signals"] for h in hits)  # type: ignore[index]
    leads = sg.cli("selfcases", "leads", "--json").stdout.splitlines()
    assert hits[0]["entry_id"] in [json.loads(x)["entry_id"] for x in leads]
    assert [r["detail"] for r in _audit(sg, "selfsubmit.lead")] == [{"leads": 1}]
    # 3. the status shows one match
    w.page.fill("#check-case", number)
    w.page.fill("#check-pin", pin)
    w.page.click("#status")
    w.page.wait_for_selector("#status-out:not([hidden])")
    assert w.page.text_content("#st-matches") == "1"
    # share the bank with both peers; each pulls it and matches
    # (HK with the default labels: the tags, which say "unverified", travel anyway)
    sg.cli("bank", "share", BANK, "HK-POL")
    sg.cli("bank", "share", BANK, "KR-KNPA", "--labels", "category")
    for peer in (hk, kr):
        peer.cli("peer", "sync", "sg")
        peer_hits = _matches(peer, small)
        assert [h["bank"] for h in peer_hits] == [f"SG-SPF.{BANK}"]
        assert "unverified" in peer_hits[0]["tags"]  # type: ignore[operator]
    # 4. withdraw with the recovery file (a signed one-time challenge), no PIN
    w.page.fill("#check-pin", "")
    w.page.set_input_files("#check-key", str(recovery))
    w.page.click("#withdraw")
    w.page.click("#withdraw-yes")
    w.page.wait_for_selector("#st-state:text-is('withdrawn')")
    assert _matches(sg, small) == []
    for peer in (hk, kr):
        peer.cli("peer", "sync", "sg")  # one sync
        assert _matches(peer, small) == []
        assert [r["detail"]["removed"] for r in _audit(peer, "feed.retract")] == [6]
    assert [r["target"] for r in _audit(sg, "selfsubmit.withdraw")] == [number]
    assert w.errors == []


def test_bad_inputs_give_clear_messages(browser_page: Watched,  # noqa: F811
                                        nodes: dict[str, FedNode], shared: Path,
                                        tmp_path: Path) -> None:
    sg = nodes["sg"]
    w = browser_page
    _open(w, sg.url)
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    good = next((shared / "corpus" / "bsds500").rglob("*.jpg")).read_bytes()
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(good[:600] + b"\x00" * 300)
    huge = tmp_path / "huge.png"
    Image.new("L", (10_000, 10_000), 128).save(huge, optimize=False, compress_level=1)
    flat = tmp_path / "flat.png"
    Image.new("RGB", (400, 300), (90, 120, 150)).save(flat)
    w.page.set_input_files("#files", [str(p) for p in (text, corrupt, huge, flat)])
    w.page.locator("#items li.error").nth(3).wait_for()
    lines = [li.text_content() for li in w.page.query_selector_all("#items li")]
    assert lines == [
        "notes.txt: This file is not a picture or video we can read.",
        "corrupt.jpg: This picture seems damaged and cannot be opened.",
        "huge.png: This picture is too large to handle here (more than 50 million pixels).",
        "flat.png: This picture is too plain (almost one colour) to be recognised later. "
        "Please choose another."]
    w.page.click("#send")
    assert "Please" in (w.page.text_content("#message") or "")
    # too many files for one case
    w.page.set_input_files("#files", [str(text)] * 21)
    assert w.page.text_content("#message") == "Please choose at most 20 files at a time."
    # a wrong PIN
    w.page.fill("#check-case", "SS-AAAA-BBBB")
    w.page.fill("#check-pin", "1234567890")
    w.page.click("#status")
    w.page.wait_for_selector("#check-message:not(:empty)")
    assert w.page.text_content("#check-message") == "The case number or PIN is not right."
    assert w.outside(sg.url) == []
    # the console shows only the refused request, no script error
    assert [e for e in w.errors if "403" not in e] == []


def test_oversized_and_malformed_submissions_are_refused(nodes: dict[str, FedNode]) -> None:
    url = nodes["sg"].url + "/submit/api/cases"
    key = RecoveryKey()
    big = {"concern": "adult", "consent": True, "public_key": key.public,
           "items": [item(i) for i in range(20)], "padding": "x" * 40_000}
    r = httpx.post(url, json=big)
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    r = httpx.post(url, json={**big, "padding": None})
    assert r.status_code == 422 and "padding" in r.json()["detail"]
    r = httpx.post(url, json={"concern": "adult", "consent": True, "public_key": key.public,
                              "items": [item(1, quality=20)]})
    assert (r.status_code, r.json()["code"]) == (422, "flat")
    r = httpx.get(nodes["sg"].url + "/submit/../pyproject.toml")
    assert r.status_code == 404
    page = httpx.get(nodes["sg"].url + "/submit/")
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_every_language_has_every_message(browser_page: Watched,  # noqa: F811
                                          nodes: dict[str, FedNode]) -> None:
    catalogues = {lang: json.loads((STATIC / "i18n" / f"{lang}.json").read_text("utf-8"))
                  for lang in LANGUAGES}
    keys = set(catalogues["en"])
    for lang, cat in catalogues.items():
        assert set(cat) == keys, lang
        assert all(isinstance(v, str) and v.strip() for v in cat.values()), lang
        if lang != "en":  # translated, not copied (a few short words may coincide)
            same = [k for k in keys if cat[k] == catalogues["en"][k] and len(cat[k]) > 8]
            assert same == [], (lang, same)
    used = set()
    for name in ("index.html", "app.js"):
        used |= message_keys((STATIC / name).read_text("utf-8"))
    dynamic = {k for k in keys if k.startswith(("error.", "state."))}
    assert used - keys == set()
    assert keys - used - dynamic == set()
    w = browser_page
    for lang in LANGUAGES:
        _open(w, nodes["sg"].url, lang)
        shown = w.page.eval_on_selector_all(
            "[data-i18n]", "els => els.map(e => [e.dataset.i18n, e.textContent])")
        assert all(text == catalogues[lang][k] for k, text in shown), lang
        assert w.page.get_attribute("html", "lang") == lang
    # on a phone: nothing wider than the screen; every control has a label to announce
    w.page.set_viewport_size({"width": 360, "height": 740})
    _open(w, nodes["sg"].url, "ms")
    assert w.page.evaluate("() => document.documentElement.scrollWidth") <= 360
    unlabelled = w.page.evaluate("""() => [...document.querySelectorAll('input, select')]
        .filter(e => !(e.labels && e.labels.length)).map(e => e.id || e.name)""")
    assert unlabelled == []
    w.page.keyboard.press("Tab")
    assert w.page.evaluate("() => document.activeElement.id") == "lang"
    assert w.errors == []


def test_static_bundle(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from vigil.cli import app

    r = CliRunner().invoke(app, ["selfcases", "page", str(tmp_path / "out"),
                                 "--api", "https://node.example"])
    assert r.exit_code == 0, r.output
    index = (tmp_path / "out" / "index.html").read_text()
    assert '<meta name="vigil-api" content="https://node.example">' in index
    assert "connect-src &#x27;self&#x27; https://node.example" in index
    assert (tmp_path / "out" / "i18n" / "ko.json").exists()
    r = CliRunner().invoke(app, ["selfcases", "page", str(tmp_path / "o2"),
                                 "--api", "node.example/x"])
    assert r.exit_code == 1 and "--api must be" in r.output
