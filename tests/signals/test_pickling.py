"""What crosses to and from hashing workers pickles as plain tuples and comes back equal."""

from __future__ import annotations

import pickle
from dataclasses import FrozenInstanceError, dataclass

import pytest

from tests.conftest import encode
from vigil.demo.synthetic import synthetic_image
from vigil.signals import Digests, PdqHash, hash_bytes
from vigil.signals.decode import ImageInfo
from vigil.signals.keyframes import Keyframe
from vigil.signals.pickling import plain_state
from vigil.signals.runner import Hashed, Unit, _Part, _Results, _Task
from vigil.signals.vpdq import VpdqFrame
from vigil.triage.rows import hash_options


@pytest.mark.parametrize("cls", [Digests, PdqHash, ImageInfo, Keyframe, VpdqFrame, Unit,
                                 Hashed, _Part, _Task, _Results])
def test_worker_messages_have_a_plain_state(cls: type) -> None:
    """Every class on the wire uses ``plain_state`` (not dataclasses' slower one)."""
    assert cls.__getstate__.__qualname__.startswith("plain_state")


def test_a_hashed_file_and_the_messages_round_trip_equal() -> None:
    data = encode(synthetic_image(5, (320, 240)))
    r = hash_bytes(data, "ev/a.jpg", hash_options("fast", True, thumbnails=True))
    assert r.digests and r.pdq and r.image and r.thumbnail
    task = _Task(3, (_Part(7, Unit("ev/a.jpg")),
                     _Part(8, Unit("ev/b.zip", archive=True, members=frozenset({"ev/b.zip!/c"})),
                           frozenset({"ev/b.zip!/d"}), frozenset({2}))))
    msg = _Results(3, [Hashed(7, 0, r)], [7], False)
    for obj in (task, msg, r.digests, r.pdq, r.image, Keyframe(1.5, b"jpeg"),
                VpdqFrame(0, 100, "0" * 64, 0.0)):
        state = obj.__getstate__()
        assert isinstance(state, tuple)
        back = pickle.loads(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
        assert back == obj and type(back) is type(obj)
    back_msg = pickle.loads(pickle.dumps(msg))
    assert back_msg.results[0].result.pdq_dihedral == r.pdq_dihedral


@plain_state
@dataclass(frozen=True, slots=True)
class Pair:
    a: int
    b: str


def test_plain_state_keeps_a_frozen_class_frozen() -> None:
    p = pickle.loads(pickle.dumps(Pair(1, "x")))
    assert p == Pair(1, "x") and p.__getstate__() == (1, "x")
    with pytest.raises(FrozenInstanceError):
        p.a = 2  # type: ignore[misc]
