"""ExactIndex behaves like a dict of digest -> set of ids, through any history."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.index import ExactIndex, digests_from_hex

SIZES = {16: hashlib.md5, 20: hashlib.sha1, 32: hashlib.sha256}


def _digest(size: int, i: int) -> bytes:
    return SIZES[size](str(i).encode()).digest()


@settings(max_examples=30, deadline=None)
@given(
    size=st.sampled_from(sorted(SIZES)),
    ops=st.lists(
        st.tuples(st.sampled_from(["add", "remove", "compact", "reload"]), st.integers(0, 60)),
        max_size=8,
    ),
    delta_limit=st.sampled_from([None, 0, 20]),
    seed=st.integers(0, 2**32 - 1),
)
def test_matches_dict_reference(
    tmp_path_factory: pytest.TempPathFactory,
    size: int,
    ops: list[tuple[str, int]],
    delta_limit: int | None,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    index = ExactIndex(size, delta_limit=delta_limit)
    ref: dict[int, bytes] = {}  # id -> digest
    next_id = 0
    for op, amount in ops:
        if op == "add":
            # few distinct digests, so several ids share one; a shared 8-byte prefix too
            keys = rng.integers(0, 40, size=amount)
            digests = [_digest(size, int(x)) for x in keys]
            digests = [d if j % 3 else d[:8] + bytes(size - 8) for j, d in enumerate(digests)]
            ids = np.arange(next_id, next_id + amount)
            next_id += amount
            as_array = bool(amount % 2)
            payload = (
                np.frombuffer(b"".join(digests), np.uint8).reshape(-1, size)
                if as_array
                else digests
            )
            index.add(payload, ids)
            ref.update(zip(ids.tolist(), digests, strict=True))
        elif op == "remove":
            victims = rng.choice(next_id + 5, size=min(amount, next_id + 5), replace=False)
            expected = sum(1 for v in victims.tolist() if v in ref)
            for v in victims.tolist():
                ref.pop(v, None)
            assert index.remove(victims) == expected
        elif op == "compact":
            index.compact()
        else:
            path = tmp_path_factory.mktemp("exact") / "ix"
            index.save(path)
            index = ExactIndex.load(path, mmap=bool(amount % 2))
        assert len(index) == len(ref)
        queries = [_digest(size, i) for i in range(42)] + [bytes(size)]
        queries += [q[:8] + bytes(size - 8) for q in queries[:5]]
        res = index.lookup(queries)
        for qi, q in enumerate(queries):
            want = sorted(i for i, d in ref.items() if d == q)
            assert res.matches(qi) == [(i, 0) for i in want]


def test_errors_and_hex() -> None:
    with pytest.raises(ValueError, match="digest_size"):
        ExactIndex(12)
    index = ExactIndex(16)
    md5 = hashlib.md5(b"x").hexdigest()
    arr = digests_from_hex([md5, md5.upper()], 16)
    assert arr.shape == (2, 16)
    index.add(arr, np.array([1, 2]))
    with pytest.raises(ValueError, match="id 2 "):
        index.add(arr[:1], np.array([2]))
    with pytest.raises(ValueError, match="position 0"):
        index.add([b"short"], np.array([3]))
    with pytest.raises(ValueError, match="position 1"):
        digests_from_hex([md5, md5[:-2]], 16)
    assert index.lookup(arr[:1]).matches(0) == [(1, 0), (2, 0)]
    assert len(index.lookup(np.zeros((0, 16), np.uint8))) == 0
