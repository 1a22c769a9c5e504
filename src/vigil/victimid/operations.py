"""Joint operations: series, claims and hits of a period, as a force reports them.

``report`` gathers the figures a force puts in its public statement — victims identified
per jurisdiction, series open / claimed / identified, hits across borders, a timeline —
from the series registry as this node holds it after its syncs. ``render_html`` writes one
self-contained page (no script, no request to anything: a strict Content-Security-Policy
forbids it) and the same figures go out as JSON. No victim's data is in either: victims
are counted, never named.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from vigil.node import agency_jurisdiction, check_code
from vigil.store.models_victimid import Operation, SeriesHitIn, SeriesHitOut
from vigil.victimid import registry
from vigil.victimid.model import SeriesError, check_series_id, fold

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 .'&()/_-]{0,199}")


def create(engine: Engine, name: str, starts: date, ends: date, partners: Sequence[str],
           series: Sequence[str], by: str | None) -> dict[str, Any]:
    """A new operation (its name must be new); SeriesError names what is wrong."""
    if not _NAME.fullmatch(name):
        raise SeriesError(f"operation name {name[:60]!r}: letters, digits, spaces and "
                          ".'&()/_- (at most 200)", None, 422)
    if ends < starts:
        raise SeriesError(f"operation {name!r}: --to {ends} is before --from {starts}",
                          None, 422)
    codes = sorted({check_code(p) for p in partners})
    ids = sorted({check_series_id(x) for x in series})
    with Session(engine) as s, s.begin():
        if s.get(Operation, name) is not None:
            raise SeriesError(f"an operation named {name!r} exists already", None, 409)
        s.add(Operation(name=name, starts=starts.isoformat(), ends=ends.isoformat(),
                        partners=" ".join(codes), series=" ".join(ids),
                        created_at=datetime.now(UTC), created_by=by))
    return {"name": name, "from": starts.isoformat(), "to": ends.isoformat(),
            "partners": codes, "series": ids}


def report(engine: Engine, name: str, now: datetime | None = None) -> dict[str, Any]:
    """The operation's figures (plain data: the JSON report, and what the page shows)."""
    with Session(engine) as s:
        op = s.get(Operation, name)
        if op is None:
            raise SeriesError(f"no operation named {name!r}", None, 404)
        starts, ends, partners, wanted = op.starts, op.ends, op.partners.split(), op.series.split()
        hits_in = s.execute(select(SeriesHitIn.finder, SeriesHitIn.series_id, SeriesHitIn.items,
                                   SeriesHitIn.at)).all()
        hits_out = s.execute(select(SeriesHitOut.origin, SeriesHitOut.series_id,
                                    SeriesHitOut.items, SeriesHitOut.at)).all()
    events = registry.events_of(engine, wanted or None)
    in_period = {sid: evs for sid, evs in events.items()
                 if any(starts <= e.at[:10] <= ends for e in evs)}
    states = {sid: st for sid, evs in in_period.items()
              if (st := fold(sid, evs, now)) is not None}
    by_status = Counter(st.status for st in states.values())
    victims: Counter[str] = Counter()
    for st in states.values():
        if st.status == "identified" and st.identified:
            j = agency_jurisdiction(engine, st.identified["agency"]) or "XX"
            victims[j] += max(1, len(st.victims))
    timeline = []
    for sid, evs in in_period.items():
        for e in evs:
            if starts <= e.at[:10] <= ends and e.kind in ("series", "claim", "release",
                                                           "identify", "close"):
                what = {"series": "described", "claim": "claimed", "release": "released",
                        "identify": "identified", "close": "closed"}[e.kind]
                timeline.append({"at": e.at, "series": sid, "agency": e.origin,
                                 "event": what})
    timeline.sort(key=lambda t: (t["at"], t["agency"]))

    def period(at: datetime) -> bool:
        return starts <= at.date().isoformat() <= ends

    hits = [{"series": sid, "finder": f, "items": n, "at": at.isoformat()}
            for f, sid, n, at in hits_in if sid in states and period(at)]
    hits += [{"series": sid, "finder": "(this node)", "origin": o, "items": n,
              "at": at.isoformat()} for o, sid, n, at in hits_out
             if sid in states and period(at)]
    return {"operation": name, "from": starts, "to": ends, "partners": partners,
            "series": {"total": len(states), **{k: by_status.get(k, 0) for k in (
                "unidentified", "claimed", "identified", "closed")}},
            "victims_identified_by_jurisdiction": dict(sorted(victims.items())),
            "hits_across_borders": hits, "timeline": timeline,
            "series_list": [states[k].note() for k in sorted(states)]}


CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; script-src 'none'; "
       "connect-src 'none'; form-action 'none'; base-uri 'none'")
CSS = ("body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:"
       "collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
       ".num{text-align:right}h1{font-size:1.4em}")


def render_html(r: dict[str, Any]) -> str:
    """The operation report as one self-contained page."""
    e = html.escape

    def table(head: list[str], rows: list[list[Any]]) -> str:
        if not rows:
            return "<p>None.</p>"
        return ("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head)
                + "</tr></thead><tbody>"
                + "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>"
                          for row in rows) + "</tbody></table>")

    s = r["series"]
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{e(r['operation'])}</title><style>{CSS}</style></head><body>",
        f"<h1>{e(r['operation'])}</h1>",
        f"<p>{e(r['from'])} to {e(r['to'])}; partners: "
        f"{e(', '.join(r['partners']) or 'none named')}.</p>",
        "<h2>Series</h2>",
        table(["total", "unidentified", "claimed", "identified", "closed"],
              [[s["total"], s["unidentified"], s["claimed"], s["identified"], s["closed"]]]),
        "<h2>Victims identified, by jurisdiction of the identifying agency</h2>",
        table(["jurisdiction", "victims"],
              [[j, n] for j, n in r["victims_identified_by_jurisdiction"].items()]),
        "<h2>Hits across borders</h2>",
        table(["series", "found by", "items", "when"],
              [[h["series"], h["finder"], h["items"], h["at"][:10]]
               for h in r["hits_across_borders"]]),
        "<h2>Series</h2>",
        table(["series", "status", ""], [[n["id"], n["status"], n["summary"]]
                                          for n in r["series_list"]]),
        "<h2>Timeline</h2>",
        table(["when", "series", "agency", "event"],
              [[t["at"][:19].replace("T", " "), t["series"], t["agency"], t["event"]]
               for t in r["timeline"]]),
        "<footer>Vigil operation report: figures from the series registry as this node "
        "holds it; victims are counted, never named.</footer></body></html>\n"]
    return "".join(parts)
