"""Does the channel model (helpers.bayes.build_channel_model, notebook 06) fit without divergences?

A divergence-free fit on one machine is not a property of the model: the chains' floating-point
paths depend on the machine code Numba generates, so a seed that is clean here can diverge on a
learner's laptop. This benchmark sweeps what changes those paths, each fit in a FRESH process with
EMPTY compile caches (its own new ``PYTENSOR_FLAGS=base_compiledir=...`` and ``NUMBA_CACHE_DIR``,
as ``benchmarks/bench_bayes.py`` does for a cold start):

* seeds (the sampler's ``seed``; the course's own, 20180923, comes first);
* adstock off and on (the two fits of notebook 06);
* ``NUMBA_CPU_NAME``: the host's CPU (unset) and ``generic`` (Numba compiles for a generic
  x86-64, another code path: a stand-in for "another machine").

Every fit uses the course's settings (:func:`helpers.bayes.channel_fit_settings`, full mode:
4 chains x (1,000 tune + 1,000 draws)) on the external campaign data, through
``build_channel_model`` and ``sample_model`` (the fit of ``fit_channels`` without its convergence
check, so that a failing fit is counted, not raised); ``--target-accept`` overrides the setting.
Fits run one after another (the machine is shared; no parallel fits).

Reported (flat JSON, build/bench/bench_channel_fit.json): ``divergences_max`` and
``divergences_total`` over all fits, per setting (``adstock_{off,on}_cpu_{host,generic}_*``) the
divergences total and per seed, the worst r_hat and lowest bulk ESS of the quantities the
simulator reads (intercepts, slopes, cvs, adstock) and of the free variables the checks look at,
the fits that pass the course's checks, and ``wall_s`` (the whole fit: build, compile, sample)
median, min and max.

Usage: python benchmarks/bench_channel_fit.py            # 2 seeds x adstock off/on, host CPU (~3 min)
       python benchmarks/bench_channel_fit.py --full     # 8 seeds x adstock x {host, generic} (~20 min)
       [--seeds N] [--target-accept 0.8] [--out PATH]
(internally re-runs itself as ``--worker SEED ADSTOCK TARGET_ACCEPT``).
"""

from __future__ import annotations

import argparse
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

OUT = ROOT / "build" / "bench" / "bench_channel_fit.json"
COURSE_SEED = 20180923
MARK = "BENCH_RESULT "
#: What the simulator reads from the posterior (helpers.bayes.to_channel_draws), adstock added when fitted.
ENV_NAMES = ("imp_intercept_c", "imp_slope", "imp_cv", "clk_intercept_c", "clk_slope", "clk_cv")


def seeds(n: int) -> list[int]:
    """The course's seed first, then 1, 2, ...: ``n`` seeds in all."""
    return [COURSE_SEED, *range(1, n)]


def one_fit(seed: int, adstock: bool, target_accept: float | None) -> dict:
    """Inside the worker: one fit of the channel model through the course's code path."""
    import arviz as az

    from helpers import bayes
    from helpers.data import load_external

    ch = bayes.channel_data(load_external())
    settings = bayes.channel_fit_settings(False, seed=seed, **({} if target_accept is None else {"target_accept": target_accept}))
    t0 = time.perf_counter()
    model = bayes.build_channel_model(ch, adstock=adstock)
    idata = bayes.sample_model(model, settings, progressbar=False)
    wall = time.perf_counter() - t0
    env_names = [*ENV_NAMES, *(["adstock"] if adstock else [])]
    env_diag = az.summary(idata, var_names=env_names, kind="diagnostics", round_to="none")
    check_diag = az.summary(idata, var_names=bayes.channel_var_names(adstock), kind="diagnostics", round_to="none")
    divergences = int(idata.sample_stats["diverging"].sum())
    worst_rhat = float(check_diag["r_hat"].max())
    lowest_ess = float(check_diag["ess_bulk"].min())
    return {
        "target_accept": settings.target_accept,
        "divergences": divergences,
        "env_max_rhat": float(env_diag["r_hat"].max()),
        "env_min_ess_bulk": float(env_diag["ess_bulk"].min()),
        "checked_max_rhat": worst_rhat,
        "checked_min_ess_bulk": lowest_ess,
        "passes_course_checks": bool(divergences <= settings.max_divergences and worst_rhat <= settings.max_rhat
                                     and lowest_ess >= settings.min_ess_bulk),
        "compile_s": float(idata.posterior.attrs["compile_s"]),
        "sampling_s": float(idata.posterior.attrs["sampling_s"]),
        "wall_s": wall,
        "model_version": bayes.CHANNEL_MODEL_VERSION,
    }


def run_process(seed: int, adstock: bool, cpu: str, target_accept: float | None, cache_dir: str) -> dict:
    """One fit in a fresh interpreter with empty compile caches under ``cache_dir``."""
    env = dict(os.environ)
    env["PYTENSOR_FLAGS"] = f"base_compiledir={cache_dir}/pytensor"
    env["NUMBA_CACHE_DIR"] = f"{cache_dir}/numba"
    env["TQDM_DISABLE"] = "1"
    env.pop("NUMBA_CPU_NAME", None)
    env.pop("NUMBA_CPU_FEATURES", None)
    if cpu == "generic":
        env["NUMBA_CPU_NAME"] = "generic"
    cmd = [sys.executable, __file__, "--worker", str(seed), str(int(adstock)), "none" if target_accept is None else str(target_accept)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    process_s = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"bench_channel_fit: the worker (seed {seed}, adstock {adstock}, cpu {cpu}) failed (exit code {proc.returncode})")
    return {**json.loads(lines[-1][len(MARK):]), "process_s": process_s}


def measure(seed_list: list[int], cpus: list[str], target_accept: float | None) -> dict[str, dict[int, dict]]:
    """``{setting: {seed: run}}``, one fit at a time, settings interleaved per seed."""
    runs: dict[str, dict[int, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_channel_fit_") as tmp:
        for seed in seed_list:
            for cpu in cpus:
                for adstock in (False, True):
                    setting = f"adstock_{'on' if adstock else 'off'}_cpu_{cpu}"
                    run = run_process(seed, adstock, cpu, target_accept, f"{tmp}/{setting}_{seed}")
                    runs.setdefault(setting, {})[seed] = run
                    print(f"seed {seed:>9d} {setting:24s} divergences {run['divergences']:3d}  r_hat {run['env_max_rhat']:.4f}  "
                          f"ESS {run['env_min_ess_bulk']:6.0f}  fit {run['wall_s']:5.1f} s", flush=True)
    return runs


def flatten(runs: dict[str, dict[int, dict]], seed_list: list[int]) -> dict:
    """One flat JSON object: totals, then ``<setting>_<metric>`` and ``<setting>_seed<seed>_divergences``."""
    every = [r for by_seed in runs.values() for r in by_seed.values()]
    flat: dict = {
        "model_version": every[0]["model_version"],
        "target_accept": every[0]["target_accept"],
        "chains": 4, "tune_per_chain": 1000, "draws_per_chain": 1000,
        "seeds": ",".join(map(str, seed_list)),
        "fits": len(every),
        "cpu_count": os.cpu_count(),
        "divergences_max": max(r["divergences"] for r in every),
        "divergences_total": sum(r["divergences"] for r in every),
        "fits_with_divergences": sum(r["divergences"] > 0 for r in every),
        "fits_passing_course_checks": sum(r["passes_course_checks"] for r in every),
        "env_max_rhat_max": max(r["env_max_rhat"] for r in every),
        "env_min_ess_bulk_min": min(r["env_min_ess_bulk"] for r in every),
        "wall_s_median": statistics.median(r["wall_s"] for r in every),
    }
    for setting, by_seed in runs.items():
        rs = list(by_seed.values())
        flat[f"{setting}_divergences_total"] = sum(r["divergences"] for r in rs)
        for seed, r in by_seed.items():
            flat[f"{setting}_seed{seed}_divergences"] = r["divergences"]
        flat[f"{setting}_fits_passing_course_checks"] = sum(r["passes_course_checks"] for r in rs)
        flat[f"{setting}_env_max_rhat_max"] = max(r["env_max_rhat"] for r in rs)
        flat[f"{setting}_env_min_ess_bulk_min"] = min(r["env_min_ess_bulk"] for r in rs)
        flat[f"{setting}_checked_max_rhat_max"] = max(r["checked_max_rhat"] for r in rs)
        flat[f"{setting}_checked_min_ess_bulk_min"] = min(r["checked_min_ess_bulk"] for r in rs)
        for metric in ("wall_s", "compile_s", "sampling_s"):
            values = [r[metric] for r in rs]
            flat[f"{setting}_{metric}_median"] = statistics.median(values)
            flat[f"{setting}_{metric}_min"] = min(values)
            flat[f"{setting}_{metric}_max"] = max(values)
    return flat


def print_table(runs: dict[str, dict[int, dict]], seed_list: list[int], flat: dict) -> None:
    settings = list(runs)
    print(f"\nchannel model {flat['model_version']}, target_accept {flat['target_accept']}: divergences per fit "
          "(fresh process, empty compile caches)")
    print(f"{'seed':>9s}" + "".join(f"{s:>26s}" for s in settings))
    for seed in seed_list:
        print(f"{seed:>9d}" + "".join(f"{runs[s][seed]['divergences']:>26d}" for s in settings))
    print(f"{'wall s':>9s}" + "".join(f"{flat[f'{s}_wall_s_median']:>26.1f}" for s in settings) + "   (median)")
    print(f"divergences: max {flat['divergences_max']}, total {flat['divergences_total']} over {flat['fits']} fits; "
          f"{flat['fits_passing_course_checks']} of {flat['fits']} pass the course's checks; "
          f"worst r_hat {flat['env_max_rhat_max']:.4f}, lowest bulk ESS {flat['env_min_ess_bulk_min']:.0f}")


def main() -> None:
    from helpers.data import atomic_write_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="8 seeds x adstock off/on x NUMBA_CPU_NAME host/generic (32 fits)")
    parser.add_argument("--seeds", type=int, default=None, help="how many seeds (default 2; 8 with --full)")
    parser.add_argument("--target-accept", type=float, default=None, help="default: helpers.bayes.channel_fit_settings's")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    n = args.seeds or (8 if args.full else 2)
    seed_list = seeds(n)
    cpus = ["host", "generic"] if args.full else ["host"]
    runs = measure(seed_list, cpus, args.target_accept)
    flat = flatten(runs, seed_list)
    print_table(runs, seed_list, flat)
    atomic_write_text(args.out, json.dumps(flat, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        ta = None if sys.argv[4] == "none" else float(sys.argv[4])
        print(MARK + json.dumps(one_fit(int(sys.argv[2]), bool(int(sys.argv[3])), ta)), flush=True)
    else:
        main()
