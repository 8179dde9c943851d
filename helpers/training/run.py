"""One training run of PPO on the budget env, measured as % of the optimum while it trains (notebook 05).

The episode return is noisy (each month draws a posterior draw and market noise) and its scale
depends on the month; the **percentage of the open-loop optimum** of the *deterministic* policy
on the shared evaluation months (``helpers.baselines.Evaluator``: 1,000 months, common random
numbers, ~0.02-0.1 s) is the number that matters, so :class:`OptimumTracker` measures it every
``eval_every`` updates. Its time is *not* counted as training time: ``train_wall_s`` is the wall
time of rollouts and updates only. :func:`train_budget_agent` returns a :class:`TrainingRun`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from helpers.baselines import Evaluator
from helpers.bayes import FunnelDraws
from helpers.env import EnvConfig
from helpers.ppo import PPO, PPOConfig
from helpers.training.config import BUDGET_PPO, EVAL_EVERY, N_EVAL_MONTHS, NUM_ENVS, make_envs, validation_evaluator

class OptimumTracker:
    """A ``PPO.learn`` callback that measures the deterministic policy's % of the optimum.

    Every ``every``-th update (counted from the start of this run) it plays the agent on the
    ``evaluator``'s months. Each update's record is extended with ``step`` (env steps of this
    run), ``train_wall_s`` (wall time of rollouts and updates only: PPO's ``train_time_s``,
    which excludes every callback, this tracker and the chained one included) and, where
    measured, ``pct_of_optimum`` and
    ``pct_of_optimum_se`` (NaN elsewhere), then passed on to ``then`` (e.g. a live plot).

    Training stops (``False`` is returned to ``learn``) when ``then`` returns ``False`` or, with
    ``target_pct``, once a measurement reaches it.
    """

    def __init__(self, agent: PPO, evaluator: Evaluator, every: int = EVAL_EVERY, *, target_pct: float | None = None,
                 then: Callable[[dict], bool | None] | None = None):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.agent, self.evaluator, self.every = agent, evaluator, int(every)
        self.target_pct, self.then = target_pct, then
        self.start_step = agent.global_step
        self.start_update = agent.num_updates
        self.records: list[dict[str, Any]] = []
        self.evaluations: list[dict[str, float]] = []
        self.reached = False

    def measure(self, step: int, train_wall_s: float, update: int) -> dict[str, float]:
        """Evaluate the deterministic policy now; append and return the measurement."""
        agent = self.agent
        res = self.evaluator.evaluate(lambda obs: agent.predict(obs, deterministic=True), name="PPO")
        point = {"update": int(update), "step": int(step), "train_wall_s": float(train_wall_s),
                 "pct_of_optimum": float(res["pct_of_optimum"]), "pct_of_optimum_se": float(res["pct_of_optimum_se"])}
        self.evaluations.append(point)
        if self.target_pct is not None and point["pct_of_optimum"] >= self.target_pct:
            self.reached = True
        return point

    def __call__(self, record: dict[str, Any]) -> bool:
        rec = dict(record)
        rec["step"] = int(record["global_step"] - self.start_step)
        rec["train_wall_s"] = float(record["train_time_s"])  # one learn() call per tracker
        rec["pct_of_optimum"] = rec["pct_of_optimum_se"] = float("nan")
        if (record["update"] - self.start_update) % self.every == 0:
            point = self.measure(rec["step"], rec["train_wall_s"], record["update"])
            rec["pct_of_optimum"], rec["pct_of_optimum_se"] = point["pct_of_optimum"], point["pct_of_optimum_se"]
        self.records.append(rec)
        keep_going = True
        if self.then is not None and self.then(rec) is False:
            keep_going = False
        if self.reached:
            keep_going = False
        return keep_going

    def finish(self) -> None:
        """Measure the final policy if the last update was not measured (no-op otherwise)."""
        if self.records and np.isnan(self.records[-1]["pct_of_optimum"]):
            last = self.records[-1]
            point = self.measure(last["step"], last["train_wall_s"], last["update"])
            last["pct_of_optimum"], last["pct_of_optimum_se"] = point["pct_of_optimum"], point["pct_of_optimum_se"]


CURVE_COLUMNS = ["update", "step", "train_wall_s", "pct_of_optimum", "pct_of_optimum_se"]


@dataclass
class TrainingRun:
    """One training run of PPO on the budget env.

    ``history``: one row per update (``helpers.ppo.DIAGNOSTIC_COLUMNS`` plus ``step``,
    ``train_wall_s``, ``pct_of_optimum``, ``pct_of_optimum_se``; the last two NaN where not
    measured). ``curve``: the measurements only (:data:`CURVE_COLUMNS`), starting with the
    policy before this run's first update at ``step == 0``. ``wall_s``: training time without
    measurements; ``eval_s``: time of the measurements (and chained callbacks).
    """

    agent: PPO
    history: pd.DataFrame
    curve: pd.DataFrame
    wall_s: float
    eval_s: float
    from_cache: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        """Env steps of this run."""
        return int(self.curve["step"].iloc[-1])

    @property
    def final_pct(self) -> float:
        """% of the optimum of the final deterministic policy."""
        return float(self.curve["pct_of_optimum"].iloc[-1])

    def first_reach(self, pct: float) -> dict[str, float] | None:
        """The first measurement at or above ``pct`` (``step``, ``train_wall_s``, ...), or None."""
        hit = self.curve[self.curve["pct_of_optimum"] >= pct]
        return None if hit.empty else {k: float(v) for k, v in hit.iloc[0].items()}

    def policy(self) -> Callable[[np.ndarray], np.ndarray]:
        """The deterministic policy as an ``Evaluator``-ready callable."""
        agent = self.agent
        return lambda obs: agent.predict(obs, deterministic=True)


def train_budget_agent(
    draws: FunnelDraws,
    total_steps: int,
    config: PPOConfig | None = None,
    env_config: EnvConfig | None = None,
    *,
    num_envs: int = NUM_ENVS,
    agent: PPO | None = None,
    evaluator: Evaluator | None = None,
    eval_every: int = EVAL_EVERY,
    target_pct: float | None = None,
    callback: Callable[[dict], bool | None] | None = None,
    progress: bool = False,
) -> TrainingRun:
    """Train PPO on the budget env for ``total_steps`` env steps, measuring % of the optimum.

    Args:
        draws: posterior draws the env samples from (and the optimum is computed for).
        total_steps: env steps (rounded up to whole rollouts of ``num_steps * num_envs``).
        config: PPO hyperparameters (default :data:`BUDGET_PPO`); ignored with ``agent``.
        env_config: the environment (default ``EnvConfig()``: clicks reward).
        num_envs: parallel months; ignored with ``agent``.
        agent: continue training this agent (warm start; its env must be attached, e.g.
            ``PPO.load(path, envs=make_envs(new_draws))``).
        evaluator: where % of the optimum is measured (default: :func:`validation_evaluator`
            of ``draws`` and ``env_config``, 1,000 months: choices are made on validation).
        eval_every: measure every this many updates (and always before and after).
        target_pct: stop early once a measurement reaches this % of the optimum.
        callback: chained after the tracker with the extended record (return False to stop).
        progress: tqdm bar.
    """
    env_config = env_config or EnvConfig()
    if agent is None:
        agent = PPO(make_envs(draws, env_config, num_envs), config or BUDGET_PPO)
    evaluator = evaluator or validation_evaluator(draws, env_config, N_EVAL_MONTHS)
    tracker = OptimumTracker(agent, evaluator, eval_every, target_pct=target_pct, then=callback)
    t0 = time.perf_counter()
    tracker.measure(0, 0.0, agent.num_updates)
    if not tracker.reached:
        agent.learn(int(total_steps), callback=tracker, progress=progress)
    tracker.finish()
    total = time.perf_counter() - t0
    curve = pd.DataFrame(tracker.evaluations, columns=CURVE_COLUMNS)
    history = pd.DataFrame(tracker.records)
    wall = float(history["train_wall_s"].iloc[-1]) if len(history) else 0.0
    return TrainingRun(agent, history, curve, wall_s=wall, eval_s=total - wall)
