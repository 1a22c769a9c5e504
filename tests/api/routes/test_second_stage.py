"""``POST /v1/match/file?variants=features``: a picture uploaded into a bank with a crop
ladder keeps its local features, and a copy rotated by 4° then matches through the second
stage (variant ``features``, the PDQ distance and the inlier count), but not with
``variants=all``."""

from __future__ import annotations

import io
import uuid

from PIL import Image

from tests.api.conftest import Node, wait_for
from vigil.demo.synthetic import synthetic_image
from vigil.matching.confirm import MIN_INLIERS


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_a_rotated_copy_matches_through_the_second_stage_over_http(node: Node) -> None:
    name = f"second-{uuid.uuid4().hex[:8]}"
    img = synthetic_image(29, (480, 360))
    rotated = _jpeg(img.rotate(4, Image.Resampling.BICUBIC, expand=False))
    octet = {"content-type": "application/octet-stream"}
    with node.client("admin") as adm, node.client("curator") as cur, \
            node.client("matcher") as mat:
        r = adm.post("/v1/banks", json={"name": name, "crop_ladder": True})
        assert r.status_code == 201, r.text
        r = cur.post(f"/v1/banks/{name}/entries/file", content=_jpeg(img), headers=octet)
        assert r.status_code == 200 and r.json()["added"] == 4, r.text

        def leads(variants: str) -> list[dict[str, object]]:
            r = mat.post(f"/v1/match/file?banks={name}&variants={variants}",
                         content=rotated, headers=octet)
            assert r.status_code == 200, r.text
            return list(r.json()["matches"])

        wait_for(lambda: bool(leads("features")))
        [lead] = leads("features")
        assert lead["variant"] == "features" and lead["signal_type"] == "pdq"
        assert int(lead["inliers"]) >= MIN_INLIERS  # type: ignore[call-overload]
        assert int(lead["distance"]) <= 64  # type: ignore[call-overload]
        assert leads("all") == []
