"""Speed of the budget-pacing environment (helpers.env) and of the shared evaluation.

Measures
  * environment steps per second of ``BudgetPacingVectorEnv`` with 1, 16 and 64 parallel
    months (one "step" = one day of one month; autoreset included), random actions;
  * wall time to evaluate one policy over 1,000 months with ``helpers.baselines.Evaluator``:
    warm (the optimum's allocations and episodes already cached, as when a training loop
    evaluates repeatedly) and cold (a fresh Evaluator, optimum solved and played first).

Targets on 2 cores: >= 200,000 steps/s at 64 parallel months; a 1,000-month evaluation <= 2 s.
Timings are the best of several repeats (what the code can do) and their median (what it
did): the machine is shared, so both are noisy. Steps per *CPU* second (process time) show
what one uncontended core does, since the simulator is single-threaded numpy. The posterior is a synthetic 4,000-draw
jitter of the ground truth (the size of a 4 x 1,000 NUTS run): speed does not depend on the
values. Figures are printed and written as one flat JSON object to build/bench/bench_env.json.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers import data  # noqa: E402
from helpers.baselines import Evaluator, HolidayRule, HumanPolicy, even_pacing  # noqa: E402
from helpers.bayes import FunnelDraws  # noqa: E402
from helpers.env import BudgetPacingVectorEnv  # noqa: E402

OUT = ROOT / "build" / "bench" / "bench_env.json"
N_DRAWS = 4000
REPEATS = 7
TARGET_STEPS_PER_S = 200_000
TARGET_EVAL_S = 2.0


def synthetic_posterior(n_draws: int = N_DRAWS, seed: int = 0) -> FunnelDraws:
    rng = np.random.default_rng(seed)
    d = {k: v * np.exp(0.01 * rng.standard_normal(n_draws)) for k, v in data.TRUE_PARAMS.items()}
    return FunnelDraws.from_dict(d)


def steps_per_second(draws: FunnelDraws, num_envs: int, seconds: float = 0.4) -> tuple[float, float, float]:
    """(best, median, per CPU second) environment steps per second over REPEATS timed chunks."""
    env = BudgetPacingVectorEnv(draws, num_envs=num_envs)
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, size=(256, num_envs, 1)).astype(np.float32)
    t0 = time.perf_counter()
    calls = 0
    while time.perf_counter() - t0 < 0.1:  # warm up and size the chunks
        env.step(actions[calls % 256])
        calls += 1
    chunk = max(10, int(calls * seconds / 0.1))
    rates, cpu_rates = [], []
    for _ in range(REPEATS):
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(chunk):
            env.step(actions[i % 256])
        rates.append(chunk * num_envs / (time.perf_counter() - t0))
        cpu_rates.append(chunk * num_envs / max(time.process_time() - c0, 1e-9))
    return max(rates), statistics.median(rates), statistics.median(cpu_rates)


def eval_seconds(evaluator: Evaluator, make_policy) -> tuple[float, float]:
    times = []
    for _ in range(REPEATS):
        policy = make_policy()  # fresh: the human policy caches its monthly plans
        t0 = time.perf_counter()
        evaluator.evaluate(policy)
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def main() -> dict:
    draws = synthetic_posterior()
    out: dict[str, float | int | str] = {}
    for n in (1, 16, 64):
        best, median, per_cpu = steps_per_second(draws, n)
        out[f"steps_per_s_{n}_envs"] = round(best)
        out[f"steps_per_s_{n}_envs_median"] = round(median)
        out[f"steps_per_cpu_s_{n}_envs"] = round(per_cpu)
        print(f"{n:3d} parallel months: {best:12,.0f} steps/s (best of {REPEATS}), median {median:,.0f}; {per_cpu:,.0f} per CPU second")

    t0 = time.perf_counter()
    evaluator = Evaluator(draws, n_months=1000)
    result = evaluator.evaluate(even_pacing)
    out["eval_1000_months_cold_s"] = round(time.perf_counter() - t0, 3)
    print(f"evaluate 1,000 months, cold (solve + play the optimum first): {out['eval_1000_months_cold_s']:.2f} s")
    for name, make_policy in (("even", lambda: even_pacing), ("holiday_rule", lambda: HolidayRule(2.0)), ("human", HumanPolicy)):
        best, median = eval_seconds(evaluator, make_policy)
        out[f"eval_1000_months_{name}_s"] = round(best, 4)
        out[f"eval_1000_months_{name}_s_median"] = round(median, 4)
        print(f"evaluate 1,000 months, warm, {name:12s}: {best:.3f} s (best), median {median:.3f} s")
    out["pct_of_optimum_even_synthetic_posterior"] = round(result["pct_of_optimum"], 3)

    out.update(
        target_steps_per_s_64_envs=TARGET_STEPS_PER_S,
        target_eval_1000_months_s=TARGET_EVAL_S,
        meets_steps_target=bool(out["steps_per_s_64_envs"] >= TARGET_STEPS_PER_S),
        meets_eval_target=bool(out["eval_1000_months_human_s"] <= TARGET_EVAL_S and out["eval_1000_months_cold_s"] <= TARGET_EVAL_S),
        n_posterior_draws=N_DRAWS,
        cpu_count=os.cpu_count(),
        load_avg_1min=round(os.getloadavg()[0], 2),
        note="shared machine: timings are noisy (best and median of repeats)",
    )
    data.atomic_write_text(OUT, json.dumps(out, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)} (load average {out['load_avg_1min']} on {out['cpu_count']} cores: figures are noisy)")
    return out


if __name__ == "__main__":
    main()
