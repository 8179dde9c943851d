"""Comparing runs and policies: the epsilon sweep, curves over seeds, the comparison table, day-by-day paths (notebooks 05, 06).

:func:`epsilon_sweep` trains clip epsilon x seeds (curves cached in one JSON file);
:func:`comparison_table` puts PPO seeds, the baselines, the optima and the oracle on the same
months; :func:`daily_paths` and :func:`channel_daily_spend` show what a policy does day by day;
:func:`settle_step` reads when a curve settles.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from helpers.baselines import Evaluator, standard_policies
from helpers.bayes import FunnelDraws
from helpers.env import EnvConfig
from helpers.ppo import PPOConfig
from helpers.training.cache import _eval_key, _warn_rebuild, read_json_cache, run_key, write_json_cache
from helpers.training.config import BUDGET_PPO, EVAL_EVERY, N_EVAL_MONTHS, NUM_ENVS, SWEEP_EPSILONS, validation_evaluator
from helpers.training.run import train_budget_agent

# --- the epsilon sweep ------------------------------------------------------------------------

SWEEP_COLUMNS = ["clip_eps", "seed", "step", "train_wall_s", "pct_of_optimum"]


def epsilon_sweep(
    draws: FunnelDraws,
    total_steps: int,
    epsilons: Sequence[float] = SWEEP_EPSILONS,
    seeds: Sequence[int] = (0, 1, 2),
    config: PPOConfig | None = None,
    env_config: EnvConfig | None = None,
    *,
    num_envs: int = NUM_ENVS,
    eval_every: int = EVAL_EVERY,
    n_eval_months: int = N_EVAL_MONTHS,
    evaluator: Evaluator | None = None,
    cache_path: str | Path | None = None,
    refit: bool = False,
    progress: bool = False,
) -> pd.DataFrame:
    """Train one agent per (clip epsilon, seed) and return every learning curve, long format.

    Columns :data:`SWEEP_COLUMNS` (one row per measurement). With ``cache_path`` the curves
    are read from / written to that JSON file (keyed like :func:`run_key`, plus the grid);
    ``df.attrs`` holds ``from_cache`` and ``wall_s`` (the sweep's total time when computed).
    """
    config = config or BUDGET_PPO
    epsilons, seeds = [float(e) for e in epsilons], [int(s) for s in seeds]
    evaluator = evaluator or validation_evaluator(draws, env_config, n_eval_months)
    key = run_key(draws, total_steps, config, env_config, num_envs=num_envs, eval_every=eval_every, **_eval_key(evaluator))
    key.update(kind="budget-ppo-epsilon-sweep", epsilons=epsilons, seeds=seeds)
    if cache_path is not None and not refit:
        payload, reason = read_json_cache(cache_path, key)
        if payload is not None:
            df, problem = _sweep_frame(payload, epsilons, seeds)
            if df is not None:
                df.attrs.update(from_cache=True, wall_s=float(payload["wall_s"]))
                return df
            reason = f"corrupted: {problem}"
        _warn_rebuild(Path(cache_path), reason)
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    parts = []
    grid = [(e, s) for e in epsilons for s in seeds]
    for eps, seed in tqdm(grid, desc="epsilon sweep", disable=not progress):
        run = train_budget_agent(draws, total_steps, dataclasses.replace(config, clip_eps=eps, seed=seed), env_config,
                                 num_envs=num_envs, evaluator=evaluator, eval_every=eval_every)
        parts.append(run.curve.assign(clip_eps=eps, seed=seed))
    df = pd.concat(parts, ignore_index=True)[SWEEP_COLUMNS]
    wall = time.perf_counter() - t0
    if cache_path is not None:
        write_json_cache(cache_path, key, {"curves": df.to_dict(orient="list"), "wall_s": wall})
    df.attrs.update(from_cache=False, wall_s=wall)
    return df


def _sweep_frame(payload: Any, epsilons: list[float], seeds: list[int]) -> tuple[pd.DataFrame | None, str | None]:
    """Rebuild and validate the sweep's DataFrame from a cache payload."""
    try:
        df = pd.DataFrame(payload["curves"])[SWEEP_COLUMNS]
        float(payload["wall_s"])
    except Exception as e:
        return None, f"{type(e).__name__}: {e}"
    if not np.all(np.isfinite(df[["clip_eps", "step", "train_wall_s", "pct_of_optimum"]].to_numpy(dtype=float))):
        return None, "non-finite values"
    have = {(float(e), int(s)) for e, s in df[["clip_eps", "seed"]].itertuples(index=False)}
    want = {(e, s) for e in epsilons for s in seeds}
    if have != want:
        return None, f"the grid differs: {sorted(want - have)} missing"
    return df, None


def sweep_summary(sweep: pd.DataFrame) -> pd.DataFrame:
    """Final % of the optimum per clip epsilon: mean, min, max over seeds (index ``clip_eps``)."""
    last = sweep.sort_values("step").groupby(["clip_eps", "seed"]).tail(1)
    return last.groupby("clip_eps")["pct_of_optimum"].agg(["mean", "min", "max", "count"])


# --- several seeds, the comparison table --------------------------------------------------------


def mean_curve(curves: Iterable[pd.DataFrame], x: str = "step", y: str = "pct_of_optimum") -> pd.DataFrame:
    """Mean, min and max of ``y`` across runs, at the ``x`` values all runs share (index ``x``)."""
    wide = pd.concat([c.set_index(x)[y].rename(i) for i, c in enumerate(curves)], axis=1, join="inner")
    return pd.DataFrame({"mean": wide.mean(axis=1), "min": wide.min(axis=1), "max": wide.max(axis=1), "n": wide.shape[1]})


TABLE_COLUMNS = [
    "mean_clicks", "pct_of_optimum", "pct_of_optimum_se", "mean_acquisitions", "pct_of_optimum_acquisitions",
    "mean_cpc", "cpc_pct_of_optimum", "cvar5_clicks", "pct_of_optimum_cvar5", "budget_used",
]


def comparison_table(evaluator: Evaluator, agents: Mapping[str, Callable], config: EnvConfig | None = None,
                     baselines: Mapping[str, Callable] | None = None, include_oracle: bool = True) -> pd.DataFrame:
    """PPO policies, the baselines, the optima and the oracle on the evaluator's shared months.

    ``agents``: name -> policy (one per seed). Adds a row ``"PPO (mean of N seeds)"`` averaging
    the agents' rows (with ``pct_of_optimum_sd`` across seeds). The last row is the oracle
    (``helpers.baselines.ORACLE_NAME``), which knows each month's posterior draw: the upper
    bound no policy beats beyond noise (the open-loop optimum is not one); ``include_oracle=False``
    leaves it out (several channels with carryover have none). Columns :data:`TABLE_COLUMNS`.
    """
    baselines = standard_policies(config) if baselines is None else baselines
    table = evaluator.table({**agents, **baselines}, include_oracle=include_oracle)
    ppo_rows = table.loc[list(agents)]
    mean = ppo_rows[TABLE_COLUMNS].mean()
    mean["pct_of_optimum_se"] = float(np.sqrt((ppo_rows["pct_of_optimum_se"] ** 2).mean() / len(agents)))
    name = f"PPO (mean of {len(agents)} seeds)"
    out = pd.concat([pd.DataFrame([mean], index=[name]), table[TABLE_COLUMNS]])
    out.index.name = "policy"
    out["pct_of_optimum_sd"] = np.nan
    out.loc[name, "pct_of_optimum_sd"] = float(ppo_rows["pct_of_optimum"].std(ddof=1)) if len(agents) > 1 else np.nan
    return out


# --- what a policy does, day by day ------------------------------------------------------------


class _DailyRecorder:
    """Wraps a policy; before every step, records the evaluator core's running totals per month."""

    needs_state = True

    def __init__(self, policy: Callable, core):
        self.policy, self.core = policy, core
        self.rows: list[np.ndarray] = []  # (4, n) per step: budget left, return, clicks, day

    def __call__(self, obs, state):
        c = self.core
        self.rows.append(np.stack([c.budget_left, c.ep_return, c.ep_clicks, c.day.astype(np.float64)]))
        if getattr(self.policy, "needs_state", False):
            return self.policy(obs, state)
        return self.policy(obs)


def daily_paths(policy: Callable, evaluator: Evaluator) -> dict[str, np.ndarray]:
    """What ``policy`` does day by day on the evaluator's months (same months, draws and noise
    as its tables): ``spend``, ``reward`` and ``clicks``, each ``(n_months, MAX_DAYS)``, NaN
    past a month's end. Rewards are in the evaluator's ``config.reward``.
    """
    from helpers.env import MAX_DAYS

    rec = _DailyRecorder(policy, evaluator.core)
    ep = evaluator.run(rec)
    before = np.stack(rec.rows)  # (T, 4, n), before each step
    after = np.concatenate([before[1:], np.stack([np.zeros(evaluator.n_months), ep["return"], ep["clicks"], before[-1, 3]])[None]])
    played = before[:, 3] < evaluator.calendar.n_days[evaluator.month_idx]  # (T, n)
    out = {}
    for k, name in ((0, "spend"), (1, "reward"), (2, "clicks")):
        step = (before[:, k] - after[:, k]) if name == "spend" else (after[:, k] - before[:, k])
        table = np.full((evaluator.n_months, MAX_DAYS), np.nan)
        table[:, : step.shape[0]] = np.where(played, step, np.nan).T
        out[name] = table
    return out


# --- reading curves ---------------------------------------------------------------------------


def settle_step(x: Sequence[float], y: Sequence[float], frac: float = 0.9, log: bool = False, tail: float = 0.2) -> float:
    """The first ``x`` from which ``y`` has covered at least ``frac`` of its way from start to end, for good.

    "End" is the mean of the last ``tail`` share of the points (robust to noise), "start" the
    first point; with ``log`` the way is measured on ``log(y)`` (for losses spanning decades).
    Works for rising and falling curves. NaNs are ignored. Returns NaN if ``y`` does not move.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(y) & np.isfinite(x) & ((y > 0) if log else True)
    x, y = x[ok], (np.log(y[ok]) if log else y[ok])
    if len(y) < 2:
        return float("nan")
    k = max(1, int(math.ceil(tail * len(y))))
    start, end = y[0], y[-k:].mean()
    if end == start:
        return float("nan")
    progress = (y - start) / (end - start)
    below = np.flatnonzero(progress < frac)
    if len(below) == 0:
        return float(x[0])
    if below[-1] == len(x) - 1:
        return float("nan")
    return float(x[below[-1] + 1])


def channel_daily_spend(policy: Callable, evaluator: Evaluator) -> np.ndarray:
    """What ``policy`` spends per day and channel on the evaluator's months (its tables' months,
    draws and noise): ``(n_months, MAX_DAYS, K)``, NaN past a month's end."""
    from helpers.env import MAX_DAYS

    core = evaluator.core
    if not core.multichannel:
        raise ValueError("channel_daily_spend needs an evaluator of the several-channel env")
    rows: list[np.ndarray] = []

    class Recorder:
        needs_state = True

        def __call__(self, obs, state):
            rows.append(core.ep_channel_spend.T.copy())  # (n, K) spent so far, before today's step
            return policy(obs, state) if getattr(policy, "needs_state", False) else policy(obs)

    evaluator.run(Recorder())
    so_far = np.stack(rows + [core.ep_channel_spend.T.copy()])  # (T + 1, n, K)
    daily = np.diff(so_far, axis=0)  # (T, n, K)
    out = np.full((evaluator.n_months, MAX_DAYS, core.n_channels), np.nan)
    out[:, : daily.shape[0]] = daily.transpose(1, 0, 2)
    past_end = np.arange(MAX_DAYS)[None, :] >= evaluator.calendar.n_days[evaluator.month_idx][:, None]
    out[past_end] = np.nan
    return out
