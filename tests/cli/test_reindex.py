"""`vigil bank reindex`: a bank filled without a crop ladder gets one from the pictures,
on SQLite and PostgreSQL; the report counts what happened, and a mirror is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import Engine
from typer.testing import CliRunner

from vigil.banks import Banks
from vigil.cli import app
from vigil.demo.synthetic import synthetic_image
from vigil.exchange.records import Descriptor, genesis


@pytest.fixture
def vigil(engine: Engine, tmp_path: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    env = {"VIGIL_HOME": str(tmp_path / "home"),
           "VIGIL_DATABASE_URL": engine.url.render_as_string(hide_password=False),
           "VIGIL_USER": "examiner1", "COLUMNS": "200"}

    def run(*args: str, code: int = 0) -> Any:
        r = runner.invoke(app, list(args), env=env)
        assert r.exit_code == code, (args, r.output, r.exception)
        return r

    return run


def test_reindex_gives_the_banks_pictures_a_ladder(  # type: ignore[no-untyped-def]
        vigil, engine: Engine, tmp_path: Path) -> None:
    pics = tmp_path / "pics"
    pics.mkdir()
    for s in (51, 52):
        synthetic_image(s, (400, 300)).save(pics / f"p{s}.jpg", quality=92)
    Image.new("RGB", (300, 300), (128, 128, 128)).save(pics / "flat.png")
    vigil("bank", "create", "known", "--agency", "SG-SPF")
    vigil("bank", "add", "known", str(pics), "--category", "us:1", "-q")
    query = tmp_path / "q"
    query.mkdir()
    img = synthetic_image(51, (400, 300))
    img.crop((40, 30, 360, 270)).save(query / "crop.jpg", quality=90)

    def matched() -> list[Any]:
        out = vigil("match", str(query), "--json", "-q", "--variants", "crops").output
        return [m for line in out.splitlines() if line.startswith("{")
                for m in json.loads(line)["matches"]]

    assert matched() == []  # no ladder yet: the crop is missed
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    synthetic_image(77, (400, 300)).save(stranger / "s.jpg", quality=92)
    out = vigil("bank", "reindex", "known", str(pics), str(stranger), "-q").output
    assert ("4 files, 4 pictures into 'known': 2 entries got a crop ladder, 0 had it "
            "already, 1 pictures matched no entry, 1 too flat for a ladder") in " ".join(
                out.split()), out
    assert Banks(engine).crop_ladder("known")
    # the second stage's features come with the ladder, as `vigil bank add` keeps them
    shown = json.loads(vigil("bank", "show", "known", "--json").output)
    assert shown["with_features"] == 2
    [lead] = matched()
    assert lead["bank"] == "known" and "/" in lead["variant"]
    again = " ".join(vigil("bank", "reindex", "known", str(pics), "-q").output.split())
    assert "0 entries got a crop ladder, 2 had it already" in again


def test_reindex_refuses_a_mirror_and_teaches(  # type: ignore[no-untyped-def]
        vigil, engine: Engine, tmp_path: Path) -> None:
    d = Descriptor("HK-POL", "crops", ("category",), False)
    Banks(engine).create_mirror("HK-POL.crops", "SG-SPF", "m", descriptor=d.text(),
                                origin="HK-POL", first_hash=genesis(d), peer="hk")
    r = vigil("bank", "reindex", "HK-POL.crops", str(tmp_path), code=1)
    assert "read-only mirror" in r.output and not Banks(engine).crop_ladder("HK-POL.crops")
    text = " ".join(vigil("bank", "reindex", "--help").output.split())
    for words in ("crop ladder", "Example", "--reference", "matched no entry"):
        assert words in text, words
