"""The report shows what a seized name really holds: every invisible character as an escape."""

from __future__ import annotations

from vigil.triage.report import esc


def test_invisible_characters_in_names_are_shown_as_escapes() -> None:
    # U+061C ARABIC LETTER MARK reorders text like U+200F; U+200B hides; a newline renders
    # as a space in HTML; U+2028 is a line break to some readers
    name = "photo\u061cgpj.exe\u200b\n<b>\u2028.jpg"
    assert esc(name) == "photo\\u061cgpj.exe\\u200b\\u000a&lt;b&gt;\\u2028.jpg"
