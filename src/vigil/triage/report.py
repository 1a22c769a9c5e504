"""The examiner's report: one self-contained ``report.html`` rendered from ``scan.db``.

Why one file with everything inline: the report is opened on isolated forensic
workstations, copied onto case media and attached to case files. It must open offline
and must never make a request: a page about seized material that fetched a font or a
script from a CDN would tell a third party that this case exists. So CSS is inline,
charts are SVG drawn here, thumbnails are ``data:`` URIs, and a Content-Security-Policy
``<meta>`` forbids every network fetch and every script except the page's own (by hash),
so even a path that slipped through escaping could not run or load anything.

Why the reviewer sees what they see (DESIGN.md ground rules):

* thumbnails are blurred and greyscale by default (``thumbnails="blurred"``); the clear
  image is not in the page at all in that mode; ``clear`` and ``none`` must be asked for;
* known material (matched to a bank) is never shown: someone already assessed it, and the
  labels say what it is;
* the number of thumbnails the page shows is counted and printed in its header, so
  exposure can be recorded.

Scale: a scan of 100k+ files must still give a page a browser opens quickly, so tables
stop at ``MAX_ROWS`` rows (with a note; ``results.csv``/``results.jsonl`` have every
file), at most ``MAX_GROUPS`` groups are shown with at most ``MAX_THUMBS_PER_GROUP``
thumbnails each. The page is streamed to disk section by section.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal, TextIO

from vigil import __version__
from vigil.banks.text import visible
from vigil.schemes import SCHEMES
from vigil.triage.exports import capture_time, gps
from vigil.triage.scandb import GroupRow, ItemRow, MatchRow, ScanDB, Summary
from vigil.triage.thumbs import present

ThumbnailMode = Literal["blurred", "clear", "none"]

MAX_ROWS = 1000
MAX_GROUPS = 200
MAX_THUMBS_PER_GROUP = 12
MAX_PATHS_PER_ROW = 3


def esc(value: object) -> str:
    """Text for HTML (content or a quoted attribute): escaped and made visible-safe.

    Everything that reaches the page goes through here: paths, names and messages come
    from seized devices and may be written to attack whoever reads them. Whatever is not
    plainly visible (controls and line breaks, every bidirectional and other format
    character, odd spaces, bytes that were not UTF-8) is shown as an escape, as the CLI
    shows it (``vigil.banks.text.visible``): a page would render a newline as a space and
    a zero-width character as nothing, hiding what a name really holds.
    """
    return html.escape(visible("" if value is None else value), quote=True)


# ----------------------------------------------------------------------------- static parts

CSS = """
:root{--fg:#1d2330;--muted:#5b6474;--line:#d9dde5;--bg:#f6f7f9;--card:#fff;--accent:#2f5d8a;
--known:#8a2f3b;--warn:#8a6a1f}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:var(--bg)}
header{background:#1d2330;color:#eef1f6;padding:16px 24px}
header h1{margin:0 0 4px;font-size:20px}
header dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:8px 0 0;
font-size:13px}
header dt{color:#aab3c2}
header dd{margin:0;word-break:break-all}
.wellness{margin:12px 0 0;padding:10px 14px;background:#2b3445;border-left:4px solid #7fb3e0;
border-radius:4px;font-size:13px}
main{padding:16px 24px;max-width:1400px}
section{background:var(--card);border:1px solid var(--line);border-radius:6px;
padding:14px 18px;margin:0 0 16px}
h2{font-size:17px;margin:0 0 10px}
h3{font-size:14px;margin:14px 0 6px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(140px,1fr));gap:10px}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 10px}
.card b{display:block;font-size:22px}
.card span{color:var(--muted);font-size:12px}
.card.known b{color:var(--known)}
.card.err b{color:var(--warn)}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(380px,1fr));gap:16px}
svg{width:100%;height:auto;font:11px system-ui,sans-serif}
svg .bar{fill:var(--accent)}
svg .bar.known{fill:var(--known)}
svg text{fill:var(--fg)}
svg .axis{stroke:#9aa3b2;stroke-width:1}
table{border-collapse:collapse;width:100%;font-size:12.5px}
th,td{border-bottom:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top}
th{background:#eef0f4;position:sticky;top:0;cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.path,td.msg{word-break:break-all;max-width:480px;min-width:200px}
code{font:12px ui-monospace,Menlo,Consolas,monospace}
.note{color:var(--muted);font-size:12.5px;margin:6px 0}
.filter{margin:0 0 8px;padding:4px 8px;width:320px;max-width:100%;border:1px solid var(--line);
border-radius:4px}
.groups{display:grid;gap:12px}
.group{border:1px solid var(--line);border-radius:6px;padding:10px 12px}
.group h3{margin:0 0 6px}
.group dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 10px;margin:0 0 8px;
font-size:12.5px}
.group dt{color:var(--muted)}
.group dd{margin:0;word-break:break-all}
.thumbs{display:flex;flex-wrap:wrap;gap:8px}
figure{margin:0;width:124px}
figure img{width:120px;height:120px;object-fit:contain;background:#ddd;border-radius:3px;
display:block}
figcaption{font-size:11px;color:var(--muted);word-break:break-all}
footer{color:var(--muted);font-size:12px;padding:0 24px 24px}
"""

# Sorting and filtering for the tables; no library, no network, no eval.
JS = """
(function(){
function key(td){var v=td?td.getAttribute('data-v'):null;if(v===null)v=td?td.textContent:'';
var n=Number(v);return (v!==''&&!isNaN(n))?n:v.toLowerCase();}
document.querySelectorAll('table.sortable').forEach(function(t){
 var ths=t.querySelectorAll('thead th');
 ths.forEach(function(th,i){th.addEventListener('click',function(){
  var asc=th.getAttribute('aria-sort')!=='ascending';
  ths.forEach(function(o){o.removeAttribute('aria-sort');});
  th.setAttribute('aria-sort',asc?'ascending':'descending');
  var tb=t.tBodies[0];var rows=Array.prototype.slice.call(tb.rows);
  rows.sort(function(a,b){var x=key(a.cells[i]),y=key(b.cells[i]);
   if(typeof x!==typeof y){x=String(x);y=String(y);}
   return (x<y?-1:x>y?1:0)*(asc?1:-1);});
  rows.forEach(function(r){tb.appendChild(r);});});});});
document.querySelectorAll('input.filter').forEach(function(inp){
 var t=document.getElementById(inp.getAttribute('data-table'));if(!t)return;
 inp.addEventListener('input',function(){var q=inp.value.toLowerCase();
  Array.prototype.forEach.call(t.tBodies[0].rows,function(r){
   r.style.display=r.textContent.toLowerCase().indexOf(q)>=0?'':'none';});});});
})();
"""


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(JS.encode()).digest()).decode()
    return ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
            f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")


# ----------------------------------------------------------------------------- SVG charts


def _bars_h(rows: list[tuple[str, int, bool]], title: str) -> str:
    """Horizontal bar chart: (label, value, highlighted) rows."""
    if not rows:
        return f'<p class="note">{esc(title)}: nothing to chart.</p>'
    label_w, bar_w, row_h = 150, 170, 20
    top = max(v for _, v, _ in rows) or 1
    h = row_h * len(rows) + 8
    out = [f'<svg viewBox="0 0 {label_w + bar_w + 40} {h}" role="img" '
           f'aria-label="{esc(title)}"><title>{esc(title)}</title>']
    for i, (label, v, hot) in enumerate(rows):
        y = 4 + i * row_h
        w = max(1.0, bar_w * v / top) if v else 0.0
        out.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">'
                   f'{esc(label if len(label) <= 26 else label[:25] + "…")}</text>'
                   f'<rect class="bar{" known" if hot else ""}" x="{label_w}" y="{y + 3}" '
                   f'width="{w:.1f}" height="{row_h - 5}"><title>{esc(label)}: {v}</title>'
                   f'</rect><text x="{label_w + w + 5:.1f}" y="{y + 15}">{v}</text>')
    out.append("</svg>")
    return "".join(out)


def _bars_v(bins: list[tuple[str, int]], title: str, xlabel: str) -> str:
    """Vertical bar chart (histogram / timeline) with first, middle and last labels."""
    if not bins or not any(v for _, v in bins):
        return f'<p class="note">{esc(title)}: nothing to chart.</p>'
    W, H, left, bottom, top_pad = 520, 200, 36, 34, 10
    plot_w, plot_h = W - left - 8, H - bottom - top_pad
    top = max(v for _, v in bins)
    bw = plot_w / len(bins)
    out = [f'<svg viewBox="0 0 {W} {H}" role="img" aria-label="{esc(title)}">'
           f'<title>{esc(title)}</title>'
           f'<line class="axis" x1="{left}" y1="{H - bottom}" x2="{W - 8}" y2="{H - bottom}"/>'
           f'<line class="axis" x1="{left}" y1="{top_pad}" x2="{left}" y2="{H - bottom}"/>'
           f'<text x="{left - 4}" y="{top_pad + 8}" text-anchor="end">{top}</text>'
           f'<text x="{left - 4}" y="{H - bottom}" text-anchor="end">0</text>']
    for i, (label, v) in enumerate(bins):
        bh = plot_h * v / top
        x = left + i * bw
        out.append(f'<rect class="bar" x="{x + bw * 0.1:.1f}" y="{H - bottom - bh:.1f}" '
                   f'width="{max(bw * 0.8, 0.5):.1f}" height="{bh:.1f}">'
                   f'<title>{esc(label)}: {v}</title></rect>')
    for i in sorted({0, len(bins) // 2, len(bins) - 1}):
        x = left + (i + 0.5) * bw
        anchor = "start" if i == 0 and len(bins) > 1 else \
            "end" if i == len(bins) - 1 and len(bins) > 1 else "middle"
        x = left if anchor == "start" else W - 8 if anchor == "end" else x
        out.append(f'<text x="{x:.1f}" y="{H - bottom + 14}" text-anchor="{anchor}">'
                   f'{esc(bins[i][0])}</text>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{H - 4}" text-anchor="middle">'
               f'{esc(xlabel)}</text></svg>')
    return "".join(out)


def category_label(key: str) -> str:
    """``us:1`` -> ``us 1 · CAM: child abuse material`` (scheme descriptions from schemes.py)."""
    if ":" not in key:
        return key
    scheme, value = key.split(":", 1)
    desc = SCHEMES[scheme].values.get(value) if scheme in SCHEMES else None
    return f"{scheme} {value} · {desc}" if desc else f"{scheme} {value}"


def distance_bins(distances: Iterable[int]) -> list[tuple[str, int]]:
    """Match distances binned: 0 (exact or identical) on its own, then equal-width ranges."""
    return distance_bins_counted(Counter(distances))


def distance_bins_counted(counts: Counter[int]) -> list[tuple[str, int]]:
    """``distance_bins`` from how many matches have each distance (a few hundred keys at
    most, however many matches a scan has)."""
    if not counts:
        return []
    top = max(max(counts), 1)
    width = max(1, math.ceil(top / 16))
    bins = [("0", sum(n for d, n in counts.items() if d <= 0))]
    lo = 1
    while lo <= top:
        hi = lo + width - 1
        bins.append((str(lo) if width == 1 else f"{lo}–{hi}",
                     sum(n for d, n in counts.items() if lo <= d <= hi)))
        lo = hi + 1
    return bins


def timeline_bins(times: Iterable[datetime]) -> tuple[list[tuple[str, int]], str]:
    """Capture times counted per day, month or year (whichever gives a readable chart)."""
    t = Timeline()
    for x in times:
        t.add(x)
    return t.bins()


class Timeline:
    """Capture times as counts per day with the first and last time: all the chart needs,
    in memory that grows with the days covered, not with the items."""

    def __init__(self) -> None:
        self.days: Counter[date] = Counter()
        self.first: datetime | None = None
        self.last: datetime | None = None
        self.n = 0

    def add(self, t: datetime) -> None:
        self.days[t.date()] += 1
        self.n += 1
        self.first = t if self.first is None or t < self.first else self.first
        self.last = t if self.last is None or t > self.last else self.last

    def bins(self) -> tuple[list[tuple[str, int]], str]:
        first, last = self.first, self.last
        if first is None or last is None:
            return [], ""
        span = (last - first).days
        counts: Counter[str] = Counter()
        if span <= 92:
            unit = "day"
            for d, n in self.days.items():
                counts[d.isoformat()] += n
            d0 = first.date()
            labels = [(d0.fromordinal(d0.toordinal() + i)).isoformat() for i in range(span + 1)]
        elif span <= 366 * 12:
            unit = "month"
            for d, n in self.days.items():
                counts[f"{d.year:04d}-{d.month:02d}"] += n
            labels = []
            y, m = first.year, first.month
            while (y, m) <= (last.year, last.month):
                labels.append(f"{y:04d}-{m:02d}")
                y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        else:
            unit = "year"
            for d, n in self.days.items():
                counts[str(d.year)] += n
            labels = [str(y) for y in range(first.year, last.year + 1)]
        return [(lab, counts.get(lab, 0)) for lab in labels], unit


# ----------------------------------------------------------------------------- sections


@dataclass
class _Ctx:
    db: ScanDB
    mode: ThumbnailMode
    items: dict[str, ItemRow]
    thumbs_shown: int = 0
    #: series id -> the series registry's note (``vigil.victimid``), if the caller gave it
    notes: Mapping[str, dict[str, Any]] | None = None


def _table_head(cols: list[tuple[str, str]], table_id: str, label: str) -> str:
    return (f'<input class="filter" type="search" placeholder="Filter {esc(label)}…" '
            f'data-table="{table_id}" aria-label="Filter {esc(label)}">'
            f'<table class="sortable" id="{table_id}"><thead><tr>'
            + "".join(f'<th scope="col" class="{c}">{esc(n)}</th>' for n, c in cols)
            + "</tr></thead><tbody>")


def _paths_cell(paths: list[str]) -> str:
    shown = "<br>".join(f"<code>{esc(p)}</code>" for p in paths[:MAX_PATHS_PER_ROW])
    if len(paths) > MAX_PATHS_PER_ROW:
        shown += f'<br><span class="note">and {len(paths) - MAX_PATHS_PER_ROW} more</span>'
    return shown


def _totals(s: Summary) -> str:
    cards = [("files", s.files, ""), ("processed", s.done, ""), ("items (distinct)", s.items, ""),
             ("duplicate files", s.duplicates, ""), ("known items", s.known_items, "known"),
             ("unknown images", s.unknown_images, ""), ("unknown groups", s.groups, ""),
             ("errors", s.errors, "err")]
    if s.pending:
        cards.append(("not processed", s.pending, "err"))
    out = ['<section id="totals"><h2>Totals</h2><div class="cards">']
    out += [f'<div class="card {c}"><b>{v:,}</b><span>{esc(n)}</span></div>'
            for n, v, c in cards]
    out.append("</div>")
    if s.pending:
        out.append(f'<p class="note">{s.pending:,} file{"s" if s.pending != 1 else ""} not '
                   "processed (the scan did not finish); rerun the same command to complete "
                   "it.</p>")
    out.append('<div class="charts"><div><h3>Known items by category</h3><table><thead><tr>'
               "<th>category</th><th>items</th></tr></thead><tbody>")
    for k, v in sorted(s.known_by_category.items(), key=lambda kv: (-kv[1], kv[0])):
        out.append(f'<tr><td>{esc(category_label(k))}</td><td class="num">{v:,}</td></tr>')
    if not s.known_by_category:
        out.append('<tr><td colspan="2">none</td></tr>')
    out.append("</tbody></table></div><div><h3>Files by kind</h3><table><thead><tr>"
               "<th>kind</th><th>files</th></tr></thead><tbody>")
    for k, v in sorted(s.by_kind.items(), key=lambda kv: -kv[1]):
        out.append(f'<tr><td>{esc(k)}</td><td class="num">{v:,}</td></tr>')
    out.append("</tbody></table></div><div><h3>Errors by code</h3><table><thead><tr>"
               "<th>code</th><th>files</th></tr></thead><tbody>")
    for k, v in sorted(s.errors_by_code.items(), key=lambda kv: (-kv[1], str(kv[0]))):
        out.append(f'<tr><td>{esc(k or "unknown")}</td><td class="num">{v:,}</td></tr>')
    if not s.errors_by_code:
        out.append('<tr><td colspan="2">none</td></tr>')
    out.append("</tbody></table></div></div></section>")
    return "".join(out)


def _charts(s: Summary, distances: Counter[int], timeline: Timeline) -> str:
    cats = sorted(s.known_by_category.items(), key=lambda kv: (-kv[1], kv[0]))
    cat_chart = _bars_h([(category_label(k), v, k != "uncategorised") for k, v in cats],
                        "Known items by category")
    dist_chart = _bars_v(distance_bins_counted(distances),
                         "Match distance (PDQ Hamming bits; 0 = exact)", "distance (bits)")
    bins, unit = timeline.bins()
    tl_chart = _bars_v(bins, "Capture dates (EXIF DateTimeOriginal)",
                       f"items per {unit}" if unit else "")
    return ('<section id="charts"><h2>Charts</h2><div class="charts">'
            f"<div><h3>Category breakdown</h3>{cat_chart}</div>"
            f"<div><h3>Match distances</h3>{dist_chart}</div>"
            f"<div><h3>Capture timeline</h3>{tl_chart}"
            f'<p class="note">{timeline.n:,} items carry a capture time.</p></div>'
            "</div></section>")


def _known(ctx: _Ctx, matches: list[MatchRow], total: int) -> str:
    out = ['<section id="known"><h2>Known material</h2>'
           '<p class="note">Items that match an entry in a bank, one row per match. Known '
           "material is not shown: it was assessed when it was labelled. Bank hash values are "
           "never printed; the entry id identifies the bank record.</p>"]
    if not matches:
        out.append('<p class="note">No matches.</p></section>')
        return "".join(out)
    out.append(_table_head([("item (SHA-256)", ""), ("paths", ""), ("bank", ""), ("agency", ""),
                            ("entry", "num"), ("category", ""), ("series", ""),
                            ("victim", ""), ("distance", "num"), ("via", ""), ("variant", ""),
                            ("tags", "")], "known-table", "known matches"))
    for m in matches[:MAX_ROWS]:
        it = ctx.items.get(m.sha256)
        paths = it.paths if it else []
        cat = f"{m.category_scheme}:{m.category}" if m.category_scheme else "uncategorised"
        via = m.signal_type + (f" ({', '.join(m.signals)})" if m.signals != [m.signal_type]
                               else "")
        d = m.detail
        if d and "query_pct" in d:  # a video: how much of each video matched, and where
            via += (f" — {d['query_pct']:.0f}% of this video, {d['compared_pct']:.0f}% of the "
                    f"bank video; {_ranges(d['query_ranges'])} ~ {_ranges(d['compared_ranges'])}")
        elif d and "inliers" in d:  # the second stage: how many keypoints agree
            via += f" — {int(d['inliers'])} keypoints agree"
        out.append(
            f'<tr><td data-v="{esc(m.sha256)}"><code title="{esc(m.sha256)}">'
            f"{esc(m.sha256[:16])}…</code></td>"
            f'<td class="path">{_paths_cell(paths)}</td><td>{esc(m.bank)}</td>'
            f'<td>{esc(m.agency)}</td><td class="num">{m.entry_id}</td>'
            f'<td data-v="{esc(cat)}">{esc(category_label(cat))}</td>'
            f"<td>{_series_cell(ctx, m.series)}</td><td>{esc(m.victim_status)}</td>"
            f'<td class="num">{m.distance}</td><td>{esc(via)}</td><td>{esc(m.variant)}</td>'
            f"<td>{esc(', '.join(m.tags))}</td></tr>")
    out.append("</tbody></table>")
    if total > MAX_ROWS:
        out.append(f'<p class="note">Showing the first {MAX_ROWS:,} of {total:,} '
                   "matches (closest first); results.csv and results.jsonl list all.</p>")
    out.append("</section>")
    return "".join(out)


def _series_cell(ctx: _Ctx, series: str | None) -> str:
    """A match's series, and what the series registry says of it (identified by whom,
    whom to contact): one lookup in the notes the caller loaded once for the scan."""
    if not series:
        return ""
    n = ctx.notes.get(series) if ctx.notes else None
    if n is None:
        return esc(series)
    return (f'{esc(series)}<br><span class="series-status" data-status="{esc(n["status"])}">'
            f'{esc(n["summary"])}</span>')


def _thumb(ctx: _Ctx, sha: str, caption: str) -> str:
    jpeg = ctx.db.thumbnail(sha) if ctx.mode != "none" else None
    if jpeg is None:
        return ""
    try:
        data = present(jpeg, ctx.mode)  # type: ignore[arg-type]
    except Exception:  # a damaged stored thumbnail must not stop the report
        return ""
    ctx.thumbs_shown += 1
    uri = "data:image/jpeg;base64," + base64.b64encode(data).decode()
    return (f'<figure><img src="{uri}" alt="{esc(ctx.mode)} thumbnail" width="120" '
            f'height="120"><figcaption>{esc(caption)}</figcaption></figure>')


def _date_range(members: list[ItemRow], summary: dict[str, Any]) -> str:
    times = sorted(t for t in (capture_time(m.exif) for m in members) if t is not None)
    if times:
        a, b = times[0].strftime("%Y-%m-%d %H:%M"), times[-1].strftime("%Y-%m-%d %H:%M")
        return a if a == b else f"{a} → {b} ({len(times)} of {len(members)} dated)"
    first, last = summary.get("capture_first"), summary.get("capture_last")
    if first:
        return f"{first} → {last}" if last and last != first else str(first)
    return "no capture dates"


def _groups(ctx: _Ctx, groups: list[GroupRow], unknown_images: int,
            totals: tuple[int, int]) -> str:
    out = ['<section id="groups"><h2>Unknown material: groups ranked for review</h2>'
           '<p class="note">Near-duplicate groups of images no bank knows, ranked by size and '
           "shared capture device (one camera suggests one production). New material may "
           "point to a child not yet identified: review from rank 1.</p>"]
    n_groups, grouped = totals
    out.append(f'<p class="note">{n_groups:,} groups hold {grouped:,} of {unknown_images:,}'
               " unknown images.</p>")
    out.append('<div class="groups">')
    for g in groups[:MAX_GROUPS]:
        members = [ctx.items[s] for s, _ in g.members if s in ctx.items]
        devices = g.summary.get("devices") if isinstance(g.summary, dict) else None
        with_gps = sum(1 for m in members if gps(m.exif) is not None)
        fmts = g.summary.get("formats") if isinstance(g.summary, dict) else None
        out.append(f'<article class="group" id="group-{g.rank}"><h3>#{g.rank} · '
                   f"{g.size} item{'s' if g.size != 1 else ''} · score {g.score:g}</h3><dl>"
                   f"<dt>shared device</dt><dd>{esc(g.device or 'none')}</dd>")
        if isinstance(devices, dict) and devices:
            out.append("<dt>devices</dt><dd>" + esc(", ".join(
                f"{k} ({v})" for k, v in list(devices.items())[:5])) + "</dd>")
        out.append(f"<dt>captured</dt><dd>{esc(_date_range(members, g.summary))}</dd>"
                   f"<dt>with GPS</dt><dd>{with_gps} of {len(members)}</dd>")
        if isinstance(fmts, dict) and fmts:
            out.append("<dt>formats</dt><dd>" + esc(", ".join(
                f"{k} ({v})" for k, v in fmts.items())) + "</dd>")
        out.append("</dl>")
        if ctx.mode != "none":
            out.append('<div class="thumbs">')
            for sha, dist in g.members[:MAX_THUMBS_PER_GROUP]:
                it = ctx.items.get(sha)
                name = it.paths[0].rsplit("/", 1)[-1] if it and it.paths else sha[:12]
                cap = f"{name} · d={dist}" if dist >= 0 else name
                out.append(_thumb(ctx, sha, cap))
            out.append("</div>")
            if len(g.members) > MAX_THUMBS_PER_GROUP:
                out.append(f'<p class="note">{MAX_THUMBS_PER_GROUP} of {len(g.members)} '
                           "members shown.</p>")
        out.append("<details><summary>member paths</summary><ul>")
        for sha, dist in g.members[:MAX_ROWS]:
            it = ctx.items.get(sha)
            for p in (it.paths if it else [sha])[:MAX_PATHS_PER_ROW]:
                out.append(f"<li><code>{esc(p)}</code> · d={dist}</li>")
        out.append("</ul></details></article>")
    out.append("</div>")
    if n_groups > MAX_GROUPS:
        out.append(f'<p class="note">Showing the first {MAX_GROUPS} of {n_groups:,} groups; '
                   "results.jsonl lists every file.</p>")
    if not groups:
        out.append('<p class="note">No groups.</p>')
    out.append("</section>")
    return "".join(out)


def _errors(db: ScanDB, total: int) -> str:
    out = ['<section id="errors"><h2>Errors</h2><p class="note">Files the scan could not '
           "process; each is also in results.csv with its code and message.</p>"]
    if not total:
        out.append('<p class="note">None.</p></section>')
        return "".join(out)
    out.append(_table_head([("path", ""), ("code", ""), ("message", "")], "errors-table",
                           "errors"))
    for n, f in enumerate(db.files("error")):
        if n >= MAX_ROWS:
            break
        out.append(f'<tr><td class="path"><code>{esc(f.path)}</code></td>'
                   f"<td>{esc(f.error_code or 'unknown')}</td>"
                   f'<td class="msg">{esc(f.error_message or "")}</td></tr>')
    out.append("</tbody></table>")
    if total > MAX_ROWS:
        out.append(f'<p class="note">Showing the first {MAX_ROWS:,} of {total:,} errors.</p>')
    out.append("</section>")
    return "".join(out)


def _header(s: Summary, mode: ThumbnailMode, shown: int) -> str:
    meta = s.meta
    rows: list[tuple[str, Any]] = []
    for key, label in (("case_id", "case"), ("evidence", "evidence"), ("banks", "banks"),
                       ("threshold", "PDQ threshold"), ("started", "scan started"),
                       ("finished", "scan finished")):
        v = meta.get(key)
        if v not in (None, "", []):
            rows.append((label, ", ".join(map(str, v)) if isinstance(v, list) else v))
    rows.append(("report written", datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")))
    mode_text = {"blurred": "blurred and greyscale (default)",
                 "clear": "CLEAR (requested explicitly)", "none": "none (omitted)"}[mode]
    rows.append(("thumbnails", f"{mode_text}; {shown} shown in this report"))
    wellness = ("This report can show thumbnails of seized, unknown material. They are "
                "blurred and greyscale so nothing is recognisable at a glance; known material "
                "is never shown. Take breaks, review with a colleague when you can, and use "
                "your agency's wellbeing support.") if mode == "blurred" else (
                "This report shows CLEAR thumbnails of seized, unknown material, as requested. "
                "Take breaks, review with a colleague when you can, and use your agency's "
                "wellbeing support. Known material is never shown.") if mode == "clear" else (
                "This report shows no thumbnails. Known material is never shown.")
    return ("<header><h1>Vigil triage report</h1><dl>"
            + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows)
            + f'</dl><p class="wellness" id="wellness" data-thumbnails="{esc(mode)}" '
            f'data-thumbnails-shown="{shown}">{esc(wellness)}</p></header>')


def _write(f: TextIO, *parts: str) -> None:
    for p in parts:
        f.write(p)


def write_report(db: ScanDB, out: Path,
                 thumbnails: ThumbnailMode = "blurred",
                 series_notes: Mapping[str, dict[str, Any]] | None = None) -> Path:
    """Write the self-contained report; return its path.

    ``out`` is the file to write (``*.html``) or a directory to write ``report.html``
    into. ``thumbnails``: ``blurred`` (greyscale and blurred, the default), ``clear`` (the
    stored thumbnail as is) or ``none``. The file is written under a temporary name and
    renamed, so an interrupted run never leaves a truncated report that looks complete.
    ``series_notes`` (series id -> the series registry's note) adds each known series'
    status to its matches: identified by whom, and whom to contact.
    """
    if thumbnails not in ("blurred", "clear", "none"):
        raise ValueError(f"thumbnails must be blurred, clear or none, not {thumbnails!r}")
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        out = out / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    s = db.summary()
    # Only what the page shows is held: the first rows of matches and groups, and the
    # items they name; charts are counted while streaming the items.
    matches = db.matches(limit=MAX_ROWS)
    groups = db.groups(limit=MAX_GROUPS)
    shown = {m.sha256 for m in matches}
    for g in groups[:MAX_GROUPS]:
        shown.update(sha for sha, _ in g.members)
    ctx = _Ctx(db, thumbnails, db.items_for(shown), notes=series_notes)
    timeline = Timeline()
    for raw in db.capture_times():
        t = capture_time({"datetime_original": raw})
        if t is not None:
            timeline.add(t)
    # Groups first: the header must say how many thumbnails the page shows.
    groups_html = _groups(ctx, groups, s.unknown_images, db.group_totals())
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        _write(f, '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
               f'<meta http-equiv="Content-Security-Policy" content="{_csp()}">'
               '<meta name="viewport" content="width=device-width, initial-scale=1">'
               '<meta name="referrer" content="no-referrer">'
               "<title>Vigil triage report</title>"
               f"<style>{CSS}</style></head><body>",
               _header(s, thumbnails, ctx.thumbs_shown), "<main>",
               _totals(s), _charts(s, db.distance_counts(), timeline), groups_html,
               _known(ctx, matches, db.match_count()),
               _errors(db, s.errors), "</main>",
               f'<footer>Vigil {esc(__version__)} · rendered from {esc(db.path.name)}. '
               "Every lead is for a human to assess, not a verdict. results.csv, results.jsonl "
               "and case.vics.json hold every file.</footer>",
               f"<script>{JS}</script></body></html>\n")
    os.replace(tmp, out)
    return out


def _ranges(ranges: list[list[float]]) -> str:
    """Matched time ranges as m:ss-m:ss (first three)."""
    def t(x: float) -> str:
        return f"{int(x // 60)}:{x % 60:04.1f}"
    text = ", ".join(f"{t(a)}-{t(b)}" for a, b in ranges[:3])
    return text + (" …" if len(ranges) > 3 else "")
