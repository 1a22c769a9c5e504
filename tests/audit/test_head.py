"""``vigil.audit.head.HeadHint``: the host-wide append lock and the hinted chain head."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pytest

from vigil.audit.head import HeadHint


def _free(folder: Path) -> bool:
    """Whether another process could take the lock now (a second open file, like one)."""
    fd = os.open(folder / "head.hint", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_lock_is_reentrant_and_released_only_by_the_outermost_hold(tmp_path: Path) -> None:
    """The group committer holds the lock around a whole flush and the appender takes it
    again inside: no deadlock, and no release halfway."""
    hint = HeadHint(tmp_path)
    with hint.locked():
        with hint.locked():
            hint.set(7, "a" * 64)
        assert not _free(tmp_path), "still held after the inner block"
        assert hint.get() == (7, "a" * 64)
    assert _free(tmp_path)


@pytest.mark.parametrize("folder", [True, False])
def test_lock_excludes_other_threads(tmp_path: Path, folder: bool) -> None:
    hint = HeadHint(tmp_path if folder else None)
    inside = threading.Event()
    order: list[str] = []

    def other() -> None:
        inside.wait()
        with hint.locked():
            order.append("other")

    t = threading.Thread(target=other)
    t.start()
    with hint.locked(), hint.locked():
        inside.set()
        t.join(0.2)
        assert t.is_alive(), "the other thread waits while this one holds it"
        order.append("holder")
    t.join(5)
    assert order == ["holder", "other"]
