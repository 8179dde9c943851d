"""Baselines, the open-loop optimum, and the one evaluation every policy goes through.

Policies
--------
A **policy** is any callable ``policy(obs) -> actions`` with ``obs`` of shape
``(n_envs, 9)`` (see ``helpers.env.OBS_NAMES``) and actions of shape ``(n_envs, 1)`` (or
``(n_envs,)``; numpy or a CPU torch tensor). That is how a trained agent plugs in::

    evaluator.evaluate(lambda obs: agent.predict(obs, deterministic=True), name="PPO")

Open-loop plans (the optimum, the human planners) need to know *which* month and day they
are in, which the observation does not say. Such a policy sets the attribute
``needs_state = True`` and is called as ``policy(obs, state)`` with the environment's
:class:`helpers.env.EnvState` (month index, day, days left, budget left, episode id).
:class:`OpenLoopPolicy` turns any daily plan into actions this way: on day ``t`` it
spends the plan's share of what is left, ``w_t / sum_{d >= t} w_d``, of the remaining
budget, so a plan is followed exactly (to rounding) as long as its multipliers of the even
pace lie within the action bounds (they do: the optimum's stay well within 1/8-8x).

Baselines: :func:`even_pacing` (action 0), :class:`HolidayRule` (a fixed multiplier on
holidays, from the observation alone), :class:`HumanPolicy` (the marketers of the data:
see its docstring for why the estimated rule rather than a replay), and
:func:`optimum_policy` (the open-loop optimum of :func:`optimal_allocation`).

The yardstick
-------------
:func:`optimal_allocation` maximises the expected total clicks (or acquisitions) of a month
over the posterior, ``sum_d mean_j E[clicks_d | spend_d, draw j]``, subject to
``sum_d spend_d = budget``, with scipy's SLSQP over the daily shares. The expected daily
clicks of a draw are ``k * spend**e * day_boost_d`` (``e`` = elasticity,
``day_boost_d = holiday_boost**holiday_d * weekend_boost**weekend_d`` =
:meth:`helpers.bayes.FunnelDraws.day_boost`, ``k`` includes the exact gamma-mixture factor
``E[G**clk_slope]``), so for a single parameter point the optimum has a closed form: spend
proportional to ``day_boost_d ** (1 / (1 - e))`` (:func:`closed_form_allocation`; tests check
SLSQP against it to 0.1%). Holidays and weekends are the only things that make one day
different from another, and they are the whole of the optimum's advantage over even pacing.

:class:`Evaluator` plays any policy on the same months, seeds and posterior draws as every
other (1,000 months of ``helpers.env.EVAL_MONTHS`` by default) and reports mean total clicks
and acquisitions, mean cost per click, the 5% CVaR of total clicks, the budget used, and
each as a percentage of the optimum's, evaluated on the very same months and market noise
(common random numbers: the paired standard error of ``pct_of_optimum`` is a few hundredths
of a percent).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
from scipy import optimize, special

from helpers import data
from helpers.bayes import FunnelDraws
from helpers.env import (
    _PAD,
    EVAL_MONTHS,
    MAX_DAYS,
    OBS_NAMES,
    Calendar,
    EnvConfig,
    EnvState,
    PacingCore,
    action_for_share,
)

Policy = Callable[..., Any]
OBJECTIVES = ("clicks", "acquisitions")
EVAL_SEED = 20250101
HOLIDAY_TODAY = OBS_NAMES.index("holiday_today")

# --- the mean response and the optimum ---------------------------------------------------


def response_terms(draws: FunnelDraws, objective: str = "clicks") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(log_k, e, log_hboost, log_wboost)``, each ``(n_draws,)``: the expected daily count is
    ``k * spend**e * exp(log_hboost * holiday + log_wboost * weekend)``.

    ``E[clicks] = exp(clk_intercept + clk_holiday*h + clk_weekend*w) * E[impressions**clk_slope]`` and, with
    impressions ~ Poisson(mu_imp * G), G ~ Gamma(imp_alpha) / imp_alpha, the moment is
    ``mu_imp**clk_slope * E[G**clk_slope]`` up to O(1/mu_imp) (mu_imp is ~10^5 here), where
    ``E[G**b] = Gamma(alpha + b) / (Gamma(alpha) * alpha**b)``. Acquisitions add ``acq_rate``
    (the cap of clicks at impressions is ignored: it never binds at these volumes).
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    a, b = draws.imp_alpha, draws.clk_slope
    log_gamma_moment = special.gammaln(a + b) - special.gammaln(a) - b * np.log(a)
    log_k = draws.clk_intercept + draws.clk_slope * draws.imp_intercept + log_gamma_moment
    if objective == "acquisitions":
        log_k = log_k + np.log(draws.acq_rate)
    return log_k, draws.elasticity, np.log(draws.holiday_boost), draws.clk_weekend


def _day_flags(holiday, weekend) -> tuple[np.ndarray, np.ndarray]:
    """Both 0/1 flag arrays of a month as float64, checked to have the same shape."""
    h = np.asarray(holiday, dtype=np.float64)
    w = np.asarray(weekend, dtype=np.float64)
    if h.shape != w.shape:
        raise ValueError(f"holiday and weekend flags must have the same shape, got {h.shape} and {w.shape}")
    return h, w


def expected_daily(spend, holiday, weekend, draws: FunnelDraws, objective: str = "clicks") -> np.ndarray:
    """Expected clicks (or acquisitions) of each day, averaged over the draws.

    Args:
        spend: ``(..., n_days)`` daily spend (0 allowed).
        holiday, weekend: ``(n_days,)`` 0/1 flags.
    Returns:
        ``(..., n_days)``.
    """
    log_k, e, log_hb, log_wb = response_terms(draws, objective)
    h, w = _day_flags(holiday, weekend)
    s = np.asarray(spend, dtype=np.float64)[..., None, :]  # (..., 1, n_days)
    with np.errstate(divide="ignore"):
        log_s = np.log(s)
    per_draw = np.exp(log_k[:, None] + e[:, None] * log_s + log_hb[:, None] * h + log_wb[:, None] * w)  # (..., J, n_days)
    return per_draw.mean(axis=-2)


def closed_form_allocation(holiday, weekend, budget: float, point: FunnelDraws) -> np.ndarray:
    """The optimum for ONE parameter point: spend proportional to ``day_boost ** (1 / (1 - e))``.

    ``day_boost`` is :meth:`helpers.bayes.FunnelDraws.day_boost` (holiday and weekend).
    (Equal marginal clicks per unit of spend on every day: ``e k s**(e-1) day_boost = lambda``.)
    """
    if point.n_draws != 1:
        raise ValueError(f"closed_form_allocation needs a single parameter point, got {point.n_draws} draws (use .mean())")
    h, w = _day_flags(holiday, weekend)
    e = float(point.elasticity[0])
    if not 0 < e < 1:
        raise ValueError(f"the closed form needs an elasticity in (0, 1), got {e}")
    weights = point.day_boost(h, w)[0] ** (1.0 / (1.0 - e))
    return budget * weights / weights.sum()


def optimal_allocation(holiday, weekend, budget: float, draws: FunnelDraws, objective: str = "clicks", pool_equal_days: bool = True) -> np.ndarray:
    """Daily spends of one month maximising expected total clicks/acquisitions over the posterior.

    maximise ``mean_j sum_d k_j spend_d**e_j day_boost_jd`` subject to
    ``sum_d spend_d = budget``, solved with SLSQP over daily *shares* of the budget (each in
    [1e-12, 1]) from even pacing, with the analytic gradient, the objective scaled to 1 at
    even pacing. It is concave (every ``e_j < 1``), so the optimum is unique, and days with
    the same (holiday, weekend) flags are interchangeable, so they get the same spend: with
    ``pool_equal_days`` (default) SLSQP solves for one share per kind of day (at most four:
    ordinary weekday, weekend, holiday, holiday on a weekend) weighted by how many there are,
    which is exact and ~100x faster than one variable per day (``pool_equal_days=False``;
    tests check both agree).

    Args:
        holiday: ``(n_days,)`` 0/1 holiday flags of the month.
        weekend: ``(n_days,)`` 0/1 weekend (Saturday/Sunday) flags of the month.
        budget: the monthly budget.
        draws: posterior draws (the expectation is their average) or a single point.
        objective: ``"clicks"`` or ``"acquisitions"``.
    Returns:
        ``(n_days,)`` daily spends summing to ``budget``.
    """
    h, w = _day_flags(holiday, weekend)
    n = len(h)
    if n == 0 or not budget > 0:
        raise ValueError(f"need at least one day and a positive budget, got {n} days and {budget}")
    log_k, e, log_hb, log_wb = response_terms(draws, objective)
    if np.any(e >= 1) or np.any(e <= 0):
        raise ValueError("optimal_allocation assumes diminishing returns: every elasticity must be in (0, 1)")
    if pool_equal_days:
        _, first, day_kind, count = np.unique(2 * h + w, return_index=True, return_inverse=True, return_counts=True)
        kh, kw = h[first], w[first]
    else:
        kh, kw, day_kind, count = h, w, np.arange(n), np.ones(n)
    count = count.astype(np.float64)
    J = len(e)
    # value(x) = mean_j sum_g count_g * A_jg * x_g**e_j, x_g = share of the budget per day of kind g
    A = np.exp((log_k + e * math.log(budget))[:, None] + log_hb[:, None] * kh[None, :] + log_wb[:, None] * kw[None, :])  # (J, G)
    E = e[:, None]
    x0 = np.full(len(kh), 1.0 / n)
    scale = float((count * A * x0**E).sum()) / J

    def negative_value(x):
        xe = x[None, :] ** E  # (J, G)
        value = (count * A * xe).sum() / (J * scale)
        grad = count * (A * E * xe).sum(axis=0) / (J * scale * x)
        return -value, -grad

    res = optimize.minimize(
        negative_value,
        x0,
        jac=True,
        method="SLSQP",
        bounds=[(1e-12, 1.0)] * len(kh),
        constraints=[{"type": "eq", "fun": lambda x: count @ x - 1.0, "jac": lambda x: count}],
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    if not res.success:
        raise RuntimeError(f"optimal_allocation: SLSQP did not converge ({res.message})")
    spend = np.maximum(res.x, 0.0)[day_kind]
    return budget * spend / spend.sum()


# --- policies ----------------------------------------------------------------------------------


def even_pacing(obs: np.ndarray) -> np.ndarray:
    """Action 0 every day: spend the remaining budget evenly over the remaining days."""
    return np.zeros((len(obs), 1), dtype=np.float32)


class HolidayRule:
    """The greedy rule "spend ``multiplier`` x the even pace on holidays" (closed loop, obs only).

    Other days spend the even pace of what is left, so the extra holiday spend is taken
    evenly from the rest of the month. It knows nothing of weekends (a rule of thumb about
    holidays), so it leaves the weekend opportunity on the table like the humans do.
    """

    def __init__(self, multiplier: float = 2.0, config: EnvConfig | None = None):
        cfg = config or EnvConfig()
        if cfg.action_transform != "pace_multiplier":
            raise ValueError("HolidayRule is written for action_transform='pace_multiplier'")
        if not (1 / cfg.max_multiplier <= multiplier <= cfg.max_multiplier):
            raise ValueError(f"multiplier {multiplier} is outside the action bounds [1/{cfg.max_multiplier}, {cfg.max_multiplier}]")
        self.multiplier = multiplier
        self.action = math.log(multiplier) / math.log(cfg.max_multiplier)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return ((np.asarray(obs)[:, HOLIDAY_TODAY : HOLIDAY_TODAY + 1] > 0.5) * self.action).astype(np.float32)

    def __repr__(self):
        return f"HolidayRule(multiplier={self.multiplier})"


def _shares_of_remaining(weights: np.ndarray) -> np.ndarray:
    """``(k, _PAD)`` daily weights (0 beyond the month) -> share of the remaining budget per day."""
    remaining = np.cumsum(weights[:, ::-1], axis=1)[:, ::-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(remaining > 0, weights / remaining, 0.0)


class OpenLoopPolicy:
    """A fixed daily plan per month, followed through the environment's state.

    Args:
        plan: ``plan(month, holiday, weekend) -> (n_days,)`` non-negative daily weights (any
            scale; only their proportions matter), with ``month`` a ``"YYYY-MM"`` string and
            ``holiday``, ``weekend`` the 0/1 flags of its days.
        config: the environment's configuration (for the action transform).
        name: for tables.

    Called as ``policy(obs, state)`` (``needs_state = True``); returns ``(n_envs, 1)``.
    """

    needs_state = True

    def __init__(self, plan: Callable[[str, np.ndarray, np.ndarray], np.ndarray], config: EnvConfig | None = None, name: str = "open loop"):
        self.plan, self.config, self.name = plan, config or EnvConfig(), name
        self._tables: dict[tuple[str, ...], np.ndarray] = {}

    def share_table(self, calendar: Calendar) -> np.ndarray:
        """``(n_months, _PAD)``: the share of the remaining budget the plan spends on each day."""
        table = self._tables.get(calendar.months)
        if table is None:
            weights = np.zeros((len(calendar.months), _PAD))
            for i, month in enumerate(calendar.months):
                n = calendar.n_days[i]
                w = np.asarray(self.plan(month, calendar.holiday[i, :n].copy(), calendar.weekend[i, :n].copy()), dtype=np.float64)
                if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
                    raise ValueError(f"{self.name}: plan for {month} must be {n} finite non-negative weights with a positive sum")
                weights[i, :n] = w
            table = self._tables[calendar.months] = _shares_of_remaining(weights)
        return table

    def __call__(self, obs: np.ndarray, state: EnvState) -> np.ndarray:
        share = self.share_table(state.calendar)[state.month_idx, state.day]
        return action_for_share(share, state.days_left, self.config)

    def __repr__(self):
        return f"OpenLoopPolicy({self.name!r})"


def optimum_policy(draws: FunnelDraws, config: EnvConfig | None = None, objective: str = "clicks") -> OpenLoopPolicy:
    """The open-loop optimum (:func:`optimal_allocation`) as a policy.

    Uses all ``draws`` (or their mean when ``config.params == "mean"``, matching the env).
    Allocations are cached per (holiday, weekend) pattern.
    """
    cfg = (config or EnvConfig()).resolved()
    point = draws.mean() if cfg.params == "mean" else draws
    cache: dict[bytes, np.ndarray] = {}

    def plan(month: str, holiday: np.ndarray, weekend: np.ndarray) -> np.ndarray:
        key = holiday.tobytes() + weekend.tobytes()
        if key not in cache:
            cache[key] = optimal_allocation(holiday, weekend, cfg.budget, point, objective)
        return cache[key]

    return OpenLoopPolicy(plan, cfg, name=f"optimum ({objective})")


@dataclass(frozen=True)
class HumanPacing:
    """The marketers' rule estimated from the data (see :func:`fit_human_pacing`)."""

    holiday_uplift: float  # planned extra spend on a holiday, e.g. 0.3 = +30%
    pacing_noise: float  # sd of the log of the daily plan around the rule
    n_days: int  # days the estimate used


def fit_human_pacing(df: pd.DataFrame | None = None) -> HumanPacing:
    """Estimate the humans' pacing rule from the daily data.

    Model (the generator's, ``helpers.data`` step 1): ``log spend_d = c_month + log(1 + u) *
    holiday_d + eps_d``, ``eps ~ N(0, sigma)``. Demeaning within each month removes the
    budgets; least squares gives ``log(1 + u)``, and the residual sd (one degree of freedom
    per month and one for the slope) gives ``sigma``.
    """
    df = data.load_daily() if df is None else df
    month = pd.to_datetime(df["date"]).dt.to_period("M")
    log_s = np.log(df["spend"].to_numpy(dtype=np.float64))
    h = df["holiday"].to_numpy(dtype=np.float64)
    log_s_c = log_s - pd.Series(log_s).groupby(month.to_numpy()).transform("mean").to_numpy()
    h_c = h - pd.Series(h).groupby(month.to_numpy()).transform("mean").to_numpy()
    slope = float((h_c * log_s_c).sum() / (h_c * h_c).sum())
    resid = log_s_c - slope * h_c
    dof = len(df) - month.nunique() - 1
    return HumanPacing(holiday_uplift=math.exp(slope) - 1.0, pacing_noise=float(np.sqrt((resid**2).sum() / dof)), n_days=len(df))


class HumanPolicy:
    """The historical (human) policy: the marketers' rule of thumb, as estimated from the data.

    Each month, the planned share of day ``d`` is ``(1 + u * holiday_d) * exp(sigma * z_d)``
    (normalised to the budget), with ``u`` and ``sigma`` from :func:`fit_human_pacing`
    (about +30% on holidays and 25% day-to-day noise) and ``z_d`` standard normal, fixed per
    episode by ``(seed, episode_id)`` so that every evaluation replays the same plans.

    Why the rule and not a replay of the historical daily shares: a replay exists only for
    the 24 historical months, while evaluation runs on months the data has never seen (new
    holiday dates); and one replayed month is a single draw of the humans' noise, where the
    rule reproduces both their systematic choice (a modest holiday uplift) and their
    day-to-day noise, which costs clicks too. ``noise=False`` gives the noiseless rule.
    """

    needs_state = True

    def __init__(self, config: EnvConfig | None = None, pacing: HumanPacing | None = None, seed: int = 0, noise: bool = True):
        self.config = config or EnvConfig()
        self.pacing = pacing or fit_human_pacing()
        self.seed, self.noise = seed, noise
        self._months: tuple[str, ...] = ()
        self._episode = np.zeros(0, dtype=np.int64)
        self._month = np.zeros(0, dtype=np.int64)
        self._shares = np.zeros((0, _PAD))

    def weights(self, holiday: np.ndarray, episode_id: int) -> np.ndarray:
        """The plan (daily weights) of one episode, ``(n_days,)``."""
        w = 1.0 + self.pacing.holiday_uplift * np.asarray(holiday, dtype=np.float64)
        if self.noise:
            z = np.random.default_rng([self.seed, int(episode_id)]).standard_normal(MAX_DAYS)
            w = w * np.exp(self.pacing.pacing_noise * z[: len(w)])
        return w

    def __call__(self, obs: np.ndarray, state: EnvState) -> np.ndarray:
        n = len(state.day)
        cal = state.calendar
        if len(self._episode) != n or self._months != cal.months:  # another env: forget all plans
            self._months = cal.months
            self._episode = np.full(n, -1, dtype=np.int64)
            self._month = np.full(n, -1, dtype=np.int64)
            self._shares = np.zeros((n, _PAD))
        new = np.flatnonzero((self._episode != state.episode_id) | (self._month != state.month_idx))
        if len(new):  # a Python loop over episodes that just started (not over days)
            weights = np.zeros((len(new), _PAD))
            for r, i in enumerate(new):
                m, nd = state.month_idx[i], cal.n_days[state.month_idx[i]]
                weights[r, :nd] = self.weights(cal.holiday[m, :nd], state.episode_id[i])
            self._shares[new] = _shares_of_remaining(weights)
            self._episode[new] = state.episode_id[new]
            self._month[new] = state.month_idx[new]
        share = self._shares[np.arange(n), state.day]
        return action_for_share(share, state.days_left, self.config)

    def __repr__(self):
        p = self.pacing
        return f"HumanPolicy(holiday_uplift={p.holiday_uplift:.3f}, pacing_noise={p.pacing_noise:.3f}, noise={self.noise})"


def standard_policies(config: EnvConfig | None = None) -> dict[str, Policy]:
    """The baselines every table shows (the optimum is added by :meth:`Evaluator.table`)."""
    return {
        "even pacing": even_pacing,
        "historical (human)": HumanPolicy(config),
        "holiday rule (2x)": HolidayRule(2.0, config),
    }


# --- evaluation ------------------------------------------------------------------------------


def _call_policy(policy: Policy, obs: np.ndarray, state: EnvState) -> np.ndarray:
    act = policy(obs, state) if getattr(policy, "needs_state", False) else policy(obs)
    if hasattr(act, "detach"):  # a torch tensor
        act = act.detach().cpu().numpy()
    act = np.asarray(act, dtype=np.float64)
    n = len(obs)
    if act.shape not in ((n, 1), (n,)):
        raise ValueError(f"policy {policy!r} returned actions of shape {act.shape}; expected ({n}, 1) for obs of shape {obs.shape}")
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
        months: evaluation months, cycled in order (``EVAL_MONTHS``: 2025-2026, unseen).

    ``evaluate(policy)`` returns a dict of metrics (see there); ``table(policies)`` a
    DataFrame with one row per policy plus the optimum. The optimum's episodes are computed
    once and cached.
    """

    def __init__(self, draws: FunnelDraws, config: EnvConfig | None = None, *, n_months: int = 1000, seed: int = EVAL_SEED, months=EVAL_MONTHS):
        if n_months < 1:
            raise ValueError(f"n_months must be >= 1, got {n_months}")
        self.config = replace(config or EnvConfig(), months=tuple(months)).resolved()
        self.draws, self.n_months, self.seed = draws, int(n_months), seed
        self.core = PacingCore(draws, self.config, n_envs=n_months)
        self.calendar = self.core.calendar
        rng = np.random.default_rng(seed)
        self.month_idx = np.arange(n_months) % len(self.calendar.months)
        self.draw_idx = rng.integers(self.core.draws.n_draws, size=n_months)
        self._optimum: dict[str, tuple[OpenLoopPolicy, dict[str, np.ndarray]]] = {}

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
            "budget_used": float(np.mean(spend) / self.config.budget),
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
        _, opt_acq = self.optimum("acquisitions")
        ep = opt if policy is opt_policy else self.run(policy)
        out = self.summarise(ep, name)
        ref = self.summarise(opt, "optimum")
        ratio = out["mean_clicks"] / ref["mean_clicks"]
        paired = ep["clicks"] - ratio * opt["clicks"]  # delta method for a ratio of paired means
        out["pct_of_optimum"] = 100.0 * ratio
        out["pct_of_optimum_se"] = float(100.0 * paired.std(ddof=1) / math.sqrt(self.n_months) / ref["mean_clicks"]) if self.n_months > 1 else float("nan")
        out["pct_of_optimum_acquisitions"] = 100.0 * out["mean_acquisitions"] / float(opt_acq["acquisitions"].mean())
        out["pct_of_optimum_cvar5"] = 100.0 * out["cvar5_clicks"] / ref["cvar5_clicks"]
        out["cpc_pct_of_optimum"] = 100.0 * out["mean_cpc"] / ref["mean_cpc"]
        return out

    def table(self, policies: Mapping[str, Policy], include_optimum: bool = True) -> pd.DataFrame:
        """One row per policy (index ``policy``), plus the two optima; sorted as given."""
        rows = [self.evaluate(p, name) for name, p in policies.items()]
        if include_optimum:
            rows += [self.evaluate(self.optimum(obj)[0], f"optimum ({obj})") for obj in OBJECTIVES]
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
