"""How long the attendee's pre-flight check takes (``make check`` = ``python -m helpers.check``).

Target (issue 17): <= 60 s on 2 cores from a fresh environment. Every run is a fresh process
running exactly ``python -m helpers.check``, in two situations, ``REPEATS`` runs each:

* cold: the attendee's very first run after ``make env``: no bytecode (uv installs none: an empty
  ``PYTHONPYCACHEPREFIX``, so every module is compiled from source on import), empty PyTensor
  compiledir (``PYTENSOR_FLAGS=base_compiledir=...``) and empty Numba cache (``NUMBA_CACHE_DIR``);
* warm: the same three caches filled by one untimed run first (every later run).

Reported per situation: median, min and max of the whole process's wall time and CPU time (user +
sys of the process and its children: less sensitive than the wall to a shared machine), and of
the check's own steps (``--timings``: the quick checks, the tiny fit, the PPO update, which runs
beside the fit in a second process, and the CPU seconds of each process: ``main_cpu_s`` is the
critical path on a quiet machine with 2 free cores; ``quiet_2core_estimate_s`` = the larger of it
and half of all CPU seconds, about the wall such a machine shows). The 1-minute load average
before and after is recorded too: the machine is shared, read the walls with it.

Usage: python benchmarks/bench_check.py [--repeats N]. Figures: build/bench/bench_check.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = ROOT / "build" / "bench" / "bench_check.json"
REPEATS = 3
TARGET_COLD_S = 60.0
STEPS = ("versions_s", "kernel_s", "compiler_s", "caches_s", "fit_s", "ppo_s", "total_s", "main_cpu_s", "ppo_cpu_s")


def run_check(cache: Path) -> dict[str, float]:
    """One ``python -m helpers.check`` in a fresh process whose caches all live under ``cache``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPYCACHEPREFIX=str(cache / "pyc"), PYTENSOR_FLAGS=f"base_compiledir={cache / 'pytensor'}",
               NUMBA_CACHE_DIR=str(cache / "numba"), TQDM_DISABLE="1")
    timings = cache / "timings.json"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "helpers.check", "--timings", str(timings)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"bench_check: the check failed (exit code {proc.returncode})")
    steps = json.loads(timings.read_text())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # On 2 free cores the wall is at least the main process's CPU (the critical path: the PPO update
    # runs beside it) and at least half of all CPU: the wall a quiet machine would show, about.
    quiet = max(steps["main_cpu_s"], cpu / 2)
    return {"wall_s": wall, "cpu_s": cpu, "quiet_2core_estimate_s": quiet, **{k: steps[k] for k in STEPS}}


def main() -> None:
    from helpers.data import atomic_write_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"cold": [], "warm": []}
    flat: dict = {"repeats": args.repeats, "cpu_count": os.cpu_count(), "load_avg_1min_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="bench_check_") as tmp:
        for r in range(args.repeats):
            print(f"== cold {r + 1}/{args.repeats} (no bytecode, empty PyTensor and Numba caches)", flush=True)
            runs["cold"].append(run_check(Path(tmp, f"cold_{r}")))
            print(f"   {runs['cold'][-1]['wall_s']:.1f} s wall, {runs['cold'][-1]['cpu_s']:.1f} s CPU", flush=True)
        print("== warm: one untimed run fills the caches ...", flush=True)
        run_check(Path(tmp, "warm"))
        for r in range(args.repeats):
            print(f"== warm {r + 1}/{args.repeats}", flush=True)
            runs["warm"].append(run_check(Path(tmp, "warm")))
            print(f"   {runs['warm'][-1]['wall_s']:.1f} s wall, {runs['warm'][-1]['cpu_s']:.1f} s CPU", flush=True)
    flat["load_avg_1min_end"] = os.getloadavg()[0]
    for start, rs in runs.items():
        for metric in ("wall_s", "cpu_s", "quiet_2core_estimate_s", *STEPS):
            values = [r[metric] for r in rs]
            name = "s" if metric == "wall_s" else metric  # cold_s_median: the headline figure
            flat[f"{start}_{name}_median"] = statistics.median(values)
            flat[f"{start}_{name}_min"] = min(values)
            flat[f"{start}_{name}_max"] = max(values)
    flat["target_cold_le_60s_met"] = flat["cold_s_median"] <= TARGET_COLD_S
    flat["target_cold_quiet_2core_estimate_le_60s_met"] = flat["cold_quiet_2core_estimate_s_median"] <= TARGET_COLD_S
    print(f"\npython -m helpers.check, {args.repeats} fresh processes each; median [min, max]; "
          f"load average {flat['load_avg_1min_start']:.1f} -> {flat['load_avg_1min_end']:.1f} on {os.cpu_count()} cores")
    for start in runs:
        cells = [f"{m} {flat[f'{start}_{m}_median']:.1f} [{flat[f'{start}_{m}_min']:.1f}, {flat[f'{start}_{m}_max']:.1f}]"
                 for m in ("s", "cpu_s", "main_cpu_s", "ppo_cpu_s", "quiet_2core_estimate_s", "fit_s", "ppo_s")]
        print(f"{start}: " + " · ".join(cells))
    print(f"target cold median <= {TARGET_COLD_S:.0f} s: {flat['target_cold_le_60s_met']} (wall here); "
          f"{flat['target_cold_quiet_2core_estimate_le_60s_met']} (estimate for 2 free cores)")
    atomic_write_text(OUT, json.dumps(flat, indent=2, sort_keys=True) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
