"""The small pieces: URLs at the door, the CSV reader, percentiles against a sorted-list
reference, renders that tell a host nothing it need not know, the outbox."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.takedown import intake, render, reports
from vigil.takedown.mail import OutboxMailer
from vigil.takedown.repo import Contact, NoticeRow
from vigil.takedown.urls import UrlError, normalise

T = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("url,why", [
    ("", "empty"), ("ftp://x/y", "http"), ("http://", "no host"),
    ("http://u:p@x.com/", "user name"), ("http://x.com/a b", "whitespace"),
    ("http://x.com/\x1b[2J", "control"), ("http://x.com:99999/", "parsed"),
    ("http://" + "a" * 64 + ".com/", "domain"), ("http://x.com/" + "a" * 3000, "longer"),
    ("javascript:alert(1)", "http")])
def test_bad_urls_are_refused_saying_why(url: str, why: str) -> None:
    with pytest.raises(UrlError, match=why):
        normalise(url)


def test_urls_are_normalised() -> None:
    assert normalise(" HTTP://Example.COM:8080/a/B.jpg?x=1#frag ") == \
        "http://example.com:8080/a/B.jpg?x=1"
    assert normalise("https://bücher.example/x") == "https://xn--bcher-kva.example/x"
    assert normalise("http://[::1]/") == "http://[::1]/"
    assert normalise("http://x.com") == "http://x.com/"


def test_csv_rows_are_named_in_errors() -> None:
    text = "url,case\nhttp://a.com/1,C-1\nhttp://a.com/2\n"
    with pytest.raises(intake.IntakeError, match=r"row 3.*case"):
        intake.parse_csv(text, "f.csv")
    rows, skipped = intake.parse_csv(text, "f.csv", skip_invalid=True)
    assert [r.url for r in rows] == ["http://a.com/1"] and len(skipped) == 1
    rows, _ = intake.parse_csv("URL\nhttp://a.com/1\n", "f.csv", case="C-9")
    assert rows[0].case == "C-9"
    with pytest.raises(intake.IntakeError, match="'url' column"):
        intake.parse_csv("link,case\nx,y\n", "f.csv")


def _reference_percentile(values: list[float], p: float) -> float:
    """Nearest rank by counting: the smallest value with at least p% at or below it."""
    for v in sorted(values):
        if sum(1 for w in values if w <= v) >= p / 100 * len(values):
            return v
    raise AssertionError


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=50),
       st.sampled_from([50, 90, 99]))
def test_nearest_rank_agrees_with_the_reference(values: list[float], p: int) -> None:
    assert reports.nearest_rank(values, p) == _reference_percentile(values, p)


def _notice(**kw: object) -> NoticeRow:
    base: dict[str, object] = dict(
        id=7, url_id=1, url="http://h.example/x.jpg", host="h.example", domain="h.example",
        case_ref="SECRET-CASE", state="open", categories=(("pv", "1"),), series=("S-SECRET",),
        first_seen_at=T, opened_at=T, deadline_at=T + timedelta(hours=48), sends=0,
        first_sent_at=None, last_sent_at=None, escalated_at=None, acknowledged_at=None,
        removed_at=None, removal=None, closed_at=None, problem=None, next_due_at=T)
    base.update(kw)
    return NoticeRow(**base)  # type: ignore[arg-type]


def test_a_host_is_told_the_url_and_categories_not_the_case_or_series(tmp_path: Path) -> None:
    n = _notice()
    msg = render.email_of(n, "SG-SPF", Contact("h.example", "abuse@h.example", "boss@h"),
                          "notice", 1, "sg@vigil.invalid", T)
    raw = msg.as_string()
    assert "http://h.example/x.jpg" in raw and "pv:1" in raw and "SG-SPF-N7" in raw
    assert "SECRET" not in raw
    assert str(msg["To"]) == "abuse@h.example" and msg["Cc"] is None
    esc = render.email_of(n, "SG-SPF", Contact("h.example", "abuse@h.example", "boss@h"),
                          "escalation", 3, "sg@vigil.invalid", T)
    assert str(esc["To"]) == "boss@h" and str(esc["Cc"]) == "abuse@h.example"
    box = OutboxMailer(tmp_path / "out")
    box.send(msg)
    box.send(msg)  # the same message again (after a crash): the same one file
    files = list((tmp_path / "out").iterdir())
    assert len(files) == 1
    back = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert back["Message-ID"] == render.message_id("SG-SPF", 7, 1)


def test_reports_count_removals_reuploads_and_overdue() -> None:
    ns = [_notice(id=1, domain="a", first_sent_at=T, removed_at=T + timedelta(hours=10),
                  state="removed"),
          _notice(id=2, domain="a", first_sent_at=T, removed_at=T + timedelta(hours=30),
                  state="removed"),
          _notice(id=3, domain="a", first_sent_at=T, state="sent"),
          _notice(id=4, domain="b", first_sent_at=T, state="sent")]
    rep = reports.host_report(ns, [(2, 1), (4, 1)], T + timedelta(hours=50))
    a, b = rep["hosts"]
    assert (a["median_hours_to_removal"], a["p90_hours_to_removal"]) == (20.0, 30.0)
    assert (a["reuploads"], a["reupload_rate"], a["past_deadline"]) == (1, 0.3333, 1)
    assert (b["reuploads"], b["recirculations"]) == (0, 1)
    assert [o["notice"] for o in rep["past_deadline"]] == [3, 4]
    page = reports.html_page(rep)
    assert "<script" not in page and "://" not in page and "src=" not in page
