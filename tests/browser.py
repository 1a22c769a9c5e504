"""Pages in a real browser: Debian's Chromium driven by Playwright for Python.

Why Playwright with ``executable_path``: it drives the machine's own ``/usr/bin/chromium``
(installed by ``.ci/run``), so nothing downloads a browser. Every page a test opens is
watched: the requests it makes (to check that nothing leaves the origin and that no
original bytes are fetched) and its console errors (a clean page has none).

Use the ``browser_page`` fixture (import it into a test module, or a ``conftest.py``)::

    from tests.browser import browser_page, Watched  # noqa: F401

    def test_page(browser_page: Watched) -> None:
        browser_page.page.goto(url)
        assert browser_page.errors == []
        assert browser_page.outside(origin) == []

Tests skip when Chromium or Playwright is missing (``.ci/run`` installs both).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: the flags the machine needs: no sandbox as root, and no background connections (the
#: closed network refuses them, and a test must see only the page's own requests)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class Request:
    """One request the page made: method, URL and the size of its body."""

    method: str
    url: str
    body_bytes: int


@dataclass
class Watched:
    """A Playwright page with what it requested and what it printed as errors."""

    page: Any
    requests: list[Request] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def outside(self, origin: str) -> list[str]:
        """URLs requested anywhere but ``origin`` (``http://127.0.0.1:PORT``); ``data:``
        and ``blob:`` URLs stay in the page and are not requests to anyone."""
        want = urlsplit(origin)
        out = []
        for r in self.requests:
            u = urlsplit(r.url)
            if u.scheme in ("data", "blob"):
                continue
            if (u.scheme, u.netloc) != (want.scheme, want.netloc):
                out.append(r.url)
        return out


def _watch(page: Any) -> Watched:
    w = Watched(page)

    def on_request(req: Any) -> None:
        body = req.post_data_buffer
        w.requests.append(Request(req.method, req.url, len(body) if body else 0))

    page.on("request", on_request)
    page.on("console", lambda m: w.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: w.errors.append(str(exc)))
    return w


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Watched]:
    """A fresh headless Chromium page, watched (see :class:`Watched`)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("no Chromium at /usr/bin/chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            context = browser.new_context(accept_downloads=True)
            yield _watch(context.new_page())
            context.close()
        finally:
            browser.close()
