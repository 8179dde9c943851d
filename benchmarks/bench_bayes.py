"""Speed of fitting the Bayesian funnel (helpers.bayes.fit_funnel): which sampler is the default?

Every fit runs in a FRESH Python process, through the course's own code path (``fit_funnel``:
build, compile, sample, convergence checks), 4 chains x (1000 tune + 1000 draws) on
data/marketing_daily.csv, and is repeated so that the decision rests on medians, not on one
noisy run (the machine is shared):

* cold: ``REPEATS`` processes, each with EMPTY compile caches (its own new
  ``PYTENSOR_FLAGS=base_compiledir=...``, where PyTensor keeps its C modules and its Numba cache,
  and its own ``NUMBA_CACHE_DIR``): what a learner's very first fit costs;
* warm: ``REPEATS`` processes sharing caches that one untimed run filled first: what every later
  fit in a new kernel costs (the course itself then reads the cached posterior, not a refit).

Variants:

* ``pymc``: PyMC 6's own NUTS with its default backend (PyTensor 3's Numba backend);
* ``pymc_c``: PyMC's own NUTS with PyTensor's C backend (the PyMC 5 default), for comparison;
* ``nutpie``: nutpie (Rust NUTS) on the Numba-compiled model, with the course's lean callbacks
  (``helpers.bayes.fit.compile_nutpie``: what ``fit_funnel`` runs);
* ``nutpie_stock``: the same with nutpie's own Numba callbacks (what the lean ones save);
* ``nutpie_freeze``: lean, and ``freeze_model=True`` (dims and shared data folded as constants);
* ``nutpie_opt1``: lean, under ``NUMBA_OPT=1`` (LLVM optimisation level 1 instead of 3);
* ``nutpie_jax``: nutpie's JAX backend, only when the optional ``jax`` package is importable.

What each fit compiles, and which parts a warm process reads from disk (measured with
timing hooks; figures in the docstring of ``helpers.bayes.fit.compile_nutpie``): PyTensor
rewrites the log density + gradient graph and the trace graph and turns them into Python
source (every process: no cache); Numba compiles those two functions (PyTensor caches them
under ``base_compiledir/numba``: a warm process loads them); then nutpie's two C callbacks that
wrap them (every process: not cacheable).

Reported per variant and start (cold, warm): median, min and max of ``compile_s`` (for PyMC:
everything before the first draw), ``sampling_s``, ``wall_s`` (the whole fit), ``cpu_s`` (CPU
seconds of the fit, all threads: steadier than wall on a shared machine; for ``pymc`` the
sampling workers' CPU is not in it) and min-bulk-ESS per second of wall and of sampling time,
plus the imports, the whole process (wall and CPU, children included) and the 1-minute load
average when each process started (the machine is shared: read wall times against it). The course's
default (``helpers.bayes.DEFAULT_SAMPLER``) must be the sampler with the lower median COLD wall
of ``pymc`` and ``nutpie``; the benchmark prints which one that is, by how much, and whether the
default agrees. Targets on 2 cores: default cold fit <= 15 s, fresh-process warm fit <= 8 s.

Usage: python benchmarks/bench_bayes.py [--repeats N] [--variants pymc,nutpie,...]
(internally re-runs itself as ``--worker VARIANT``). Figures: build/bench/bench_bayes.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = ROOT / "build" / "bench" / "bench_bayes.json"
VARIANTS = {
    "pymc": {"sampler": "pymc"},
    "pymc_c": {"sampler": "pymc", "pymc_backend": "c"},
    "nutpie": {"sampler": "nutpie"},
    "nutpie_stock": {"sampler": "nutpie"},
    "nutpie_freeze": {"sampler": "nutpie"},
    "nutpie_opt1": {"sampler": "nutpie"},
    "nutpie_jax": {"sampler": "nutpie", "nutpie_backend": "jax"},
}
#: what a variant changes besides its FitSettings: the worker's environment, or the compile call
VARIANT_ENV = {"nutpie_opt1": {"NUMBA_OPT": "1"}}
VARIANT_COMPILE = {"nutpie_stock": {"lean": False}, "nutpie_freeze": {"freeze_model": True}}
#: the two candidates for the course's default (the others are measured for context)
CANDIDATES = ("pymc", "nutpie")
TUNE, DRAWS, CHAINS = 1000, 1000, 4
REPEATS = 3
TARGET_COLD_WALL_S = 15.0
TARGET_WARM_WALL_S = 8.0
METRICS = ("compile_s", "sampling_s", "wall_s", "cpu_s", "ess_per_s_wall", "ess_per_s_sampling")
MARK = "BENCH_RESULT "


def one_fit(variant: str) -> dict:
    """Inside the worker: imports, then one fit through the course's code path."""
    t0 = time.perf_counter()
    import arviz as az
    import pymc  # noqa: F401

    if VARIANTS[variant]["sampler"] == "nutpie":
        import nutpie  # noqa: F401
    from helpers import bayes
    from helpers.bayes import fit
    from helpers.data import DATA_PATH, load_daily

    import_s = time.perf_counter() - t0
    change = dict(VARIANT_COMPILE.get(variant, {}))
    fit.LEAN_NUTPIE_CALLBACKS = change.pop("lean", True)
    if change:  # e.g. freeze_model=True: passed on to nutpie.compile_pymc_model
        lean_compile = fit.compile_nutpie
        fit.compile_nutpie = lambda model, **kw: lean_compile(model, **kw, **change)
    df = load_daily(DATA_PATH)
    settings = bayes.FitSettings.full(**VARIANTS[variant], tune=TUNE, draws=DRAWS, chains=CHAINS)
    t0, c0 = time.perf_counter(), time.process_time()
    idata = bayes.fit_funnel(df, settings, progressbar=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    attrs = idata.posterior.attrs
    diag = az.summary(idata, var_names=list(bayes.CENTRED_NAMES), kind="diagnostics", round_to="none")
    min_ess = float(diag["ess_bulk"].min())
    return {
        "import_s": import_s,
        "compile_s": float(attrs["compile_s"]),
        "sampling_s": float(attrs["sampling_s"]),
        "wall_s": wall,
        "cpu_s": cpu,
        "min_ess_bulk": min_ess,
        "ess_per_s_wall": min_ess / wall,
        "ess_per_s_sampling": min_ess / float(attrs["sampling_s"]),
        "max_rhat": float(diag["r_hat"].max()),
        "divergences": int(idata.sample_stats["diverging"].sum()),
    }


def run_process(variant: str, cache_dir: str) -> dict:
    """One fit in a fresh interpreter whose compile caches live in ``cache_dir``."""
    env = dict(os.environ)
    env["PYTENSOR_FLAGS"] = f"base_compiledir={cache_dir}/pytensor"
    env["NUMBA_CACHE_DIR"] = f"{cache_dir}/numba"
    env["TQDM_DISABLE"] = "1"
    env.update(VARIANT_ENV.get(variant, {}))
    load_avg_1min = os.getloadavg()[0]
    before = os.times()
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--worker", variant], cwd=ROOT, env=env, capture_output=True, text=True)
    process_s = time.perf_counter() - t0
    after = os.times()
    process_cpu_s = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"bench_bayes: the {variant} worker failed (exit code {proc.returncode})")
    return {**json.loads(lines[-1][len(MARK) :]), "process_s": process_s, "process_cpu_s": process_cpu_s, "load_avg_1min": load_avg_1min}


def measure(variants: list[str], repeats: int) -> dict[str, dict[str, list[dict]]]:
    """``{variant: {"cold": [run, ...], "warm": [run, ...]}}``; variants interleaved per round."""
    runs = {v: {"cold": [], "warm": []} for v in variants}
    with tempfile.TemporaryDirectory(prefix="bench_bayes_") as tmp:
        for r in range(repeats):
            for v in variants:
                print(f"== cold {r + 1}/{repeats}: {v} (fresh process, empty caches)", flush=True)
                runs[v]["cold"].append(run_process(v, f"{tmp}/cold_{v}_{r}"))
                print(f"   fit {runs[v]['cold'][-1]['wall_s']:.1f} s, {runs[v]['cold'][-1]['cpu_s']:.1f} CPU s", flush=True)
        for v in variants:
            print(f"== warm: {v}: one untimed run fills the caches ...", flush=True)
            run_process(v, f"{tmp}/warm_{v}")
        for r in range(repeats):
            for v in variants:
                print(f"== warm {r + 1}/{repeats}: {v} (fresh process, caches filled)", flush=True)
                runs[v]["warm"].append(run_process(v, f"{tmp}/warm_{v}"))
                print(f"   fit {runs[v]['warm'][-1]['wall_s']:.1f} s, {runs[v]['warm'][-1]['cpu_s']:.1f} CPU s", flush=True)
    return runs


def flatten(runs: dict, repeats: int) -> dict:
    """One flat JSON object: ``<variant>_<start>_<metric>_{median,min,max}`` and the decision."""
    from helpers.bayes import DEFAULT_SAMPLER

    flat: dict = {"chains": CHAINS, "tune_per_chain": TUNE, "draws_per_chain": DRAWS, "repeats": repeats, "cpu_count": os.cpu_count()}
    for v, by_start in runs.items():
        for start, rs in by_start.items():
            for metric in (*METRICS, "import_s", "process_s", "process_cpu_s", "load_avg_1min"):
                values = [r[metric] for r in rs]
                flat[f"{v}_{start}_{metric}_median"] = statistics.median(values)
                flat[f"{v}_{start}_{metric}_min"] = min(values)
                flat[f"{v}_{start}_{metric}_max"] = max(values)
            flat[f"{v}_{start}_min_ess_bulk_min"] = min(r["min_ess_bulk"] for r in rs)
            flat[f"{v}_{start}_max_rhat_max"] = max(r["max_rhat"] for r in rs)
            flat[f"{v}_{start}_divergences_count_max"] = max(r["divergences"] for r in rs)
    candidates = [v for v in CANDIDATES if v in runs]
    if len(candidates) == 2:
        fastest = min(candidates, key=lambda v: flat[f"{v}_cold_wall_s_median"])
        other = next(v for v in candidates if v != fastest)
        flat["faster_cold_sampler"] = fastest
        flat["faster_cold_median_wall_over_other"] = flat[f"{fastest}_cold_wall_s_median"] / flat[f"{other}_cold_wall_s_median"]
        flat["faster_warm_median_wall_over_other"] = flat[f"{fastest}_warm_wall_s_median"] / flat[f"{other}_warm_wall_s_median"]
        flat["sampling_ess_per_s_median_nutpie_over_pymc"] = flat["nutpie_cold_ess_per_s_sampling_median"] / flat["pymc_cold_ess_per_s_sampling_median"]
        flat["default_sampler"] = DEFAULT_SAMPLER
        flat["default_matches_measurement"] = DEFAULT_SAMPLER == fastest
    d = DEFAULT_SAMPLER
    if d in runs:
        flat["target_default_cold_wall_le_15s_met"] = flat[f"{d}_cold_wall_s_median"] <= TARGET_COLD_WALL_S
        flat["target_default_warm_wall_le_8s_met"] = flat[f"{d}_warm_wall_s_median"] <= TARGET_WARM_WALL_S
    return flat


def print_table(runs: dict, flat: dict) -> None:
    print(f"\nfunnel model, {CHAINS} chains x ({TUNE} tune + {DRAWS} draws), {flat['repeats']} fresh processes per row;"
          " median [min, max]; shared machine: timings are noisy")
    cols = ("compile_s", "sampling_s", "wall_s", "cpu_s", "ess_per_s_sampling", "import_s", "load_avg_1min")
    print(f"{'sampler / start':20s}" + "".join(f"{c:>22s}" for c in cols))
    for v, by_start in runs.items():
        for start in by_start:
            cells = [f"{flat[f'{v}_{start}_{c}_median']:.1f} [{flat[f'{v}_{start}_{c}_min']:.1f}, {flat[f'{v}_{start}_{c}_max']:.1f}]" for c in cols]
            print(f"{v + ' ' + start:20s}" + "".join(f"{c:>22s}" for c in cells))
    if "faster_cold_sampler" in flat:
        print(f"\nlower median cold wall: {flat['faster_cold_sampler']} "
              f"({flat['faster_cold_median_wall_over_other']:.2f}x the other's median cold wall; "
              f"warm {flat['faster_warm_median_wall_over_other']:.2f}x)")
        verdict = "agrees" if flat["default_matches_measurement"] else "DISAGREES: change DEFAULT_SAMPLER in helpers/bayes/fit.py"
        print(f"helpers.bayes.DEFAULT_SAMPLER = {flat['default_sampler']!r}: {verdict}")
    for k, v in flat.items():
        if k.startswith("target"):
            print(f"  {k}: {v}")


def main() -> None:
    from helpers.data import atomic_write_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    variants = []
    for v in args.variants.split(","):
        if v not in VARIANTS:
            raise SystemExit(f"bench_bayes: unknown variant {v!r}; choose from {', '.join(VARIANTS)}")
        if VARIANTS[v].get("nutpie_backend") == "jax" and importlib.util.find_spec("jax") is None:
            print(f"== {v}: skipped (the optional jax package is not installed)")
            continue
        variants.append(v)
    runs = measure(variants, args.repeats)
    flat = flatten(runs, args.repeats)
    print_table(runs, flat)
    atomic_write_text(OUT, json.dumps(flat, indent=2, sort_keys=True) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(MARK + json.dumps(one_fit(sys.argv[2])), flush=True)
    else:
        main()
