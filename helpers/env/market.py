"""What the core simulates besides the posterior draws: one channel's or several channels' tables (notebooks 03, 06).

The one place that tells one channel from several. :func:`funnel_market` (``FunnelDraws``: one
channel, active every day of the calendar's months, the historical mean budget, holidays and
weekends in the observation) and :func:`channel_market` (``ChannelDraws``: the campaign data's
channels, active days, budgets, caps and carry-in; their blocks in the observation) build the same
:class:`Market`, which :class:`helpers.env.PacingCore` steps as the case ``K = 1`` or ``K > 1`` of
the same arrays. Tables are indexed like the calendar: ``(month, day[, channel])``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from helpers import carryover
from helpers.env.calendar import _PAD, MAX_DAYS, Calendar
from helpers.env.config import EnvConfig
from helpers.env.spaces import _CPC_OBS, _DOW_COS, _DOW_SIN, OBS_NAMES, channel_obs_names


@dataclass(frozen=True)
class Market:
    """The tables a :class:`~helpers.env.PacingCore` reads (read-only arrays).

    ``active`` ``(M, MAX_DAYS + 2, K)`` bool: who may spend on each day; ``prior_spend`` ``(M, K)``:
    the zero action's split; ``month_budget`` ``(M,)``; ``budget``: the config's budget (None: per
    month); ``carry_in`` ``(M, ADSTOCK_LAGS - 1, K)``: the spend ``j + 1`` days before each month;
    ``cap`` ``(K,)`` or None (:func:`helpers.carryover.saturation_cap`); ``log_ref_cpc``: the log
    reference cost per click (a number, or ``(K, 1)``); ``split``: the action carries K split
    logits after the pace. ``obs_table`` ``(M, MAX_DAYS + 2, O)``: every observation entry that
    depends only on (month, day), with ``budget_vs_even`` at -1 (the core adds the budget's part);
    ``cpc_cols`` and ``carry_cols`` (None: no carryover feature): where the core writes the rest.
    """

    channels: tuple[str, ...]
    active: np.ndarray
    prior_spend: np.ndarray
    month_budget: np.ndarray
    budget: float | None
    carry_in: np.ndarray
    cap: np.ndarray | None
    log_ref_cpc: float | np.ndarray
    split: bool
    obs_names: tuple[str, ...]
    obs_table: np.ndarray
    cpc_cols: np.ndarray
    carry_cols: np.ndarray | None


def _obs_grid(cal: Calendar, n_obs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The observation table with its first two columns (``days_left``, ``budget_vs_even``'s -1)
    filled, whether each (month, day) is still to be played, and the days left (at least 1)."""
    L = cal.n_days[:, None] - np.arange(_PAD)[None, :]  # days left, (M, _PAD)
    valid = L > 0
    t = np.zeros((len(cal.months), _PAD, n_obs), dtype=np.float32)
    t[:, :, 0] = np.maximum(L, 0) / MAX_DAYS
    t[:, :, 1] = np.where(valid, -1.0, 0.0)
    return t, valid, np.maximum(L, 1)


def funnel_market(config: EnvConfig, cal: Calendar) -> Market:
    """One channel (``FunnelDraws``): every day of the month active, one budget, the calendar's features."""
    M = len(cal.months)
    active = np.zeros((M, _PAD, 1), dtype=bool)
    active[:, :, 0] = np.arange(_PAD)[None, :] < cal.n_days[:, None]
    t, valid, Lpos = _obs_grid(cal, len(OBS_NAMES))
    t[:, :-1, 2] = cal.holiday[:, :-1]
    t[:, :-1, 3] = cal.holiday[:, 1:]
    t[:, :, 4] = np.where(valid, cal.holidays_left / Lpos, 0.0)
    t[:, :, 5] = _DOW_SIN[cal.weekday]
    t[:, :, 6] = _DOW_COS[cal.weekday]
    t[:, :, 8] = np.where(valid, cal.weekends_left / Lpos, 0.0)
    return Market(channels=("funnel",), active=active, prior_spend=np.ones((M, 1)), month_budget=np.full(M, float(config.budget)),
                  budget=float(config.budget), carry_in=np.zeros((M, carryover.ADSTOCK_LAGS - 1, 1)), cap=None,
                  log_ref_cpc=math.log(config.reference_cpc), split=False, obs_names=OBS_NAMES, obs_table=t,
                  cpc_cols=np.array([_CPC_OBS]), carry_cols=None)


def channel_market(config: EnvConfig, cal: Calendar, adstock: bool) -> Market:
    """Several channels (``ChannelDraws``): the campaign data's (``config.channels``) active days,
    budgets, caps and carry-in; per channel ``active_today``, ``active_days_left``,
    ``cpc_yesterday`` and (``adstock``) ``carryover`` in the observation."""
    hist = config.channels
    h = hist.month_index(config.months)
    K, M = hist.n_channels, len(cal.months)
    active = np.ascontiguousarray(hist.active[h])  # (M, _PAD, K) bool
    ref = hist.reference_cpc if config.reference_cpc is None else np.full(K, config.reference_cpc)
    names = channel_obs_names(hist.channels, adstock)
    t, valid, Lpos = _obs_grid(cal, len(names))
    act = active.astype(np.float64)
    left = np.cumsum(act[:, ::-1], axis=1)[:, ::-1]  # active days from d to the month's end
    t[:, :, 2 : 2 + K] = act
    t[:, :, 2 + K : 2 + 2 * K] = np.where(valid[:, :, None], left / Lpos[:, :, None], 0.0)
    budget = None if config.budget is None else float(config.budget)
    return Market(channels=hist.channels, active=active, prior_spend=hist.prior_spend[h],
                  month_budget=hist.budget[h].copy() if budget is None else np.full(M, budget), budget=budget,
                  carry_in=hist.carry_in[h], cap=carryover.saturation_cap(hist.max_daily_spend, config.cap_multiple),
                  log_ref_cpc=np.log(ref)[:, None], split=True, obs_names=names, obs_table=t,
                  cpc_cols=np.arange(2 + 2 * K, 2 + 3 * K), carry_cols=np.arange(2 + 3 * K, 2 + 4 * K) if adstock else None)
