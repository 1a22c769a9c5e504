"""Second opinions: a second reviewer sees only what another reviewer decided, never their
own first decisions, and the agreement figures compare the two rounds."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.review.conftest import Case
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
