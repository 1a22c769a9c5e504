"""Decisions out: bank entries with category, series and the review tag that `vigil match`
then reports, and the case file rewritten with the decisions."""

from __future__ import annotations

import json

from sqlalchemy import Engine

from tests.review.conftest import REVIEWER, Case
from vigil.banks import Banks
from vigil.review.export import export_decisions
from vigil.review.ledger import Ledger
from vigil.review.series import BankSeries
from vigil.review.service import ReviewSession
from vigil.triage.scandb import ScanDB


def _session(case: Case, engine: Engine, scheme: str = "us",
             bank: str = "review-bank") -> ReviewSession:
    return ReviewSession(case.scan, scheme, Ledger(engine), BankSeries(engine), bank)


def test_export_banks_decided_items_and_match_reports_them(case: Case,
                                                           case_engine: Engine) -> None:
    rs = _session(case, case_engine)
    group_a, group_b = rs.queue.units[0], rs.queue.units[1]
    rs.decide(REVIEWER, group_a.items[0], "group", "category", "1")
    rs.add_to_series(REVIEWER, group_a.items[0], "group", "SG-2026-07")
    rs.decide(REVIEWER, group_b.items[0], "item", "category", "2")
    rs.decide(REVIEWER, group_b.items[1], "item", "not_relevant", None)
    result = export_decisions(rs.db_path, rs.store.decisions(), rs.store.series_of(),
                              Banks(case_engine), "review-bank")
    assert result.items == 4 and result.not_relevant == 1
    # md5, sha1, sha256, pdq per picture; near-duplicates may share a PDQ (one entry)
    decided = set(rs.store.decisions()) - {rs.queue.items[group_b.items[1]].sha256}
    signals = {(t, v) for it in ScanDB(rs.db_path).items() if it.sha256 in decided
               for t, v in (("md5", it.md5), ("sha1", it.sha1), ("sha256", it.sha256),
                            ("pdq", it.pdq))}
    assert result.added == len(signals) >= 13
    stats = Banks(case_engine).stats("review-bank")
    assert stats.by_category["us:2"] == 4 and sum(stats.by_category.values()) == result.added
    assert stats.series == 1
    assert "SG-2026-07" in BankSeries(case_engine).names("review-bank")
    # again: nothing new
    again = export_decisions(rs.db_path, rs.store.decisions(), rs.store.series_of(),
                             Banks(case_engine), "review-bank")
    assert again.added == 0 and again.unchanged == result.added
    # the case file carries the decisions
    case_doc = json.loads((case.scan / "case.vics.json").read_text())
    media = {m["RelativeFilePath"].rsplit("/", 1)[-1]: m for m in case_doc["value"][0]["Media"]}
    for name in case.groups["A"]:
        assert media[name]["Category"] == 1 and media[name]["Series"] == "SG-2026-07"
        assert media[name]["IsPrecategorized"] == "false"
    assert media["b-q50.jpg"]["Category"] == 5 or media["b.jpg"]["Category"] == 5
    assert media["k1-copy.jpg"]["IsPrecategorized"] == "true"  # the matches stay
    # `vigil match` on the seizure's pictures now reports the review bank
    out = case.cli("match", *(str(p) for p in sorted((case.seizure / "phone").glob("a*.jpg"))),
                   "--bank", "review-bank", "-q")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # each picture matches its own entries, and its near-duplicates' (one line per lead)
    assert {ln.split(": MATCH", 1)[0].rsplit("/", 1)[-1] for ln in lines} == {
        "a.jpg", "a-half.jpg"}
    assert all("MATCH bank review-bank" in ln and " us:1 " in ln
               and "series=SG-2026-07" in ln for ln in lines), lines
    rs.close()


def test_the_cli_exports_too(case: Case, case_engine: Engine) -> None:
    rs = _session(case, case_engine, "uk", "uk-bank")
    rs.decide(REVIEWER, rs.queue.units[0].items[0], "group", "category", "B")
    rs.close()
    out = case.cli("review", str(case.scan), "--export", "uk-bank")
    assert out.returncode == 0, out.stderr
    assert "exported 3 decided items to uk-bank" in out.stdout
    assert set(Banks(case_engine).stats("uk-bank").by_category) == {"uk:B"}
    bad = case.cli("review", str(case.scan), "--export", "no-such-bank")
    assert bad.returncode == 1 and "no bank named 'no-such-bank'" in bad.stderr
    # the export is in the audit chain
    from vigil.audit import AuditLog

    log = AuditLog(case_engine, (case.home / "keys" / "audit.key").read_bytes())
    actions = [r.action for r in log.records(limit=50)]
    assert "review.export" in actions
