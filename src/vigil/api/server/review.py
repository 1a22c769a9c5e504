"""The review workspace inside ``vigil serve``: many reviewers, each signed in, each with
their own exposure ledger, over the finished scans in ``VIGIL_REVIEW_ROOT``.

Why a portal in front of the review app rather than a route per page: the review app
(``vigil.review.web``) is whole in itself (pages, forms, the held reveal, the ledger)
and ``vigil review`` serves it alone on loopback; here one copy per scan folder is
mounted at ``/review/NAME`` and this portal only does what a shared node adds:

* **Sign-in for a browser.** A reviewer pastes a token of this node once
  (``/review/signin``); it is kept in a cookie that only this path sees (``HttpOnly``,
  ``SameSite=Strict``, ``Secure`` over HTTPS) and checked on every request like a bearer
  token, so a revoked token or a disabled user is out at once. The review app's own
  form token and same-origin check still guard every action.
* **Who may review**: principals of this node's own agency (the scans are on its disks)
  with the ``review`` permission; the reviewer named in the ledger and the audit log is
  the principal. Exporting decisions into a bank needs ``banks.write`` as well. The
  totals page is for administrators.
* **Which scans**: the direct subfolders of ``VIGIL_REVIEW_ROOT`` that hold a finished
  scan, by folder name; nothing outside it is reachable by any path.
"""

from __future__ import annotations

import html
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from vigil.api.runtime.auth import allowed, client_address
from vigil.node import PrincipalInfo

COOKIE = "vigil_review"
PREFIX = "/review"
#: a scan's name in a URL: a folder name, never a path
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
#: the sign-in form is a token and nothing else
MAX_FORM = 2048
HEADERS = [(b"content-security-policy",
            b"default-src 'none'; img-src 'self'; form-action 'self'; base-uri 'none'; "
            b"frame-ancestors 'none'"),
           (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
           (b"x-frame-options", b"DENY"), (b"cache-control", b"no-store")]


def review_root() -> Path | None:
    """``VIGIL_REVIEW_ROOT``: the folder whose subfolders are the scans to review."""
    raw = os.environ.get("VIGIL_REVIEW_ROOT")
    return Path(raw).expanduser() if raw else None


def _page(title: str, body: str) -> bytes:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="icon" href="{PREFIX}/favicon.ico">'
            f"<title>{html.escape(title)} · Vigil review</title></head><body><main>"
            f"<h1>{html.escape(title)}</h1>{body}</main></body></html>").encode()


def _signin_form(message: str = "") -> bytes:
    said = f'<p role="alert">{html.escape(message)}</p>' if message else ""
    return _page("Sign in to review", said + (
        f'<form method="post" action="{PREFIX}/signin">'
        '<p><label for="token">Your Vigil token (from your administrator: '
        "<code>vigil token create</code>)</label><br>"
        '<input id="token" name="token" type="password" autocomplete="off" required '
        'size="60"></p><p><button type="submit">Sign in</button></p></form>'
        "<p>Pictures are shown small, greyscale and blurred; clear viewing is counted "
        "against your exposure limits.</p>"))


class ReviewPortal:
    """The ASGI app mounted at ``/review`` (see the module)."""

    def __init__(self, node: Callable[[], Any], root: Path | None,
                 make_app: Callable[[Path, Callable[[Any], str], Callable[[Any], bool]],
                                    ASGIApp]) -> None:
        self.node, self.root, self.make_app = node, root, make_app
        self._apps: dict[str, ASGIApp] = {}
        self._lock = threading.Lock()

    # ---- plumbing ------------------------------------------------------------------------

    async def _send(self, send: Send, status: int, body: bytes,
                    extra: list[tuple[bytes, bytes]] | None = None,
                    ctype: bytes = b"text/html; charset=utf-8") -> None:
        headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
                   *HEADERS, *(extra or [])]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _redirect(self, send: Send, to: str,
                        extra: list[tuple[bytes, bytes]] | None = None) -> None:
        await self._send(send, 303, b"", [(b"location", to.encode()), *(extra or [])])

    @staticmethod
    def _header(scope: Scope, name: bytes) -> str:
        for k, v in scope.get("headers", []):
            if k == name:
                return str(v.decode("latin-1"))
        return ""

    def _token(self, scope: Scope) -> str:
        for part in self._header(scope, b"cookie").split(";"):
            k, _, v = part.strip().partition("=")
            if k == COOKIE:
                return v
        return ""

    def _principal(self, token: str) -> tuple[PrincipalInfo | None, str]:
        node = self.node()
        p, why = node.authenticate(token) if token else (None, "not signed in")
        if p is None:
            return None, why
        if p.agency != node.identity.agency:
            return None, "only this node's own agency reviews its scans"
        if not allowed(p, "review"):
            return None, f"your roles ({', '.join(p.roles)}) do not grant review"
        return p, "ok"

    def _audit(self, scope: Scope, action: str, outcome: str, actor: str | None,
               **detail: Any) -> None:
        node = self.node()
        remote = client_address(scope.get("client"), scope.get("headers", []),
                                node.settings.trusted_proxies)
        node.audit.append(action, outcome=outcome, agency=node.identity.agency, actor=actor,
                          remote=remote, detail=detail)

    async def _form(self, receive: Receive) -> dict[str, str] | None:
        raw = b""
        while True:
            msg = await receive()
            raw += msg.get("body", b"")
            if len(raw) > MAX_FORM:
                return None
            if not msg.get("more_body"):
                break
        try:
            return {k: v[-1] for k, v in parse_qs(raw.decode("utf-8"), max_num_fields=4).items()}
        except (UnicodeDecodeError, ValueError):
            return None

    def scans(self) -> list[str]:
        """The scan folders a reviewer may open (direct subfolders holding a scan)."""
        if self.root is None or not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if _NAME.fullmatch(p.name) and (p / "scan.db").is_file())

    def _app_for(self, name: str) -> ASGIApp:
        with self._lock:
            app = self._apps.get(name)
            if app is None:
                assert self.root is not None
                app = self.make_app(self.root / name,
                                    lambda request: str(request.scope["vigil.reviewer"]),
                                    lambda request: bool(request.scope["vigil.admin"]))
                self._apps[name] = app
            return app

    # ---- the portal ----------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"].removeprefix(scope.get("root_path", "")) or "/"
        method = scope["method"]
        if path == "/signin" and method == "POST":
            return await self._signin(scope, receive, send)
        if path == "/favicon.ico":
            return await self._send(send, 204, b"")
        if path == "/signout" and method == "POST":
            return await self._redirect(send, f"{PREFIX}/", [(
                b"set-cookie", f"{COOKIE}=; Path={PREFIX}; Max-Age=0; HttpOnly; "
                               "SameSite=Strict".encode())])
        if self.root is None:
            return await self._send(send, 404, _page("Review is not set up", (
                "<p>This node serves no scans for review: its administrator sets "
                "<code>VIGIL_REVIEW_ROOT</code> to the folder holding finished scans.</p>")))
        p, why = self._principal(self._token(scope))
        if p is None:  # the sign-in page itself, and every other page leads to it
            if path != "/":
                return await self._redirect(send, f"{PREFIX}/")
            return await self._send(send, 200, _signin_form(
                "" if why == "not signed in" else f"Sign in again: {why}."))
        if path == "/":
            items = "".join(f'<li><a href="{PREFIX}/{html.escape(n)}/">{html.escape(n)}</a>'
                            "</li>" for n in self.scans()) or "<li>No finished scan yet.</li>"
            return await self._send(send, 200, _page("Scans to review", (
                f"<p>Signed in as {html.escape(p.label)}.</p><ul>{items}</ul>"
                f'<form method="post" action="{PREFIX}/signout">'
                '<button type="submit">Sign out</button></form>')))
        name, _, rest = path.lstrip("/").partition("/")
        if not _NAME.fullmatch(name) or name not in self.scans():
            return await self._send(send, 404, _page("No such scan", (
                f'<p>There is no finished scan of that name. <a href="{PREFIX}/">'
                "The scans</a></p>")))
        if rest == "export" and method == "POST" and not allowed(p, "banks.write"):
            return await self._send(send, 403, _page("Export refused", (
                "<p>Exporting decisions into a bank needs a curator or an administrator "
                f'(<code>banks.write</code>). <a href="{PREFIX}/{html.escape(name)}/">'
                "Back to the queue</a></p>")))
        try:
            app = self._app_for(name)
        except Exception as exc:  # a scan still running, an unknown scheme
            return await self._send(send, 409, _page("This scan cannot be reviewed yet",
                                                     f"<p>{html.escape(str(exc))}</p>"))
        root = f"{scope.get('root_path', '')}/{name}"
        inner = {**scope, "root_path": root, "vigil.reviewer": p.label,
                 "vigil.admin": "admin" in p.roles}
        await app(inner, receive, send)

    async def _signin(self, scope: Scope, receive: Receive, send: Send) -> None:
        site = self._header(scope, b"sec-fetch-site")
        if site not in ("", "same-origin", "none"):
            return await self._send(send, 403, _signin_form("Cross-site sign-in refused."))
        form = await self._form(receive)
        token = (form or {}).get("token", "").strip()
        p, why = self._principal(token)
        if p is None:
            self._audit(scope, "review.signin", "denied", None, reason=why)
            return await self._send(send, 403 if why.startswith(("only", "your")) else 401,
                                    _signin_form(f"Not signed in: {why}."))
        self._audit(scope, "review.signin", "ok", p.label)
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        cookie = f"{COOKIE}={token}; Path={PREFIX}; HttpOnly; SameSite=Strict{secure}"
        await self._redirect(send, f"{PREFIX}/", [(b"set-cookie", cookie.encode())])


__all__ = ["COOKIE", "PREFIX", "ReviewPortal", "review_root"]
