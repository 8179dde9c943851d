"""How long each notebook takes: the timings TEACHING.md quotes, and `make course`'s 15-minute goal.

Runs every course notebook top to bottom in a fresh kernel, through the same runner as the
tests and `make course` (``helpers.course.execute_notebook``), in three situations:

* ``full_cold``: full mode, every cache empty (a private ``COURSE_CACHE_DIR``, and private
  PyTensor and Numba compile caches): one `make course` on a fresh clone and a fresh machine, the
  posterior fits, the samplers' compilation and the training runs included;
* ``full_warm``: full mode again, caches filled by the cold run: what an instructor who ran
  `make course` the day before waits for in front of the room;
* ``quick_warm``: quick mode (``COURSE_QUICK=1``) with its caches filled, after one untimed quick
  run: the live-demo setting.

Seconds per notebook and in total, one flat JSON object in build/bench/bench_course.json.
Target (issue 8): the full course in one cold run <= 15 min on 2 cores. The machine is shared;
rerun before trusting a difference of a few seconds.

Usage: python benchmarks/bench_course.py [--situations full_cold,full_warm,quick_warm]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = ROOT / "build" / "bench" / "bench_course.json"
SITUATIONS = ("full_cold", "full_warm", "quick_warm")
TARGET_FULL_COLD_S = 15 * 60


def run_all(quick: bool) -> dict[str, float]:
    from helpers import course

    times = {}
    for path in course.course_notebooks():
        t0 = time.perf_counter()
        course.execute_notebook(path, quick=quick)
        times[path.stem] = time.perf_counter() - t0
        print(f"   {path.name}: {times[path.stem]:.1f} s", flush=True)
    return times


def main() -> None:
    from helpers.data import atomic_write_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--situations", default=",".join(SITUATIONS))
    args = parser.parse_args()
    wanted = args.situations.split(",")
    flat: dict = {"cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench_course_") as cache:
        # inherited by every kernel: the course's caches and the compilers' caches, all empty
        os.environ["COURSE_CACHE_DIR"] = cache
        os.environ["PYTENSOR_FLAGS"] = f"base_compiledir={cache}/pytensor"
        os.environ["NUMBA_CACHE_DIR"] = f"{cache}/numba"
        for situation in SITUATIONS:
            if situation not in wanted:
                continue
            quick = situation.startswith("quick")
            if situation == "quick_warm":
                print("== quick mode, untimed run to fill the quick caches ...", flush=True)
                run_all(quick=True)
            print(f"== {situation}", flush=True)
            times = run_all(quick)
            for name, s in times.items():
                flat[f"{situation}_{name}_s"] = s
            flat[f"{situation}_total_s"] = sum(times.values())
            print(f"   total {flat[f'{situation}_total_s']:.0f} s", flush=True)
    if "full_cold_total_s" in flat:
        flat["target_full_cold_le_15min_met"] = flat["full_cold_total_s"] <= TARGET_FULL_COLD_S
    atomic_write_text(OUT, json.dumps(flat, indent=2, sort_keys=True) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
