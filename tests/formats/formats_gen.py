"""Generated records and files for the format tests: random hex only, never real hashes."""

from __future__ import annotations

import base64
import random
import string

from hypothesis import strategies as st

from vigil.banks.entry import HEX_LENGTHS, EntryRecord, Labels
from vigil.schemes import SCHEMES


def rand_hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def rand_photodna(rng: random.Random) -> str:
    return base64.b64encode(rng.randbytes(144)).decode("ascii")


# ----------------------------------------------------------------------------- strategies

hex_of = {t: st.text("0123456789abcdef", min_size=n, max_size=n) for t, n in HEX_LENGTHS.items()}
photodna = st.binary(min_size=144, max_size=144).map(lambda b: base64.b64encode(b).decode())

# Labels and fields are stripped by readers, so generate text that is already stripped;
# and only what the door (vigil.banks.text) lets into a bank: visible characters of any
# script and spaces, plus newlines and tabs inside notes.
_chars = st.characters(whitelist_categories=("L", "M", "N", "P", "S")) | st.just(" ")
clean_text = st.text(_chars, min_size=1, max_size=20).map(str.strip).filter(bool)
tag_text = clean_text.filter(lambda t: ";" not in t and "," not in t)
note_text = st.text(_chars | st.sampled_from("\n\t"), min_size=1, max_size=30
                    ).map(str.strip).filter(bool)
categories = st.sampled_from([(s, v) for s, sc in SCHEMES.items() for v in sc.values])


def signals(types: tuple[str, ...] = ("md5", "sha1", "sha256", "pdq", "photodna")):
    return st.sampled_from(types).flatmap(
        lambda t: st.tuples(st.just(t), photodna if t == "photodna" else hex_of[t]))


def labels(cats=categories):
    return st.builds(
        Labels,
        category=st.none() | cats,
        series=st.none() | clean_text,
        victim_status=st.sampled_from(["unknown", "unidentified", "identified"]),
        tags=st.lists(tag_text, max_size=3).map(tuple),
        note=st.none() | note_text,
    )


qualities = st.none() | st.integers(0, 100)
no_extra = st.just({})


@st.composite
def grouped(draw, *, types=("md5", "sha1", "sha256", "pdq", "photodna"), cats=categories,
            ops=("add", "remove"), extras=no_extra, numeric_ids=False, max_groups=5):
    """Records as a multi-hash source gives them: groups sharing source_id, labels, extra."""
    out: list[EntryRecord] = []
    n_groups = draw(st.integers(0, max_groups))
    for g in range(n_groups):
        sid = str(g + 1) if numeric_ids else draw(st.none() | st.just(f"src-{g}"))
        lab = draw(labels(cats))
        op = draw(st.sampled_from(ops))
        extra = draw(extras)
        size = 1 if sid is None else draw(st.integers(1, 4))
        for _ in range(size):
            t, v = draw(signals(types))
            out.append(EntryRecord(t, v, lab, quality=draw(qualities), op=op, source_id=sid,
                                   extra=extra))
    return out


json_scalars = st.none() | st.booleans() | st.integers(-1000, 10**12) | clean_text
extra_keys = st.text(string.ascii_letters, min_size=1, max_size=8).map(lambda k: "x" + k)


def extra_dicts(values=json_scalars):
    # Readers match keys case-insensitively (the formats arrive in any case), so keys that
    # differ only by case cannot both survive a round trip: generate case-distinct keys.
    return st.dictionaries(extra_keys, values, max_size=3).filter(
        lambda d: len({k.lower() for k in d}) == len(d))


def sort_key(r: EntryRecord) -> tuple:
    return (r.source_id or "", r.signal_type, r.value,
            -1 if r.quality is None else r.quality, repr(r.labels))
