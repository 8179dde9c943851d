"""Notebook 05 in full mode on a laptop that restored the cache bundle: the "<= 2 minutes" of TEACHING.md.

Each run restores the bundle (``--bundle``; by default ``make cache-bundle``'s
``build/rl-course-cache.tar.gz`` if it matches this checkout, else one made here first by running
notebooks 02 and 05 in full mode into a private cache) into a fresh, private ``COURSE_CACHE_DIR`` with empty PyTensor and Numba compile
caches (a laptop that never ran the course), then executes notebook 05 top to bottom in full mode
through the runner of ``make course``, and checks that nothing was recomputed into the cache (a
bundle that no longer matches the code would silently retrain: that would be a different
measurement). Restore and notebook seconds, median, min and max over ``--runs`` runs, in one flat
JSON object in build/bench/bench_cache_restore.json. Target: the notebook in <= 120 s on 2 cores.
The machine is shared: say how loaded it was (``load_avg_1min_*`` keys).

Usage: python benchmarks/bench_cache_restore.py [--bundle FILE] [--runs 3]
(``make bench`` runs it with the defaults.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = ROOT / "build" / "bench" / "bench_cache_restore.json"
NOTEBOOK = ROOT / "notebooks" / "05_training_the_budget_agent.ipynb"
TARGET_S = 120.0


def tree(root: Path) -> dict[str, str]:
    """Every file's content hash (not its time: notebook 05 rewrites its extended data file, same bytes)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def made_bundle(tmp: tempfile.TemporaryDirectory) -> Path:
    """A bundle of notebooks 02 and 05's full-mode caches, made in ``tmp`` (a few minutes)."""
    from helpers import cachebundle, course

    cache = Path(tmp.name) / "cache"
    print(f"== no matching {cachebundle.DEFAULT_BUNDLE.name}: filling a private cache with notebooks 02 and 05 (full mode)", flush=True)
    saved = os.environ.get("COURSE_CACHE_DIR")
    os.environ["COURSE_CACHE_DIR"] = str(cache)
    try:
        for name in ("02_bayesian_negative_binomial.ipynb", NOTEBOOK.name):
            course.execute_notebook(ROOT / "notebooks" / name, quick=False)
    finally:
        if saved is None:
            del os.environ["COURSE_CACHE_DIR"]
        else:
            os.environ["COURSE_CACHE_DIR"] = saved
    bundle = Path(tmp.name) / "bundle.tar.gz"
    cachebundle.create(cache, bundle)
    return bundle


def main() -> int:
    from helpers import cachebundle, course
    from helpers.data import atomic_write_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    made = None
    if args.bundle is None:
        default = cachebundle.DEFAULT_BUNDLE
        usable = default.is_file() and not cachebundle.mismatch(cachebundle.read_manifest(default))
        args.bundle = default if usable else made_bundle(made := tempfile.TemporaryDirectory(prefix="bench_bundle_"))
    restore_s, notebook_s, cpu_s, load = [], [], [], []
    for k in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="bench_cache_restore_") as tmp:
            cache = Path(tmp) / "cache"
            t0 = time.perf_counter()
            cachebundle.restore(args.bundle, cache)
            restore_s.append(time.perf_counter() - t0)
            before = tree(cache)
            os.environ.update(COURSE_CACHE_DIR=str(cache), PYTENSOR_FLAGS=f"base_compiledir={tmp}/pytensor",
                              NUMBA_CACHE_DIR=f"{tmp}/numba")
            load.append(os.getloadavg()[0])
            cpu0, t0 = os.times(), time.perf_counter()
            course.execute_notebook(NOTEBOOK, quick=False)
            notebook_s.append(time.perf_counter() - t0)
            cpu1 = os.times()
            cpu_s.append((cpu1.children_user - cpu0.children_user) + (cpu1.children_system - cpu0.children_system)
                         + (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system))
            changed = sorted(name for name, v in tree(cache).items() if before.get(name) != v)
            if changed:
                print(f"the notebook recomputed {changed[:5]}: the bundle does not match this checkout "
                      "(make a new one with `make cache-bundle`)", file=sys.stderr)
                return 1
        print(f"run {k + 1}: restore {restore_s[-1]:.1f} s, notebook 05 {notebook_s[-1]:.1f} s "
              f"(CPU {cpu_s[-1]:.0f} s, load {load[-1]:.1f})", flush=True)
    flat = {"cpu_count": os.cpu_count(), "runs": args.runs, "bundle_bytes": args.bundle.stat().st_size, "target_nb05_s": TARGET_S}
    if made is not None:
        made.cleanup()
    for name, values in (("restore_s", restore_s), ("nb05_full_restored_s", notebook_s), ("nb05_cpu_s", cpu_s),
                         ("load_avg_1min", load)):
        flat.update({f"{name}_median": statistics.median(values), f"{name}_min": min(values), f"{name}_max": max(values)})
    flat["target_nb05_le_120s_met"] = flat["nb05_full_restored_s_median"] <= TARGET_S
    atomic_write_text(OUT, json.dumps(flat, indent=2, sort_keys=True) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
