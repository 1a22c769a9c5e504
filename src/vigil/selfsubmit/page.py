"""The self-submission page's files: served by the node at ``/submit/``, or written as a
static bundle (``vigil selfcases page OUT/``) for a hotline to host beside its node.

Only the files listed here are ever served. Every answer carries a strict
Content-Security-Policy: scripts, styles, the worker and the catalogues come from the
page's own origin, and requests go only to the node; no third party is ever contacted.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import urlsplit

STATIC = Path(__file__).parent / "static"
LANGUAGES = ("en", "zh-Hant", "zh-Hans", "ko", "ms")
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".json": "application/json; charset=utf-8",
          ".svg": "image/svg+xml"}
FILES: dict[str, str] = {
    **{n: _TYPES[Path(n).suffix] for n in ("index.html", "app.js", "worker.js", "pdq.js",
                                           "md5.js", "style.css", "favicon.svg")},
    **{f"i18n/{lang}.json": _TYPES[".json"] for lang in LANGUAGES},
}


def csp(api_origin: str = "'self'") -> str:
    """The page's policy; ``api_origin`` is where it may send hashes (the node)."""
    connect = "'self'" if api_origin == "'self'" else f"'self' {api_origin}"
    return ("default-src 'none'; script-src 'self'; worker-src 'self'; style-src 'self'; "
            f"img-src 'self'; connect-src {connect}; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")


#: headers of every file the node serves for the page
HEADERS = {"Content-Security-Policy": csp(), "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache",
           "Cross-Origin-Opener-Policy": "same-origin"}


def read(name: str) -> tuple[bytes, str] | None:
    """A page file's bytes and media type; None for anything not listed."""
    media = FILES.get(name)
    if media is None:
        return None
    return (STATIC / name).read_bytes(), media


def write_bundle(out: Path, api: str) -> list[Path]:
    """Write the page to ``out`` for static hosting, sending hashes to the node at ``api``
    (``https://node.example``). The policy travels in a ``<meta>`` (a static host may set
    no headers); the node must accept the page's origin (see the README's limitations)."""
    parts = urlsplit(api)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.path not in ("", "/") \
            or parts.query or parts.fragment:
        raise ValueError(f"--api must be a node's origin such as https://node.example, "
                         f"not {api!r}")
    origin = f"{parts.scheme}://{parts.netloc}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "i18n").mkdir(exist_ok=True)
    written = []
    for name in FILES:
        data = (STATIC / name).read_bytes()
        if name == "index.html":
            text = data.decode()
            text = text.replace('<meta name="vigil-api" content="">',
                                f'<meta name="vigil-api" content="{html.escape(origin)}">\n'
                                '<meta http-equiv="Content-Security-Policy" '
                                f'content="{html.escape(csp(origin))}">', 1)
            data = text.encode()
        (out / name).write_bytes(data)
        written.append(out / name)
    return written


def message_keys(text: str) -> set[str]:
    """The catalogue keys a page file uses (``data-i18n="…"``, ``t("…")``, ``"error.…"``)."""
    keys = set(re.findall(r'data-i18n="([^"]+)"', text))
    keys |= set(re.findall(r'\bt\("([^"]+)"[,)]', text))
    keys |= set(re.findall(r'say\("[^"]+", "([^"]+)"', text))
    keys |= set(re.findall(r'"((?:error|state|withdraw)\.[a-z0-9-]+)"', text))
    return keys
