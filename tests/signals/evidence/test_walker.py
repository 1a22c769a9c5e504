"""Evidence enumeration: folders, files and nested archives, including every bad input kind.

All evidence is built in tmp_path by the tests (benign bytes and generated images).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from vigil.demo.synthetic import synthetic_image
from vigil.signals.evidence import (
    FLAG_ABSOLUTE,
    FLAG_BACKSLASH,
    FLAG_DUPLICATE,
    FLAG_ESCAPED,
    FLAG_NOT_UTF8,
    FLAG_SYMLINK,
    FLAG_TRAVERSAL,
    SEP,
    CorruptArchiveError,
    Item,
    Limits,
    SourceError,
    disk,
    disk_path,
    iter_archive_contents,
    iter_items,
    read_item,
    sniff_archive,
)


def jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    synthetic_image(seed, (64, 48)).save(buf, "JPEG")
    return buf.getvalue()


def zip_bytes(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def tar_bytes(members: list[tuple[str, bytes]], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.GNU_FORMAT,  # type: ignore[call-overload]
                      encoding="utf-8", errors="surrogateescape") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_600_000_000
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def by_path(items: list[Item]) -> dict[str, Item]:
    return {it.path: it for it in items}


def errors(items: list[Item]) -> dict[str, str]:
    return {it.path: it.error.code for it in items if it.error is not None}


def enumerate_all(inputs: list[Path | str], limits: Limits | None = None) -> list[Item]:
    return list(iter_items(inputs, limits or Limits()))


# ---------------------------------------------------------------------------------------
# The normal case: nested archives in a folder


@pytest.fixture
def evidence(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """ev/ with a plain image, an empty file, a zip renamed .jpg, and a tar.gz holding a
    folder with a zip holding images and a tar."""
    ev = tmp_path / "ev"
    (ev / "DCIM").mkdir(parents=True)
    content: dict[str, bytes] = {}

    def put(rel: str, data: bytes) -> None:
        (ev / rel).parent.mkdir(parents=True, exist_ok=True)
        (ev / rel).write_bytes(data)
        content[str(ev / rel)] = data

    put("DCIM/a.jpg", jpeg(1))
    put("empty.bin", b"")
    inner_tar = tar_bytes([("t/one.txt", b"one"), ("t/two.jpg", jpeg(4))], "w")
    inner = zip_bytes([("pics/b.jpg", jpeg(2)), ("pics/c.jpg", jpeg(3)),
                       ("more.tar", inner_tar)])
    outer = tar_bytes([("phone/chats.zip", inner), ("phone/note.txt", b"hello")])
    put("backup/outer.tar.gz", outer)
    put("renamed.jpg", zip_bytes([("x.txt", b"zip renamed as jpg")]))
    o = str(ev / "backup/outer.tar.gz")
    content[o + "!/phone/chats.zip"] = inner
    content[o + "!/phone/chats.zip!/pics/b.jpg"] = jpeg(2)
    content[o + "!/phone/chats.zip!/pics/c.jpg"] = jpeg(3)
    content[o + "!/phone/chats.zip!/more.tar"] = inner_tar
    content[o + "!/phone/chats.zip!/more.tar!/t/one.txt"] = b"one"
    content[o + "!/phone/chats.zip!/more.tar!/t/two.jpg"] = jpeg(4)
    content[o + "!/phone/note.txt"] = b"hello"
    content[str(ev / "renamed.jpg") + "!/x.txt"] = b"zip renamed as jpg"
    return ev, content


def test_nested_archives_enumerated_in_order_with_containers(evidence) -> None:
    ev, content = evidence
    items = enumerate_all([ev])
    assert not errors(items)
    assert [it.path for it in items] == [
        f"{ev}/DCIM/a.jpg",
        f"{ev}/backup/outer.tar.gz",
        f"{ev}/backup/outer.tar.gz!/phone/chats.zip",
        f"{ev}/backup/outer.tar.gz!/phone/chats.zip!/pics/b.jpg",
        f"{ev}/backup/outer.tar.gz!/phone/chats.zip!/pics/c.jpg",
        f"{ev}/backup/outer.tar.gz!/phone/chats.zip!/more.tar",
        f"{ev}/backup/outer.tar.gz!/phone/chats.zip!/more.tar!/t/one.txt",
        f"{ev}/backup/outer.tar.gz!/phone/chats.zip!/more.tar!/t/two.jpg",
        f"{ev}/backup/outer.tar.gz!/phone/note.txt",
        f"{ev}/empty.bin",
        f"{ev}/renamed.jpg",
        f"{ev}/renamed.jpg!/x.txt",
    ]
    p = by_path(items)
    outer = f"{ev}/backup/outer.tar.gz"
    assert p[outer].kind == "tar.gz" and p[outer].depth == 0 and p[outer].container is None
    chats = outer + "!/phone/chats.zip"
    assert p[chats].kind == "zip" and p[chats].depth == 1 and p[chats].container == outer
    deep = chats + "!/more.tar!/t/two.jpg"
    assert p[deep].depth == 3 and p[deep].container == chats + "!/more.tar"
    assert p[chats + "!/more.tar"].kind == "tar"
    assert p[f"{ev}/renamed.jpg"].kind == "zip"  # sniffed by content, not by extension
    assert p[f"{ev}/empty.bin"].size == 0 and p[f"{ev}/empty.bin"].error is None
    assert p[outer + "!/phone/note.txt"].mtime == 1_600_000_000
    assert p[outer + "!/phone/note.txt"].size == 5
    # every item reads back as the bytes that were put there
    for path, data in content.items():
        assert read_item(path) == data, path
    assert read_item(f"{ev}/empty.bin") == b""


def test_enumeration_is_deterministic(evidence) -> None:
    ev, _ = evidence
    assert enumerate_all([ev]) == enumerate_all([ev])


def test_read_item_in_another_process(evidence) -> None:
    ev, content = evidence
    path = f"{ev}/backup/outer.tar.gz!/phone/chats.zip!/more.tar!/t/two.jpg"
    code = ("import sys; from vigil.signals.evidence import read_item; "
            "sys.stdout.buffer.write(read_item(sys.argv[1]))")
    out = subprocess.run([sys.executable, "-c", code, path], capture_output=True, check=True,
                         timeout=60)
    assert out.stdout == content[path]


def test_iter_archive_contents_matches_listing_in_one_pass(evidence) -> None:
    ev, content = evidence
    outer = f"{ev}/backup/outer.tar.gz"
    listed = [it for it in enumerate_all([ev]) if it.path.startswith(outer + SEP)]
    streamed = list(iter_archive_contents(outer))
    assert [it for it, _ in streamed] == listed
    for it, data in streamed:
        assert data == content[it.path]
    # a nested archive can be handed over too
    chats = outer + "!/phone/chats.zip"
    assert [it.path for it, _ in iter_archive_contents(chats)] == [
        it.path for it in listed if it.path.startswith(chats + SEP)]
    # not an archive: one error item, no exception
    [(bad, data)] = list(iter_archive_contents(f"{ev}/DCIM/a.jpg"))
    assert bad.error is not None and data is None


def test_expand_archives_false_lists_archives_only(evidence) -> None:
    ev, _ = evidence
    items = list(iter_items([ev], expand_archives=False))
    assert not any(SEP in it.path for it in items)
    assert {it.kind for it in items} == {None, "zip", "tar.gz"}


def test_overlapping_inputs_listed_once(evidence) -> None:
    ev, _ = evidence
    items = enumerate_all([ev / "DCIM" / "a.jpg", ev, ev])
    paths = [it.path for it in items]
    assert len(paths) == len(set(paths)) == len(enumerate_all([ev]))


def test_sniff_archive_needs_content_not_names() -> None:
    assert sniff_archive(zip_bytes([("a", b"a")])) == "zip"
    assert sniff_archive(tar_bytes([("a", b"a")], "w")) == "tar"
    assert sniff_archive(tar_bytes([("a", b"a")], "w:gz")) == "tar.gz"
    assert sniff_archive(tar_bytes([("a", b"a")], "w:bz2")) == "tar.bz2"
    assert sniff_archive(tar_bytes([("a", b"a")], "w:xz")) == "tar.xz"
    import gzip
    assert sniff_archive(gzip.compress(b"just text")) is None  # a .gz that is not a tar
    assert sniff_archive(jpeg(1)) is None
    assert sniff_archive(b"") is None


@pytest.mark.parametrize("mode,kind", [("w:bz2", "tar.bz2"), ("w:xz", "tar.xz")])
def test_other_compressed_tars(tmp_path: Path, mode: str, kind: str) -> None:
    f = tmp_path / "t"
    f.write_bytes(tar_bytes([("a/b.txt", b"bee")], mode))
    items = enumerate_all([f])
    assert items[0].kind == kind
    assert items[1].path == f"{f}!/a/b.txt" and read_item(items[1].path) == b"bee"


# ---------------------------------------------------------------------------------------
# Hostile and broken archives


def test_zip_bomb_member_by_declared_ratio(tmp_path: Path) -> None:
    f = tmp_path / "bomb.zip"
    f.write_bytes(zip_bytes([("ok.txt", b"fine"), ("zeros.bin", bytes(2_000_000)),
                             ("after.txt", b"still listed")]))
    limits = Limits(ratio_min_bytes=100_000, max_ratio=100)
    items = enumerate_all([f], limits)
    assert errors(items) == {f"{f}!/zeros.bin": "archive-bomb"}
    assert f"{f}!/after.txt" in by_path(items)
    err = by_path(items)[f"{f}!/zeros.bin"].error
    assert "bomb.zip!/zeros.bin" in str(err) and "2000000" in err.cause
    with pytest.raises(SourceError) as e:
        read_item(f"{f}!/zeros.bin", limits)
    assert e.value.code == "archive-bomb"
    assert read_item(f"{f}!/after.txt", limits) == b"still listed"


def test_zip_bomb_archive_total_by_ratio(tmp_path: Path) -> None:
    """Many members each under the per-member threshold, together a bomb."""
    f = tmp_path / "many.zip"
    f.write_bytes(zip_bytes([(f"z{i}.bin", bytes(50_000)) for i in range(40)]))
    items = enumerate_all([f], Limits(ratio_min_bytes=200_000, max_ratio=100))
    assert errors(items) == {f"{f}!/": "archive-bomb"}
    members = [it for it in items if it.container == str(f) and it.error is None]
    assert 0 < len(members) < 40  # those before the budget ran out are still listed


def test_tar_gz_bomb_stops_decompressing(tmp_path: Path) -> None:
    f = tmp_path / "bomb.tgz"
    f.write_bytes(tar_bytes([("a.txt", b"a"), ("zeros", bytes(3_000_000)), ("b.txt", b"b")]))
    limits = Limits(ratio_min_bytes=100_000, max_ratio=50)
    items = enumerate_all([f], limits)
    assert errors(items) == {f"{f}!/": "archive-bomb"}
    assert f"{f}!/a.txt" in by_path(items)
    assert f"{f}!/b.txt" not in by_path(items)
    # reading a member behind the bomb is refused the same way
    with pytest.raises(SourceError) as e:
        read_item(f"{f}!/b.txt", limits)
    assert e.value.code == "archive-bomb"


def test_expansion_limit_and_member_size(tmp_path: Path) -> None:
    f = tmp_path / "big.zip"
    f.write_bytes(zip_bytes([("a", os.urandom(3000)), ("b", os.urandom(3000))],
                            zipfile.ZIP_STORED))
    items = enumerate_all([f], Limits(max_member_size=2000))
    assert errors(items) == {f"{f}!/a": "too-large", f"{f}!/b": "too-large"}
    assert by_path(items)[f"{f}!/a"].size == 3000
    f2 = tmp_path / "sparse.tar"  # plain tar: no expansion beyond its own size
    f2.write_bytes(tar_bytes([("a", bytes(5000)), ("b", bytes(5000))], "w"))
    assert not errors(enumerate_all([f2], Limits(max_archive_expansion=0)))
    f3 = tmp_path / "grow.zip"
    f3.write_bytes(zip_bytes([("a", bytes(5000)), ("b", bytes(5000))]))
    assert errors(enumerate_all([f3], Limits(max_archive_expansion=6000))) == {
        f"{f3}!/": "too-large"}


def test_too_many_members(tmp_path: Path) -> None:
    f = tmp_path / "m.zip"
    f.write_bytes(zip_bytes([(f"{i}.txt", b"x") for i in range(5)]))
    items = enumerate_all([f], Limits(max_members=3))
    assert errors(items) == {f"{f}!/": "too-many-members"}
    assert len([it for it in items if it.container == str(f) and not it.error]) == 3


def test_path_traversal_names_are_sanitised_and_still_hashed(tmp_path: Path) -> None:
    ev = tmp_path / "deep" / "ev"
    ev.mkdir(parents=True)
    names = ["../../etc/passwd", "/abs/root.txt", "..\\..\\win.txt", "C:\\Windows\\x.txt",
             "./ok/./y.txt", ".."]
    z = ev / "t.zip"
    z.write_bytes(zip_bytes([(n, n.encode()) for n in names]))
    t = ev / "t.tar"
    t.write_bytes(tar_bytes([("../../../escape.txt", b"esc")], "w"))
    before = sorted(p for p in tmp_path.rglob("*"))
    items = enumerate_all([ev])
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing written anywhere
    p = by_path(items)
    expect = {
        f"{z}!/etc/passwd": ({FLAG_TRAVERSAL}, "../../etc/passwd"),
        f"{z}!/abs/root.txt": ({FLAG_ABSOLUTE}, "/abs/root.txt"),
        f"{z}!/win.txt": ({FLAG_TRAVERSAL, FLAG_BACKSLASH}, "..\\\\..\\\\win.txt"),
        f"{z}!/Windows/x.txt": ({FLAG_ABSOLUTE, FLAG_BACKSLASH}, "C:\\\\Windows\\\\x.txt"),
        f"{z}!/ok/y.txt": (set(), "./ok/./y.txt"),
        f"{z}!/_": ({FLAG_TRAVERSAL}, ".."),
        f"{t}!/escape.txt": ({FLAG_TRAVERSAL}, "../../../escape.txt"),
    }
    for path, (flags, original) in expect.items():
        assert set(p[path].flags) == flags, path
        assert p[path].original == original and p[path].error is None
        assert ".." not in path.split("/")
    for n in names:
        sanitised = [k for k, v in p.items() if v.original == n.replace("\\", "\\\\")
                     or (v.original is None and k.endswith("/ok/y.txt") and n.startswith("./"))]
        assert len(sanitised) == 1
        assert read_item(sanitised[0]) == n.encode()


def test_duplicate_member_names_get_suffixes(tmp_path: Path) -> None:
    f = tmp_path / "dup.tar"
    f.write_bytes(tar_bytes([("a.jpg", b"first"), ("a.jpg", b"second"), ("./a.jpg", b"third"),
                             ("a.jpg~2", b"literal")], "w"))
    items = enumerate_all([f])
    assert [(it.path.split(SEP)[1], FLAG_DUPLICATE in it.flags) for it in items[1:]] == [
        ("a.jpg", False), ("a.jpg~2", True), ("a.jpg~3", True), ("a.jpg~2~2", True)]
    assert [read_item(it.path) for it in items[1:]] == [b"first", b"second", b"third",
                                                        b"literal"]


def test_tar_link_and_device_members_are_error_items(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, kind, target in [("sym", tarfile.SYMTYPE, "/etc/shadow"),
                                   ("hard", tarfile.LNKTYPE, "data.txt"),
                                   ("fifo", tarfile.FIFOTYPE, ""),
                                   ("dev", tarfile.CHRTYPE, "")]:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            tf.addfile(info)
        info = tarfile.TarInfo("data.txt")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"data"))
    f = tmp_path / "links.tar"
    f.write_bytes(buf.getvalue())
    items = enumerate_all([f])
    assert errors(items) == {f"{f}!/sym": "link-member", f"{f}!/hard": "link-member",
                             f"{f}!/fifo": "special-file", f"{f}!/dev": "special-file"}
    assert "/etc/shadow" in by_path(items)[f"{f}!/sym"].error.cause
    assert read_item(f"{f}!/data.txt") == b"data"
    with pytest.raises(SourceError) as e:
        read_item(f"{f}!/sym")
    assert e.value.code == "link-member"


def test_truncated_and_corrupt_zip(tmp_path: Path) -> None:
    data = zip_bytes([("a.txt", b"a" * 1000), ("b.txt", b"b" * 1000)])
    trunc = tmp_path / "trunc.zip"
    trunc.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    items = enumerate_all([trunc, garbage])
    p = by_path(items)
    assert p[str(trunc)].error is None and p[str(trunc)].kind == "zip"  # still hashed
    assert errors(items) == {f"{trunc}!/": "corrupt-archive", f"{garbage}!/": "corrupt-archive"}
    # damaged member data, intact directory: that member fails, the other reads
    stored = bytearray(zip_bytes([("a.txt", b"a" * 20_000), ("b.txt", b"b" * 20_000)],
                                 zipfile.ZIP_STORED))
    i = stored.index(b"a" * 20_000)
    stored[i + 10] = ord("X")  # CRC mismatch
    crc = tmp_path / "crc.zip"
    crc.write_bytes(bytes(stored))
    assert not errors(enumerate_all([crc]))  # listing reads only member heads
    with pytest.raises(CorruptArchiveError):
        read_item(f"{crc}!/a.txt")
    assert read_item(f"{crc}!/b.txt") == b"b" * 20_000
    got = {it.path: (it.error.code if it.error else data)
           for it, data in iter_archive_contents(str(crc))}
    assert got == {f"{crc}!/a.txt": "corrupt-archive", f"{crc}!/b.txt": b"b" * 20_000}


def test_truncated_tar_gz_keeps_members_before_damage(tmp_path: Path) -> None:
    members = [(f"m{i}.bin", os.urandom(20_000)) for i in range(5)]
    data = tar_bytes(members)
    f = tmp_path / "t.tgz"
    f.write_bytes(data[: int(len(data) * 0.7)])
    items = enumerate_all([f])
    errs = errors(items)
    assert errs.pop(f"{f}!/") == "corrupt-archive"
    assert set(errs.values()) <= {"corrupt-archive"} and len(errs) <= 1  # the member cut
    listed = [it.path for it in items if it.container == str(f) and not it.error]
    assert listed[:2] == [f"{f}!/m0.bin", f"{f}!/m1.bin"]
    assert read_item(f"{f}!/m0.bin") == members[0][1]
    streamed = list(iter_archive_contents(str(f)))
    assert streamed[0][1] == members[0][1] and streamed[-1][0].error is not None


def test_damaged_tar_header_recovers_later_members(tmp_path: Path) -> None:
    data = bytearray(tar_bytes([("a.txt", b"a" * 100), ("b.txt", b"b" * 100),
                                ("c.txt", b"c" * 100)], "w"))
    i = data.index(b"b.txt")
    data[i : i + 100] = b"\xff" * 100  # smash b's header (bad checksum)
    f = tmp_path / "d.tar"
    f.write_bytes(bytes(data))
    items = enumerate_all([f])
    p = by_path(items)
    assert f"{f}!/a.txt" in p and f"{f}!/c.txt" in p and f"{f}!/b.txt" not in p
    assert errors(items) == {f"{f}!/": "corrupt-archive"}
    assert read_item(f"{f}!/c.txt") == b"c" * 100


def test_tar_without_end_marker_is_reported(tmp_path: Path) -> None:
    data = tar_bytes([("a.txt", b"a" * 100)], "w")
    f = tmp_path / "cut.tar"
    f.write_bytes(data[:1024])  # header + one data block, no zero blocks
    assert errors(enumerate_all([f])) == {f"{f}!/": "corrupt-archive"}


def _set_zip_flag(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = out.index(sig)
        (flags,) = struct.unpack_from("<H", out, i + off)
        struct.pack_into("<H", out, i + off, flags | bit)
    return bytes(out)


def test_encrypted_zip_member(tmp_path: Path) -> None:
    f = tmp_path / "enc.zip"
    f.write_bytes(_set_zip_flag(zip_bytes([("secret.jpg", jpeg(5))]), 0x1))
    items = enumerate_all([f])
    assert errors(items) == {f"{f}!/secret.jpg": "encrypted"}
    with pytest.raises(SourceError) as e:
        read_item(f"{f}!/secret.jpg")
    assert e.value.code == "encrypted"


def test_archive_nesting_depth_limit(tmp_path: Path) -> None:
    data = b"innermost"
    for i in range(4):
        data = zip_bytes([(f"l{i}", data)])
    f = tmp_path / "nest.zip"
    f.write_bytes(data)
    items = enumerate_all([f], Limits(max_archive_depth=2))
    assert [it.path for it in items] == [
        str(f), f"{f}!/l3", f"{f}!/l3!/l2", f"{f}!/l3!/l2!/"]
    assert errors(items) == {f"{f}!/l3!/l2!/": "too-deep"}
    assert items[2].kind == "zip" and items[2].error is None  # the archive is still hashed
    with pytest.raises(SourceError) as e:
        read_item(f"{f}!/l3!/l2!/l1", Limits(max_archive_depth=2))
    assert e.value.code == "too-deep"
    assert read_item(f"{f}!/l3!/l2!/l1!/l0") == b"innermost"


def test_nested_archive_over_memory_limit_is_not_opened(tmp_path: Path) -> None:
    inner = zip_bytes([("a", os.urandom(5000))], zipfile.ZIP_STORED)
    f = tmp_path / "o.tar"
    f.write_bytes(tar_bytes([("inner.zip", inner)], "w"))
    items = enumerate_all([f], Limits(max_nested_archive_size=1000))
    assert errors(items) == {f"{f}!/inner.zip!/": "too-large"}
    assert by_path(items)[f"{f}!/inner.zip"].error is None


# ---------------------------------------------------------------------------------------
# Hostile and broken things on disk


def test_fifo_and_special_files_never_block(tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    ev.mkdir()
    os.mkfifo(ev / "pipe")
    (ev / "ok.txt").write_bytes(b"ok")
    result: list[list[Item]] = []
    t = threading.Thread(target=lambda: result.append(
        enumerate_all([ev, ev / "pipe", "/dev/null"])), daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "enumeration blocked on a FIFO"
    items = result[0]
    assert errors(items) == {f"{ev}/pipe": "special-file", "/dev/null": "special-file"}
    with pytest.raises(SourceError) as e:
        read_item(f"{ev}/pipe")
    assert e.value.code == "special-file"


def test_symlinks_loops_and_broken_links(tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    (ev / "sub").mkdir(parents=True)
    (ev / "sub" / "real.txt").write_bytes(b"real")
    (ev / "loop_a").symlink_to(ev / "loop_b")
    (ev / "loop_b").symlink_to(ev / "loop_a")
    (ev / "broken").symlink_to(ev / "nowhere")
    (ev / "sub" / "up").symlink_to(ev)  # a folder loop: not followed
    (ev / "file_link").symlink_to(ev / "sub" / "real.txt")
    items = enumerate_all([ev, tmp_path / "missing"])
    assert errors(items) == {f"{ev}/broken": "broken-link", f"{ev}/loop_a": "symlink-loop",
                             f"{ev}/loop_b": "symlink-loop",
                             f"{tmp_path}/missing": "not-found"}
    p = by_path(items)
    assert FLAG_SYMLINK in p[f"{ev}/file_link"].flags
    assert read_item(f"{ev}/file_link") == b"real"
    assert f"{ev}/sub/real.txt" in p and not any("/up/" in k for k in p)


def test_unreadable_file_and_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run as root, so permission errors are simulated at the os layer."""
    ev = tmp_path / "ev"
    (ev / "locked_dir").mkdir(parents=True)
    (ev / "locked_dir" / "x.txt").write_bytes(b"x")
    (ev / "locked.jpg").write_bytes(b"y")
    (ev / "fine.txt").write_bytes(b"z")
    real_open, real_scandir = os.open, os.scandir

    def fake_open(path, *a, **k):
        if os.fsdecode(path).endswith("locked.jpg"):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, *a, **k)

    def fake_scandir(path="."):
        if os.fsdecode(path).endswith("locked_dir"):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(disk.os, "open", fake_open)
    monkeypatch.setattr(disk.os, "scandir", fake_scandir)
    items = enumerate_all([ev])
    assert errors(items) == {f"{ev}/locked.jpg": "unreadable", f"{ev}/locked_dir": "unreadable"}
    assert by_path(items)[f"{ev}/locked.jpg"].error.cause == "Permission denied"
    assert f"{ev}/fine.txt" in by_path(items)
    with pytest.raises(SourceError):
        read_item(f"{ev}/locked.jpg")


def test_folder_depth_limit_and_very_deep_trees(tmp_path: Path) -> None:
    deep = tmp_path / "ev"
    d = deep
    for _ in range(5):
        d = d / "d"
    d.mkdir(parents=True)
    (d / "bottom.txt").write_bytes(b"b")
    (deep / "top.txt").write_bytes(b"t")
    items = enumerate_all([deep], Limits(max_folder_depth=3))
    assert errors(items) == {f"{deep}/d/d/d/d": "too-deep"}
    assert f"{deep}/top.txt" in by_path(items)
    # far deeper than Python's recursion limit: iterative, no RecursionError
    very = tmp_path / "v"
    very.mkdir()
    rel = "/".join(["d"] * 1200)
    try:
        fd = os.open(very, os.O_RDONLY)
        for _ in range(1200):  # os.makedirs itself recurses too deep for this
            os.mkdir("d", dir_fd=fd)
            sub = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = sub
        os.close(os.open("x", os.O_CREAT | os.O_WRONLY, dir_fd=fd))
        os.close(fd)
        items = enumerate_all([very], Limits(max_folder_depth=5000))
        assert [it.path for it in items] == [f"{very}/{rel}/x"] and not items[0].error
        assert errors(enumerate_all([very])) == {f"{very}/{'/'.join(['d'] * 65)}": "too-deep"}
    finally:  # pytest's own clean-up (shutil.rmtree) recurses: remove bottom-up here
        with contextlib.suppress(FileNotFoundError):
            os.unlink(very / rel / "x")
        for n in range(1200, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(very / "/".join(["d"] * n))


# ---------------------------------------------------------------------------------------
# Names: printable, unique, resolvable


def test_non_utf8_and_hostile_names_on_disk(tmp_path: Path) -> None:
    ev = os.fsencode(tmp_path / "ev")
    os.makedirs(ev + b"/dir!")
    files = {
        b"/caf\xe9.jpg": b"latin-1 name",
        b"/\\xe9.jpg": b"literal backslash x e 9",
        b"/dir!/in.txt": b"folder ending in bang",
        b"/dir!": None,
        b"/new\nline.txt": b"newline",
        b"/gpj.\xe2\x80\xaeexe": b"right-to-left override",
        b"/back\\slash": b"backslash",
    }
    for name, data in files.items():
        if data is not None:
            with open(ev + name, "wb") as fh:
                fh.write(data)
    items = enumerate_all([os.fsdecode(ev)])
    paths = [it.path for it in items]
    assert len(paths) == len(set(paths)) == 6
    for it in items:
        assert it.path.isprintable(), it.path
        raw = os.fsencode(disk_path(it.path))
        assert files[raw[len(ev):]] == read_item(it.path)
    p = by_path(items)
    base = os.fsdecode(ev)
    assert FLAG_NOT_UTF8 in p[base + "/caf\\xe9.jpg"].flags
    assert base + "/\\\\xe9.jpg" in p
    assert base + "/dir\\x21/in.txt" in p
    assert FLAG_ESCAPED in p[base + "/new\\x0aline.txt"].flags
    assert base + "/gpj.\\u202eexe" in p


def test_non_utf8_names_inside_archives(tmp_path: Path) -> None:
    # zip without the UTF-8 flag, name bytes that are not UTF-8
    data = zip_bytes([("XX.jpg", b"zip latin"), ("ok.jpg", b"ok")])
    data = data.replace(b"XX.jpg", b"\xe9\xff.jpg")
    z = tmp_path / "names.zip"
    z.write_bytes(data)
    t = tmp_path / "names.tar"
    t.write_bytes(tar_bytes([("caf\udce9/x.txt", b"tar latin")], "w"))
    items = enumerate_all([z, t])
    p = by_path(items)
    assert FLAG_NOT_UTF8 in p[f"{z}!/\\xe9\\xff.jpg"].flags
    assert read_item(f"{z}!/\\xe9\\xff.jpg") == b"zip latin"
    assert read_item(f"{t}!/caf\\xe9/x.txt") == b"tar latin"
    assert all(it.path.isprintable() for it in items)


def test_member_names_with_separator_lookalikes(tmp_path: Path) -> None:
    inner = zip_bytes([("in.txt", b"inner")])
    f = tmp_path / "bang.zip"
    f.write_bytes(zip_bytes([("a!/b.txt", b"bang folder"), ("z!", inner), ("!", b"bang")]))
    items = enumerate_all([f])
    got = {it.path: read_item(it.path) for it in items if it.kind is None}
    assert got == {f"{f}!/a\\x21/b.txt": b"bang folder", f"{f}!/z!!/in.txt": b"inner",
                   f"{f}!/!": b"bang"}


def test_read_item_errors_are_typed(tmp_path: Path) -> None:
    f = tmp_path / "a.zip"
    f.write_bytes(zip_bytes([("a", b"a")]))
    for bad, code in [(f"{f}!/nope", "not-found"), (f"{tmp_path}/missing", "not-found"),
                      (f"{f}!/", "unreadable"), (f"{f}!/a!/x", "not-found")]:
        with pytest.raises(SourceError) as e:
            read_item(bad)
        assert e.value.code == code, bad


def test_errors_pickle_and_compare_by_value() -> None:
    err = CorruptArchiveError("x.zip!/", "damaged")
    back = pickle.loads(pickle.dumps(err))
    assert back == err and back.code == "corrupt-archive" and back.cause == "damaged"
    item = Item("x.zip!/", error=err)
    assert pickle.loads(pickle.dumps(item)) == item
    assert hash(item) == hash(Item("x.zip!/", error=CorruptArchiveError("x.zip!/", "damaged")))


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz"])
def test_mutated_archives_never_raise(tmp_path: Path, kind: str) -> None:
    """Random damage anywhere in an archive: listing and reading report, never raise."""
    import random

    members = [("a/one.txt", b"one" * 50), ("two.jpg", jpeg(9)), ("three.bin", os.urandom(3000))]
    good = zip_bytes(members) if kind == "zip" else tar_bytes(
        members, "w" if kind == "tar" else "w:gz")
    rng = random.Random(1234)
    f = tmp_path / "m"
    for _ in range(60):
        data = bytearray(good)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data))]
        f.write_bytes(bytes(data))
        items = enumerate_all([f])
        for it in items:
            if it.error is None:
                with contextlib.suppress(SourceError):
                    read_item(it.path)
        list(iter_archive_contents(str(f)))
