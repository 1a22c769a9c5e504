"""The fast check of travelling derived codes against its item-by-item reference: the
same result, or the same error, on well-formed and malformed lists alike."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.banks.travel import KNOWN_WINDOWS, _check_codes, check_codes_reference

windows = st.sampled_from(sorted(KNOWN_WINDOWS)) | st.sampled_from(["no-top-0.1", "", "x"])
codes = (st.text("0123456789abcdef", min_size=64, max_size=64)
         | st.text("0123456789abcdefABX", min_size=63, max_size=65))
qualities = st.integers(-2, 102) | st.booleans() | st.just("80") | st.just(80.0)
items = (st.tuples(windows, codes, qualities).map(list)
         | st.lists(st.one_of(windows, codes, qualities), max_size=4))
lists = st.lists(items, max_size=70) | st.just("trimmed") | st.none()


def outcome(check: Any, raw: Any) -> Any:
    try:
        return check(raw)
    except ValueError as exc:
        return ("error", str(exc))


@settings(max_examples=500, deadline=None)
@given(lists)
def test_fast_check_equals_the_reference(raw: Any) -> None:
    assert outcome(_check_codes, raw) == outcome(check_codes_reference, raw)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(KNOWN_WINDOWS)),
                          st.text("0123456789abcdef", min_size=64, max_size=64),
                          st.integers(0, 100)).map(list), max_size=35,
                unique_by=lambda i: i[0]))
def test_well_formed_ladders_pass_both(raw: list[list[Any]]) -> None:
    assert _check_codes(raw) == check_codes_reference(raw) == raw

