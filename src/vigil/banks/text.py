"""Text people type, store and read: what a name, label or note may hold, and how to show any text.

Two sides of one rule. **At the door**, every name and label is checked before it is
stored, so nothing in a bank can forge a line of output, hide behind invisible
characters, break an interchange format or be refused by PostgreSQL later (which cannot
store NUL). **On the way out**, :func:`visible` shows any text (a seized file's name, a
bank name written by an older version, an error quoting input) with whatever is not
plainly visible written as an escape, so a terminal or report shows what is really there.

Letters and digits of every script are welcome (a Korean series name, a Chinese tag, a
Malay note); what is refused is what a reader cannot see or what changes how the text
around it is read:

* control characters (NUL, ESC, CR, …), except newline and tab in free text;
* format characters (Unicode ``Cf``: bidirectional overrides such as U+202E, which makes
  "gpj.exe" look like "exe.jpg", zero-width spaces and joiners, the BOM);
* line and paragraph separators (U+2028, U+2029) and spaces other than U+0020 (a
  no-break or ideographic space looks like a space but is not one);
* lone surrogates, private-use and unassigned code points (not portable text; XML and
  UTF-8 cannot carry some of them).

Text is normalised to NFC (so "café" typed two ways is one name) and stripped of
surrounding white space before it is checked. Lengths are counted in characters (code points)
after that. The rules, per field:

============================  =======  ====================================================
field                         length   characters
============================  =======  ====================================================
agency code                   1-64     A-Z, 0-9, ``-``, ``_``; starts with a letter or digit
bank name                     1-100    letters, marks, digits; ``. _ - ( )``; single spaces
principal (user) name         1-100    letters, marks, digits; ``. _ - @``
peer name                     1-100    letters, marks, digits; ``. _ -``
series, source id             1-200    label text (below)
tag                           1-100    label text, without ``;`` (the CSV tag separator)
agency name, token purpose    1-200    label text
note, bank description        0-4000   free text (below)
opaque signal value           1-1024   label text
============================  =======  ====================================================

Names start with a letter or a digit (of any script). *Label text* is any visible
character and U+0020 spaces (Python's ``str.isprintable``). *Free text* is label text
plus newlines and tabs (a Windows line end, CR LF, is taken as a newline).
"""

from __future__ import annotations

import unicodedata

AGENCY_CODE_MAX = 64
BANK_NAME_MAX = 100
PRINCIPAL_NAME_MAX = 100
PEER_NAME_MAX = 100
SERIES_MAX = 200
SOURCE_ID_MAX = 200
TAG_MAX = 100
#: tags per entry: a bound for what a foreign file may attach to one hash
TAGS_MAX = 1000
LABEL_MAX = 200
NOTE_MAX = 4000
OPAQUE_VALUE_MAX = 1024
TAG_SEPARATOR = ";"

_ASCII_CODE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
_CONTROL_NAMES = {0x00: "NUL", 0x09: "TAB", 0x0A: "LF", 0x0D: "CR", 0x1B: "ESC", 0x7F: "DEL"}
_KINDS = {"Cc": "a control character", "Cf": "an invisible format character",
          "Cs": "a lone surrogate (not Unicode text)", "Co": "a private-use character",
          "Cn": "an unassigned code point", "Zl": "a line separator",
          "Zp": "a paragraph separator", "Zs": "a space other than U+0020"}


class FieldError(ValueError):
    """A value refused at the door: the field it was given for, and why.

    The reason names the position and code point of an offending character, never the
    value itself: the same check guards opaque signal values, and hash values stay out
    of error messages and logs.
    """

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason

    def __reduce__(self) -> tuple[object, ...]:  # picklable across processes
        return (type(self), (self.field, self.reason))


def describe(c: str) -> str:
    """``U+202E RIGHT-TO-LEFT OVERRIDE, an invisible format character`` (for messages)."""
    cp = ord(c)
    name = _CONTROL_NAMES.get(cp) or unicodedata.name(c, "")
    kind = "a space" if c == " " else _KINDS.get(unicodedata.category(c), "not allowed here")
    return f"U+{cp:04X}{' ' + name if name else ''}, {kind}"


def _refuse(field: str, value: str, i: int) -> FieldError:
    return FieldError(field, f"character {i + 1} is {describe(value[i])}")


def _normal(value: str, field: str) -> str:
    if not isinstance(value, str):
        raise FieldError(field, "must be text")
    if not value.isascii() and not unicodedata.is_normalized("NFC", value):
        value = unicodedata.normalize("NFC", value)
    return value.strip()


def _length(value: str, field: str, lo: int, hi: int) -> str:
    if not lo <= len(value) <= hi:
        if not value:
            raise FieldError(field, "must not be empty")
        raise FieldError(field, f"must be at most {hi} characters, not {len(value)}")
    return value


def label(value: str, field: str, max_len: int = LABEL_MAX, *,
          separator: str | None = None) -> str:
    """``value`` as one line of label text (series, tag, source id, agency name...).

    Visible characters of any script and U+0020 spaces; at most ``max_len`` characters;
    not ``separator`` (a character a format uses between such values).
    """
    if (type(value) is str and value.isascii() and value.isprintable()
            and 0 < len(value) <= max_len and value[0] != " " and value[-1] != " "
            and (separator is None or separator not in value)):
        return value  # the common case, decided without a Python-level loop
    v = _normal(value, field)
    if not v.isprintable():
        raise _refuse(field, v, next(i for i, c in enumerate(v) if not c.isprintable()))
    if separator is not None and separator in v:
        raise FieldError(field, f"must not contain {separator!r} (character "
                         f"{v.index(separator) + 1})")
    return _length(v, field, 1, max_len)


def free_text(value: str, field: str, max_len: int = NOTE_MAX) -> str:
    """``value`` as free text (a note, a description): label text plus newlines and tabs.

    A Windows line end (CR LF) becomes a newline; any other CR is refused (formats that
    normalise line ends, such as XML, would not give it back).
    """
    if (type(value) is str and value.isascii() and value.isprintable()
            and len(value) <= max_len and value.strip() == value):
        return value  # one line of plain text: nothing to normalise
    v = _normal(value, field).replace("\r\n", "\n").strip()
    if not v.replace("\n", "").replace("\t", "").isprintable():
        raise _refuse(field, v, next(i for i, c in enumerate(v)
                                     if c not in "\n\t" and not c.isprintable()))
    return _length(v, field, 0, max_len)


def tag(value: str, field: str = "tags") -> str:
    """One tag: label text without ``;`` (the CSV format's tag separator)."""
    return label(value, field, TAG_MAX, separator=TAG_SEPARATOR)


def _name(value: str, field: str, max_len: int, punctuation: str, *,
          spaces: bool = False) -> str:
    v = _length(_normal(value, field), field, 1, max_len)
    for i, c in enumerate(v):
        cat = unicodedata.category(c)
        if cat[0] == "L" or cat == "Nd":
            continue
        if i == 0:
            raise FieldError(field, f"must start with a letter or a digit, not {describe(c)}"
                             if not c.isprintable() else
                             f"must start with a letter or a digit, not {c!r}")
        if cat[0] == "M" or c in punctuation:
            continue
        if c == " " and spaces:
            if v[i - 1] == " ":
                raise FieldError(field, f"two spaces in a row at character {i + 1}")
            continue
        allowed = "letters, digits" + (", spaces" if spaces else "") + \
            (" and " + " ".join(punctuation) if punctuation else "")
        what = describe(c) if not c.isprintable() or c == " " else repr(c)
        raise FieldError(field, f"character {i + 1} is {what}; allowed: {allowed}")
    return v


def bank_name(value: str, field: str = "name") -> str:
    """A bank's name: letters, marks and digits of any script, ``. _ - ( )``, single spaces."""
    return _name(value, field, BANK_NAME_MAX, "._-()", spaces=True)


def principal_name(value: str, field: str = "name") -> str:
    """A user's or service's name: letters, marks and digits of any script, ``. _ - @``."""
    return _name(value, field, PRINCIPAL_NAME_MAX, "._-@")


def peer_name(value: str, field: str = "name") -> str:
    """A peer's local name (also its token's file name): letters, marks, digits, ``. _ -``."""
    return _name(value, field, PEER_NAME_MAX, "._-")


def agency_code(value: str, field: str = "agency") -> str:
    """An agency code such as ``SG-SPF``: ASCII capitals, digits, ``-`` and ``_``.

    ASCII only, unlike names: codes travel between nodes inside signed feed descriptors
    and mirror names (``SG-SPF.csam``), where two spellings of one code would be two
    agencies.
    """
    v = _length(_normal(value, field), field, 1, AGENCY_CODE_MAX)
    if not (v[0] in _ASCII_CODE and v[0] not in "-_" and _ASCII_CODE.issuperset(v)):
        raise FieldError(field, f"invalid agency code {visible(v)!r}: upper-case letters "
                         "A-Z, digits, - and _, starting with a letter or digit (e.g. SG-SPF)")
    return v


# --------------------------------------------------------------------------- display


def _escape(c: str) -> str:
    cp = ord(c)
    if 0xDC80 <= cp <= 0xDCFF:  # a byte that was not UTF-8 (a file name's surrogateescape)
        return f"\\x{cp - 0xDC00:02x}"
    if cp < 0x10000:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


def visible(value: object) -> str:
    """``value`` as text that shows what it holds and cannot act on a terminal or page.

    Every character that is not plainly visible (controls such as ESC, CR and newline,
    bidirectional overrides and other format characters, separators, spaces other than
    U+0020, surrogates, private-use and unassigned code points) is written as an escape:
    ``\\uNNNN`` (or ``\\UNNNNNNNN``) for a code point, as JSON and Python write it (ESC is
    ``\\u001b``), and ``\\xNN`` for a byte of a file name that was not UTF-8. A backslash
    itself is left as it is, so an ordinary Windows path stays readable; machine-readable
    outputs (JSON) are exact instead.
    """
    s = value if isinstance(value, str) else str(value)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else _escape(c) for c in s)
