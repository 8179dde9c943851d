"""The cache bundle (helpers/cachebundle.py): a round trip gives the same tree; a bad bundle is refused
with a clear message and leaves the cache alone. Small fake cache folders: well under a second each."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from helpers import cachebundle
from helpers.cachebundle import CacheBundleError

ROOT = Path(__file__).resolve().parent.parent


def fake_cache(root: Path) -> Path:
    """A folder shaped like build/cache: posteriors at the top, training runs below, binary and text."""
    files = {
        "funnel_posterior_full.nc": os.urandom(5000),
        "funnel_posterior_quick.nc": b"\x89HDF\r\n" + bytes(range(256)) * 3,
        "training/clicks_full_seed0/agent.pt": os.urandom(1234),
        "training/clicks_full_seed0/run.json": json.dumps({"key": {"a": 1}, "payload": [1, 2, 3]}).encode(),
        "training/epsilon_sweep_full.json": b"{}",
        "new_data/marketing_daily_plus_2025-01.csv": b"date,spend\n2025-01-01,1.0\n",
        "empty.txt": b"",
    }
    for rel, blob in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(blob)
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def made(tmp_path):
    cache = fake_cache(tmp_path / "cache")
    bundle = tmp_path / "out" / "bundle.tar.gz"
    manifest = cachebundle.create(cache, bundle)
    return cache, bundle, manifest


def test_round_trip_gives_the_identical_tree(made, tmp_path):
    cache, bundle, manifest = made
    fresh = tmp_path / "elsewhere" / "cache"
    restored = cachebundle.restore(bundle, fresh)
    assert tree(fresh) == tree(cache)
    assert sorted(restored) == sorted(fresh / rel for rel in tree(cache))
    assert [e["path"] for e in manifest["files"]] == sorted(tree(cache))
    assert manifest["fingerprint"] == cachebundle.fingerprint()
    assert manifest["total_bytes"] == sum(len(b) for b in tree(cache).values())
    assert [p.name for p in bundle.parent.iterdir()] == ["bundle.tar.gz"]  # written atomically: no temporary left
    assert [p.name for p in fresh.parent.iterdir()] == ["cache"]  # the unpacking folder is gone


def test_restore_merges_into_an_existing_cache(made, tmp_path):
    cache, bundle, _ = made
    target = tmp_path / "target"
    (target / "training").mkdir(parents=True)
    (target / "training" / "mine.json").write_text("kept")
    (target / "funnel_posterior_full.nc").write_bytes(b"old")
    cachebundle.restore(bundle, target)
    assert (target / "training" / "mine.json").read_text() == "kept"
    assert (target / "funnel_posterior_full.nc").read_bytes() == (cache / "funnel_posterior_full.nc").read_bytes()


def test_an_empty_cache_is_not_bundled(tmp_path):
    (tmp_path / "cache").mkdir()
    with pytest.raises(CacheBundleError, match="no cache to bundle.*make course"):
        cachebundle.create(tmp_path / "cache", tmp_path / "b.tar.gz")
    assert not (tmp_path / "b.tar.gz").exists()


def assert_refused(bundle: Path, target: Path, pattern: str):
    before = tree(target) if target.exists() else None
    with pytest.raises(CacheBundleError, match=pattern) as err:
        cachebundle.restore(bundle, target)
    assert str(bundle) in str(err.value)
    assert (tree(target) if target.exists() else None) == before, "a refused bundle must leave the cache alone"
    return err.value


def test_a_truncated_bundle_is_refused(made, tmp_path):
    _, bundle, _ = made
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(bundle.read_bytes()[: bundle.stat().st_size // 2])
    target = fake_cache(tmp_path / "target")
    assert_refused(cut, target, "not a usable cache bundle")


def test_garbage_and_a_missing_file_are_refused(tmp_path):
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"this is not an archive")
    assert_refused(garbage, tmp_path / "target", "not a usable cache bundle")
    assert_refused(tmp_path / "nope.tar.gz", tmp_path / "target", "no such file")


def rewrite(bundle: Path, out: Path, edit) -> Path:
    """A copy of ``bundle`` with ``edit(name, bytes) -> bytes | None`` applied to each member (None drops it)."""
    with tarfile.open(bundle, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(out, "w:gz") as tar:
        for m, blob in members:
            blob = edit(m.name, blob)
            if blob is not None:
                m.size = len(blob)
                tar.addfile(m, io.BytesIO(blob))
    return out


def test_a_file_that_does_not_match_its_checksum_is_refused(made, tmp_path):
    _, bundle, _ = made
    flipped = rewrite(bundle, tmp_path / "flipped.tar.gz",
                      lambda n, b: b[:-1] + bytes([b[-1] ^ 1]) if n == "cache/training/clicks_full_seed0/agent.pt" else b)
    target = fake_cache(tmp_path / "target")
    (target / "training/clicks_full_seed0/agent.pt").write_bytes(b"mine")
    err = assert_refused(flipped, target, "agent.pt does not match its checksum")
    assert "cache was not touched" in str(err)


def test_a_missing_member_and_a_stray_member_are_refused(made, tmp_path):
    _, bundle, _ = made
    dropped = rewrite(bundle, tmp_path / "dropped.tar.gz", lambda n, b: None if n.endswith("run.json") else b)
    assert_refused(dropped, tmp_path / "t1", "run.json is listed in its manifest but missing")

    # append a member the manifest does not list, with a path that climbs out of the cache
    plain = tmp_path / "stray.tar"
    plain.write_bytes(gzip.decompress(bundle.read_bytes()))
    with tarfile.open(plain, "a") as tar:
        info = tarfile.TarInfo("cache/../../escape.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    stray = tmp_path / "stray.tar.gz"
    stray.write_bytes(gzip.compress(plain.read_bytes()))
    assert_refused(stray, tmp_path / "t2", "members not in its manifest")
    assert not (tmp_path / "escape.txt").exists()


def test_a_bundle_from_another_version_is_refused_unless_forced(made, tmp_path, monkeypatch):
    _, bundle, _ = made
    here = cachebundle.fingerprint()
    monkeypatch.setattr(cachebundle, "fingerprint", lambda root=None: {**here, "code_sha256": "0" * 64})
    err = assert_refused(bundle, tmp_path / "target", "made with another version of the course")
    assert "the code" in str(err) and "the data" not in str(err) and "make cache-bundle" in str(err) and "--force" in str(err)
    assert cachebundle.restore(bundle, tmp_path / "target", force=True)
    assert tree(tmp_path / "target") == tree(made[0])


def test_not_a_manifest_first_is_refused(made, tmp_path):
    _, bundle, _ = made
    other = tmp_path / "other.tar.gz"
    with tarfile.open(other, "w:gz") as tar:
        tar.add(made[0] / "empty.txt", arcname="cache/empty.txt")
    assert_refused(other, tmp_path / "target", "first member is cache/empty.txt, not MANIFEST.json")
    bad_manifest = rewrite(bundle, tmp_path / "bad.tar.gz", lambda n, b: b"[1, 2" if n == "MANIFEST.json" else b)
    assert_refused(bad_manifest, tmp_path / "target", "not a usable cache bundle")


def test_the_data_fingerprint_follows_the_data_files(tmp_path):
    root = tmp_path / "checkout"
    for name in cachebundle.CODE_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"# {name}\n")
    (root / "data").mkdir()
    (root / "data" / "a.csv").write_text("x\n1\n")
    (root / "data" / "README.md").write_text("about")
    first = cachebundle.fingerprint(root)
    (root / "data" / "README.md").write_text("about the data")  # documentation does not change the caches
    assert cachebundle.fingerprint(root) == first
    (root / "data" / "a.csv").write_text("x\n2\n")
    assert cachebundle.fingerprint(root)["data_sha256"] != first["data_sha256"]
    assert cachebundle.fingerprint(root)["code_sha256"] == first["code_sha256"]
    # every module of the packages the caches depend on is a code file, and a change to any one changes the code part
    for package in cachebundle.CODE_PACKAGES:
        modules = {p.relative_to(cachebundle.ROOT).as_posix() for p in (cachebundle.ROOT / "helpers" / package).glob("*.py")}
        assert "helpers/" + package + "/__init__.py" in modules and modules <= set(cachebundle.CODE_FILES), package
    for name in cachebundle.CODE_FILES:
        before = cachebundle.fingerprint(root)["code_sha256"]
        (root / name).write_text(f"# {name}, changed\n")
        assert cachebundle.fingerprint(root)["code_sha256"] != before, name


def test_the_command_line_creates_shows_and_restores(tmp_path):
    cache = fake_cache(tmp_path / "cache")
    bundle = tmp_path / "b.tar.gz"

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "helpers.cachebundle", *map(str, args)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)

    made = cli("create", "--cache", cache, "--out", bundle)
    assert made.returncode == 0 and "7 files" in made.stdout, made.stderr
    shown = cli("show", bundle)
    assert shown.returncode == 0 and "matches this checkout" in shown.stdout and "agent.pt" in shown.stdout
    back = cli("restore", bundle, "--cache", tmp_path / "back")
    assert back.returncode == 0 and tree(tmp_path / "back") == tree(cache), back.stderr
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"\x1f\x8b garbage")
    failed = cli("restore", broken, "--cache", tmp_path / "back")
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr.startswith("cache bundle: ") and "Traceback" not in failed.stderr and failed.stderr.count("\n") == 1
