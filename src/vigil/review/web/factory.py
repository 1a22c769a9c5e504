"""One call from a scan folder and a node store to a running review app.

``vigil review`` uses it for one reviewer on loopback; a node can mount the result under
its own server with ``reviewer`` a function naming the authenticated person of a request.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Request
from sqlalchemy import Engine

from vigil.banks import Banks
from vigil.review.ledger import AuditSink, Caps, Ledger
from vigil.review.series import BankSeries
from vigil.review.service import ReviewSession
from vigil.review.web.app import ReviewerOf, create_review_app

DEFAULT_SCHEME = "us"


def scheme_for(banks: Banks, bank: str | None, scheme: str | None) -> str:
    """The scheme the number keys set: the one asked for, else the export bank's default
    scheme, else Project VIC's (``us``). ``BankError`` for an unknown bank."""
    if scheme:
        return scheme.strip().lower()
    if bank:
        return banks.get(bank).default_scheme or DEFAULT_SCHEME
    return DEFAULT_SCHEME


def review_app(folder: Path, engine: Engine, reviewer: str | ReviewerOf, *,
               bank: str | None = None, scheme: str | None = None, caps: Caps | None = None,
               audit: AuditSink | None = None, admin: bool | Callable[[Request], bool] = False,
               second_opinion: bool = False, settle: bool = False) -> FastAPI:
    """The review app for ``folder`` (a finished scan) over the node store ``engine``.

    ``admin``: whether the totals page is shown (to everyone, or per request).
    ``second_opinion``: show items another reviewer decided, and record this reviewer's
    decisions as second opinions (``/agreement`` compares them). ``settle``: show only
    the items whose first decision and second opinion disagree, with both, and record
    the decision that settles each (what exports bank). Raises
    ``ScanFolderError`` (not a finished scan), ``BankError`` (unknown bank) or
    ``ReviewError`` (unknown scheme) before anything is served.
    """
    banks = Banks(engine)
    chosen = scheme_for(banks, bank, scheme)
    ledger = Ledger(engine, caps, audit)
    session = ReviewSession(folder, chosen, ledger, BankSeries(engine), bank,
                            3 if settle else 2 if second_opinion else 1)
    who: ReviewerOf = (lambda request: reviewer) if isinstance(reviewer, str) else reviewer

    def is_admin(request: Request) -> bool:
        return admin(request) if callable(admin) else admin

    app = create_review_app(session, who, banks=banks, is_admin=is_admin)
    app.state.review = session
    return app
