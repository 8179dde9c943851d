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
see its docstring for why the estimated rule rather than a replay),
:func:`optimum_policy` (the open-loop optimum of :func:`optimal_allocation`) and
:class:`OraclePolicy` (knows each month's posterior draw: the real upper bound).

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
each as a percentage of the optimum's, evaluated on the very same months, posterior draws
and gamma (market) noise. These common random numbers make ``pct_of_optimum``'s paired
standard error small; they are partial (the Poisson counts are not shared once spends differ:
see "Random numbers and seeds" in ``helpers.env`` for the measured effect).

The open-loop optimum is the yardstick, not a ceiling: it plans once for the whole posterior,
while a closed-loop agent can learn about the month's draw from what it observes (yesterday's
cost per click). The ceiling is :class:`OraclePolicy`, which knows each month's draw and
spends that draw's own optimum (on the fitted posterior it scores just above 100%).

Several channels (notebook 06)
------------------------------
With ``ChannelDraws`` and ``helpers.env.channel_config()`` the same pieces work per (day, channel):
:func:`optimal_channel_allocation` is the open-loop optimum over days x channels under the
posterior (what a marketing-mix optimiser computes), subject to the budget, the active days and
the saturation caps, and with carryover (one adstock shared by the draws: a what-if) its dynamics
too; :func:`expected_channel_clicks` values any plan; :class:`OpenLoopPolicy` follows a
``(n_days, K)`` plan (pace and split); :class:`OraclePolicy` plans each month's own draw (without
carryover); the baselines are the marketers' replay (:func:`historical_replay_policy`) and even
pacing with the historical split (:func:`proportional_policy`, the zero action). The section's
comment explains the solvers and their stopping rule (the KKT conditions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
from scipy import optimize, special

from helpers import data
from helpers.bayes import ADSTOCK_LAGS, ChannelDraws, FunnelDraws, adstock_weights
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
    logits_for_split,
)

Policy = Callable[..., Any]
OBJECTIVES = ("clicks", "acquisitions")
EVAL_SEED = 20250101
HOLIDAY_TODAY = OBS_NAMES.index("holiday_today")

# --- the mean response and the optimum ---------------------------------------------------


def response_terms(draws: FunnelDraws | ChannelDraws, objective: str = "clicks") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(log_k, e, log_hboost, log_wboost)``, each ``(n_draws,)``: the expected daily count is
    ``k * spend**e * exp(log_hboost * holiday + log_wboost * weekend)``. For ``ChannelDraws``
    each is ``(n_draws, K)``, per channel, with no holiday or weekend terms (zeros) and clicks only.

    ``E[clicks] = exp(clk_intercept + clk_holiday*h + clk_weekend*w) * E[impressions**clk_slope]`` and, with
    impressions ~ Poisson(mu_imp * G), G ~ Gamma(imp_alpha) / imp_alpha, the moment is
    ``mu_imp**clk_slope * E[G**clk_slope]`` up to O(1/mu_imp) (mu_imp is ~10^5 here), where
    ``E[G**b] = Gamma(alpha + b) / (Gamma(alpha) * alpha**b)``. Acquisitions add ``acq_rate``
    (the cap of clicks at impressions is ignored: it never binds at these volumes).
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    if isinstance(draws, ChannelDraws) and objective != "clicks":
        raise ValueError("the channel data have clicks only: objective must be 'clicks'")
    a, b = draws.imp_alpha, draws.clk_slope
    log_gamma_moment = special.gammaln(a + b) - special.gammaln(a) - b * np.log(a)
    log_k = draws.clk_intercept + draws.clk_slope * draws.imp_intercept + log_gamma_moment
    if objective == "acquisitions":
        log_k = log_k + np.log(draws.acq_rate)
    if isinstance(draws, ChannelDraws):
        zeros = np.zeros_like(log_k)
        return log_k, draws.elasticity, zeros, zeros
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
            ``holiday``, ``weekend`` the 0/1 flags of its days. With several channels
            (``config.channels``) it returns ``(n_days, K)`` spends per day and channel (zero on
            days a channel is inactive): each day spends the plan's share of what is left, split
            across the channels as the plan says (``helpers.env.logits_for_split``).
        config: the environment's configuration (for the action transform).
        name: for tables.

    Called as ``policy(obs, state)`` (``needs_state = True``); returns ``(n_envs, 1)`` (several
    channels: ``(n_envs, 1 + K)``).
    """

    needs_state = True

    def __init__(self, plan: Callable[[str, np.ndarray, np.ndarray], np.ndarray], config: EnvConfig | None = None, name: str = "open loop"):
        self.plan, self.config, self.name = plan, config or EnvConfig(), name
        self._tables: dict[tuple[str, ...], np.ndarray] = {}
        self._logits: dict[tuple[str, ...], np.ndarray] = {}

    def plans(self, calendar: Calendar) -> np.ndarray:
        """The plan of every month of ``calendar``: ``(n_months, _PAD)`` (several channels:
        ``(n_months, _PAD, K)``), 0 past each month's end."""
        channels = self.config.channels
        K = None if channels is None else channels.n_channels
        out = np.zeros((len(calendar.months), _PAD) if K is None else (len(calendar.months), _PAD, K))
        for i, month in enumerate(calendar.months):
            n = calendar.n_days[i]
            w = np.asarray(self.plan(month, calendar.holiday[i, :n].copy(), calendar.weekend[i, :n].copy()), dtype=np.float64)
            want = (n,) if K is None else (n, K)
            if w.shape != want or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
                raise ValueError(f"{self.name}: plan for {month} must be {want} finite non-negative weights with a positive sum")
            if K is not None and np.any((w > 0) & ~channels.active[channels.month_index([month])[0], :n]):
                raise ValueError(f"{self.name}: plan for {month} spends on a channel on a day it is inactive")
            out[i, :n] = w
        return out

    def share_table(self, calendar: Calendar) -> np.ndarray:
        """``(n_months, _PAD)``: the share of the remaining budget the plan spends on each day."""
        table = self._tables.get(calendar.months)
        if table is None:
            plans = self.plans(calendar)
            if plans.ndim == 2:
                table = _shares_of_remaining(plans)
            else:
                h = self.config.channels.month_index(calendar.months)
                table, self._logits[calendar.months] = _channel_plan_actions(plans, self.config.channels.prior_spend[h],
                                                                             self.config.channels.active[h], self.config)
            self._tables[calendar.months] = table
        return table

    def __call__(self, obs: np.ndarray, state: EnvState) -> np.ndarray:
        share = self.share_table(state.calendar)[state.month_idx, state.day]
        pace = action_for_share(share, state.days_left, self.config)
        if state.active is None:
            return pace
        return np.concatenate([pace, self._logits[state.calendar.months][state.month_idx, state.day]], axis=1)

    def __repr__(self):
        return f"OpenLoopPolicy({self.name!r})"


def optimum_policy(draws: FunnelDraws | ChannelDraws, config: EnvConfig | None = None, objective: str = "clicks") -> OpenLoopPolicy:
    """The open-loop optimum (:func:`optimal_allocation`; several channels:
    :func:`optimal_channel_allocation`) as a policy.

    Uses all ``draws`` (or their mean when ``config.params == "mean"``, matching the env).
    Allocations are cached per (holiday, weekend) pattern (several channels: per month).
    """
    cfg = (config or EnvConfig()).resolved()
    point = draws.mean() if cfg.params == "mean" else draws
    if isinstance(draws, ChannelDraws):
        if objective != "clicks":
            raise ValueError("the channel data have clicks only: objective must be 'clicks'")
        plans: dict[str, np.ndarray] = {}
        response = channel_response(point, cfg)

        def channel_plan(month: str, holiday: np.ndarray, weekend: np.ndarray) -> np.ndarray:
            if month not in plans:
                plans[month] = optimal_channel_allocation(point, cfg, month, response)
            return plans[month]

        return OpenLoopPolicy(channel_plan, cfg, name="optimum (clicks)")
    cache: dict[bytes, np.ndarray] = {}

    def plan(month: str, holiday: np.ndarray, weekend: np.ndarray) -> np.ndarray:
        key = holiday.tobytes() + weekend.tobytes()
        if key not in cache:
            cache[key] = optimal_allocation(holiday, weekend, cfg.budget, point, objective)
        return cache[key]

    return OpenLoopPolicy(plan, cfg, name=f"optimum ({objective})")


#: Row name of the oracle in every comparison table.
ORACLE_NAME = "oracle (knows each month's draw)"


class OraclePolicy:
    """The oracle: knows which posterior draw each month got and spends that draw's optimum.

    For one parameter point the optimum has a closed form (:func:`closed_form_allocation`: spend
    proportional to ``day_boost ** (1 / (1 - e))``, the same for clicks and acquisitions), so the
    oracle plans every (month, draw) exactly and cheaply, all slots at once. It reads the draw
    from the environment's state (``needs_state = True``), which no real policy can.

    Why it bounds every policy, closed-loop agents included: given the draw, a day's market
    noise (gamma and Poisson, independent from day to day) says nothing about the next day, so
    nothing observed within the month can beat the draw's own best plan in expectation. The
    open-loop optimum is no such bound: it plans for the posterior as a whole, and an agent
    that infers the draw from the costs per click it observes can, in principle, beat it.

    ``draws`` must be the environment's (``config.params == "mean"``: their mean, one draw, and
    then the oracle *is* the open-loop optimum).

    Several channels (``ChannelDraws``, without carryover): each (month, draw) gets its own
    channel allocation (the water-filling of :func:`optimal_channel_allocation` for that one
    draw), all new slots at once. With carryover the oracle would need one dynamic optimisation
    per month and draw: not provided (``NotImplementedError``).
    """

    needs_state = True
    name = ORACLE_NAME

    def __init__(self, draws: FunnelDraws | ChannelDraws, config: EnvConfig | None = None):
        self.config = (config or EnvConfig()).resolved()
        self.draws = draws.mean() if self.config.params == "mean" else draws
        self._key = np.zeros((0, 2), dtype=np.int64)  # (month, draw) each slot's plan was made for
        self._months: tuple[str, ...] = ()
        self._shares = np.zeros((0, _PAD))
        if isinstance(self.draws, ChannelDraws):
            if np.any(self.draws.adstock > 0):
                raise NotImplementedError("the oracle with carryover needs one dynamic optimisation per month and draw; "
                                          "it is provided without carryover only")
            hist = self.config.channels
            self._cap = None if self.config.cap_multiple is None else self.config.cap_multiple * hist.max_daily_spend
            self._logits = np.zeros((0, _PAD, hist.n_channels))
            return
        _, e, self._log_hb, self._log_wb = response_terms(self.draws)
        if np.any(e >= 1) or np.any(e <= 0):
            raise ValueError("OraclePolicy assumes diminishing returns: every elasticity must be in (0, 1)")
        self._power = 1.0 / (1.0 - e)

    def __call__(self, obs: np.ndarray, state: EnvState) -> np.ndarray:
        cal, n = state.calendar, len(state.day)
        if np.any(state.draw_idx >= self.draws.n_draws):
            raise ValueError(f"OraclePolicy: the env has posterior draw {int(state.draw_idx.max())} but the oracle "
                             f"knows {self.draws.n_draws} draws; build it with the env's draws")
        key = np.stack([state.month_idx, state.draw_idx], axis=1)
        channels = state.active is not None
        if len(self._key) != n or self._months != cal.months:  # another env: forget all plans
            self._months, self._key, self._shares = cal.months, np.full((n, 2), -1), np.zeros((n, _PAD))
            if channels:
                self._logits = np.zeros((n, _PAD, state.active.shape[2]))
        new = np.flatnonzero((self._key != key).any(axis=1))
        if len(new) and channels:  # each new slot's own water-filling, all at once (one draw each)
            m, j = state.month_idx[new], state.draw_idx[new]
            active, prior = state.active[m], state.prior_spend[m]  # (b, _PAD, K), (b, K)
            log_k, e, _, _ = response_terms(self.draws.subset(j))  # (b, K): each slot's own draw
            spend = _waterfill_power(log_k, e, active.sum(axis=1).astype(np.float64), state.month_budget[m], self._cap)
            self._shares[new], self._logits[new] = _channel_plan_actions(active * spend[:, None, :], prior, active, self.config)
            self._key[new] = key[new]
        elif len(new):  # plan the slots whose (month, draw) changed, all at once
            m, j = state.month_idx[new], state.draw_idx[new]
            in_month = np.arange(_PAD)[None, :] < cal.n_days[m][:, None]
            log_boost = self._log_hb[j, None] * cal.holiday[m] + self._log_wb[j, None] * cal.weekend[m]
            weights = np.where(in_month, np.exp(self._power[j, None] * log_boost), 0.0)
            self._shares[new] = _shares_of_remaining(weights)
            self._key[new] = key[new]
        share = self._shares[np.arange(n), state.day]
        pace = action_for_share(share, state.days_left, self.config)
        if not channels:
            return pace
        return np.concatenate([pace, self._logits[np.arange(n), state.day]], axis=1)

    def __repr__(self):
        return f"OraclePolicy({self.draws.n_draws} draws)"


def oracle_policy(draws: FunnelDraws, config: EnvConfig | None = None) -> OraclePolicy:
    """The oracle (:class:`OraclePolicy`) for the environment of ``draws`` and ``config``."""
    return OraclePolicy(draws, config)


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


# --- several channels (notebook 06) -----------------------------------------------------------
#
# The expected daily clicks of channel c, for one draw, are k_c * x ** e_c (response_terms),
# where x is the channel's effective spend: its daily spends, each capped at cap_c (money above
# the cap buys nothing), adstocked (x = the weighted sum of today's and earlier days' capped
# spends; without carryover x is today's spend). Over the posterior: G_c(x) = mean_j k_jc x ** e_jc.
# Days differ only by which channels are active (the channel model has no holiday or weekend
# terms) and, with carryover, by the adstock: a day's spend also lifts the next days' x (the last
# days of a month waste part of theirs) and a month starts from the history's spend.
#
# The plan maximises the month's sum of G over (active day, channel) subject to the budget and
# 0 <= spend <= cap. Without carryover every active day of a channel is alike, so the plan has one
# variable per channel (the water-filling of a marketing-mix optimiser), solved with SLSQP. With
# carryover it has one per (active day, channel): mirror ascent (exponentiated gradient) on the
# capped budget simplex, from the plan without carryover. Both stop at the KKT conditions: every
# spend strictly between 0 and its cap earns the same marginal clicks per unit of spend.

#: Mirror ascent: at most this many iterations, step ``MIRROR_STEP``; it stops once the
#: budget-weighted relative gap between each spend's marginal clicks and the budget's price is
#: below ``MIRROR_TOL`` (and no spend's marginal exceeds the price by 100x that). Measured on the
#: channel data with adstock 0.5: the gap falls ~10x every 500 iterations (~0.15 s) at step 2;
#: step 8 diverges, 0.5 is 4x slower.
MIRROR_ITERATIONS = 5000
MIRROR_STEP = 2.0
MIRROR_TOL = 1e-8
_GRID_POINTS = 4000


class _ChannelResponse:
    """``G_c(x)`` and ``G_c'(x)`` for arrays ``x`` of shape ``(b, T, K)``.

    ``per_batch=True``: row ``i`` of the batch has its own single draw (exact power laws; the
    oracle). Otherwise every row uses the posterior mean over all draws, tabulated once on a log
    grid of x per channel (linear interpolation of log G in log x: G is a mixture of power laws,
    almost a straight line there, so the table is exact to ~1e-8).
    """

    def __init__(self, draws: ChannelDraws, per_batch: bool = False, x_max: float = 1e5):
        log_k, e, _, _ = response_terms(draws)  # (J, K) each
        self.per_batch = per_batch
        if per_batch:
            self.log_k, self.e = log_k, e  # (b, K): one draw per row
            return
        K = log_k.shape[1]
        self.grid = np.linspace(math.log(1e-6), math.log(4.0 * x_max), _GRID_POINTS)
        log_g = np.empty((_GRID_POINTS, K))
        for c in range(K):  # the mean over draws, once: (grid, J) per channel
            log_g[:, c] = special.logsumexp(log_k[None, :, c] + e[None, :, c] * self.grid[:, None], axis=1) - math.log(len(e))
        self.log_g, self.dlog_g = log_g, np.gradient(log_g, self.grid, axis=0)

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.maximum(x, 1e-6)
        lx = np.log(x)
        if self.per_batch:
            v = np.exp(self.log_k[:, None, :] + self.e[:, None, :] * lx)
            return v, v * self.e[:, None, :] / x
        v, el = np.empty_like(x), np.empty_like(x)
        for c in range(x.shape[-1]):
            v[..., c] = np.exp(np.interp(lx[..., c], self.grid, self.log_g[:, c]))
            el[..., c] = np.interp(lx[..., c], self.grid, self.dlog_g[:, c])
        return v, v * el / x


class _ChannelMonth:
    """One month (or a batch of them) of the channel allocation problem, on arrays ``(b, T, K)``.

    ``count``: weight of each entry (1 = a day on which the channel may spend, 0 = may not; with
    pooled days, how many days the entry stands for); ``cap``: ``(K,)`` upper bound of a day's
    spend (None: none); ``budget``: ``(b,)``; ``weights``: the adstock weights ``(K, LAGS)`` (None:
    no carryover) and ``carry``: the effective spend carried into each day from before the month.
    """

    def __init__(self, count, budget, cap=None, weights=None, carry=None):
        self.count = np.asarray(count, dtype=np.float64)
        self.budget = np.atleast_1d(np.asarray(budget, dtype=np.float64))
        b, T, K = self.count.shape
        self.cap = np.full(K, np.inf) if cap is None else np.asarray(cap, dtype=np.float64)
        with np.errstate(invalid="ignore"):  # 0 days x an infinite cap
            capacity = np.where(self.count > 0, self.count * self.cap, 0.0).sum(axis=(1, 2))
        if np.any(capacity < self.budget * (1 - 1e-12)):
            raise ValueError("the budget does not fit under the channels' caps on the active days (raise cap_multiple)")
        self.W = None
        if weights is not None:  # W[c, t, u] = weight of day u's spend in day t's effective spend
            lag = np.arange(T)[:, None] - np.arange(T)[None, :]
            L = weights.shape[1]
            self.W = np.where((lag >= 0) & (lag < L), weights[:, np.clip(lag, 0, L - 1)], 0.0)  # (K, T, T)
        self.carry = np.zeros((b, T, K)) if carry is None else np.asarray(carry, dtype=np.float64)

    def effective(self, s):
        """``x`` of spends ``s`` ``(b, T, K)`` (already within their caps)."""
        return (s if self.W is None else np.einsum("ctu,buc->btc", self.W, s)) + self.carry

    def value_and_marginal(self, s, response):
        """Expected clicks per row ``(b,)`` and the marginal clicks per unit of spend ``(b, T, K)``."""
        v, dv = response(self.effective(s))
        dx = self.count * dv
        if self.W is not None:  # chain rule through the adstock: d value / d s[u] = sum_t W[t, u] dx[t]
            dx = np.einsum("ctu,btc->buc", self.W, dx)
        return (self.count * v).sum(axis=(1, 2)), dx / np.where(self.count > 0, self.count, 1.0)

    def project(self, s):
        """Spends within ``[0, cap]`` that add up to the budget (``count``-weighted), by rescaling the uncapped ones."""
        s = np.where(self.count > 0, np.minimum(s, self.cap), 0.0)
        for _ in range(100):
            deficit = self.budget - (self.count * s).sum(axis=(1, 2))
            if np.all(np.abs(deficit) <= 1e-13 * self.budget):
                break
            free = (self.count > 0) & (s < self.cap)
            room = (self.count * s * free).sum(axis=(1, 2))
            factor = (room + deficit) / np.where(room > 0, room, 1.0)
            s = np.where(free, np.minimum(s * factor[:, None, None], self.cap), s)
        return s

    def kkt_gap(self, s, g):
        """Per row: the budget-weighted mean of ``|marginal / price - 1|`` over spends below their
        caps, and the largest ``marginal / price - 1`` of any such entry (both 0 at the optimum)."""
        below = (self.count > 0) & (s < self.cap * (1 - 1e-9))
        weight = self.count * s * below
        lam = (weight * g).sum(axis=(1, 2)) / np.maximum(weight.sum(axis=(1, 2)), 1e-300)  # the price, from the uncapped spends
        r = g / lam[:, None, None] - 1.0
        gap = (weight * np.abs(r)).sum(axis=(1, 2)) / self.budget
        return gap, np.where(below, r, -np.inf).max(axis=(1, 2))

    def mirror_ascent(self, response, start, iterations: int = MIRROR_ITERATIONS, tol: float = MIRROR_TOL):
        """Exponentiated gradient from ``start``: every spend is multiplied by
        ``exp(MIRROR_STEP * (marginal / price - 1))`` (``price`` = the budget-weighted mean
        marginal), then projected back onto the caps and the budget. Returns the spends ``(b, T, K)``."""
        s = self.project(np.where(self.count > 0, np.maximum(start, 1e-12), 0.0))
        for it in range(iterations):
            _, g = self.value_and_marginal(s, response)
            if it % 25 == 0:
                gap, above = self.kkt_gap(s, g)
                if np.all((gap < tol) & (above < 100 * tol)):
                    break
            lam = (self.count * s * g).sum(axis=(1, 2)) / self.budget
            s = self.project(s * np.exp(np.clip(MIRROR_STEP * (g / lam[:, None, None] - 1.0), -5.0, 5.0)))
        return s

    def slsqp(self, response):
        """The pooled problem of ONE row (few variables) by SLSQP, in units of the even spend."""
        (i,) = np.nonzero(self.count[0, 0] > 0)
        c = self.count[0, 0, i]
        unit = self.budget[0] / c.sum()  # the even spend: z = 1 everywhere meets the budget
        scale = self.value_and_marginal(self.project(np.where(self.count > 0, unit, 0.0)), response)[0][0]

        def negative(z):
            s = np.zeros(self.count.shape)
            s[0, 0, i] = z * unit
            v, g = self.value_and_marginal(s, response)
            return -v[0] / scale, -g[0, 0, i] * c * unit / scale

        res = optimize.minimize(negative, np.ones(len(i)), jac=True, method="SLSQP",
                                bounds=[(0.0, b / unit) for b in np.broadcast_to(self.cap, self.count.shape[2:])[i]],
                                constraints=[{"type": "eq", "fun": lambda z: c @ z / c.sum() - 1.0, "jac": lambda z: c / c.sum()}],
                                options={"ftol": 1e-14, "maxiter": 1000})
        if not res.success:
            raise RuntimeError(f"the channel allocation did not converge ({res.message})")
        s = np.zeros(self.count.shape)
        s[0, 0, i] = np.maximum(res.x, 0.0) * unit
        return self.project(s)


def _common_adstock(draws: ChannelDraws) -> np.ndarray | None:
    """The channels' adstock ``(K,)`` if every draw has the same (None if all are 0); else an error."""
    theta = draws.adstock
    if np.all(theta == 0):
        return None
    if np.any(np.ptp(theta, axis=0) > 0):
        raise ValueError("the open-loop plan with carryover needs one adstock per channel shared by every draw "
                         "(e.g. draws.replace(adstock=0.5)); these draws differ")
    return theta[0]


def channel_response(draws: ChannelDraws, config: EnvConfig) -> "_ChannelResponse":
    """The posterior-mean response of every channel (tabulated once; pass it to the functions below)."""
    hist = config.channels
    return _ChannelResponse(draws, x_max=float(np.max(hist.max_daily_spend)) * (config.cap_multiple or 100.0))


def _channel_month(draws: ChannelDraws, config: EnvConfig, month: str, *, pooled: bool):
    """``(problem, active (T, K), prior (K,))`` of one month (``pooled``: one entry per channel,
    weighted by its active days; only without carryover)."""
    cfg = config.resolved()
    hist = cfg.channels
    if hist is None:
        raise ValueError("the channel plans need a config with channels (helpers.env.channel_config)")
    h = int(hist.month_index([month])[0])
    n = int(hist.n_days[h])
    active = hist.active[h, :n].astype(np.float64)  # (T, K)
    budget = float(hist.budget[h] if cfg.budget is None else cfg.budget)
    cap = None if cfg.cap_multiple is None else cfg.cap_multiple * hist.max_daily_spend
    theta = _common_adstock(draws)
    if theta is None:
        count = active.sum(axis=0)[None, None, :] if pooled else active[None]
        return _ChannelMonth(count, budget, cap), active, hist.prior_spend[h]
    if pooled:
        raise ValueError("with carryover the days of a month are not interchangeable: pooled=False")
    w = adstock_weights(theta, ADSTOCK_LAGS)  # (K, LAGS)
    before = hist.carry_in[h]  # (LAGS - 1, K): the spend j + 1 days before the month
    carry = np.zeros((n, len(theta)))
    for t in range(n):  # what the days before the month add to day t's effective spend
        for j in range(t + 1, ADSTOCK_LAGS):
            carry[t] += w[:, j] * before[j - t - 1]
    return _ChannelMonth(active[None], budget, cap, weights=w, carry=carry[None]), active, hist.prior_spend[h]


def optimal_channel_allocation(draws: ChannelDraws, config: EnvConfig, month: str, response: "_ChannelResponse | None" = None) -> np.ndarray:
    """The open-loop plan of one month over days x channels: ``(n_days, K)`` daily spends.

    Maximises the month's expected clicks under the posterior (the mean over ``draws``) subject
    to the month's budget, spending only on active days, at most each channel's cap a day and,
    if the draws have carryover (the same adstock in every draw), with its dynamics: the plan
    accounts for what today's spend adds to the next days and for the history the month starts
    from. Without carryover every active day of a channel gets the same spend. ``response``:
    :func:`channel_response` of these draws, to reuse across months.
    """
    response = response or channel_response(draws, config.resolved())
    pooled, active, _ = _channel_month(draws, config, month, pooled=_common_adstock(draws) is None)
    if _common_adstock(draws) is None:
        return active * pooled.slsqp(response)[0, 0]
    start = optimal_channel_allocation(draws.replace(adstock=0.0), config, month, response)  # the plan without carryover
    return pooled.mirror_ascent(response, start[None])[0]


def expected_channel_clicks(plan: np.ndarray, draws: ChannelDraws, config: EnvConfig, month: str, response: "_ChannelResponse | None" = None) -> float:
    """Expected clicks of a month's plan ``(n_days, K)`` under the posterior (caps and carryover included)."""
    cfg = config.resolved()
    response = response or channel_response(draws, cfg)
    problem, _, _ = _channel_month(draws, cfg, month, pooled=False)
    value, _ = problem.value_and_marginal(np.minimum(np.asarray(plan, dtype=np.float64)[None], problem.cap), response)
    return float(value[0])


def _waterfill_power(log_k: np.ndarray, e: np.ndarray, count: np.ndarray, budget: np.ndarray, cap: np.ndarray | None) -> np.ndarray:
    """The pooled allocation of a batch of months, each with ONE draw: ``(b, K)`` daily spends.

    For a price ``lam`` of the budget, channel c's best daily spend maximises ``k s**e - lam s``
    on ``[0, cap]``: ``(lam / (e k)) ** (1 / (e - 1))`` capped when ``e < 1`` (decreasing returns),
    ``cap`` or 0 when ``e >= 1`` (then ``k cap**e >= lam cap`` decides). Bisection on ``log lam``
    until the spends meet the budget (all rows at once), then the uncapped spends are scaled by
    the last sliver so that the budget is met exactly.
    """
    cap = np.full(e.shape[1], np.inf) if cap is None else cap
    on = count > 0
    k = np.exp(log_k)

    def spends(log_lam):
        lam = np.exp(log_lam)[:, None]
        with np.errstate(over="ignore", divide="ignore"):
            interior = np.exp((log_lam[:, None] - np.log(np.maximum(e, 1e-300)) - log_k) / np.where(e < 1, e - 1.0, -1.0))
        worth = k * np.minimum(cap, 1e300) ** (e - 1) >= lam  # for e >= 1: the whole cap or nothing
        s = np.where(e < 1, np.minimum(interior, cap), np.where(worth, cap, 0.0))
        s = np.where(e > 0, s, 0.0)  # a draw in which spend does not help
        return np.where(on, s, 0.0)

    lo = np.full(len(budget), -60.0)  # log price: low = spend a lot, high = spend little
    hi = np.full(len(budget), 60.0)
    for _ in range(200):
        mid = (lo + hi) / 2
        over = (count * spends(mid)).sum(axis=1) > budget
        lo, hi = np.where(over, mid, lo), np.where(over, hi, mid)
    s = spends(hi)  # within the budget
    problem = _ChannelMonth(count[:, None, :], budget, None if np.all(np.isinf(cap)) else cap)
    return problem.project(np.where(on, np.maximum(s, 1e-12), 0.0)[:, None, :])[:, 0]


def _channel_plan_actions(plans: np.ndarray, prior: np.ndarray, active: np.ndarray, config: EnvConfig) -> tuple[np.ndarray, np.ndarray]:
    """Daily plans ``(b, MAX_DAYS + 2, K)`` (0 past the month) -> the share of the remaining budget
    each day spends ``(b, MAX_DAYS + 2)`` and the split logits ``(b, MAX_DAYS + 2, K)``."""
    totals = plans.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        split = np.where(totals[..., None] > 0, plans / totals[..., None], 0.0)
    b, D, K = plans.shape
    logits = logits_for_split(split.reshape(b * D, K), np.repeat(prior, D, axis=0), active.reshape(b * D, K),
                              config.max_multiplier).reshape(b, D, K)
    return _shares_of_remaining(totals), logits


def proportional_policy(n_channels: int):
    """Even pacing with the historical split (the zero action of the channel env)."""

    def even_pacing_historical_split(obs: np.ndarray) -> np.ndarray:
        return np.zeros((len(obs), 1 + n_channels), dtype=np.float32)

    return even_pacing_historical_split


def historical_replay_policy(config: EnvConfig) -> "OpenLoopPolicy":
    """The marketers' own daily spends per channel (the data), replayed on each month.

    With the default budgets (each month's historical total) this is exactly what they spent;
    with another budget, the same daily proportions.
    """
    cfg = config.resolved()
    hist = cfg.channels

    def plan(month: str, holiday: np.ndarray, weekend: np.ndarray) -> np.ndarray:
        h = int(hist.month_index([month])[0])
        return hist.spend[h, : hist.n_days[h]]

    return OpenLoopPolicy(plan, cfg, name="historical (replay)")


def standard_policies(config: EnvConfig | None = None) -> dict[str, Policy]:
    """The baselines every table shows (the optimum is added by :meth:`Evaluator.table`).

    Several channels (``config.channels``): the marketers' own spends replayed, and even pacing
    with the historical split (the zero action).
    """
    if config is not None and config.channels is not None:
        return {
            "historical (replay)": historical_replay_policy(config),
            "even pacing, historical split": proportional_policy(config.channels.n_channels),
        }
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
    differ (see "Random numbers and seeds" in ``helpers.env``). With several channels there is
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
