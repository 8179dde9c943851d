"""The baselines and the open-loop policies: even pacing, the holiday rule, the humans, any daily plan (notebook 03).

A **policy** is any callable ``policy(obs) -> actions`` (``(n_envs, obs_dim)`` -> ``(n_envs, 1)``,
several channels ``(n_envs, 1 + K)``; numpy or a CPU torch tensor). Open-loop plans (the optimum,
the human planners) need to know *which* month and day they are in, which the observation does
not say: such a policy sets ``needs_state = True`` and is called as ``policy(obs, state)`` with the
env's :class:`helpers.env.EnvState`. :class:`OpenLoopPolicy` turns any daily plan into actions
this way: on day ``t`` it spends the plan's share of what is left, ``w_t / sum_{d >= t} w_d``, so
a plan is followed exactly as long as its multipliers of the even pace lie within the action
bounds. Baselines: :func:`even_pacing`, :class:`HolidayRule` (a fixed multiplier on holidays),
:class:`HumanPolicy` (the marketers' estimated rule), :func:`optimum_policy`; several channels:
:func:`historical_replay_policy` and :func:`proportional_policy`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from helpers import data
from helpers.baselines.channels import _channel_plan_actions, channel_response, optimal_channel_allocation
from helpers.baselines.optimum import _shares_of_remaining, optimal_allocation
from helpers.bayes import ChannelDraws, FunnelDraws
from helpers.env import _PAD, MAX_DAYS, OBS_NAMES, Calendar, EnvConfig, EnvState, action_for_share

Policy = Callable[..., Any]
HOLIDAY_TODAY = OBS_NAMES.index("holiday_today")


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
