"""The notice loop end to end, in one process: loopback hosts serving corpus photos,
notices over real SMTP (aiosmtpd), 24-hour cycles run on an injectable clock.

Hosts: A removes its photo after the first notice, B after the third, C never (and is
escalated after the 48-hour deadline), D re-uploads at a new URL after the first notice.
SQLite, and PostgreSQL with VIGIL_TEST_DATABASE_URL.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.takedown.conftest import AGENCY, Smtp, WebHost, corpus, fill_bank, make_loop
from vigil.takedown import intake, repo, reports
from vigil.takedown.clock import ManualClock
from vigil.takedown.repo import Contact

pytestmark = pytest.mark.shared


def test_notices_repeat_until_removal_is_verified(
        engine: Engine, tmp_path: Path, shared: Path, smtp: Smtp,
        web: Callable[[str], WebHost]) -> None:
    photos = corpus(shared, 5)
    fill_bank(engine, {photos[0]: "S-A", photos[1]: "S-B", photos[2]: "S-C",
                       photos[3]: "S-D"})
    a, b, c, d = (web(f"127.0.0.{i}") for i in (2, 3, 4, 5))
    jpeg = [(p.read_bytes(), "image/jpeg") for p in photos]
    a.files["/a.jpg"], b.files["/b.jpg"], c.files["/c.jpg"] = jpeg[0], jpeg[1], jpeg[2]
    d.files["/d1.jpg"] = jpeg[3]
    c.files["/benign.jpg"] = jpeg[4]  # in no bank: no notice
    received: Counter[str] = Counter()

    def host_reacts(msg: EmailMessage) -> None:
        to = str(msg["To"])
        received[to] += 1
        if to == "abuse@a" and received[to] == 1:
            a.files.pop("/a.jpg")
        if to == "abuse@b" and received[to] == 3:
            b.files.pop("/b.jpg")
        if to == "abuse@d" and received[to] == 1:  # moves it: a re-upload at a new URL
            d.files["/d2.jpg"] = d.files.pop("/d1.jpg")
        elif to == "abuse@d" and received[to] == 2:  # the notice about the new URL
            d.files.pop("/d2.jpg")

    smtp.on_message = host_reacts
    clock = ManualClock()
    t0 = clock.now()
    for host, name in ((a, "a"), (b, "b"), (c, "c"), (d, "d")):
        repo.set_contact(engine, Contact(host.ip, f"abuse@{name}",
                                         "legal@c" if name == "c" else None), t0)
    for u in (a.url("/a.jpg"), b.url("/b.jpg"), c.url("/c.jpg"), d.url("/d1.jpg"),
              c.url("/benign.jpg")):
        intake.add(engine, intake.check(u, "C-1"), "tester", t0)
    loop = make_loop(engine, tmp_path, smtp, clock)

    stats = loop.cycle()
    assert (stats.checked, stats.matched, stats.opened, stats.sent) == (5, 4, 4, 4)
    assert stats.errors == []
    by_host = {n.domain: n for n in repo.list_notices(engine)}
    assert set(by_host) == {a.ip, b.ip, c.ip, d.ip}
    assert by_host[a.ip].categories == (("us", "1"),) and by_host[a.ip].series == ("S-A",)
    assert all(n.state == "sent" and n.sends == 1 for n in by_host.values())
    assert {u.state for u in repo.list_urls(engine) if u.url.endswith("benign.jpg")} == \
        {"no-match"}

    # hour 24: A and D1 verified gone; D's photo found again at its new URL
    clock.advance(hours=24)
    intake.add(engine, intake.check(d.url("/d2.jpg"), "C-2"), "tester", clock.now())
    stats = loop.cycle()
    assert stats.removed == 2 and stats.opened == 1 and stats.errors == []
    # hours 48 and 72: B removes after its third notice; C is escalated at 48
    clock.advance(hours=24)
    loop.cycle()
    clock.advance(hours=24)
    loop.cycle()

    notices = {n.url.rsplit("/", 1)[1]: n for n in repo.list_notices(engine)}
    assert {k: n.state for k, n in notices.items()} == {
        "a.jpg": "removed", "b.jpg": "removed", "c.jpg": "sent", "d1.jpg": "removed",
        "d2.jpg": "removed"}
    assert {k: n.sends for k, n in notices.items()} == {
        "a.jpg": 1, "b.jpg": 3, "c.jpg": 4, "d1.jpg": 1, "d2.jpg": 1}
    hours = {k: reports.hours_to_removal(n) for k, n in notices.items()}
    assert hours == {"a.jpg": 24.0, "b.jpg": 72.0, "c.jpg": None, "d1.jpg": 24.0,
                     "d2.jpg": 24.0}
    assert notices["a.jpg"].removal == "gone"

    # every message once: (reference, number) never repeats; C's third is the escalation
    sent = smtp.notices()
    assert len(sent) == len(set((r, n) for r, n, _ in sent)) == 10
    c_ref = f"{AGENCY}-N{notices['c.jpg'].id}"
    assert [(n, k) for r, n, k in sent if r == c_ref] == [
        (1, "notice"), (2, "renotice"), (3, "escalation"), (4, "renotice")]
    esc = next(m for m in smtp.messages if "kind=escalation" in str(m["X-Vigil-Notice"]))
    assert str(esc["To"]) == "legal@c" and str(esc["Cc"]) == "abuse@c"
    assert notices["c.jpg"].escalated_at == notices["c.jpg"].deadline_at

    # the re-upload links to the earlier notice; counted per host and per series
    assert repo.links(engine) == [(notices["d2.jpg"].id, notices["d1.jpg"].id)]
    now = clock.now()
    hosts = {h["host"]: h for h in reports.host_report(
        repo.list_notices(engine), repo.links(engine), now)["hosts"]}
    assert hosts[d.ip]["reuploads"] == 1 and hosts[d.ip]["reupload_rate"] == 0.5
    assert hosts[a.ip]["median_hours_to_removal"] == 24.0
    assert hosts[b.ip]["p90_hours_to_removal"] == 72.0
    assert hosts[c.ip]["past_deadline"] == 1 and hosts[c.ip]["active"] == 1
    s = reports.series_report("S-D", repo.list_notices(engine), repo.links(engine), now)
    assert (s["sightings"], s["hosts"], s["reuploads"], s["removed"]) == (2, 1, 1, 2)
    assert s["median_hours_to_removal"] == 24.0
    text = str(s) + reports.html_page(s)
    assert "://" not in text and ".jpg" not in text  # no content URLs, no requests
    # the fetch log: status, type, final URL, address and timing of every fetch
    log = repo.fetches(engine, notices["a.jpg"].url_id)
    assert [f["outcome"] for f in log] == ["gone", "match"]
    assert log[1]["status"] == 200 and log[1]["content_type"] == "image/jpeg"
    assert log[1]["address"] == a.ip and log[1]["final_url"] == a.url("/a.jpg")
    assert log[1]["seconds"] > 0 and log[1]["size"] == len(jpeg[0][0])


def test_a_host_without_a_contact_waits_and_goes_out_once_one_is_added(
        engine: Engine, tmp_path: Path, shared: Path, smtp: Smtp,
        web: Callable[[str], WebHost]) -> None:
    photo = corpus(shared, 1)[0]
    fill_bank(engine, {photo: "S-1"})
    h = web("127.0.0.6")
    h.files["/x.jpg"] = (photo.read_bytes(), "image/jpeg")
    clock = ManualClock()
    intake.add(engine, intake.check(h.url("/x.jpg"), "C-9"), None, clock.now())
    loop = make_loop(engine, tmp_path, smtp, clock)
    stats = loop.cycle()
    assert (stats.opened, stats.sent, stats.waiting) == (1, 0, 1)
    n = repo.list_notices(engine)[0]
    assert n.state == "open" and n.problem is not None and h.ip in n.problem
    repo.set_contact(engine, Contact(h.ip, "abuse@x"), clock.now())
    assert loop.cycle().sent == 1
    assert smtp.notices() == [(f"{AGENCY}-N{n.id}", 1, "notice")]
    assert repo.get_notice(engine, n.id).problem is None  # type: ignore[union-attr]


def test_an_acknowledged_notice_is_still_rechecked_and_a_closed_one_is_not(
        engine: Engine, tmp_path: Path, shared: Path, smtp: Smtp,
        web: Callable[[str], WebHost]) -> None:
    photo = corpus(shared, 1)[0]
    fill_bank(engine, {photo: "S-1"})
    h = web("127.0.0.7")
    h.files["/x.jpg"] = h.files["/y.jpg"] = (photo.read_bytes(), "image/jpeg")
    clock = ManualClock()
    repo.set_contact(engine, Contact(h.ip, "abuse@x"), clock.now())
    for p in ("/x.jpg", "/y.jpg"):
        intake.add(engine, intake.check(h.url(p), "C-9"), None, clock.now())
    loop = make_loop(engine, tmp_path, smtp, clock)
    loop.cycle()
    x, y = sorted(repo.list_notices(engine), key=lambda n: n.url)  # /x.jpg, /y.jpg
    # same photo, same host: a re-upload (of whichever was opened first)
    assert repo.links(engine) == [(max(x.id, y.id), min(x.id, y.id))]
    repo.set_state(engine, x.id, "acknowledge", clock.now())
    repo.set_state(engine, y.id, "close", clock.now())
    with pytest.raises(repo.TakedownError, match="closed"):
        repo.set_state(engine, y.id, "acknowledge", clock.now())
    clock.advance(hours=24, minutes=1)
    assert loop.cycle().sent == 1
    assert [n for _, n, _ in smtp.notices()] == [1, 1, 2]
    h.files["/x.jpg"] = (b"GIF89a not really", "text/html")  # replaced by a page
    clock.advance(hours=24)
    stats = loop.cycle()
    assert stats.removed == 1, repo.fetches(engine, x.url_id)
    x2 = repo.get_notice(engine, x.id)
    assert x2 is not None and x2.state == "removed" and x2.removal == "no-match"


def test_renotice_interval_and_deadline_are_settings(
        engine: Engine, tmp_path: Path, shared: Path, smtp: Smtp,
        web: Callable[[str], WebHost]) -> None:
    photo = corpus(shared, 1)[0]
    fill_bank(engine, {photo: "S-1"})
    h = web("127.0.0.8")
    h.files["/x.jpg"] = (photo.read_bytes(), "image/jpeg")
    clock = ManualClock()
    repo.set_contact(engine, Contact(h.ip, "abuse@x", "boss@x"), clock.now())
    intake.add(engine, intake.check(h.url("/x.jpg"), "C-9"), None, clock.now())
    loop = make_loop(engine, tmp_path, smtp, clock, renotice=timedelta(hours=6),
                     deadline=timedelta(hours=9))
    loop.cycle()
    for _ in range(4):
        clock.advance(hours=3)
        loop.cycle()
    # sends at 0 (notice), 6 (renotice), 9 (escalation at the deadline); next due 15
    assert [(n, k) for _, n, k in smtp.notices()] == [(1, "notice"), (2, "renotice"),
                                                      (3, "escalation")]
