"""`vigil bank` and `vigil match` as a user runs them, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from vigil.cli import app
from vigil.demo.synthetic import synthetic_image


@pytest.fixture
def vigil(engine: Engine, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run the CLI in-process against this test's store and a private VIGIL_HOME."""
    runner = CliRunner()
    env = {"VIGIL_HOME": str(tmp_path / "home"),
           "VIGIL_DATABASE_URL": engine.url.render_as_string(hide_password=False),
           "VIGIL_USER": "examiner1"}

    def run(*args: str, ok: bool = True):  # type: ignore[no-untyped-def]
        r = runner.invoke(app, list(args), env=env)
        if ok:
            assert r.exit_code == 0, (args, r.output, r.exception)
        return r

    return run


def _pictures(folder: Path, seeds: range) -> Path:
    folder.mkdir(parents=True)
    for s in seeds:
        synthetic_image(s, (400, 300)).save(folder / f"p{s}.jpg", quality=92)
    return folder


def test_bank_lifecycle_and_match(vigil, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    known = _pictures(tmp_path / "known", range(5))
    vigil("bank", "create", "sg-known", "--agency", "SG-SPF", "--scheme", "us")
    r = vigil("bank", "add", "sg-known", str(known), "--category", "us:1", "--series", "S1",
              "-q")
    assert "5 files" in r.output and "20 added" in r.output  # md5, sha1, sha256, pdq each

    show = vigil("bank", "show", "sg-known")
    assert "pdq 5" in show.output and "us:1 20" in show.output
    for p in known.iterdir():  # show never prints a hash
        assert p.read_bytes()[:4].hex() not in show.output
    data = json.loads(vigil("bank", "show", "sg-known", "--json").output)
    assert data["entries"] == 20 and data["by_signal_type"]["md5"] == 5

    # A seizure: an exact copy, a mirrored copy, and a stranger.
    seizure = tmp_path / "seizure"
    seizure.mkdir()
    (seizure / "copy.jpg").write_bytes((known / "p1.jpg").read_bytes())
    synthetic_image(2, (400, 300)).transpose(0).save(seizure / "mirror.jpg", quality=90)
    synthetic_image(99, (400, 300)).save(seizure / "new.jpg", quality=90)
    out = vigil("match", str(seizure), "--dihedral", "--json", "-q").output
    rows = {Path(row["item"]).name: row for row in map(json.loads, out.splitlines())}
    [copy] = rows["copy.jpg"]["matches"]
    assert copy["distance"] == 0 and sorted(copy["signals"]) == ["md5", "pdq", "sha1", "sha256"]
    assert copy["category"] == {"scheme": "us", "value": "1"} and copy["series"] == "S1"
    [mirror] = rows["mirror.jpg"]["matches"]
    assert mirror["signal_type"] == "pdq" and mirror["variant"] != "original"
    assert rows["new.jpg"]["matches"] == []

    plain = vigil("match", str(seizure), "-q").output
    assert "copy.jpg: MATCH bank sg-known [SG-SPF] us:1 series=S1" in plain
    assert "mirror.jpg: no match" in plain  # without --dihedral
    csv_out = vigil("match", str(seizure / "copy.jpg"), "--csv", "-q").output.splitlines()
    assert csv_out[0].startswith("item,bank") and len(csv_out) == 2

    # Relabel a series, then retract one picture: both visible to the next match.
    vigil("bank", "label", "sg-known", "--of-series", "S1", "--victim-status", "identified")
    r = vigil("match", str(seizure / "copy.jpg"), "--json", "-q")
    assert json.loads(r.output)["matches"][0]["victim_status"] == "identified"
    vigil("bank", "remove", "sg-known", str(known / "p1.jpg"), "-q")
    r = vigil("match", str(seizure / "copy.jpg"), "--json", "-q")
    assert json.loads(r.output)["matches"] == []
    assert "16" in vigil("bank", "list").output


def test_match_bare_hash_and_errors(vigil) -> None:  # type: ignore[no-untyped-def]
    vigil("bank", "create", "b", "--agency", "HK-HKPF")
    r = vigil("match", "--hash", "pdq:" + "ab" * 32)
    assert "no match" in r.output
    r = vigil("match", "--hash", "pdq:abc", ok=False)
    assert r.exit_code == 1 and "64 hex" in r.output
    r = vigil("bank", "show", "nope", ok=False)
    assert r.exit_code == 1 and "no bank named 'nope'" in r.output
    r = vigil("bank", "create", "b", "--agency", "X", ok=False)
    assert "already exists" in r.output
    r = vigil("bank", "add", "b", "/no/such/file", "--category", "us:9", ok=False)
    assert "not a category of scheme 'us'" in r.output
    r = vigil("match", "--hash", "md5:" + "0" * 32, "--bank", "zz", ok=False)
    assert "no bank named 'zz'" in r.output


def test_help_explains_every_bank_command(vigil) -> None:  # type: ignore[no-untyped-def]
    for cmd in ("create", "list", "show", "import", "export", "add", "remove", "label"):
        r = vigil("bank", cmd, "--help")
        assert "Usage" in r.output
    assert "--threshold" in vigil("match", "--help").output


@pytest.mark.parametrize("fmt", ["csv", "vics", "ncmec", "stopncii", "pdq-list"])
def test_export_then_import_round_trips(vigil, tmp_path: Path, fmt: str) -> None:  # type: ignore[no-untyped-def]
    known = _pictures(tmp_path / "known", range(3))
    vigil("bank", "create", "a", "--agency", "SG-SPF")
    vigil("bank", "create", "b", "--agency", "KR-KNPA")
    vigil("bank", "add", "a", str(known), "--category", "ncmec:A1", "--series", "S9", "-q")
    out = tmp_path / f"a.{fmt}"
    r = vigil("bank", "export", "a", str(out), "--format", fmt)
    assert "exported" in r.output
    r = vigil("bank", "import", "b", str(out), "-q")  # format sniffed from content
    a = json.loads(vigil("bank", "show", "a", "--json").output)["by_signal_type"]
    b = json.loads(vigil("bank", "show", "b", "--json").output)["by_signal_type"]
    carried = {"csv": a, "vics": {"md5": 3, "sha1": 3, "sha256": 3, "pdq": 3},
               "ncmec": a, "stopncii": a,
               "pdq-list": {"pdq": 3}}[fmt]
    assert b == carried, r.output


def test_import_is_all_or_nothing_unless_told(vigil, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    vigil("bank", "create", "b", "--agency", "SG-SPF")
    bad = tmp_path / "bad.csv"
    bad.write_text("signal_type,value,category_scheme,category\n"
                   f"md5,{'a' * 32},us,1\nmd5,xyz,us,1\nmd5,{'b' * 32},us,1\n")
    r = vigil("bank", "import", "b", str(bad), "-q", ok=False)
    assert r.exit_code == 1 and "bad.csv" in r.output and "line 3" in r.output
    assert json.loads(vigil("bank", "show", "b", "--json").output)["entries"] == 0
    r = vigil("bank", "import", "b", str(bad), "--skip-invalid", "-q")
    assert "1 malformed records skipped" in r.output and "2 added" in r.output


def test_videos_go_into_banks_and_match_by_vpdq(vigil, tmp_path: Path, shared: Path) -> None:  # type: ignore[no-untyped-def]
    videos = shared / "fixtures/video/sample-videos"
    vigil("bank", "create", "v", "--agency", "SG-SPF")
    vigil("bank", "add", "v", str(videos / "chair-orig-22-sd-bar.mp4"), "--series", "V1", "-q")
    assert json.loads(vigil("bank", "show", "v", "--json").output)["by_signal_type"]["vpdq"] == 1
    r = vigil("match", str(videos / "chair-22-with-small-logo-bar.mp4"),
              str(videos / "doorknob-hd-no-bar.mp4"), "--json", "-q")
    rows = {Path(x["item"]).name: x for x in map(json.loads, r.output.splitlines())}
    hit = rows["chair-22-with-small-logo-bar.mp4"]["matches"]
    assert [m["signal_type"] for m in hit] == ["vpdq"] and hit[0]["series"] == "V1"
    assert hit[0]["video"]["query_pct"] >= 80 and hit[0]["video"]["compared_ranges"]
    assert rows["doorknob-hd-no-bar.mp4"]["matches"] == []
    # vigil hash shows the video's signal
    assert "vpdq=" in vigil("hash", str(videos / "chair-19-sd-bar.mp4")).output


def test_meta_vpdq_files_import_and_match(vigil, tmp_path: Path, shared: Path) -> None:  # type: ignore[no-untyped-def]
    """A hash file made by Meta's vpdq is a bank entry that our own video hashes match."""
    ref = next((shared / "fixtures/video/sample-hashes").glob("chair-orig-22-sd-bar*"))
    vigil("bank", "create", "v", "--agency", "KR-KNPA")
    r = vigil("bank", "import", "v", str(ref), "-q")  # format sniffed: vpdq
    assert "1 added" in r.output
    r = vigil("match", str(shared / "fixtures/video/sample-videos/chair-22-sd-grey-bar.mp4"),
              "--json", "-q")
    [hit] = json.loads(r.output)["matches"]
    # the reference hashed every frame, we sample 1 per second: the query side decides
    assert hit["signal_type"] == "vpdq" and hit["video"]["query_pct"] >= 80
    out = tmp_path / "back.txt"
    vigil("bank", "export", "v", str(out), "--format", "vpdq")
    from vigil.signals.vpdq import read_vpdq

    assert read_vpdq(out) == read_vpdq(ref)
