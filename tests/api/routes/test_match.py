"""Matching over real HTTP: new entries match within seconds, removed ones stop matching,
distances are integers, PDQ near matches and dihedral variants, file upload paths."""

from __future__ import annotations

import hashlib
import io
import time

from PIL import Image

from tests.api.conftest import Node, wait_for
from vigil.demo.synthetic import synthetic_image
from vigil.signals import HashOptions, pdq_of_image


def _jpeg(seed: int, transpose: Image.Transpose | None = None) -> bytes:
    img = synthetic_image(seed, (320, 240))
    if transpose is not None:
        img = img.transpose(transpose)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def _flip(hex_code: str, bits: int) -> str:
    n = int(hex_code, 16) ^ ((1 << bits) - 1)
    return f"{n:064x}"


def _match(c, signals, **kw):  # type: ignore[no-untyped-def]
    r = c.post("/v1/match", json={"signals": signals, **kw})
    assert r.status_code == 200, r.text
    return r.json()


def test_new_entries_match_within_seconds_and_removed_stop(node: Node, bank: str) -> None:
    pdq = f"{0x1234_5678_9abc_def0:016x}" * 4
    md5 = "0123456789abcdef" * 2
    sig = [{"type": "pdq", "value": _flip(pdq, 5)}, {"type": "md5", "value": md5}]
    with node.client("curator") as cur, node.client("analyst") as ana:
        assert _match(ana, sig)["matched"] == 0
        r = cur.post(f"/v1/banks/{bank}/entries", json={"entries": [
            {"type": "pdq", "value": pdq, "category": "us:1", "series": "S1",
             "note": "private note"},
            {"type": "md5", "value": md5, "category": "uk:A"}]})
        assert r.status_code == 200, r.text
        assert r.json()["added"] == 2
        t0 = time.monotonic()  # the entries are committed: from here to their first match

        def both() -> bool:
            return _match(ana, sig)["matched"] == 2

        waited = wait_for(both, timeout=5)
        assert time.monotonic() - t0 < 5, waited  # the target: matchable within 5 s
        res = _match(ana, sig)["results"]
        m = res[0]["matches"][0]
        assert m["distance"] == 5 and isinstance(m["distance"], int)
        assert m["bank"] == bank and m["category"] == {"scheme": "us", "value": "1"}
        assert m["series"] == "S1" and m["note"] == "private note"
        assert "value" not in m  # the bank's hash is never returned
        assert res[1]["matches"][0]["distance"] == 0
        # thresholds are honoured
        assert _match(ana, sig[:1], threshold=4)["matched"] == 0
        r = cur.post(f"/v1/banks/{bank}/entries/remove",
                     json={"signals": [{"type": "pdq", "value": pdq}]})
        assert r.json()["removed"] == 1
        wait_for(lambda: _match(ana, sig)["matched"] == 1, timeout=5)


def test_matcher_sees_no_labels_beyond_category(node: Node, bank: str) -> None:
    sha1 = "ab" * 20
    with node.client("curator") as cur, node.client("matcher") as mat:
        cur.post(f"/v1/banks/{bank}/entries", json={"entries": [
            {"type": "sha1", "value": sha1, "category": "us:2", "series": "S9",
             "victim_status": "identified", "tags": ["x"], "note": "do not show"}]})
        wait_for(lambda: _match(mat, [{"type": "sha1", "value": sha1}])["matched"] == 1)
        [m] = _match(mat, [{"type": "sha1", "value": sha1}])["results"][0]["matches"]
        assert set(m) == {"bank", "distance", "signal_type", "signals", "variant", "category"}


def test_dihedral_variants_and_bank_filter(node: Node, bank: str) -> None:
    base = pdq_of_image(synthetic_image(7), "x", "reference", dihedral=True)
    rotated = pdq_of_image(synthetic_image(7).transpose(Image.Transpose.ROTATE_90), "x",
                           "reference", dihedral=True)
    with node.client("curator") as cur, node.client("analyst") as ana:
        cur.post(f"/v1/banks/{bank}/entries", json={"entries": [
            {"type": "pdq", "value": base.hash.hex, "quality": base.hash.quality}]})
        q = {"type": "pdq", "value": rotated.hash.hex, "quality": rotated.hash.quality}
        wait_for(lambda: _match(ana, [{"type": "pdq", "value": base.hash.hex}])["matched"])
        assert _match(ana, [q], threshold=20)["matched"] == 0
        variants = dict(zip(["rotate90", "rotate180", "rotate270", "flip-x", "flip-y",
                             "flip-plus1", "flip-minus1"],
                            [h.hex for h in rotated.dihedral[1:]], strict=True))
        out = _match(ana, [{**q, "variants": variants}], threshold=20)
        assert out["matched"] == 1
        assert out["results"][0]["matches"][0]["variant"] != "original"
        assert _match(ana, [{**q, "variants": variants}], threshold=20,
                      banks=[bank])["matched"] == 1


def test_hash_and_match_file(node: Node, bank: str) -> None:
    data = _jpeg(11)
    with node.client("matcher") as mat, node.client("curator") as cur:
        r = mat.post("/v1/hash?dihedral=true&reference=true", content=data,
                     headers={"content-type": "application/octet-stream"})
        assert r.status_code == 200, r.text
        h = r.json()
        assert h["size"] == len(data) and len(h["pdq"]) == 64 and len(h["pdq_dihedral"]) == 8
        ref = pdq_of_image(Image.open(io.BytesIO(data)), "x", "reference")
        assert h["pdq"] == ref.hash.hex
        r = cur.post(f"/v1/banks/{bank}/entries/file?category=us:1&series=S3", content=data,
                     headers={"content-type": "application/octet-stream"})
        assert r.status_code == 200, r.text
        assert r.json()["added"] == 4  # md5, sha1, sha256, pdq

        def found() -> bool:
            r = mat.post(f"/v1/match/file?banks={bank}", content=data,
                         headers={"content-type": "application/octet-stream"})
            assert r.status_code == 200, r.text
            return bool(r.json()["matches"])

        wait_for(found)
        r = mat.post("/v1/match/file", content=data,
                     headers={"content-type": "application/octet-stream"}).json()
        [lead] = r["matches"]  # four signals of one file: one lead
        assert lead["distance"] == 0 and sorted(lead["signals"]) == ["md5", "pdq", "sha1",
                                                                      "sha256"]
        # a rotated copy matches only with dihedral
        rot = _jpeg(11, Image.Transpose.ROTATE_90)
        r1 = mat.post(f"/v1/match/file?banks={bank}&threshold=31", content=rot,
                      headers={"content-type": "application/octet-stream"}).json()
        r2 = mat.post(f"/v1/match/file?banks={bank}&dihedral=true", content=rot,
                      headers={"content-type": "application/octet-stream"}).json()
        assert not r1["matches"] and r2["matches"]


def test_batch_of_10000(node: Node, bank: str) -> None:
    # realistic (uniform) digests; see the report on ExactIndex with shared 8-byte prefixes
    values = [hashlib.md5(f"batch{i}".encode()).hexdigest() for i in range(10_000)]
    with node.client("curator") as cur, node.client("matcher") as mat:
        cur.post(f"/v1/banks/{bank}/entries", json={"entries": [
            {"type": "md5", "value": v} for v in values[:100]]})
        sig = [{"type": "md5", "value": v} for v in values]
        wait_for(lambda: _match(mat, sig[:100])["matched"] == 100)
        t0 = time.monotonic()
        out = _match(mat, sig, banks=[bank])
        assert out["signals"] == 10_000 and out["matched"] == 100
        assert time.monotonic() - t0 < 10


def test_fast_path_hash_is_close(node: Node) -> None:
    data = _jpeg(3)
    with node.client("analyst") as c:
        h = c.post("/v1/hash", content=data,
                   headers={"content-type": "application/octet-stream"}).json()
    ref = pdq_of_image(Image.open(io.BytesIO(data)), "x", HashOptions().mode)
    assert h["pdq"] == ref.hash.hex


def test_concurrent_writers_to_many_banks_all_become_matchable(node: Node) -> None:
    """Writers to different banks commit in any order; tailing must not skip any change
    (on PostgreSQL change ids could otherwise commit out of order past a reader)."""
    from concurrent.futures import ThreadPoolExecutor

    names = []
    with node.client("curator") as c:
        for _ in range(6):
            name = f"cw-{hashlib.md5(str(time.time_ns()).encode()).hexdigest()[:8]}"
            assert c.post("/v1/banks", json={"name": name}).status_code == 201
            names.append(name)

    def write(k: int) -> list[str]:
        values = []
        with node.client("curator") as c:
            for batch in range(5):
                vals = [hashlib.sha256(f"{names[k]}-{batch}-{i}".encode()).hexdigest()
                        for i in range(40)]
                r = c.post(f"/v1/banks/{names[k]}/entries",
                           json={"entries": [{"type": "sha256", "value": v} for v in vals]})
                assert r.status_code == 200, r.text
                values += vals
        return values

    with ThreadPoolExecutor(6) as ex:
        values = [v for vs in ex.map(write, range(6)) for v in vs]
    sig = [{"type": "sha256", "value": v} for v in values]
    with node.client("analyst") as a:
        wait_for(lambda: _match(a, sig)["matched"] == len(values), timeout=5)
        for _ in range(4):  # every worker (requests spread over them) sees them all
            assert _match(a, sig)["matched"] == len(values)
        # and the worker's checkpoint catches up with the log within a sync or two (a
        # sync may apply changes committed after it read the log's head)
        wait_for(lambda: a.get("/readyz").json()["lag_changes"] == 0, timeout=5)


def test_crop_ladder_bank_and_variants_over_http(node: Node) -> None:
    """A bank created with a crop ladder keeps derived codes of an uploaded picture; a
    cropped and a framed copy then match through ``variants`` (file upload and a bare
    batch carrying derived codes), naming the variant, and not without it."""
    import uuid

    from PIL import ImageOps

    name = f"ladder-{uuid.uuid4().hex[:8]}"
    img = synthetic_image(23, (400, 300))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92)
    w, h = img.size
    cropped = img.crop((round(0.05 * w), round(0.05 * h), w - round(0.05 * w),
                        h - round(0.05 * h)))
    framed = ImageOps.expand(img, border=40, fill=(20, 20, 20))
    blobs = {}
    for label, pic in (("cropped", cropped), ("framed", framed)):
        b = io.BytesIO()
        pic.save(b, "JPEG", quality=90)
        blobs[label] = b.getvalue()
    octet = {"content-type": "application/octet-stream"}
    with node.client("admin") as adm, node.client("curator") as cur, \
            node.client("matcher") as mat:
        r = adm.post("/v1/banks", json={"name": name, "crop_ladder": True})
        assert r.status_code == 201, r.text
        r = cur.post(f"/v1/banks/{name}/entries/file?category=us:1", content=buf.getvalue(),
                     headers=octet)
        assert r.status_code == 200 and r.json()["added"] == 4, r.text

        def leads(label: str, variants: str) -> list[dict[str, object]]:
            r = mat.post(f"/v1/match/file?banks={name}&variants={variants}",
                         content=blobs[label], headers=octet)
            assert r.status_code == 200, r.text
            return list(r.json()["matches"])

        wait_for(lambda: bool(leads("cropped", "crops")))
        [lead] = leads("cropped", "crops")
        assert str(lead["variant"]).startswith("original/centre-")
        assert int(lead["distance"]) <= 31  # type: ignore[call-overload]
        assert leads("cropped", "off") == [] and leads("framed", "off") == []
        [lead] = leads("framed", "borders")
        assert lead["variant"] == "trimmed"
        # the same, as a bare batch: the client computed the trimmed code itself
        framed_sig = node_hash(mat, blobs["framed"])
        sig = {"type": "pdq", "value": framed_sig["pdq"], "quality": framed_sig["pdq_quality"],
               "derived": {"trimmed": framed_sig["trimmed"]}}
        res = _match(mat, [sig], banks=[name], variants="borders")["results"][0]["matches"]
        assert [m["variant"] for m in res] == ["trimmed"]
        assert _match(mat, [sig], banks=[name])["matched"] == 0
        r = mat.post("/v1/match", json={"signals": [sig], "variants": "sideways"})
        assert r.status_code == 422
        bad = {**sig, "derived": {"centre-0.05": framed_sig["pdq"]}}  # a bank-side name
        assert mat.post("/v1/match", json={"signals": [bad]}).status_code == 422


def node_hash(c, data: bytes) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """PDQ, quality and trimmed code of ``data``, as a client would compute them."""
    from vigil.signals import hash_bytes

    r = hash_bytes(data, "x.jpg", HashOptions(variants="borders"))
    assert r.pdq is not None and r.pdq_derived
    return {"pdq": r.pdq.hex, "pdq_quality": r.pdq.quality,
            "trimmed": dict((n, x.hex) for n, x in r.pdq_derived)["trimmed"]}
