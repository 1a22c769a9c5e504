"""The real `threatexchange` CLI pulls a bank a real Vigil node shares, as an HMA operator's
pytx would: add the extension, create a collaboration, fetch, match; changes at the node
(a relabel to a negative category, a removal, an addition) arrive with the next fetch;
a feed altered in transit fails the fetch with a message naming the record.

Four photos (pytx loses the only entry of a one-entry PDQ index when it pickles it, so
at least two PDQ hashes stay banked throughout).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.exchange.conftest import FedNode
from tests.interop.conftest import PEER, TamperingProxy, Tx, bank_file, signals_of

pytestmark = pytest.mark.shared


def _matches(tx: Tx, photo: Path) -> str:
    """What `threatexchange match photo` prints for ``photo`` (empty: no match)."""
    return tx("match", "photo", str(photo)).stdout.strip()


def test_pytx_fetches_verifies_and_follows_changes(sg: FedNode, tx: Tx, shared: Path) -> None:
    photos = sorted((shared / "corpus/bsds500/test").glob("*.jpg"))[:5]
    a, b, c, d, e = photos
    bank = f"csam-{uuid.uuid4().hex[:6]}"
    sg.bank(bank)
    hashes = {p: bank_file(sg, bank, p, "us:1") for p in (a, b, d)}
    with sg.client() as cl:
        r = cl.put(f"/v1/banks/{bank}/shares/{PEER}", json={"fields": ["category"]})
        assert r.status_code == 200, r.text
    tx.env["VIGIL_PYTX_TOKENS"] = f"{sg.agency}={sg.grant(PEER)}"

    # 1. the extension; 2. a collaboration
    added = tx("config", "extensions", "add", "vigil.interop.pytx").stdout
    assert "vigil" in added
    def collab(url: str, *create: str) -> None:
        # pytx asks for every required field on an edit too
        tx("config", "collab", "edit", "vigil", "sg", *create, "--base-url", url,
           "--bank", bank, "--origin", sg.agency, "--origin-key", sg.public_key)

    collab(sg.url, "--create")
    printed = json.loads(tx("config", "collab", "print", "sg").stdout)
    assert printed["bank"] == bank and "token" not in json.dumps(printed).lower()

    # 3. fetch, then match: the banked photo matches, an unbanked one does not
    tx("fetch")
    out = _matches(tx, a)
    assert "sg" in out and "POSITIVE_CLASS" in out, out
    assert _matches(tx, c) == ""

    # 4. at the node: relabel A to a negative category, remove B, add C
    with sg.client() as cl:
        r = cl.patch(f"/v1/banks/{bank}/entries",
                     json={"signals": signals_of(hashes[a]), "set": {"category": "us:5"}})
        assert r.status_code == 200 and r.json()["updated"] == 4, r.text
        r = cl.post(f"/v1/banks/{bank}/entries/remove", json={"signals": signals_of(hashes[b])})
        assert r.status_code == 200 and r.json()["removed"] == 4, r.text
    bank_file(sg, bank, c, "uk:A")

    # 5. fetch again: A (negative) and B (removed) no longer match, C does, D still does
    tx("fetch")
    assert _matches(tx, a) == ""
    assert _matches(tx, b) == ""
    out = _matches(tx, c)
    assert "POSITIVE_CLASS" in out and "uk:A" in out, out
    assert "POSITIVE_CLASS" in _matches(tx, d)

    # 6. a new record altered in transit: the fetch fails naming it; nothing of it is kept
    bank_file(sg, bank, e, "us:1")
    with sg.client() as cl:
        head = cl.get(f"/v1/banks/{bank}").json()
    first_new = int(head["last_seq"]) - 3  # the file's four entries: md5, sha1, sha256, pdq

    def alter(page: bytes) -> bytes:
        return page.replace(b'\\"op\\":\\"add\\"', b'\\"op\\":\\"update\\"', 1)

    with TamperingProxy(sg.url, alter) as proxy:
        collab(proxy.url)
        r = tx("fetch", check=False)
        assert proxy.tampered >= 1
    assert r.returncode != 0
    assert f"record seq {first_new}" in r.stderr, r.stderr
    assert "does not match its hash" in r.stderr, r.stderr
    assert _matches(tx, e) == ""
    assert "POSITIVE_CLASS" in _matches(tx, c)  # what verified before stays

    # the same feed, untouched, fetches cleanly from where it stopped
    collab(sg.url)
    tx("fetch")
    assert "POSITIVE_CLASS" in _matches(tx, e)
