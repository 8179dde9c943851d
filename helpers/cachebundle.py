"""The course's caches as one file to hand around: ``python -m helpers.cachebundle create|restore|show``.

``build/cache/`` holds what takes minutes to compute: the fitted posteriors (notebooks 02, 05,
06), the trained agents and the epsilon sweep (05, 06). An instructor who has run ``make course``
bundles it (``make cache-bundle``: ``build/rl-course-cache.tar.gz``); a laptop that restores the
bundle (``make cache-restore BUNDLE=FILE``) runs every notebook as it would on the second run,
without fitting or training what the caches hold (TEACHING.md, "The fallback ladder").

A bundle is a gzipped tar, ``MANIFEST.json`` first, then the files (:func:`create`); the manifest
records each file's checksum and the :func:`fingerprint` of the code and data the caches depend
on. :func:`restore` refuses a damaged bundle, or one made with another version of the course,
without touching the cache.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import os
import platform
import shutil
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: ``helpers.bayes.CACHE_DIR``, read the same way (``COURSE_CACHE_DIR`` moves it) without
#: importing PyMC for a file copy.
CACHE_DIR = Path(os.environ.get("COURSE_CACHE_DIR") or ROOT / "build" / "cache")
DEFAULT_BUNDLE = ROOT / "build" / "rl-course-cache.tar.gz"
FORMAT, VERSION = "rl-course-cache", 1
MANIFEST = "MANIFEST.json"
PREFIX = "cache"
#: The packages whose every module the caches' keys depend on (the posteriors' priors, settings and
#: model versions live in helpers/bayes/; training.code_fingerprint covers the rest).
CODE_PACKAGES = ("bayes", "env", "baselines", "ppo", "training")
#: The sources whose every byte the caches' keys depend on: every module of :data:`CODE_PACKAGES`
#: (listed from this checkout, so a new module counts without an edit here) and two single modules.
CODE_FILES = tuple(sorted(p.relative_to(ROOT).as_posix() for name in CODE_PACKAGES for p in (ROOT / "helpers" / name).glob("*.py"))) + (
    "helpers/carryover.py", "helpers/data.py")
DATA_DIR = ROOT / "data"


class CacheBundleError(ValueError):
    """A bundle that cannot be made or restored; the message says why and what to do."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(root: Path = ROOT) -> dict[str, str]:
    """SHA-256 of the code (:data:`CODE_FILES`) and of the data files (``data/``, READMEs aside).

    The caches are keyed on these inputs, so the caches of a bundle made from another version of
    the course would be silently ignored and recomputed: all of them, or those whose inputs
    changed (the fingerprint is coarser than the caches' own keys).
    """
    code = hashlib.sha256()
    for name in CODE_FILES:
        code.update(name.encode() + b"\0" + (root / name).read_bytes())
    data = hashlib.sha256()
    for path in sorted(p for p in (root / "data").rglob("*") if p.is_file() and p.suffix != ".md"):
        data.update(path.relative_to(root).as_posix().encode() + b"\0" + _sha256(path).encode())
    return {"code_sha256": code.hexdigest(), "data_sha256": data.hexdigest()}


def _cache_files(cache_dir: Path) -> list[Path]:
    """Every file under ``cache_dir``, sorted; temporary files of a write in progress left out."""
    return sorted(p for p in cache_dir.rglob("*")
                  if p.is_file() and not (p.name.startswith(".") and p.name.endswith(".tmp")))


def create(cache_dir: str | Path = CACHE_DIR, out: str | Path = DEFAULT_BUNDLE) -> dict:
    """Write every file of ``cache_dir`` into the bundle ``out`` (atomically); returns the manifest.

    The bundle is a gzipped tar: ``MANIFEST.json`` first (format, when and with what it was made,
    the :func:`fingerprint`, every file with its size and SHA-256), then the files under ``cache/``.
    """
    from helpers.data import atomic_path  # here, not at the top: restore and show need no pandas

    cache_dir, out = Path(cache_dir), Path(out)
    files = _cache_files(cache_dir) if cache_dir.is_dir() else []
    if not files:
        raise CacheBundleError(f"{cache_dir}: no cache to bundle (empty or missing); run `make course` first")
    if out.resolve().is_relative_to(cache_dir.resolve()):
        raise CacheBundleError(f"{out}: the bundle cannot be written inside the cache it bundles ({cache_dir})")
    entries = [{"path": p.relative_to(cache_dir).as_posix(), "bytes": p.stat().st_size, "sha256": _sha256(p)} for p in files]
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "fingerprint": fingerprint(),
        "made_with": {"python": platform.python_version(), "platform": platform.platform()},
        "total_bytes": sum(e["bytes"] for e in entries),
        "files": entries,
    }
    blob = (json.dumps(manifest, indent=2) + "\n").encode()
    with atomic_path(out) as tmp, tarfile.open(tmp, "w:gz") as tar:
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mtime, info.mode = len(blob), int(dt.datetime.now().timestamp()), 0o644
        tar.addfile(info, io.BytesIO(blob))
        for path, entry in zip(files, entries):
            tar.add(path, arcname=f"{PREFIX}/{entry['path']}", recursive=False, filter=_plain)
    return manifest


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """No owner names or ids from the instructor's machine in the archive."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o644
    return info


def _damaged(bundle: Path, why: str) -> CacheBundleError:
    return CacheBundleError(f"{bundle}: not a usable cache bundle ({why}). Download or copy it again, or make a new "
                            f"one with `make cache-bundle` on a machine that ran `make course`; the cache was not touched")


def read_manifest(bundle: str | Path) -> dict:
    """The bundle's manifest, checked for format and version (not yet the files)."""
    bundle = Path(bundle)
    if not bundle.is_file():
        raise CacheBundleError(f"{bundle}: no such file")
    try:
        with tarfile.open(bundle, "r:gz") as tar:
            first = tar.next()
            if first is None or first.name != MANIFEST:
                raise _damaged(bundle, f"its first member is {first.name if first else 'nothing'}, not {MANIFEST}")
            manifest = json.loads(tar.extractfile(first).read())
    except (tarfile.TarError, EOFError, zlib.error, OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _damaged(bundle, f"{type(err).__name__}: {err}") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _damaged(bundle, f"{MANIFEST} is not a {FORMAT} manifest")
    if manifest.get("version") != VERSION:
        raise CacheBundleError(f"{bundle}: bundle format version {manifest.get('version')}, this course reads "
                               f"version {VERSION}; make a new bundle with `make cache-bundle`")
    return manifest


def mismatch(manifest: dict, here: dict[str, str] | None = None) -> list[str]:
    """What differs between the fingerprint the bundle was made with and this checkout's."""
    here = here or fingerprint()
    made = manifest.get("fingerprint", {})
    names = {"code_sha256": "the code (helpers/bayes, env, baselines, ppo, training)", "data_sha256": "the data files (data/)"}
    return [f"{names.get(k, k)}: bundle {str(made.get(k))[:12]}, here {v[:12]}" for k, v in here.items() if made.get(k) != v]


def restore(bundle: str | Path, cache_dir: str | Path = CACHE_DIR, *, force: bool = False) -> list[Path]:
    """Check ``bundle`` and move its files into ``cache_dir``; returns the files restored.

    A bundle made with another :func:`fingerprint` is refused with a message that says what
    differs (``force`` restores it anyway: what still matches is used). A sound bundle is unpacked
    into a temporary folder beside the cache, checked, then moved in file by file (each an atomic
    rename); files already in the cache that the bundle lacks stay.

    Raises:
        CacheBundleError: missing, unreadable or damaged bundle (no manifest first, a file whose
            checksum does not match, a path outside ``cache/``), or (unless ``force``) one made
            with another fingerprint; the cache is left untouched in every case.
    """
    bundle, cache_dir = Path(bundle), Path(cache_dir)
    manifest = read_manifest(bundle)
    differs = mismatch(manifest)
    if differs and not force:
        raise CacheBundleError(
            f"{bundle}: made with another version of the course ({manifest.get('created_utc')}). Differs: "
            + "; ".join(differs) + ". The caches are keyed on their code and data, so those whose inputs changed "
            "would be recomputed, possibly all of them. Make a new bundle from this version (`make cache-bundle`), "
            "or restore it anyway (what still matches is used) with `python -m helpers.cachebundle restore FILE --force`")
    wanted = {f"{PREFIX}/{e['path']}": e for e in manifest.get("files", [])}
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".cache-restore-", dir=cache_dir.parent) as tmp:
        tmp = Path(tmp)
        try:
            with tarfile.open(bundle, "r:gz") as tar:
                members = tar.getmembers()
                names = [m.name for m in members[1:]]
                stray = sorted(set(names) - set(wanted))
                if stray:
                    raise _damaged(bundle, f"members not in its manifest: {stray[:3]}")
                tar.extractall(tmp, members=members[1:], filter="data")  # "data": no absolute paths, links or devices
        except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
            raise _damaged(bundle, f"{type(err).__name__}: {err}") from err
        for name, entry in wanted.items():
            path = tmp / name
            if not path.is_file():
                raise _damaged(bundle, f"{name} is listed in its manifest but missing")
            if path.stat().st_size != entry["bytes"] or _sha256(path) != entry["sha256"]:
                raise _damaged(bundle, f"{name} does not match its checksum")
        restored = []
        for name, entry in wanted.items():
            target = cache_dir / entry["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / name, target)
            restored.append(target)
    return restored


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.cachebundle {create,restore,show} ...``; exit status 1 with one message on a bad bundle."""
    parser = argparse.ArgumentParser(prog="python -m helpers.cachebundle", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_create = sub.add_parser("create", help="bundle the cache folder into one file")
    p_create.add_argument("--cache", type=Path, default=CACHE_DIR, help="the cache folder (default: build/cache)")
    p_create.add_argument("--out", type=Path, default=DEFAULT_BUNDLE, help="the bundle to write (default: build/rl-course-cache.tar.gz)")
    p_restore = sub.add_parser("restore", help="check a bundle and unpack it into the cache folder")
    p_restore.add_argument("bundle", type=Path, help="the bundle file (.tar.gz)")
    p_restore.add_argument("--cache", type=Path, default=CACHE_DIR, help="the cache folder (default: build/cache)")
    p_restore.add_argument("--force", action="store_true", help="restore even if made with another version of the course")
    p_show = sub.add_parser("show", help="print a bundle's manifest summary (and whether it matches this checkout)")
    p_show.add_argument("bundle", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "create":
            manifest = create(args.cache, args.out)
            print(f"wrote {args.out}: {len(manifest['files'])} files, {_size(manifest['total_bytes'])} of cache "
                  f"({_size(args.out.stat().st_size)} compressed)")
        elif args.command == "restore":
            restored = restore(args.bundle, args.cache, force=args.force)
            print(f"restored {len(restored)} files into {args.cache}")
        else:
            manifest = read_manifest(args.bundle)
            for e in manifest["files"]:
                print(f"{_size(e['bytes']):>9}  {e['path']}")
            differs = mismatch(manifest)
            print(f"{len(manifest['files'])} files, {_size(manifest['total_bytes'])}, made {manifest['created_utc']}; "
                  + ("matches this checkout" if not differs else "made with another version: " + "; ".join(differs)))
    except CacheBundleError as err:
        print(f"cache bundle: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
