"""Derived codes travel to peers: two real nodes (SG, HK) on loopback ports.

A corpus photo banked at SG in a bank with a crop ladder reaches HK's mirror with its
derived codes, and the mirror keeps a ladder too, so at HK a copy cropped 10% a side
matches through ``variants`` (a plain mirror of the same photo, as every mirror was
before derived codes travelled, does not), and a framed copy matches. The index
generations HK builds hold the codes. Re-indexing SG's plain bank reaches HK as an
update (the mirror takes the flag then), and a removal at SG takes the codes out at HK.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest
from PIL import Image, ImageOps
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.exchange.conftest import FedNode, wait_for
from vigil.banks.indexes import BankIndexes
from vigil.store.models import Bank, Entry

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "bsds500"
OCTET = {"content-type": "application/octet-stream"}


def _jpeg(im: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    paths = sorted(CORPUS.glob("*/*.jpg"))
    if not paths:
        pytest.skip("no shared corpus")
    return Image.open(paths[7]).convert("RGB")


def leads(node: FedNode, blob: bytes, variants: str) -> list[dict[str, object]]:
    with node.client(node.analyst_token) as c:
        r = c.post(f"/v1/match/file?variants={variants}", content=blob, headers=OCTET)
        assert r.status_code == 200, r.text
        return list(r.json()["matches"])


def banks_of(found: list[dict[str, object]]) -> set[object]:
    return {m["bank"] for m in found}


def ladder_of(node: FedNode, bank: str) -> tuple[bool, list[list[object]]]:
    """(the bank's crop-ladder flag, the derived codes of its live PDQ entry)."""
    assert node.engine is not None
    with Session(node.engine) as s:
        b = s.scalar(select(Bank).where(Bank.name == bank))
        assert b is not None, f"{node.agency} has no bank {bank}"
        extras = s.scalars(select(Entry.extra).where(
            Entry.bank_id == b.id, Entry.signal_type == "pdq",
            Entry.removed.is_(False))).all()
        return bool(b.crop_ladder), [c for x in extras for c in (x or {}).get("pdq_derived", [])]


def test_a_cropped_copy_matches_at_the_peer_through_the_origins_ladder(
        pair: tuple[FedNode, FedNode], photo: Image.Image, tmp_path: Path) -> None:
    sg, hk = pair
    tag = uuid.uuid4().hex[:6]
    ladder, plain = f"crops-{tag}", f"plain-{tag}"
    banked = tmp_path / "banked.jpg"
    photo.save(banked, quality=92)
    w, h = photo.size
    cropped = _jpeg(photo.crop((round(0.1 * w), round(0.1 * h), w - round(0.1 * w),
                                h - round(0.1 * h))))
    framed = _jpeg(ImageOps.expand(photo, border=round(0.1 * max(w, h)), fill=(30, 60, 200)))
    with sg.client() as c:
        for name, flag in ((ladder, True), (plain, False)):
            r = c.post("/v1/banks", json={"name": name, "crop_ladder": flag})
            assert r.status_code == 201, r.text
            r = c.post(f"/v1/banks/{name}/entries/file?category=us:1",
                       content=banked.read_bytes(), headers=OCTET)
            assert r.status_code == 200 and r.json()["added"] == 4, r.text
    for name in (ladder, plain):
        sg.cli("bank", "share", name, "HK-POL")
    hk.add_peer("sg", sg)
    hk.cli("peer", "sync", "sg")
    m_ladder, m_plain = f"SG-SPF.{ladder}", f"SG-SPF.{plain}"

    # the codes arrived whole, and the mirror keeps a ladder like its origin
    origin_flag, origin_codes = ladder_of(sg, ladder)
    flag, codes = ladder_of(hk, m_ladder)
    assert origin_flag and flag and len(codes) >= 20 and codes == origin_codes
    assert ladder_of(hk, m_plain) == (False, [])

    wait_for(lambda: m_ladder in banks_of(leads(hk, cropped, "all")), timeout=15)
    [lead] = [m for m in leads(hk, cropped, "all") if m["bank"] == m_ladder]
    # "query window/banked window": a banked derived code met it
    assert "/" in str(lead["variant"])
    assert int(lead["distance"]) <= 31  # type: ignore[call-overload]
    # without derived codes (the plain mirror: how every mirror was) the crop is missed,
    # and plain PDQ alone finds it nowhere
    assert m_plain not in banks_of(leads(hk, cropped, "all"))
    assert leads(hk, cropped, "off") == []
    framed_leads = {m["bank"]: m["variant"] for m in leads(hk, framed, "all")}
    assert framed_leads.get(m_ladder) == "trimmed", framed_leads
    # the second stage's features travelled too: a 4° rotation is confirmed at HK
    rotated = _jpeg(photo.rotate(4, Image.Resampling.BICUBIC, expand=False))
    turned = {m["bank"]: m["variant"] for m in leads(hk, rotated, "features")}
    assert turned.get(m_ladder) == "features" and m_plain not in turned, turned

    # the index generations built on HK hold the mirror's derived codes
    folder = tmp_path / "hk-index"
    built = BankIndexes(hk.engine, folder)  # type: ignore[arg-type]
    assert len(built.derived) >= len(codes)
    loaded = BankIndexes(hk.engine, folder)  # type: ignore[arg-type]  # from the generation
    assert len(loaded.derived) == len(built.derived)

    # re-indexing the plain bank at SG reaches HK as an update, with the flag
    out = sg.cli("bank", "reindex", plain, str(banked), "--reference", "-q").stdout
    assert "1 entries got a crop ladder" in out and "0 pictures matched no entry" in out
    hk.cli("peer", "sync", "sg")
    assert ladder_of(hk, m_plain) == (True, ladder_of(sg, plain)[1])
    wait_for(lambda: m_plain in banks_of(leads(hk, cropped, "all")), timeout=15)

    # a removal at SG takes the entry, and its codes, out of HK's matches
    assert sg.engine is not None
    with Session(sg.engine) as s:
        value = s.scalar(select(Entry.value).join(Bank, Bank.id == Entry.bank_id).where(
            Bank.name == ladder, Entry.signal_type == "pdq"))
    sg.cli("bank", "remove", ladder, "--hash", f"pdq:{value}")
    hk.cli("peer", "sync", "sg")
    wait_for(lambda: m_ladder not in banks_of(leads(hk, cropped, "all")), timeout=15)
    assert ladder_of(hk, m_ladder)[1] == []
