"""Reports of the notice loop: per host, and per series for a victim's advocate.

* ``host_report``: per host (registrable domain): notices, removed, still active, median
  and 90th-percentile hours to removal (from the first message sent, as Project
  Arachnid counts), re-uploads (notices of material already noticed *on the same host*)
  and their rate, notices past their deadline; plus the list of active notices past
  their deadline (notice number, host, hours overdue, messages sent; no URLs).
* ``series_report``: for one series: sightings (notices), hosts, removal times,
  re-uploads, and both over time (per ISO week). **Never content, never content URLs**:
  the report is made to be handed to someone outside the agency.

Both are JSON-ready dicts; ``html_page`` renders either as one self-contained page
(inline CSS and SVG charts, a Content-Security-Policy that forbids loading anything):
nothing in it makes a request.

Percentiles are nearest-rank (the smallest value with at least p% of values at or
below it): with few notices per host that is a value that happened, not an interpolation.
"""

from __future__ import annotations

import html
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from vigil.takedown.repo import ACTIVE, NoticeRow


def nearest_rank(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def hours_to_removal(n: NoticeRow) -> float | None:
    if n.removed_at is None:
        return None
    start = n.first_sent_at or n.opened_at
    return max(0.0, (n.removed_at - start).total_seconds() / 3600)


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def host_report(notices: list[NoticeRow], links: Iterable[tuple[int, int]], now: datetime,
                ) -> dict[str, Any]:
    by_id = {n.id: n for n in notices}
    same_host_reupload: set[int] = set()
    any_reupload: set[int] = set()
    for a, b in links:
        if a in by_id and b in by_id:
            any_reupload.add(a)
            if by_id[a].domain == by_id[b].domain:
                same_host_reupload.add(a)
    hosts: dict[str, list[NoticeRow]] = defaultdict(list)
    for n in notices:
        hosts[n.domain].append(n)
    rows = []
    overdue = []
    for domain in sorted(hosts):
        ns = hosts[domain]
        times = [t for t in map(hours_to_removal, ns) if t is not None]
        past = [n for n in ns if n.state in ACTIVE and now > n.deadline_at]
        re_same = sum(1 for n in ns if n.id in same_host_reupload)
        rows.append({
            "host": domain, "notices": len(ns),
            "removed": sum(1 for n in ns if n.removed_at is not None),
            "active": sum(1 for n in ns if n.state in ACTIVE),
            "median_hours_to_removal": _r(statistics.median(times) if times else None),
            "p90_hours_to_removal": _r(nearest_rank(times, 90)),
            "reuploads": re_same, "reupload_rate": round(re_same / len(ns), 4),
            "recirculations": sum(1 for n in ns if n.id in any_reupload),
            "past_deadline": len(past), "messages": sum(n.sends for n in ns)})
        overdue += [{"notice": n.id, "host": domain, "state": n.state, "sends": n.sends,
                     "hours_overdue": _r((now - n.deadline_at).total_seconds() / 3600),
                     "escalated": n.escalated_at is not None} for n in past]
    all_times = [t for t in map(hours_to_removal, notices) if t is not None]
    return {"type": "vigil.takedown.host-report", "generated_at": now.isoformat(),
            "totals": {"notices": len(notices),
                       "removed": sum(1 for n in notices if n.removed_at is not None),
                       "active": sum(1 for n in notices if n.state in ACTIVE),
                       "median_hours_to_removal": _r(statistics.median(all_times)
                                                     if all_times else None),
                       "p90_hours_to_removal": _r(nearest_rank(all_times, 90)),
                       "past_deadline": len(overdue)},
            "hosts": rows, "past_deadline": sorted(overdue, key=lambda o: o["notice"])}


def _week(t: datetime) -> str:
    y, w, _ = t.isocalendar()
    return f"{y}-W{w:02d}"


def series_report(series: str, notices: list[NoticeRow], links: Iterable[tuple[int, int]],
                  now: datetime) -> dict[str, Any]:
    """One series' circulation: no URLs, no content, no case references."""
    ns = [n for n in notices if series in n.series]
    ids = {n.id for n in ns}
    reuploads = {a for a, b in links if a in ids and b in ids}
    times = [t for t in map(hours_to_removal, ns) if t is not None]
    hosts: dict[str, list[NoticeRow]] = defaultdict(list)
    for n in ns:
        hosts[n.domain].append(n)
    sightings = Counter(_week(n.first_seen_at) for n in ns)
    re_weeks = Counter(_week(n.first_seen_at) for n in ns if n.id in reuploads)
    removed_weeks = Counter(_week(n.removed_at) for n in ns if n.removed_at)
    weeks = sorted(set(sightings) | set(removed_weeks))
    return {
        "type": "vigil.takedown.series-report", "series": series,
        "generated_at": now.isoformat(),
        "sightings": len(ns), "hosts": len(hosts), "reuploads": len(reuploads),
        "removed": sum(1 for n in ns if n.removed_at is not None),
        "still_online": sum(1 for n in ns if n.state in ACTIVE),
        "median_hours_to_removal": _r(statistics.median(times) if times else None),
        "p90_hours_to_removal": _r(nearest_rank(times, 90)),
        "per_host": [{"host": d, "sightings": len(v),
                      "removed": sum(1 for n in v if n.removed_at is not None),
                      "reuploads": sum(1 for n in v if n.id in reuploads),
                      "median_hours_to_removal": _r(statistics.median(t) if (t := [
                          x for x in map(hours_to_removal, v) if x is not None]) else None)}
                     for d, v in sorted(hosts.items())],
        "over_time": [{"week": w, "sightings": sightings.get(w, 0),
                       "reuploads": re_weeks.get(w, 0), "removed": removed_weeks.get(w, 0)}
                      for w in weeks]}


# ---- the page ------------------------------------------------------------------------------

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; " \
      "form-action 'none'"
STYLE = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:70em}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;
text-align:right}th:first-child,td:first-child{text-align:left}h2{margin-top:2em}
.note{color:#555}svg text{font:12px sans-serif}"""


def _e(v: object) -> str:
    return html.escape("—" if v is None else str(v))


def bar_chart(title: str, rows: list[tuple[str, float | None]], unit: str) -> str:
    """A horizontal bar chart as inline SVG (no script, no outside reference)."""
    shown = [(k, v) for k, v in rows if v is not None]
    if not shown:
        return f"<p class=note>{_e(title)}: no data yet.</p>"
    top = max(v for _, v in shown) or 1.0
    h = 22 * len(shown) + 30
    parts = [f'<svg role="img" aria-label="{_e(title)}" width="640" height="{h}" '
             f'viewBox="0 0 640 {h}"><text x="0" y="14">{_e(title)}</text>']
    for i, (k, v) in enumerate(shown):
        y = 24 + 22 * i
        w = 0 if v is None else max(1.0, 380 * v / top)
        parts.append(f'<text x="0" y="{y + 14}">{_e(k[:28])}</text>'
                     f'<rect x="200" y="{y + 2}" width="{w:.1f}" height="16" fill="#4a6fa5"/>'
                     f'<text x="{205 + w:.1f}" y="{y + 14}">{v:g} {_e(unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{_e(c.replace('_', ' '))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(r.get(c))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def html_page(report: dict[str, Any]) -> str:
    """A host or series report as one self-contained HTML page."""
    if report["type"] == "vigil.takedown.series-report":
        title = f"Circulation of series {report['series']}"
        totals = [{k: report[k] for k in ("sightings", "hosts", "reuploads", "removed",
                                          "still_online", "median_hours_to_removal",
                                          "p90_hours_to_removal")}]
        body = [_table(totals, list(totals[0])),
                bar_chart("Sightings per host", [(h["host"], h["sightings"])
                                                 for h in report["per_host"]], ""),
                bar_chart("Sightings per week", [(w["week"], w["sightings"])
                                                 for w in report["over_time"]], ""),
                bar_chart("Re-uploads per week", [(w["week"], w["reuploads"])
                                                  for w in report["over_time"]], ""),
                "<h2>Per host</h2>",
                _table(report["per_host"], ["host", "sightings", "removed", "reuploads",
                                            "median_hours_to_removal"]),
                "<h2>Over time</h2>",
                _table(report["over_time"], ["week", "sightings", "reuploads", "removed"]),
                "<p class=note>This report holds no content and no content addresses.</p>"]
    else:
        title = "Takedown: time to removal and re-uploads per host"
        hosts = report["hosts"]
        body = [_table([report["totals"]], list(report["totals"])),
                bar_chart("Median hours to removal", [(h["host"], h["median_hours_to_removal"])
                                                      for h in hosts], "h"),
                bar_chart("90th percentile hours to removal",
                          [(h["host"], h["p90_hours_to_removal"]) for h in hosts], "h"),
                bar_chart("Re-upload rate", [(h["host"], round(100 * h["reupload_rate"], 1))
                                             for h in hosts], "%"),
                "<h2>Per host</h2>",
                _table(hosts, ["host", "notices", "removed", "active",
                               "median_hours_to_removal", "p90_hours_to_removal",
                               "reuploads", "reupload_rate", "past_deadline", "messages"]),
                "<h2>Open notices past their deadline</h2>",
                _table(report["past_deadline"], ["notice", "host", "state", "sends",
                                                 "hours_overdue", "escalated"])]
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{_e(title)}</h1><p class=note>Generated {_e(report['generated_at'])}</p>"
            + "".join(body) + "</body></html>")
