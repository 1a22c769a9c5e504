"""Second opinions: a second reviewer sees only what another reviewer decided, never their
own first decisions, and the agreement figures compare the two rounds."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import Engine

from tests.review.conftest import Case, serve
from vigil.banks import Banks
from vigil.review.export import export_decisions
from vigil.review.ledger import Ledger
from vigil.review.service import ReviewError, ReviewSession


def test_second_opinions_and_agreement(case: Case, case_engine: Engine) -> None:
    first = ReviewSession(case.scan, "us", Ledger(case_engine))
    a, b = first.queue.units[0], first.queue.units[1]
    first.decide("ana", a.items[0], "group", "category", "1")
    first.decide("ana", b.items[0], "item", "category", "2")
    first.decide("bob", b.items[1], "item", "category", "2")
    second = ReviewSession(case.scan, "us", Ledger(case_engine), round_=2)
    # bob sees ana's decisions, not his own, and nothing undecided
    assert second.progress("bob")["items"] == 4
    assert second.first_open("bob") == 0
    assert [i.id for i in second.view(1, "bob").items] == [b.items[0]]
    with pytest.raises(ReviewError, match="no first decision by another reviewer"):
        second.decide("bob", b.items[1], "item", "category", "2")
    with pytest.raises(ReviewError, match="no first decision"):
        second.decide("bob", first.queue.units[2].items[0], "item", "category", "2")
    second.decide("bob", a.items[0], "item", "category", "1")
    second.decide("bob", a.items[1], "item", "category", "2")
    second.decide("bob", a.items[2], "item", "not_relevant", None)
    second.decide("bob", b.items[0], "item", "category", "2")
    assert second.first_open("bob") is None
    agr = second.agreement()
    assert (agr.items, agr.agree) == (4, 2)
    assert agr.share == 0.5
    assert agr.pairs == {("us:1", "us:1"): 1, ("us:1", "us:2"): 1,
                         ("us:1", "not_relevant"): 1, ("us:2", "us:2"): 1}
    assert [d[0] for d in agr.disagreements] == sorted([a.items[1], a.items[2]])
    # po = 0.5; pe = (3/4 * 1/4) + (1/4 * 2/4) = 0.3125; kappa = 0.1875 / 0.6875
    assert agr.kappa == pytest.approx(0.1875 / 0.6875)
    # the first round is untouched: it is what an export banks
    assert len(first.store.decisions(1)) == 5
    first.close()
    second.close()


def test_settling_shows_only_disagreements_and_exports_the_settled_decision(
        case: Case, case_engine: Engine) -> None:
    first = ReviewSession(case.scan, "us", Ledger(case_engine))
    a = first.queue.units[0]
    first.decide("ana", a.items[0], "group", "category", "1")
    second = ReviewSession(case.scan, "us", Ledger(case_engine), round_=2)
    second.decide("bob", a.items[0], "item", "category", "1")      # agrees
    second.decide("bob", a.items[1], "item", "category", "3")      # disagrees
    second.decide("bob", a.items[2], "item", "not_relevant", None)  # disagrees
    settle = ReviewSession(case.scan, "us", Ledger(case_engine), round_=3)
    # only the two disagreements, each shown with both decisions and who made them
    assert settle.progress("cai")["items"] == 2
    pos = settle.first_open("cai")
    assert pos == 0
    view = settle.view(pos, "cai")
    assert [i.id for i in view.items] == [a.items[1], a.items[2]]
    assert view.earlier[a.items[1]] == ("us:1 by ana", "us:3 by bob")
    with pytest.raises(ReviewError, match="no disagreement to settle"):
        settle.decide("cai", a.items[0], "item", "category", "2")
    settle.decide("cai", a.items[1], "item", "category", "3")
    settle.decide("cai", a.items[2], "item", "category", "1")
    assert settle.first_open("cai") is None
    assert settle.agreement().settled == {a.items[1]: "us:3", a.items[2]: "us:1"}
    # exports bank the settled decision where there is one, else the first
    final = settle.store.final_decisions()
    sha = {i: settle.queue.items[i].sha256 for i in a.items}
    assert [final[sha[i]].category for i in a.items] == ["1", "3", "1"]
    assert final[sha[a.items[1]]].reviewer == "cai"
    result = export_decisions(settle.db_path, final, settle.store.series_of(),
                              Banks(case_engine), "review-bank")
    assert result.items == 3
    stats = Banks(case_engine).stats("review-bank").by_category
    assert "us:3" in stats and "us:1" in stats
    for s in (first, second, settle):
        s.close()


def test_the_settle_page_shows_both_decisions(case: Case, case_engine: Engine) -> None:
    first = ReviewSession(case.scan, "us", Ledger(case_engine))
    a = first.queue.units[0]
    first.decide("ana", a.items[0], "item", "category", "1")
    second = ReviewSession(case.scan, "us", Ledger(case_engine), round_=2)
    second.decide("bob", a.items[0], "item", "category", "2")
    served = serve(case, case_engine, settle=True)
    try:
        page = httpx.get(served.base + "/", follow_redirects=True, timeout=30).text
        assert "Settling disagreements" in page and "0 of 1 unknown items decided" in page
        assert "first: us:1 by ana; second: us:2 by bob" in page
        agreement = httpx.get(served.base + "/agreement", timeout=30).text
        assert "0 of 1 settled" in agreement
    finally:
        served.stop()
        first.close()
        second.close()
