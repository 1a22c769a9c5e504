"""Category schemes as data: how different agencies grade material, and explicit mappings.

Agencies grade differently and a grade means nothing without its scheme, so every
category is stored as (scheme, value). Mapping between schemes is explicit and partial:
where no defensible mapping exists we say so (``None``) instead of guessing, because a
wrong category on a shared hash misleads every agency downstream.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scheme:
    """One grading scheme: its short name, title, and the values it allows (in order)."""

    name: str
    title: str
    values: dict[str, str]  # value -> description


SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme("us", "US / Project VIC (VICS)", {
            "0": "uncategorised",
            "1": "CAM: child abuse material",
            "2": "exploitive, age difficult",
            "3": "CGI / animation",
            "4": "comparison",
            "5": "non-pertinent",
        }),
        Scheme("uk", "UK sentencing categories", {
            "A": "category A: most severe",
            "B": "category B",
            "C": "category C: other indecent images",
        }),
        Scheme("ncmec", "NCMEC hash-sharing classification", {
            "A1": "prepubescent minor, sex act",
            "A2": "prepubescent minor, lascivious exhibition",
            "B1": "pubescent minor, sex act",
            "B2": "pubescent minor, lascivious exhibition",
        }),
        Scheme("interpol", "INTERPOL baseline", {
            "yes": "meets the baseline (illegal in all member countries)",
            "no": "does not meet the baseline",
        }),
    )
}

#: Explicit cross-scheme mappings: (from scheme, value) -> {to scheme: value or None}.
#: ``None`` means "no mapping": the source grade does not determine the target grade.
#: Rationale: NCMEC A1/A2/B1/B2 all describe CAM and all meet the INTERPOL baseline;
#: the UK A/B/C severity and Project VIC's category 1 both mean CAM but neither fixes the
#: other's severity or the victim's age group, and Project VIC 2–5 are not CAM at all.
MAPPINGS: dict[tuple[str, str], dict[str, str | None]] = {
    ("ncmec", "A1"): {"us": "1", "interpol": "yes", "uk": None},
    ("ncmec", "A2"): {"us": "1", "interpol": "yes", "uk": None},
    ("ncmec", "B1"): {"us": "1", "interpol": None, "uk": None},
    ("ncmec", "B2"): {"us": "1", "interpol": None, "uk": None},
    ("uk", "A"): {"us": "1", "interpol": None, "ncmec": None},
    ("uk", "B"): {"us": "1", "interpol": None, "ncmec": None},
    ("uk", "C"): {"us": "1", "interpol": None, "ncmec": None},
    ("interpol", "yes"): {"us": "1", "uk": None, "ncmec": None},
    ("interpol", "no"): {"us": None, "uk": None, "ncmec": None},
    ("us", "1"): {"uk": None, "ncmec": None, "interpol": None},
    ("us", "0"): {"uk": None, "ncmec": None, "interpol": None},
    ("us", "2"): {"uk": None, "ncmec": None, "interpol": "no"},
    ("us", "3"): {"uk": None, "ncmec": None, "interpol": None},
    ("us", "4"): {"uk": None, "ncmec": None, "interpol": "no"},
    ("us", "5"): {"uk": None, "ncmec": None, "interpol": "no"},
}


def check_category(scheme: str, value: str) -> tuple[str, str]:
    """Normalise and validate (scheme, value); raise ValueError naming what is wrong."""
    s = scheme.strip().lower()
    if s not in SCHEMES:
        raise ValueError(f"unknown category scheme {scheme!r}; known: {', '.join(SCHEMES)}")
    allowed = SCHEMES[s].values
    v = value.strip()
    match = next((a for a in allowed if a.lower() == v.lower()), None)
    if match is None:
        raise ValueError(f"{v!r} is not a category of scheme {s!r}; allowed: {', '.join(allowed)}")
    return s, match


def parse_category(text: str) -> tuple[str, str]:
    """Parse ``scheme:value`` (e.g. ``us:1``, ``uk:A``, ``ncmec:A1``) as the CLI takes it."""
    if ":" not in text:
        raise ValueError(f"category {text!r} must be written scheme:value, e.g. us:1 or uk:A")
    scheme, value = text.split(":", 1)
    return check_category(scheme, value)


def map_category(scheme: str, value: str, to: str) -> str | None:
    """The grade in scheme ``to`` that (scheme, value) determines, or None if none does."""
    s, v = check_category(scheme, value)
    if to not in SCHEMES:
        raise ValueError(f"unknown category scheme {to!r}")
    if s == to:
        return v
    return MAPPINGS.get((s, v), {}).get(to)
