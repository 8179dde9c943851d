"""The one evaluation every policy goes through: the same months, seeds and posterior draws for all (notebooks 03, 05, 06).

:class:`Evaluator` plays any policy on 1,000 months of ``helpers.env.EVAL_MONTHS`` by default and
reports mean total clicks and acquisitions, mean cost per click, the 5% CVaR of total clicks, the
budget used, and each as a percentage of the optimum's on the very same months, posterior draws
and gamma (market) noise. These common random numbers make ``pct_of_optimum``'s paired standard
error small; they are partial (the Poisson counts are not shared once spends differ: measured in
``tests/test_env.py``, about 0.02 points of % of the optimum on 1,000 months, which the paired
standard error includes). :func:`play_month` plays one month and returns its days.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Mapping

import numpy as np
import pandas as pd

from helpers.baselines.optimum import OBJECTIVES
from helpers.baselines.oracle import ORACLE_NAME, OraclePolicy
from helpers.baselines.policies import OpenLoopPolicy, Policy, optimum_policy
from helpers.bayes import ChannelDraws, FunnelDraws
from helpers.env import EVAL_MONTHS, MAX_DAYS, EnvConfig, EnvState, PacingCore

EVAL_SEED = 20250101

def _call_policy(policy: Policy, obs: np.ndarray, state: EnvState) -> np.ndarray:
    act = policy(obs, state) if getattr(policy, "needs_state", False) else policy(obs)
    if hasattr(act, "detach"):  # a torch tensor
        act = act.detach().cpu().numpy()
    act = np.asarray(act, dtype=np.float64)
    n = len(obs)
    A = 1 if state.active is None else 1 + state.active.shape[2]
    if act.shape not in ((n, A),) + (((n,),) if A == 1 else ()):
        raise ValueError(f"policy {policy!r} returned actions of shape {act.shape}; expected ({n}, {A}) for obs of shape {obs.shape}")
    return act


def _cvar(x: np.ndarray, level: float = 0.05) -> float:
    """Mean of the worst ``level`` fraction (at least one) of ``x``."""
    k = max(1, int(math.ceil(level * len(x))))
    return float(np.sort(x)[:k].mean())


class Evaluator:
    """Plays policies on one fixed set of months, seeds and posterior draws.

    Args:
        draws: the posterior draws (``FunnelDraws``) episodes sample from.
        config: the environment configuration the policy was built for (budget, action
            transform, reward kind for ``mean_return``); its ``months`` are replaced by
            ``months``.
        n_months: episodes (months) per evaluation, all played side by side.
        seed: fixes which posterior draw each episode gets and the market noise.
        months: evaluation months, cycled in order (default ``EVAL_MONTHS``: 2025-2026, unseen;
            several channels: the config's months, since the channel data have only their own
            calendars; keep validation and test apart with different ``seed`` values then).

    ``evaluate(policy)`` returns a dict of metrics (see there); ``table(policies)`` a
    DataFrame with one row per policy plus the optima (and the oracle on request). The
    optimum's episodes are computed once and cached.

    What two policies share (common random numbers): the months, each month's posterior draw and
    the gamma (market) noise of every day and channel; not the Poisson counts once their spends
    differ (see ``helpers.env.core``'s docstring). With several channels there is
    one objective, clicks (no acquisitions in the channel data).
    """

    def __init__(self, draws: FunnelDraws | ChannelDraws, config: EnvConfig | None = None, *, n_months: int = 1000,
                 seed: int = EVAL_SEED, months=None):
        if n_months < 1:
            raise ValueError(f"n_months must be >= 1, got {n_months}")
        config = config or EnvConfig()
        if months is None:
            months = config.months if config.channels is not None else EVAL_MONTHS
        self.config = replace(config, months=tuple(months)).resolved()
        self.objectives = OBJECTIVES if self.config.channels is None else ("clicks",)
        self.draws, self.n_months, self.seed = draws, int(n_months), seed
        self.core = PacingCore(draws, self.config, n_envs=n_months)
        self.calendar = self.core.calendar
        rng = np.random.default_rng(seed)
        self.month_idx = np.arange(n_months) % len(self.calendar.months)
        self.draw_idx = rng.integers(self.core.draws.n_draws, size=n_months)
        self._optimum: dict[str, tuple[OpenLoopPolicy, dict[str, np.ndarray]]] = {}
        self._oracle: OraclePolicy | None = None

    def run(self, policy: Policy) -> dict[str, np.ndarray]:
        """Per-episode totals ``clicks, acquisitions, spend, return`` (each ``(n_months,)``)."""
        core = self.core
        core.seed(self.seed)
        core.start(np.arange(self.n_months), self.month_idx, self.draw_idx)
        for _ in range(MAX_DAYS):
            if not np.any(core.day < core.n_days):
                break
            core.step(_call_policy(policy, core.observe(), core.state()))
        return {
            "month": np.asarray(self.calendar.months)[self.month_idx],
            "draw": self.draw_idx.copy(),
            "clicks": core.ep_clicks.copy(),
            "acquisitions": core.ep_acquisitions.copy(),
            "spend": core.ep_spend.copy(),
            "return": core.ep_return.copy(),
            "budget": core.ep_budget.copy(),
            "channel_spend": core.ep_channel_spend.T.copy(),  # (n_months, K)
            "channel_clicks": core.ep_channel_clicks.T.copy(),
        }

    def optimum(self, objective: str = "clicks") -> tuple[OpenLoopPolicy, dict[str, np.ndarray]]:
        """The open-loop optimum for ``objective`` and its episodes (cached)."""
        if objective not in self._optimum:
            policy = optimum_policy(self.draws, self.config, objective)
            self._optimum[objective] = (policy, self.run(policy))
        return self._optimum[objective]

    def summarise(self, ep: Mapping[str, np.ndarray], name: str) -> dict[str, Any]:
        """The metrics of a set of episodes from :meth:`run` (no % of optimum)."""
        clicks, spend = ep["clicks"], ep["spend"]
        return {
            "policy": name,
            "n_months": self.n_months,
            "mean_clicks": float(clicks.mean()),
            "mean_acquisitions": float(ep["acquisitions"].mean()),
            "mean_cpc": float(np.mean(spend / np.maximum(clicks, 1))),
            "cvar5_clicks": _cvar(clicks),
            "budget_used": float(np.mean(spend) / self.config.budget) if self.config.budget is not None else float(np.mean(spend / ep["budget"])),
            "mean_return": float(ep["return"].mean()),
        }

    def evaluate(self, policy: Policy, name: str | None = None) -> dict[str, Any]:
        """Play ``policy`` on the evaluation months; return its metrics.

        Keys: ``policy, n_months, mean_clicks, mean_acquisitions, mean_cpc`` (mean over months
        of spend / clicks), ``cvar5_clicks`` (mean of the worst 5% monthly totals),
        ``budget_used`` (mean fraction spent; 1 by construction), ``mean_return`` (in the
        config's reward), and against the optimum on the same episodes:
        ``pct_of_optimum`` (mean clicks, % of the clicks optimum's) with its paired standard
        error ``pct_of_optimum_se``, ``pct_of_optimum_acquisitions`` (vs the acquisitions
        optimum), ``pct_of_optimum_cvar5`` and ``cpc_pct_of_optimum``.
        """
        name = name or getattr(policy, "name", None) or getattr(policy, "__name__", None) or repr(policy)
        opt_policy, opt = self.optimum("clicks")
        opt_acq = self.optimum("acquisitions")[1] if "acquisitions" in self.objectives else None
        ep = opt if policy is opt_policy else self.run(policy)
        out = self.summarise(ep, name)
        ref = self.summarise(opt, "optimum")
        ratio = out["mean_clicks"] / ref["mean_clicks"]
        paired = ep["clicks"] - ratio * opt["clicks"]  # delta method for a ratio of paired means
        out["pct_of_optimum"] = 100.0 * ratio
        out["pct_of_optimum_se"] = float(100.0 * paired.std(ddof=1) / math.sqrt(self.n_months) / ref["mean_clicks"]) if self.n_months > 1 else float("nan")
        out["pct_of_optimum_acquisitions"] = 100.0 * out["mean_acquisitions"] / float(opt_acq["acquisitions"].mean()) if opt_acq is not None else float("nan")
        out["pct_of_optimum_cvar5"] = 100.0 * out["cvar5_clicks"] / ref["cvar5_clicks"]
        out["cpc_pct_of_optimum"] = 100.0 * out["mean_cpc"] / ref["mean_cpc"]
        return out

    def oracle(self) -> OraclePolicy:
        """The oracle for this evaluator's draws and configuration (:class:`OraclePolicy`)."""
        if self._oracle is None:
            self._oracle = OraclePolicy(self.draws, self.config)
        return self._oracle

    def table(self, policies: Mapping[str, Policy], include_optimum: bool = True, include_oracle: bool = False) -> pd.DataFrame:
        """One row per policy (index ``policy``), as given, then the two optima and (with
        ``include_oracle``) the oracle, named :data:`ORACLE_NAME`."""
        rows = [self.evaluate(p, name) for name, p in policies.items()]
        if include_optimum:
            rows += [self.evaluate(self.optimum(obj)[0], f"optimum ({obj})") for obj in self.objectives]
        if include_oracle:
            rows.append(self.evaluate(self.oracle(), ORACLE_NAME))
        return pd.DataFrame(rows).set_index("policy")


def evaluate(policy: Policy, draws: FunnelDraws, config: EnvConfig | None = None, **kwargs) -> dict[str, Any]:
    """One-off ``Evaluator(draws, config, **kwargs).evaluate(policy)`` (build an Evaluator to reuse the optimum)."""
    return Evaluator(draws, config, **kwargs).evaluate(policy)


def play_month(policy: Policy, draws: FunnelDraws, month: str, config: EnvConfig | None = None, *, draw: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Play one month with ``policy`` and return its days (date, holiday, weekend, spend, impressions, clicks, acquisitions, reward, budget_left).

    ``month`` is any ``"YYYY-MM"``; ``draw`` pins the posterior draw (default: a random one;
    with ``config.params == "mean"`` the mean).
    """
    cfg = replace(config or EnvConfig(), months=(month,))
    core = PacingCore(draws, cfg, n_envs=1)
    core.seed(seed)
    core.start([0], month_idx=0, draw_idx=draw)
    n = int(core.n_days[0])
    rows = []
    for t in range(n):
        holiday, weekend = int(core.calendar.holiday[0, t]), int(core.calendar.weekend[0, t])
        reward, _, spend, imp, clk, acq = core.step(_call_policy(policy, core.observe(), core.state()))
        rows.append((holiday, weekend, spend[0], imp[0], clk[0], acq[0], reward[0], core.budget_left[0]))
    df = pd.DataFrame(rows, columns=["holiday", "weekend", "spend", "impressions", "clicks", "acquisitions", "reward", "budget_left"])
    df.insert(0, "date", core.calendar.dates(month))
    return df
