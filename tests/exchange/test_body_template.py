"""The origin's template-built record body is byte-identical to ``canonical()``'s."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.exchange.records import canonical, make_body, make_body_fast

text = st.text(max_size=12)
hexes = st.text("0123456789abcdef", min_size=1, max_size=64)
labels = st.one_of(st.none(), st.just({}), st.fixed_dictionaries({}, optional={
    "category": st.tuples(text, text).map(list), "series": text, "victim_status": text,
    "tags": st.lists(text, max_size=3), "note": text}))
#: a picture's derived data (the template carries it as its canonical text)
derived_data = st.one_of(st.none(), st.fixed_dictionaries({}, optional={
    "pdq_derived": st.lists(st.tuples(text, hexes, st.integers(0, 100)).map(list),
                            max_size=3),
    "pdq_features": text}))


@settings(max_examples=400, deadline=None)
@given(seq=st.integers(1, 2**62), prev=st.one_of(hexes, text),
       op=st.sampled_from(["add", "update", "remove"]), typ=st.one_of(
           st.sampled_from(["pdq", "md5", "vpdq", "photodna"]), text),
       value=st.one_of(hexes, text), quality=st.one_of(st.none(), st.integers(0, 100)),
       lab=labels, at=st.one_of(st.just("2026-11-30T01:02:03+00:00"), text),
       frames=st.one_of(st.none(), st.just(""), text), derived=derived_data)
def test_template_equals_canonical(seq: int, prev: str, op: str, typ: str, value: str,
                                   quality: int | None, lab: dict | None, at: str,
                                   frames: str | None, derived: dict | None) -> None:
    ref = make_body(seq, prev, op, typ, value, quality, lab, at, frames, derived)
    fast = make_body_fast(seq, prev, op, typ, value, quality,
                          canonical(lab) if lab else None, canonical(at), frames,
                          canonical(derived) if derived else None)
    assert fast == ref


def test_a_typical_record() -> None:
    lab = {"category": ["us", "1"]}
    args = (7, "ab" * 32, "add", "pdq", "f" * 64, 100)
    assert make_body_fast(*args, canonical(lab), canonical("2026-11-30T00:00:00+00:00")) \
        == make_body(*args, lab, "2026-11-30T00:00:00+00:00")
    derived = {"pdq_derived": [["trimmed", "e" * 64, 80]], "pdq_features": "QUJD"}
    assert make_body_fast(*args, canonical(lab), canonical("2026-11-30T00:00:00+00:00"),
                          None, canonical(derived)) \
        == make_body(*args, lab, "2026-11-30T00:00:00+00:00", None, derived)
