"""The runner: results equal to hashing in this process, order restored, and dead workers.

A worker is killed exactly while it hashes a deliberately slow input (a large sparse
file: its digests take seconds, and the worker holds it open all that time), found
through /proc; nothing here guesses timing with sleeps.
"""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.conftest import encode
from tests.signals.procs import Killer
from vigil.demo.synthetic import synthetic_image
from vigil.signals import HashOptions, hash_item
from vigil.signals.runner import Unit, in_order, run

SLOW_SIZE = 256 << 20  # sparse: costs no disk, about a second of digests


def _evidence(tmp_path: Path) -> tuple[list[Unit], Path]:
    ev = tmp_path / "ev"
    ev.mkdir()
    units = []
    for i in range(6):
        p = ev / f"p{i}.jpg"
        p.write_bytes(encode(synthetic_image(i, (320, 240))))
        units.append(Unit(str(p)))
    slow = ev / "slow.bin"
    with open(slow, "wb") as fh:
        fh.truncate(SLOW_SIZE)
    units.insert(3, Unit(str(slow)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(3):
            z.writestr(f"in/z{i}.png", encode(synthetic_image(20 + i, (64, 48)), "PNG"))
        z.writestr("in/note.txt", "hello")
    (ev / "a.zip").write_bytes(buf.getvalue())
    units += [Unit(str(ev / "a.zip")), Unit(str(ev / "a.zip"), archive=True)]
    return units, slow


def _results(units: list[Unit], jobs: int) -> list[dict[str, object]]:
    return [r.to_json() for _, r in in_order(run(units, HashOptions(), jobs))]


@pytest.fixture
def evidence(tmp_path: Path) -> tuple[list[Unit], Path]:
    return _evidence(tmp_path)


def test_workers_give_what_this_process_gives_in_order(evidence) -> None:  # type: ignore[no-untyped-def]
    units, _ = evidence
    alone = _results(units, 1)
    assert [r["path"] for r in alone][-4:] == [f"{units[-1].path}!/in/z{i}.png"
                                              for i in range(3)] + [
        f"{units[-1].path}!/in/note.txt"]
    assert _results(units, 2) == alone
    assert alone[0] == hash_item(units[0].path).to_json()


def test_a_worker_killed_once_is_replaced_and_its_file_retried(evidence) -> None:  # type: ignore[no-untyped-def]
    units, slow = evidence
    undisturbed = _results(units, 2)
    killer = Killer(slow, times=1, spare={os.getpid()})
    killer.start()
    got = _results(units, 2)
    killer.join()
    assert len(killer.killed) == 1
    assert got == undisturbed  # the retry hashed it: nothing lost, nothing twice


def test_a_file_in_flight_at_two_deaths_is_an_error_row(evidence) -> None:  # type: ignore[no-untyped-def]
    units, slow = evidence
    undisturbed = _results(units, 2)
    killer = Killer(slow, times=2, spare={os.getpid()})
    killer.start()
    got = _results(units, 2)
    killer.join()
    assert len(killer.killed) == 2
    assert [r["path"] for r in got] == [r["path"] for r in undisturbed]
    [died] = [r for r in got if r["path"] == str(slow)]
    assert died["error"]["code"] == "worker-died"  # type: ignore[index]
    assert [r for r in got if r["path"] != str(slow)] == [
        r for r in undisturbed if r["path"] != str(slow)]


def test_an_archive_member_in_flight_at_two_deaths(tmp_path: Path) -> None:
    """The member is named (the worker says which one it began, through shared memory);
    the members before and after it are hashed once each."""
    tar = tmp_path / "t.tar"
    members = [(f"a{i}.png", encode(synthetic_image(30 + i, (64, 48)), "PNG"))
               for i in range(2)]
    with tarfile.open(tar, "w") as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("big.bin")  # zeros: slow to digest, small PNGs are not
        info.size = SLOW_SIZE // 2
        t.addfile(info, _Zeros(info.size))
        info = tarfile.TarInfo("z.txt")
        info.size = 5
        t.addfile(info, io.BytesIO(b"after"))
    # Only the members: hashing the tar itself would hold it open too.
    units = [Unit(str(tar), archive=True)]
    undisturbed = _results(units, 2)
    # The worker holds the tar open for the whole archive: kill it once it has read more
    # than all the small members together, i.e. inside big.bin.
    killer = Killer(tar, times=2, spare={os.getpid()}, min_read=32 << 20)
    killer.start()
    got = _results(units, 2)
    killer.join()
    assert len(killer.killed) == 2
    assert [r["path"] for r in got] == [r["path"] for r in undisturbed]

    [died] = [r for r in got if r["path"] == f"{tar}!/big.bin"]
    assert died["error"]["code"] == "worker-died"  # type: ignore[index]
    assert [r for r in got if r is not died] == [
        r for r in undisturbed if r["path"] != died["path"]]


class _Zeros(io.RawIOBase):
    """``n`` zero bytes, read without holding them all (for tarfile.addfile)."""

    def __init__(self, n: int) -> None:
        self.left = n

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        k = min(len(b), self.left)
        b[:k] = bytes(k)
        self.left -= k
        return k
