"""The reviewer's web app: server-rendered pages, a little of our own JavaScript, no network.

Why this shape:

* **Server-rendered** (Jinja2, autoescaped) and **forms that work by mouse and screen
  reader**: every action is a plain ``<button>`` in a ``<form>``; the script only adds
  keys, the held reveal and heartbeats. Errors of a form come back as a page that says
  what is wrong; errors of a JSON call as a problem document (RFC 9457).
* **Strict Content-Security-Policy**: scripts, styles, images and requests from this
  origin only, no inline script or style, no framing; nothing here may reach a CDN (a page
  about seized material that fetched a font would tell a third party the case exists).
* **Only derivatives** (``vigil.review.derive``): an ``<img>`` points at
  ``/item/N/image?level=L`` (``&frame=K``: a video's keyframe K), and levels below the
  default need a viewing session the server opened and counts (``vigil.review.ledger``).
  At a cap, every image and every new session is refused (403) and pages show the break
  screen.
* **One reviewer or many**: ``create_review_app`` takes the scan session and a function
  that names the reviewer of a request, so ``vigil review`` serves one person on loopback
  and a node can mount the same app behind its own authentication.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from vigil import __version__
from vigil.banks import BankError, Banks
from vigil.banks.text import visible
from vigil.review.derive import DEFAULT_LEVEL, MAX_BYTES
from vigil.review.export import export_decisions
from vigil.review.ledger import CapReached, LedgerError, Status
from vigil.review.service import ReviewError, ReviewSession
from vigil.schemes import SCHEMES

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
           "Cross-Origin-Opener-Policy": "same-origin",
           "Cross-Origin-Resource-Policy": "same-origin",
           "Cache-Control": "no-store"}
#: no request body the app accepts is larger (a decision is a few fields)
MAX_BODY = 16 * 1024
MAX_FIELDS = 20
MAX_FIELD_CHARS = 400
PROBLEM = "application/problem+json"
TITLES = {400: "Bad request", 403: "Forbidden", 404: "Not found", 409: "Conflict",
          413: "Content too large", 415: "Unsupported media type",
          422: "Invalid request", 500: "Internal error"}

ReviewerOf = Callable[[Request], str]


def _static(name: str) -> bytes:
    return (resources.files("vigil.review.web") / "static" / name).read_bytes()


class _Env:
    """The templates, loaded once."""

    def __init__(self) -> None:
        self.env = Environment(loader=PackageLoader("vigil.review.web", "templates"),
                               autoescape=select_autoescape(default=True),
                               trim_blocks=True, lstrip_blocks=True)
        self.env.filters["visible"] = lambda v: visible("" if v is None else v)
        self.env.filters["minutes"] = lambda s: f"{float(s) / 60:.1f}"

    def render(self, name: str, **ctx: Any) -> str:
        return self.env.get_template(name).render(**ctx)


def _base(request: Request) -> str:
    """Where the app is mounted: "" on its own (``vigil review``), ``/review/NAME`` inside
    ``vigil serve``. Every link, form and redirect starts with it."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _wants_json(request: Request) -> bool:
    ctype = request.headers.get("content-type", "")
    return (ctype.startswith("application/json")
            or request.url.path.removeprefix(_base(request)).startswith("/view/")
            or "application/json" in request.headers.get("accept", ""))


async def _body(request: Request) -> dict[str, str]:
    """The request's fields, form-encoded or JSON, bounded in size, count and length."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise ReviewError(413, f"request body larger than {MAX_BODY} bytes")
    ctype = request.headers.get("content-type", "").split(";")[0].strip()
    if not raw:
        return {}
    if ctype == "application/json":
        try:
            data = json.loads(raw)
        except ValueError:
            raise ReviewError(400, "the body is not valid JSON") from None
        if not isinstance(data, dict) or len(data) > MAX_FIELDS:
            raise ReviewError(400, f"the body must be a JSON object of at most {MAX_FIELDS} "
                                   "fields")
        out = {}
        for k, v in data.items():
            if isinstance(v, bool) or not isinstance(v, str | int | float):
                raise ReviewError(422, f"field {visible(k)[:40]!r} must be text or a number",
                                  str(k)[:40])
            out[str(k)] = str(v)
    elif ctype == "application/x-www-form-urlencoded":
        try:
            parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                              max_num_fields=MAX_FIELDS)
        except (UnicodeDecodeError, ValueError):
            raise ReviewError(400, "the form could not be read (not UTF-8, or too many "
                                   "fields)") from None
        out = {k: v[-1] for k, v in parsed.items()}
    else:
        raise ReviewError(415, "send application/x-www-form-urlencoded or application/json")
    for k, v in out.items():
        if len(v) > MAX_FIELD_CHARS:
            raise ReviewError(422, f"field {k!r} is longer than {MAX_FIELD_CHARS} characters",
                              k)
    return out


def _int(fields: dict[str, str], name: str) -> int:
    raw = fields.get(name, "").strip()
    if not raw.lstrip("-").isdigit() or len(raw) > 12:
        raise ReviewError(422, f"{name} must be a whole number", name)
    return int(raw)


def create_review_app(session: ReviewSession, reviewer_of: ReviewerOf, *,
                      banks: Banks | None = None,
                      is_admin: Callable[[Request], bool] = lambda r: False,
                      title: str | None = None) -> FastAPI:
    """The review app over one opened scan (see the module for what it promises)."""
    app = FastAPI(title="Vigil review", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url=None)
    env = _Env()
    token = secrets.token_urlsafe(24)
    js, css = _static("review.js"), _static("review.css")
    scan_title = title or session.folder.name
    ledger = session.ledger

    def page(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        reviewer = reviewer_of(request)
        body = env.render(name, token=token, base=_base(request), reviewer=reviewer,
                          scan=scan_title,
                          scheme=session.scheme, scheme_title=SCHEMES[session.scheme].title,
                          keys=session.keys, progress=session.progress(reviewer),
                          version=__version__,
                          admin=is_admin(request), **ctx)
        return HTMLResponse(body, status_code=status, headers=HEADERS)

    def fail(request: Request, exc: ReviewError) -> Response:
        if _wants_json(request):
            body: dict[str, Any] = {
                "type": "https://vigil.invalid/problems/"
                        + TITLES.get(exc.status, "error").lower().replace(" ", "-"),
                "title": TITLES.get(exc.status, "Error"), "status": exc.status,
                "detail": f"{exc.field}: {exc.message}" if exc.field else exc.message,
                "instance": request.url.path}
            if exc.field:
                body["errors"] = [{"field": exc.field, "message": exc.message}]
            return JSONResponse(body, status_code=exc.status, media_type=PROBLEM,
                                headers=HEADERS)
        return page(request, "error.html", exc.status, message=exc.message,
                    title_text=TITLES.get(exc.status, "Error"))

    def refused(request: Request, cap: CapReached) -> Response:
        if _wants_json(request):
            return JSONResponse(
                {"type": "https://vigil.invalid/problems/exposure-cap", "title": "Forbidden",
                 "status": 403, "detail": f"clear view refused: {cap.reason}",
                 "instance": request.url.path, "until": cap.until.isoformat(),
                 "break_url": _base(request) + "/break"},
                status_code=403, media_type=PROBLEM, headers=HEADERS)
        return page(request, "break.html", 403, reason=cap.reason, until=cap.until,
                    wait=max(0, int((cap.until - datetime.now(UTC)).total_seconds())))

    def check_post(request: Request, fields: dict[str, str]) -> None:
        site = request.headers.get("sec-fetch-site")
        if site not in (None, "same-origin", "none"):
            raise ReviewError(403, "cross-site request refused")
        given = fields.get("token") or request.headers.get("x-review-token", "")
        if not secrets.compare_digest(given.encode(), token.encode()):
            raise ReviewError(403, "this page is out of date (no valid form token): reload "
                                   "it", "token")

    def on_break(reviewer: str) -> CapReached | None:
        st: Status = ledger.status(reviewer)
        if st.refused_until is None:
            return None
        return CapReached(st.reason or "cap reached", st.refused_until)

    @app.exception_handler(ReviewError)
    async def _review_error(request: Request, exc: ReviewError) -> Response:
        return fail(request, exc)

    @app.exception_handler(CapReached)
    async def _cap(request: Request, exc: CapReached) -> Response:
        return refused(request, exc)

    @app.exception_handler(LedgerError)
    async def _ledger(request: Request, exc: LedgerError) -> Response:
        return fail(request, ReviewError(404, str(exc), "session"))

    # ---- static ------------------------------------------------------------------------

    @app.get("/static/review.js", include_in_schema=False)
    def _js() -> Response:
        return Response(js, media_type="text/javascript",
                        headers={**HEADERS, "Cache-Control": "no-cache"})

    @app.get("/static/review.css", include_in_schema=False)
    def _css() -> Response:
        return Response(css, media_type="text/css",
                        headers={**HEADERS, "Cache-Control": "no-cache"})

    @app.get("/favicon.ico", include_in_schema=False)
    def _favicon() -> Response:
        return Response(status_code=204, headers=HEADERS)

    @app.get("/healthz", include_in_schema=False)
    def _health() -> Response:
        return JSONResponse({"status": "ok"}, headers=HEADERS)

    # ---- pages -------------------------------------------------------------------------

    def message_of(request: Request) -> str:
        q = request.query_params
        for key, verb in (("done", ""), ("undone", "Undone: ")):
            raw = q.get(key, "")
            if raw.isdigit() and len(raw) < 12:
                act = session.store.action(int(raw))
                if act is not None and act.reviewer == reviewer_of(request):
                    return verb + describe(act.kind, act.detail)
        if q.get("nothing") == "undo":
            return "Nothing to undo."
        return ""

    @app.get("/", include_in_schema=False)
    def index(request: Request) -> Response:
        pos = session.first_open(reviewer_of(request))
        if pos is None:
            return page(request, "done.html")
        return RedirectResponse(f"{_base(request)}/unit/{pos}", status_code=303,
                                headers=HEADERS)

    @app.get("/unit/{pos}", include_in_schema=False)
    def unit(request: Request, pos: int, item: int | None = None) -> Response:
        reviewer = reviewer_of(request)
        cap = on_break(reviewer)
        if cap is not None:
            return refused(request, cap)
        session.unit(pos)
        view = session.view(pos, reviewer)
        carry = {k: v for k, v in request.query_params.items() if k in ("done", "undone")}
        if not view.items:
            nxt = session.first_open(reviewer, pos + 1)
            if nxt is None:
                nxt = session.first_open(reviewer, 0)
            if nxt is None:
                return page(request, "done.html", message=message_of(request))
            query = "&".join(f"{k}={v}" for k, v in carry.items() if v.isdigit())
            return RedirectResponse(f"{_base(request)}/unit/{nxt}"
                                    + (f"?{query}" if query else ""),
                                    status_code=303, headers=HEADERS)
        ids = [it.id for it in view.items]
        focus = item if item in ids else ids[0]
        prev_open = session.first_open(reviewer, pos - 1, -1) if pos > 0 else None
        next_open = session.first_open(reviewer, pos + 1)
        return page(request, "unit.html", view=view, focus=focus, pos=pos,
                    prev_pos=prev_open, next_pos=next_open, message=message_of(request),
                    series_names=session.series_names(), default_level=DEFAULT_LEVEL,
                    reveal_seconds=ledger.caps.reveal_seconds)

    @app.get("/break", include_in_schema=False)
    def break_page(request: Request) -> Response:
        cap = on_break(reviewer_of(request))
        if cap is None:
            return page(request, "break.html", reason=None, until=None, wait=0)
        return refused(request, cap)

    @app.get("/me", include_in_schema=False)
    def me(request: Request) -> Response:
        reviewer = reviewer_of(request)
        rows = ledger.figures(reviewer)
        return page(request, "me.html", rows=rows, st=ledger.status(reviewer),
                    caps=ledger.caps)

    @app.get("/admin", include_in_schema=False)
    def admin(request: Request) -> Response:
        if not is_admin(request):
            raise ReviewError(403, "the totals page is for an administrator")
        rows, people = ledger.totals()
        return page(request, "admin.html", rows=rows, people=people, caps=ledger.caps)

    @app.get("/agreement", include_in_schema=False)
    def agreement(request: Request) -> Response:
        agr = session.agreement()
        return page(request, "agreement.html", agr=agr, items=session.queue.items)

    @app.get("/export", include_in_schema=False)
    def export_form(request: Request) -> Response:
        return page(request, "export.html", bank=session.bank or "", result=None,
                    can_export=banks is not None)

    # ---- actions -----------------------------------------------------------------------

    def after(request: Request, pos: int, key: str, aid: int, item: int | None = None,
              data: dict[str, Any] | None = None) -> Response:
        if _wants_json(request):
            return JSONResponse({"action": aid, "pos": pos, **(data or {})}, headers=HEADERS)
        url = f"{_base(request)}/unit/{pos}?{key}={aid}" + (
            f"&item={item}" if item is not None else "")
        return RedirectResponse(url, status_code=303, headers=HEADERS)

    @app.post("/decide", include_in_schema=False)
    async def decide(request: Request) -> Response:
        fields = await _body(request)
        check_post(request, fields)
        reviewer = reviewer_of(request)
        item = _int(fields, "item")
        kind = fields.get("kind", "category") or "category"
        scope = fields.get("scope", "item") or "item"
        aid = session.decide(reviewer, item, scope, kind, fields.get("category"))
        pos = session.queue.unit_of[item]
        return after(request, pos, "done", aid)

    @app.post("/series", include_in_schema=False)
    async def series(request: Request) -> Response:
        fields = await _body(request)
        check_post(request, fields)
        item = _int(fields, "item")
        aid = session.add_to_series(reviewer_of(request), item,
                                    fields.get("scope", "item") or "item",
                                    fields.get("series", ""))
        return after(request, session.queue.unit_of[item], "done", aid, item)

    @app.post("/undo", include_in_schema=False)
    async def undo(request: Request) -> Response:
        fields = await _body(request)
        check_post(request, fields)
        done = session.undo(reviewer_of(request))
        if done is None:
            if _wants_json(request):
                return JSONResponse({"action": None}, headers=HEADERS)
            back = fields.get("pos", "0")
            pos = int(back) if back.isdigit() and int(back) < len(session.queue.units) else 0
            return RedirectResponse(f"{_base(request)}/unit/{pos}?nothing=undo", status_code=303,
                                    headers=HEADERS)
        aid, item = done
        pos = session.queue.unit_of.get(item, 0)
        return after(request, pos, "undone", aid, item if item >= 0 else None)

    @app.post("/export", include_in_schema=False)
    async def export(request: Request) -> Response:
        fields = await _body(request)
        check_post(request, fields)
        if banks is None:
            raise ReviewError(400, "this review has no node store to export to")
        bank = fields.get("bank", "").strip() or (session.bank or "")
        if not bank:
            raise ReviewError(422, "name the bank to export to", "bank")
        try:
            result = export_decisions(session.db_path, session.store.final_decisions(),
                                      session.store.series_of(), banks, bank)
        except BankError as exc:
            raise ReviewError(422, str(exc), "bank") from None
        if ledger.audit is not None:
            ledger.audit("review.export", bank, reviewer=reviewer_of(request),
                         items=result.items, added=result.added, updated=result.updated,
                         unchanged=result.unchanged, last_seq=result.last_seq)
        if _wants_json(request):
            return JSONResponse({"bank": bank, "items": result.items, "added": result.added,
                                 "updated": result.updated, "unchanged": result.unchanged,
                                 "not_relevant": result.not_relevant,
                                 "case_file": result.case_file.name}, headers=HEADERS)
        return page(request, "export.html", bank=bank, result=result, can_export=True)

    # ---- seeing ------------------------------------------------------------------------

    @app.get("/item/{item}/image", include_in_schema=False)
    def image(request: Request, item: int, level: int = DEFAULT_LEVEL) -> Response:
        reviewer = reviewer_of(request)
        cap = on_break(reviewer)
        if cap is not None:
            return refused(request, cap)
        sid = request.query_params.get("session")
        sid_int = int(sid) if sid and sid.isdigit() and len(sid) < 15 else None
        raw = request.query_params.get("frame")
        if raw is not None and not (raw.isdigit() and len(raw) < 4):
            raise ReviewError(422, "frame must be a keyframe's number (0, 1, ...)", "frame")
        data = session.image(reviewer, item, level, sid_int,
                             None if raw is None else int(raw))
        assert len(data) <= MAX_BYTES
        cache = "private, max-age=600" if level == DEFAULT_LEVEL else "no-store"
        return Response(data, media_type="image/jpeg", headers={**HEADERS,
                                                                "Cache-Control": cache})

    @app.post("/view/start", include_in_schema=False)
    async def view_start(request: Request) -> Response:
        fields = await _body(request)
        check_post(request, fields)
        opened = session.open_view(reviewer_of(request), _int(fields, "item"),
                                   _int(fields, "level"))
        return JSONResponse({"session": opened.id, "mode": opened.mode,
                             "level": opened.level, "max_seconds": opened.max_seconds,
                             "started": time.time()}, headers=HEADERS)

    @app.post("/view/beat", include_in_schema=False)
    async def view_beat(request: Request) -> Response:
        fields = await _body(request)
        check_post(request, fields)
        return JSONResponse({"open": ledger.beat(reviewer_of(request),
                                                 _int(fields, "session"))}, headers=HEADERS)

    @app.post("/view/stop", include_in_schema=False)
    async def view_stop(request: Request) -> Response:
        fields = await _body(request)
        check_post(request, fields)
        secs = ledger.stop(reviewer_of(request), _int(fields, "session"))
        return JSONResponse({"seconds": secs}, headers=HEADERS)

    @app.get("/view/status", include_in_schema=False)
    def view_status(request: Request) -> Response:
        st = ledger.status(reviewer_of(request))
        return JSONResponse({"today_clear": st.today_clear, "today_light": st.today_light,
                             "run_exposure": st.run_exposure,
                             "refused_until": st.refused_until.isoformat()
                             if st.refused_until else None, "reason": st.reason},
                            headers=HEADERS)

    def describe(kind: str, d: dict[str, Any]) -> str:
        n = int(d.get("items", 1))
        what = f"{n} items" if n != 1 else f"item {d.get('first', '')}"
        if kind == "decide":
            cat = d.get("category")
            label = "not relevant" if d.get("kind") == "not_relevant" else \
                _category_label(str(cat))
            second = "second opinion on " if d.get("round") == 2 else ""
            return f"{second}{what} decided: {label}."
        if kind == "series":
            new = " (new series)" if d.get("new") else ""
            return f"{what} added to series {visible(str(d.get('series')))}{new}."
        return f"{kind}: {what}."

    return app


def _category_label(key: str) -> str:
    scheme, _, value = key.partition(":")
    desc = SCHEMES[scheme].values.get(value) if scheme in SCHEMES else None
    return f"{scheme} {value} · {desc}" if desc else key
