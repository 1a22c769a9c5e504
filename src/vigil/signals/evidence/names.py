"""Virtual paths: printable, unique, reversible names for files on disk and archive members.

A plain file's virtual path is its path as given or walked; a member of an archive is
``ARCHIVE!/MEMBER``, recursively. Raw name bytes are rendered by ``escape`` (and turned
back by ``unescape``); member names are sanitised and made unique by ``Namer``, never
used on the file system. The rules are in the package docstring (``vigil.signals.evidence``).
"""

from __future__ import annotations

import os
import re
import unicodedata

#: Separates an archive's virtual path from the name of one of its members.
SEP = "!/"

# Flags: observations about an item that do not stop it from being read and hashed.
FLAG_TRAVERSAL = "path-traversal"      # member name had ".." parts (dropped)
FLAG_ABSOLUTE = "absolute-name"        # member name was absolute (made relative)
FLAG_BACKSLASH = "backslash-name"      # member name used "\" (read as a separator)
FLAG_NOT_UTF8 = "not-utf8-name"        # name bytes are not UTF-8 (shown as \xNN)
FLAG_ESCAPED = "escaped-name"          # control/invisible characters shown as escapes
FLAG_DUPLICATE = "duplicate-name"      # another member had the same name (suffix ~N)
FLAG_SYMLINK = "symlink"               # a file on disk reached through a symbolic link
FLAG_EMBEDDED = "embedded-archive"     # a zip hidden after other content (JPEG, MZ stub)

_ESCAPE_RE = re.compile(r"\\(?:x([0-9a-f]{2})|u([0-9a-f]{4})|U([0-9a-f]{8})|(\\))")


def escape(raw: bytes) -> tuple[str, set[str]]:
    """Printable, reversible text for raw name bytes, and the flags it earned.

    Most names are plain printable ASCII with nothing to escape: those are returned as
    they are without the per-character walk of ``escape_each`` (a seizure has millions of
    names; the walk was a third of the listing's time). Equal to ``escape_each`` for every
    input (tests/signals/evidence/test_names.py).
    """
    if raw.isascii():
        text = raw.decode("ascii")
        if text.isprintable() and "\\" not in text and "!/" not in text:
            return text, set()
    return escape_each(raw)


def escape_each(raw: bytes) -> tuple[str, set[str]]:
    """``escape``, one character at a time: the reference, and the path for names that
    need escaping or are not ASCII."""
    text = raw.decode("utf-8", "surrogateescape")
    out: list[str] = []
    flags: set[str] = set()
    for i, ch in enumerate(text):
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:  # a byte that is not part of valid UTF-8
            out.append(f"\\x{o - 0xDC00:02x}")
            flags.add(FLAG_NOT_UTF8)
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
            flags.add(FLAG_ESCAPED)
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "!" and text[i + 1 : i + 2] == "/":
            out.append("\\x21")
        elif o >= 0x80 and unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            out.append(f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}")
            flags.add(FLAG_ESCAPED)
        else:
            out.append(ch)
    return "".join(out), flags


def unescape(text: str) -> bytes:
    """The raw bytes ``escape`` rendered as ``text``."""
    out = bytearray()
    pos = 0
    for m in _ESCAPE_RE.finditer(text):
        out += text[pos : m.start()].encode("utf-8", "surrogateescape")
        byte, u4, u8, _ = m.groups()
        if byte is not None:
            out.append(int(byte, 16))
        elif u4 is not None or u8 is not None:
            out += chr(int(u4 or u8, 16)).encode("utf-8", "surrogatepass")
        else:
            out += b"\\"
        pos = m.end()
    out += text[pos:].encode("utf-8", "surrogateescape")
    return bytes(out)


def virtual_path(path: str | os.PathLike[str] | bytes) -> str:
    """The virtual path of a file on disk given by its OS path (what ``disk_path`` inverts)."""
    return escape(os.fsencode(path))[0]


def disk_path(virtual: str) -> str:
    """The OS path (``os.fsdecode`` form) of a plain file's virtual path."""
    if SEP in virtual:
        raise ValueError(f"{virtual!r} names an archive member, not a file on disk")
    return os.fsdecode(unescape(virtual))


_SPLIT_RE = re.compile(rb"[/\\]")
_DRIVE_RE = re.compile(rb"^[A-Za-z]:$")


class Namer:
    """Sanitised, unique member names in archive order (the same in every process)."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def name(self, raw: bytes) -> tuple[str, tuple[str, ...], str | None]:
        """(member name, flags, the stored name when sanitising changed it)."""
        flags: set[str] = set()
        if b"\\" in raw:
            flags.add(FLAG_BACKSLASH)
        parts = _SPLIT_RE.split(raw)
        if raw[:1] in (b"/", b"\\"):
            flags.add(FLAG_ABSOLUTE)
        elif parts and _DRIVE_RE.match(parts[0]):
            flags.add(FLAG_ABSOLUTE)
            parts = parts[1:]
        comps: list[str] = []
        for p in parts:
            if p in (b"", b"."):
                continue
            if p == b"..":
                flags.add(FLAG_TRAVERSAL)
                continue
            text, f = escape(p)
            flags |= f
            comps.append(text)
        name = "/".join(comps) or "_"
        name = name.replace("!/", "\\x21/")  # a folder named "x!" must not read as "x!/"
        stored, _ = escape(raw)
        original = stored if stored != name else None
        if name in self._seen:
            flags.add(FLAG_DUPLICATE)
            n = 2
            while f"{name}~{n}" in self._seen:
                n += 1
            name = f"{name}~{n}"
        self._seen.add(name)
        return name, tuple(sorted(flags)), original
