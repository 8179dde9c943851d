"""The budget-pacing environment: the Bayesian funnel of notebook 02 turned into a simulator.

One **episode is one calendar month** (28-31 days, the real Indonesian holiday calendar from
:func:`helpers.data.holiday_flags`, weekends from :func:`helpers.data.weekend_flags`) under a fixed monthly budget. Each day the agent chooses
how much of the budget to spend; the simulator answers with impressions, clicks and
acquisitions drawn from the funnel::

    log mu_imp = imp_intercept + imp_slope * log(spend) + imp_holiday * holiday
    impressions ~ NB(mu_imp, imp_alpha)                    (0 when spend == 0)
    log mu_clk = clk_intercept + clk_slope * log(impressions) + clk_holiday * holiday
                 + clk_weekend * weekend                   (weekend = Saturday or Sunday)
    clicks ~ NB(mu_clk, clk_alpha), capped at impressions  (0 when impressions == 0)
    acquisitions ~ Binomial(clicks, acq_rate)

NB is PyMC's (mu, alpha), sampled as a gamma-Poisson mixture (and the binomial split of the
clicks by Poisson thinning, the same joint law; see ``PacingCore.step``). At the start of
every episode one parameter set is drawn from the posterior
(:class:`helpers.bayes.FunnelDraws`; or the posterior mean, see :class:`EnvConfig`): this is
how the posterior's uncertainty reaches the agent. The agent never sees which draw it got;
it can infer it from the costs per click it observes.

Months: training episodes draw a month uniformly from ``EnvConfig.months`` (default
:data:`TRAIN_MONTHS`, the 24 months of the data, 2023-2024); ``helpers.baselines.Evaluator``
plays every policy on :data:`EVAL_MONTHS` (2025-2026: holiday dates no agent has trained on).

Quick reference (for an agent)::

    envs = BudgetPacingVectorEnv(draws, num_envs=64, config=EnvConfig())
    obs, _ = envs.reset(seed=0)                      # (64, 9) float32
    obs, reward, terminated, truncated, info = envs.step(actions)   # actions (64, 1) in [-1, 1]
    # reward ~1 per day (clicks / mean daily clicks); terminated at month end, never truncated
    Evaluator(draws, config).evaluate(lambda obs: policy(obs))["pct_of_optimum"]

    # several channels (notebook 06): ChannelDraws and channel_config(); see "Several channels"
    envs = BudgetPacingVectorEnv(channel_draws, num_envs=128, config=channel_config())
    obs, _ = envs.reset(seed=0)                      # (128, 2 + 3K) float32 (2 + 4K with adstock)
    envs.step(actions)                               # actions (128, 1 + K): pace, then split logits

One core, three faces
---------------------
:class:`PacingCore` holds the state of a *batch* of months as numpy arrays and steps them
all at once (no Python loop over months). It is the only copy of the dynamics. It is
exposed as

* :class:`BudgetPacingVectorEnv` - a ``gymnasium.vector.VectorEnv`` of N parallel months
  with autoreset (what PPO trains on);
* :class:`BudgetPacingEnv` - a single ``gymnasium.Env`` (teaching, ``check_env``, SB3);
* ``helpers.baselines.Evaluator`` - 1,000 months stepped side by side, no autoreset.

Observation (``float32``, shape ``(9,)``; names in :data:`OBS_NAMES`)
---------------------------------------------------------------------
Seen *before* choosing today's spend; ``L`` = days left including today, ``n`` = days in
the month, ``R`` = budget left, ``B`` = monthly budget.

====  ==================  =====================================================  ==========
idx   name                meaning                                                range
====  ==================  =====================================================  ==========
0     days_left           ``L / 31``                                             [0, 1]
1     budget_vs_even      ``R / (B * L / n) - 1``: 0 = exactly on even pace,     [-1, 30]
                          > 0 = underspent so far, < 0 = overspent
2     holiday_today       1 if today is a public holiday                         {0, 1}
3     holiday_tomorrow    1 if tomorrow is (the 1st of next month at month end)  {0, 1}
4     holidays_left       share of the ``L`` remaining days that are holidays    [0, 1]
5     dow_sin             ``sin(2 pi weekday / 7)`` (Monday = 0)                 [-1, 1]
6     dow_cos             ``cos(2 pi weekday / 7)``                              [-1, 1]
7     cpc_yesterday       ``log(yesterday's cost per click / historical          [-5, 5]
                          median)``, clipped; 0 on day 1 and after a day
                          without spend (no information)
8     weekend_days_left   share of the ``L`` remaining days that are Saturdays   [0, 1]
                          or Sundays
====  ==================  =====================================================  ==========

``holidays_left`` goes beyond "today and tomorrow": the holiday calendar is public, and
without it the agent cannot know whether to save budget for a holiday later in the month
(the state would not be Markov). ``weekend_days_left`` does the same for weekends, whose
clicks are worth more (``clk_weekend``): it is a function of the weekday and ``L``, but a
hard one to learn from ``dow_sin``/``dow_cos``, so we hand it over. With both, the optimal
open-loop allocation of a parameter point is a function of the observation alone (see
notebook 03, exercise 3), up to which of the holidays left fall on a weekend (the rare
holiday on a weekend is worth both boosts; the observation does not say which one it is).
In the terminal observation (``L == 0``) ``budget_vs_even``, ``holidays_left`` and
``weekend_days_left`` are 0.

Action (``Box(-1, 1, (1,), float32)``)
--------------------------------------
``a`` is the log of a multiplier of the **even pace** ``R / L``, in units of
``log(max_multiplier)``::

    spend = min(R, R / L * max_multiplier ** a)     and on the last day: spend = R

So ``a = 0`` is even pacing (a sensible policy from the first update), ``a = +1/3`` doubles
today's pace when ``max_multiplier = 8``, and the budget is always spent exactly, never
overspent. Multiplicative steps suit a log-linear funnel (the optimum's holiday multipliers
of about 0.3-3.5x even pace sit around ``|a| <= 0.6``), and the right action does not drift
with the day of the month. The naive alternative ``action_transform="budget_fraction"``
(``spend = R * (a + 1) / 2``: the fraction of what is left) is kept for the lesson in
notebook 03: there the zero action spends half the budget on day 1, and the good action
(``1/L``) moves every day.

The last day's action is ignored (the rest of the budget is spent whatever it says), and
every step's info says so in ``action_ignored`` (True on the last day): an agent can leave
that step out of its policy loss, since its action changed nothing (``helpers.ppo`` does).

Out-of-range actions are clipped to ``[-1, 1]`` inside the environment; the agent keeps its
unclipped action for its log-probabilities (that is the agent's business). NaN or inf
actions raise ``ValueError``.

Reward (:class:`EnvConfig` ``reward``)
--------------------------------------
* ``"clicks"`` (default): today's clicks / ``reward_scale`` (default: the historical mean
  daily clicks, so a day is worth about 1 and a month about 30);
* ``"acquisitions"``: today's acquisitions / ``reward_scale`` (default: historical mean);
* ``"neg_log_cpc"``: the talk's ``-log(spend / clicks)``, shifted by the log of the
  historical median CPC (a constant per step, which changes no policy ranking because every
  episode of a month has the same length) and divided by ``reward_scale`` (default 1).
  A day without spend earns 0; a day with spend but no click counts as one click.
  Alone this reward prefers spending almost nothing (cost per click falls with spend);
  only the budget constraint (the last day spends the rest) keeps it from spending zero.

Termination, not truncation
---------------------------
The month's end is a true end of the decision problem (the budget is gone, nothing more
can be earned), so the last step returns ``terminated=True, truncated=False``. An agent
must then use a value of 0 after it, i.e. **not bootstrap** from the final observation. Had
we called it a truncation, PPO would add ``gamma * V(final_obs)`` and learn values for
a future that does not exist.

Vector env and autoreset (Gymnasium 1.x)
----------------------------------------
:class:`BudgetPacingVectorEnv` uses ``AutoresetMode.SAME_STEP`` (in
``metadata["autoreset_mode"]``): in the step where a month ends, the returned observation
is already the *first observation of the next month*; the ended month's last observation
is in ``info["final_obs"][i]`` (mask ``info["_final_obs"]``) and its totals in
``info["episode"]`` (``r`` return, ``l`` length, ``clicks``, ``acquisitions``, ``spend``;
mask ``info["_episode"]``). For PPO this means: store ``(obs, action, reward, terminated)``
as usual, treat ``terminated`` as "no bootstrap" (the final observation is never needed,
because every end is a termination), and never waste a step (there is no dummy reset step
as in ``NEXT_STEP`` mode). Every step's info also holds ``spend``, ``impressions``,
``clicks``, ``acquisitions`` and ``action_ignored`` arrays (of the step just played).

Random numbers and seeds
------------------------
A core draws from three independent streams spawned from one ``SeedSequence(seed)``:
episodes (which month, which posterior draw), gamma noise, and Poisson counts.

Two policies played from the same seed meet the same months and posterior draws, and the
same gamma noise (the negative binomial's extra spread: the market's day-to-day swings),
because the gamma stream consumes the same numbers whatever the spend. These common random
numbers are what lets a comparison of two policies be far more precise than each level
alone. They are **partial**: numpy's Poisson sampler consumes a number of uniforms that
depends on its rate, hence on the spend, so once two policies' spends differ, their Poisson
counts (impressions, clicks and acquisitions given their rates) come from different numbers,
even on days both spend alike. Measured (``tests/test_env.py``): this unshared count noise is
about 0.4% of a month's clicks (standard deviation), so a comparison of two policies on
1,000 months carries about 0.02 points of % of the optimum of it (standard error), which
the evaluator's paired standard error includes. Making it exact (counts by inverse CDF from
shared uniforms) would make every count far slower to draw: not worth it for an effect this
small.

Several channels (notebook 06)
------------------------------
``PacingCore(channel_draws, channel_config())`` (and both envs) simulate K campaigns at once
(``helpers.bayes.ChannelDraws``, the external campaign data). One channel is the case ``K = 1`` of
the same code and arrays: with ``FunnelDraws`` every random number is drawn in the same order as
before the env knew of channels (``tests/test_channel_env.py`` replays trajectories recorded then).

* **Months and budgets** (:class:`ChannelHistory`): the data's four months (2025-01..2025-04), each
  campaign spending only on its real active days (every day has at least one); the monthly budget
  is that month's historical total spend (``EnvConfig.budget`` overrides), spent exactly, never
  overspent. Training and evaluation can only use these calendars: keep validation and test
  apart by seed (other posterior draws, other market noise).
* **Action** ``Box(-1, 1, (1 + K,))``: ``a[0]`` is the pace above; ``a[1:]`` are split logits:
  today's spend goes to the channels active today in proportion to
  ``prior_k * max_multiplier ** a_k`` (:func:`split_weights`), ``prior_k`` the channel's mean daily
  spend over its active days of the month. The zero action is even pacing with the historical
  split; an inactive channel gets nothing whatever its logit. Out-of-range actions are clipped,
  NaN raises. The last day's pace is ignored (the rest is spent) but not its split, so
  ``action_ignored`` is False there. Open-loop plans map back with :func:`logits_for_split`.
* **Funnel per channel**: the channel model's (no holiday or weekend terms, no acquisitions: the
  reward is clicks); a channel that does not spend on a day serves nothing that day.
* **Saturation cap** (``EnvConfig.cap_multiple``, default 3): a day's spend above ``cap_multiple``
  x the channel's highest observed daily spend buys nothing. A modelling choice: the log-log fit is
  only trusted near its data (taken literally, an elasticity near 1 and cheap clicks would absorb
  the whole budget at dozens of times a campaign's busiest day), and marketing-mix tools use
  saturating response curves for the same reason. The budget is still spent, so a policy learns
  to avoid the waste.
* **Adstock** (draws with ``adstock > 0``): the effective spend is
  ``x_t = sum_{j < ADSTOCK_LAGS} w_j(theta) * min(spend_{t-j}, cap)``, the model's own normalised
  geometric weights (``helpers.bayes.adstock_weights``), so today's spend moves the next days'
  impressions. A month starts from the data's spends of the days before it (0 before the data
  start, as in the fit); the last ``ADSTOCK_LAGS - 1`` days' spends are part of the state.
* **Observation** (``core.obs_names``, :func:`channel_obs_names`): ``days_left``,
  ``budget_vs_even``, then one block of K per feature: ``active_today``, ``active_days_left``
  (share of the days left on which the channel is active), ``cpc_yesterday`` (against the
  channel's own historical median) and, with adstock, ``carryover`` (the part of today's
  effective spend already paid for on earlier days, in units of the channel's typical daily
  spend). :data:`CHANNEL_OBS_DESCRIPTIONS` has one line each.
* **Info** adds ``channel_spend`` and ``channel_clicks`` (per channel) to the totals; the core keeps
  the last step's ``last_channel_spend``, ``last_channel_impressions``, ``last_channel_clicks`` and
  ``last_effective_spend`` ``(K, n_envs)``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import dataclass, replace
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from helpers import data
from helpers.bayes import ADSTOCK_LAGS, CHANNEL_PARAM_NAMES, PARAM_NAMES, ChannelData, ChannelDraws, FunnelDraws, adstock_weights, channel_data

# --- months and the calendar ---------------------------------------------------------

MAX_DAYS = 31
_PAD = MAX_DAYS + 2  # calendar tables hold day n (the 1st of next month) and one spare


def month_range(start: str, end: str) -> tuple[str, ...]:
    """All months from ``start`` to ``end`` inclusive, as ``"YYYY-MM"`` strings."""
    return tuple(str(p) for p in pd.period_range(start, end, freq="M"))


#: Months episodes are drawn from by default (training): the two historical years of the data.
TRAIN_MONTHS: tuple[str, ...] = month_range("2023-01", "2024-12")
#: Months every policy is evaluated on (``helpers.baselines.Evaluator``): the next two
#: calendar years, whose holidays (Eid moves ~11 days a year) the agent has never seen.
EVAL_MONTHS: tuple[str, ...] = month_range("2025-01", "2026-12")


@dataclass(frozen=True)
class Calendar:
    """Holiday tables of a tuple of months, padded to ``MAX_DAYS + 2`` columns.

    ``holiday[m, d]`` is 1 if day ``d`` (0-based) of month ``m`` is a holiday, for
    ``d <= n_days[m]`` (``d == n_days`` is the first day of the next month, for
    "holiday tomorrow" on the last day); ``holidays_left[m, d]`` counts holidays among days
    ``d .. n_days - 1``; ``weekday[m, d]`` is 0 for Monday; ``weekend[m, d]`` is 1 on
    Saturdays and Sundays and ``weekends_left[m, d]`` counts them among days ``d .. n_days - 1``.
    """

    months: tuple[str, ...]
    n_days: np.ndarray  # (M,) int64
    holiday: np.ndarray  # (M, MAX_DAYS + 2) float64 0/1
    holidays_left: np.ndarray  # (M, MAX_DAYS + 2) float64
    weekday: np.ndarray  # (M, MAX_DAYS + 2) int64
    weekend: np.ndarray  # (M, MAX_DAYS + 2) float64 0/1
    weekends_left: np.ndarray  # (M, MAX_DAYS + 2) float64

    def dates(self, month: str) -> pd.DatetimeIndex:
        """The days of ``month``."""
        return pd.date_range(pd.Period(month, "M").start_time, periods=self.n_days[self.index(month)], freq="D")

    def index(self, month: str) -> int:
        try:
            return self.months.index(month)
        except ValueError:
            raise ValueError(f"month {month!r} is not among the configured months {self.months[0]}..{self.months[-1]}") from None

    def flags(self, month: str) -> np.ndarray:
        """0/1 holiday flag of each day of ``month``, shape ``(n_days,)``."""
        i = self.index(month)
        return self.holiday[i, : self.n_days[i]].copy()

    def weekend_flags(self, month: str) -> np.ndarray:
        """0/1 weekend (Saturday/Sunday) flag of each day of ``month``, shape ``(n_days,)``."""
        i = self.index(month)
        return self.weekend[i, : self.n_days[i]].copy()


def _check_months(months) -> tuple[str, ...]:
    if isinstance(months, str) or len(months) == 0:
        raise ValueError(f"months must be a non-empty sequence of 'YYYY-MM' strings, got {months!r}")
    out = []
    for m in months:
        if not (isinstance(m, str) and len(m) == 7 and m[4] == "-" and m[:4].isdigit() and m[5:].isdigit() and 1 <= int(m[5:]) <= 12):
            raise ValueError(f"months: {m!r} is not a month in 'YYYY-MM' form")
        out.append(m)
    return tuple(out)


@functools.lru_cache(maxsize=16)
def month_calendar(months: tuple[str, ...]) -> Calendar:
    """Build (and cache) the :class:`Calendar` of ``months`` from the ``holidays`` package."""
    months = _check_months(months)
    periods = [pd.Period(m, "M") for m in months]
    first = min(p.start_time for p in periods)
    last = max(p.end_time for p in periods).normalize() + pd.Timedelta(days=1)
    dates = pd.date_range(first, last, freq="D")
    flags = pd.Series(data.holiday_flags(dates).astype(np.float64), index=dates)
    M = len(months)
    n_days = np.array([p.days_in_month for p in periods], dtype=np.int64)
    holiday = np.zeros((M, _PAD))
    holidays_left = np.zeros((M, _PAD))
    weekday = np.zeros((M, _PAD), dtype=np.int64)
    weekend = np.zeros((M, _PAD))
    weekends_left = np.zeros((M, _PAD))
    for i, p in enumerate(periods):
        n = n_days[i]
        holiday[i, : n + 1] = flags.loc[p.start_time : p.start_time + pd.Timedelta(days=n)].to_numpy()
        holidays_left[i, :n] = np.cumsum(holiday[i, :n][::-1])[::-1]
        weekday[i] = (p.start_time.weekday() + np.arange(_PAD)) % 7
        weekend[i, : n + 1] = weekday[i, : n + 1] >= 5  # the same rule as helpers.data.weekend_flags
        weekends_left[i, :n] = np.cumsum(weekend[i, :n][::-1])[::-1]
    for arr in (n_days, holiday, holidays_left, weekday, weekend, weekends_left):
        arr.setflags(write=False)
    return Calendar(months, n_days, holiday, holidays_left, weekday, weekend, weekends_left)


# --- what the data says (budget, reward scales, CPC reference) -------------------------


@dataclass(frozen=True)
class HistoricalStats:
    """Reference figures from ``data/marketing_daily.csv``."""

    monthly_budget: float  # mean spend per calendar month
    mean_daily_clicks: float
    mean_daily_acquisitions: float
    median_cpc: float  # median of daily spend / clicks


@functools.lru_cache(maxsize=4)
def historical_stats(path: str | None = None) -> HistoricalStats:
    """Budget and scales from the historical data (validated by ``helpers.data.load_daily``)."""
    df = data.load_daily(path or data.DATA_PATH)
    months = df["date"].dt.to_period("M")
    return HistoricalStats(
        monthly_budget=float(df.groupby(months)["spend"].sum().mean()),
        mean_daily_clicks=float(df["clicks"].mean()),
        mean_daily_acquisitions=float(df["acquisitions"].mean()),
        median_cpc=float((df["spend"] / df["clicks"].clip(lower=1)).median()),
    )


# --- several channels: what the campaign data say (notebook 06) --------------------------


class ChannelHistory:
    """What the data of several channels say, in the form the simulator needs (read-only).

    Built from a :class:`helpers.bayes.ChannelData` (default: the external campaign data, see
    :func:`channel_history`), one entry per *complete* calendar month of the data:

    * ``months`` ``(M,)`` "YYYY-MM"; ``n_days`` ``(M,)``;
    * ``active`` ``(M, MAX_DAYS + 2, K)`` bool: channel ``k`` ran on day ``d`` of month ``m``
      (the simulator spends on a channel only on such days; every day has at least one);
    * ``spend`` ``(M, MAX_DAYS + 2, K)``: the historical daily spend;
    * ``budget`` ``(M,)``: each month's historical total spend (the default monthly budget);
    * ``prior_spend`` ``(M, K)``: a channel's mean daily spend over its active days of the month
      (0 where it never ran): the split of the zero action (see :func:`split_weights`);
    * ``carry_in`` ``(M, ADSTOCK_LAGS - 1, K)``: the spend ``j + 1`` days before the month's first
      day (0 before the data start, as in the model's fit): the adstock state a month starts from;
    * ``max_daily_spend``, ``typical_spend`` (mean over active days), ``reference_cpc`` (median
      of spend / clicks over active days), each ``(K,)``; ``mean_daily_clicks`` (all channels).

    Equal (and hashed) by content (``fingerprint``), so it can sit inside the frozen
    :class:`EnvConfig` and in the training caches' keys.
    """

    def __init__(self, ch: ChannelData):
        periods = ch.dates.to_period("M")
        months, first = np.unique(periods.astype(str), return_index=True)
        months = tuple(str(m) for m in months[np.argsort(first)])
        K = len(ch.channels)
        M = len(months)
        lags = ADSTOCK_LAGS - 1
        n_days = np.zeros(M, dtype=np.int64)
        active = np.zeros((M, _PAD, K), dtype=bool)
        spend = np.zeros((M, _PAD, K))
        carry_in = np.zeros((M, lags, K))
        for i, month in enumerate(months):
            rows = np.flatnonzero(periods.astype(str) == month)
            n = pd.Period(month, "M").days_in_month
            if len(rows) != n:
                raise ValueError(f"ChannelHistory: month {month} has {len(rows)} of its {n} days in the data; only complete months are supported")
            if not np.all(ch.active[rows].any(axis=1)):
                day = ch.dates[rows[~ch.active[rows].any(axis=1)][0]].date()
                raise ValueError(f"ChannelHistory: no channel is active on {day}; every day needs at least one to spend on")
            n_days[i] = n
            active[i, :n] = ch.active[rows]
            spend[i, :n] = ch.spend[rows]
            for j in range(lags):  # spend j + 1 days before the month (0 before the data)
                if rows[0] - 1 - j >= 0:
                    carry_in[i, j] = ch.spend[rows[0] - 1 - j]
        days_active = active.sum(axis=1)
        on = ch.active
        clicks = np.maximum(ch.clicks, 1)
        self.channels = tuple(ch.channels)
        self.months = months
        self.n_days = n_days
        self.active = active
        self.spend = spend
        self.budget = spend.sum(axis=(1, 2))
        self.prior_spend = np.where(days_active > 0, spend.sum(axis=1) / np.maximum(days_active, 1), 0.0)
        self.carry_in = carry_in
        self.max_daily_spend = np.array([ch.spend[on[:, k], k].max() for k in range(K)])
        self.typical_spend = np.array([ch.spend[on[:, k], k].mean() for k in range(K)])
        self.reference_cpc = np.array([np.median(ch.spend[on[:, k], k] / clicks[on[:, k], k]) for k in range(K)])
        self.mean_daily_clicks = float(ch.clicks.sum(axis=1).mean())
        h = hashlib.sha256(json.dumps([self.channels, self.months]).encode())
        for name in ("n_days", "active", "spend", "carry_in", "max_daily_spend", "reference_cpc"):
            arr = getattr(self, name)
            arr.setflags(write=False)
            h.update(name.encode() + np.ascontiguousarray(arr, dtype=np.float64).tobytes())
        for name in ("budget", "prior_spend", "typical_spend"):
            getattr(self, name).setflags(write=False)
        self.fingerprint = h.hexdigest()

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    def month_index(self, months) -> np.ndarray:
        """Positions of ``months`` (e.g. an :class:`EnvConfig`'s) among this history's months."""
        missing = [m for m in months if m not in self.months]
        if missing:
            raise ValueError(f"months {missing} are not in the channel data ({self.months[0]}..{self.months[-1]})")
        return np.array([self.months.index(m) for m in months], dtype=np.int64)

    def __eq__(self, other):
        return isinstance(other, ChannelHistory) and other.fingerprint == self.fingerprint

    def __hash__(self):
        return hash(self.fingerprint)

    def __deepcopy__(self, memo):  # immutable (dataclasses.asdict deep-copies what it meets)
        return self

    def __repr__(self):
        return f"ChannelHistory({self.n_channels} channels, {self.months[0]}..{self.months[-1]}, sha256={self.fingerprint[:16]})"


@functools.lru_cache(maxsize=4)
def channel_history(path: str | None = None) -> ChannelHistory:
    """The :class:`ChannelHistory` of the external campaign data (``helpers.data.load_external``)."""
    return ChannelHistory(channel_data(data.load_external(path or data.EXTERNAL_PATH)))


# --- configuration --------------------------------------------------------------------

REWARDS = ("clicks", "acquisitions", "neg_log_cpc")
ACTION_TRANSFORMS = ("pace_multiplier", "budget_fraction")


@dataclass(frozen=True)
class EnvConfig:
    """Every knob of the environment. ``None`` means "derive from the historical data".

    One channel (``FunnelDraws``) by default; several channels (``ChannelDraws``) with
    ``channels`` set (build it with :func:`channel_config`).
    """

    #: Monthly budget in currency units; None = the historical mean monthly spend (~33.6k);
    #: with channels: each month's historical total spend.
    budget: float | None = None
    #: Reward kind: "clicks" (default), "acquisitions" or the talk's "neg_log_cpc" (channels: "clicks" only).
    reward: str = "clicks"
    #: Reward divisor; None = historical mean daily clicks (all channels) / acquisitions, or 1 for neg_log_cpc.
    reward_scale: float | None = None
    #: "draws": each episode samples one posterior draw; "mean": always the posterior mean.
    params: str = "draws"
    #: Action +-1 means spending max_multiplier (or 1/max_multiplier) times the even pace; for
    #: channels also the factor one split logit of +-1 applies to a channel's share.
    max_multiplier: float = 8.0
    #: "pace_multiplier" (default, see module doc) or "budget_fraction" (the lesson's foil).
    action_transform: str = "pace_multiplier"
    #: Months episodes are drawn from, uniformly ("YYYY-MM"); default the 24 historical months
    #: (with channels: months of the channel data).
    months: tuple[str, ...] = TRAIN_MONTHS
    #: Historical median cost per click (the reference of obs "cpc_yesterday" and of
    #: neg_log_cpc); None = from the data (with channels: each channel's own median).
    reference_cpc: float | None = None
    #: Several channels: their calendar, budgets and history (:class:`ChannelHistory`); None = one channel.
    channels: ChannelHistory | None = None
    #: Channels only: a channel's response is flat beyond ``cap_multiple`` x its highest observed
    #: daily spend (a day's spend above it buys nothing); None = no cap. See "Several channels".
    cap_multiple: float | None = 3.0

    def __post_init__(self):
        object.__setattr__(self, "months", _check_months(tuple(self.months) if not isinstance(self.months, str) else self.months))
        if self.reward not in REWARDS:
            raise ValueError(f"EnvConfig.reward: {self.reward!r} is not one of {REWARDS}")
        if self.params not in ("draws", "mean"):
            raise ValueError(f"EnvConfig.params: {self.params!r} is not 'draws' or 'mean'")
        if self.action_transform not in ACTION_TRANSFORMS:
            raise ValueError(f"EnvConfig.action_transform: {self.action_transform!r} is not one of {ACTION_TRANSFORMS}")
        for name in ("budget", "reward_scale", "reference_cpc", "cap_multiple"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ValueError(f"EnvConfig.{name}: must be a positive finite number or None, got {v!r}")
        if not (math.isfinite(self.max_multiplier) and self.max_multiplier > 1):
            raise ValueError(f"EnvConfig.max_multiplier: must be > 1, got {self.max_multiplier!r}")
        if self.channels is not None:
            if not isinstance(self.channels, ChannelHistory):
                raise TypeError(f"EnvConfig.channels: expected a ChannelHistory (see channel_config), got {type(self.channels).__name__}")
            if self.reward != "clicks":
                raise ValueError(f"EnvConfig.reward: the channel data have clicks only, so the reward must be 'clicks', got {self.reward!r}")
            self.channels.month_index(self.months)  # raises for months the data do not cover

    def resolved(self) -> "EnvConfig":
        """A copy with every ``None`` replaced by its value from the historical data.

        With channels, ``budget`` and ``reference_cpc`` stay None when not given: they are per
        month and per channel (:class:`ChannelHistory`), read by :class:`PacingCore`.
        """
        if self.channels is not None:
            return self if self.reward_scale is not None else replace(self, reward_scale=self.channels.mean_daily_clicks)
        if self.budget is not None and self.reward_scale is not None and self.reference_cpc is not None:
            return self
        stats = historical_stats()
        scale = self.reward_scale
        if scale is None:
            scale = {"clicks": stats.mean_daily_clicks, "acquisitions": stats.mean_daily_acquisitions, "neg_log_cpc": 1.0}[self.reward]
        return replace(
            self,
            budget=self.budget if self.budget is not None else stats.monthly_budget,
            reward_scale=scale,
            reference_cpc=self.reference_cpc if self.reference_cpc is not None else stats.median_cpc,
        )


def channel_config(history: ChannelHistory | None = None, **overrides) -> EnvConfig:
    """The :class:`EnvConfig` of the several-channel env: ``history`` (default: the external
    campaign data, :func:`channel_history`) and its months, then ``overrides``."""
    history = history or channel_history()
    return EnvConfig(**{"channels": history, "months": history.months, **overrides})


# --- observation layout -----------------------------------------------------------------

OBS_NAMES = (
    "days_left",
    "budget_vs_even",
    "holiday_today",
    "holiday_tomorrow",
    "holidays_left",
    "dow_sin",
    "dow_cos",
    "cpc_yesterday",
    "weekend_days_left",
)
OBS_DIM = len(OBS_NAMES)
#: One line per observation entry (the module docstring has the full table).
OBS_DESCRIPTIONS = {
    "days_left": "days left including today / 31",
    "budget_vs_even": "budget left / what even pacing would have left, minus 1 (0 = on pace)",
    "holiday_today": "1 if today is a public holiday",
    "holiday_tomorrow": "1 if tomorrow is a public holiday",
    "holidays_left": "share of the days left (today included) that are holidays",
    "dow_sin": "day of the week, sine of 2 pi weekday / 7 (Monday = 0)",
    "dow_cos": "day of the week, cosine of 2 pi weekday / 7",
    "cpc_yesterday": "log(yesterday's cost per click / historical median), clipped to [-5, 5]; 0 if unknown",
    "weekend_days_left": "share of the days left (today included) that are Saturdays or Sundays",
}
OBS_LOW = np.array([0, -1, 0, 0, 0, -1, -1, -5, 0], dtype=np.float32)
OBS_HIGH = np.array([1, MAX_DAYS - 1, 1, 1, 1, 1, 1, 5, 1], dtype=np.float32)
_CPC_OBS = OBS_NAMES.index("cpc_yesterday")
CPC_CLIP = 5.0
_TINY = 1e-300  # log(max(spend, _TINY)) is finite; a mask then zeroes the rate exactly
_DOW_SIN = np.sin(2 * np.pi * np.arange(7) / 7)
_DOW_COS = np.cos(2 * np.pi * np.arange(7) / 7)

#: Several channels: the features common to all, then one block of K per channel feature
#: (names ``"<feature>:<channel>"``; see "Several channels" in the module docstring).
CHANNEL_COMMON_OBS = ("days_left", "budget_vs_even")
CHANNEL_OBS_FEATURES = ("active_today", "active_days_left", "cpc_yesterday", "carryover")
CHANNEL_OBS_DESCRIPTIONS = {
    "active_today": "1 if the channel can spend today",
    "active_days_left": "share of the days left (today included) on which the channel is active",
    "cpc_yesterday": "log(the channel's cost per click yesterday / its historical median), clipped to [-5, 5]; 0 if it did not spend",
    "carryover": "(adstock only) the part of today's effective spend already paid for on earlier days, in units of the "
                 "channel's typical daily spend, clipped to [0, 50]",
}
CARRY_CLIP = 50.0
_CHANNEL_OBS_BOUNDS = {"active_today": (0, 1), "active_days_left": (0, 1), "cpc_yesterday": (-CPC_CLIP, CPC_CLIP), "carryover": (0, CARRY_CLIP)}


def channel_obs_names(channels, adstock: bool = False) -> tuple[str, ...]:
    """Observation names of the several-channel env (``carryover`` features only with adstock)."""
    features = CHANNEL_OBS_FEATURES if adstock else CHANNEL_OBS_FEATURES[:-1]
    return CHANNEL_COMMON_OBS + tuple(f"{f}:{c}" for f in features for c in channels)


def observation_space(names: tuple[str, ...] | None = None) -> gym.spaces.Box:
    """The observation space of the one-channel env, or of the env whose obs are ``names``."""
    if names is None or tuple(names) == OBS_NAMES:
        return gym.spaces.Box(OBS_LOW, OBS_HIGH, dtype=np.float32)
    bounds = {"days_left": (0, 1), "budget_vs_even": (-1, MAX_DAYS - 1)}
    low, high = zip(*(bounds.get(n) or _CHANNEL_OBS_BOUNDS[n.split(":")[0]] for n in names))
    return gym.spaces.Box(np.array(low, dtype=np.float32), np.array(high, dtype=np.float32), dtype=np.float32)


def action_space(n_channels: int | None = None) -> gym.spaces.Box:
    """``Box(-1, 1, (1,))`` for one channel; ``(1 + n_channels,)`` (pace, then split logits) for several."""
    return gym.spaces.Box(-1.0, 1.0, shape=(1 if n_channels is None else 1 + n_channels,), dtype=np.float32)


# --- the action transform and its inverse ---------------------------------------------


def spend_from_action(a: np.ndarray, budget_left: np.ndarray, days_left: np.ndarray, config: EnvConfig) -> np.ndarray:
    """Today's spend for clipped actions ``a`` (shape ``(n,)``), before the last-day rule.

    ``pace_multiplier``: ``min(R, R / L * max_multiplier ** a)``; ``budget_fraction``:
    ``R * (a + 1) / 2``. Days-left ``L <= 0`` (a finished month) gives 0.
    """
    if config.action_transform == "pace_multiplier":
        spend = budget_left / np.maximum(days_left, 1) * np.exp(a * math.log(config.max_multiplier))
    else:
        spend = budget_left * (0.5 * (a + 1.0))
    return np.minimum(spend, budget_left)


def action_for_share(share: np.ndarray, days_left: np.ndarray, config: EnvConfig) -> np.ndarray:
    """The action that spends ``share`` of the remaining budget today (inverse transform).

    ``share`` and ``days_left`` have shape ``(n,)``; returns ``(n, 1)`` actions in
    ``[-1, 1]`` (clipped: a share beyond the action bounds is not reachable). This is how
    open-loop allocations become actions (``helpers.baselines.OpenLoopPolicy``).
    """
    share = np.asarray(share, dtype=np.float64)
    if config.action_transform == "pace_multiplier":
        with np.errstate(divide="ignore"):
            a = np.log(share * np.maximum(days_left, 1)) / math.log(config.max_multiplier)
    else:
        a = 2.0 * share - 1.0
    return np.clip(a, -1.0, 1.0)[:, None]


def split_weights(logits: np.ndarray, prior: np.ndarray, active: np.ndarray, max_multiplier: float) -> np.ndarray:
    """Today's split of the spend across channels, ``(n, K)`` rows summing to 1 (0 for a row with no active channel).

    ``share_k  proportional to  prior_k * max_multiplier ** logit_k`` over the active channels
    (inactive ones get 0): the zero action splits in proportion to ``prior`` (the history), and a
    logit of +-1 multiplies a channel's weight by ``max_multiplier`` (or divides it).

    Args:
        logits: ``(n, K)`` split logits, already clipped to [-1, 1].
        prior: ``(n, K)`` positive prior weights (a channel's historical daily spend).
        active: ``(n, K)`` 0/1 or bool.
    """
    w = prior * active * np.exp(logits * math.log(max_multiplier))
    total = w.sum(axis=1, keepdims=True)
    return np.divide(w, total, out=np.zeros_like(w), where=total > 0)


def logits_for_split(split: np.ndarray, prior: np.ndarray, active: np.ndarray, max_multiplier: float) -> np.ndarray:
    """The split logits (clipped to [-1, 1]) whose :func:`split_weights` is ``split`` (inverse).

    Logits are defined up to a constant per row; this one centres the active channels' range on
    0, so that any split whose largest and smallest ``split / prior`` differ by at most
    ``max_multiplier ** 2`` is reached exactly (beyond that, the extremes are clipped). A channel
    with no share gets the lowest logit, -1. Inactive channels get 0 (ignored).
    """
    active = np.asarray(active, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(active & (split > 0), np.log(split / np.where(prior > 0, prior, 1.0)), np.nan) / math.log(max_multiplier)
    ok = np.isfinite(r)
    some = ok.any(axis=1, keepdims=True)
    hi = np.where(some, np.where(ok, r, -np.inf).max(axis=1, keepdims=True), 0.0)
    lo = np.where(some, np.where(ok, r, np.inf).min(axis=1, keepdims=True), 0.0)
    centre = np.maximum((hi + lo) / 2, hi - 1.0)  # keep the largest share exact when the range is too wide
    out = np.where(ok, r - centre, -1.0)
    return np.clip(np.where(active, out, 0.0), -1.0, 1.0)


def _checked_index(value, k: int, count: int, what: str) -> np.ndarray:
    v = np.broadcast_to(np.asarray(value, dtype=np.int64), (k,))
    if np.any((v < 0) | (v >= count)):
        raise ValueError(f"{what} index out of range 0..{count - 1}: {v}")
    return v


# --- the core ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvState:
    """What an open-loop policy may read besides the observation (views; valid until the next step).

    All arrays have shape ``(n_envs,)``: ``month_idx`` indexes ``calendar.months``, ``day``
    is the 0-based day about to be played (``== n_days`` once the month is over),
    ``episode_id`` numbers episodes in the order they started (from 0 after each seeding).
    ``budget`` is the monthly budget (None with channels, whose months each have their own:
    ``month_budget``, ``(n_months,)``). With channels, ``active`` ``(n_months, MAX_DAYS + 2, K)``
    and ``prior_spend`` ``(n_months, K)`` are the core's tables, indexed like ``calendar``.
    """

    calendar: Calendar
    budget: float | None
    month_idx: np.ndarray
    day: np.ndarray
    n_days: np.ndarray
    budget_left: np.ndarray
    draw_idx: np.ndarray
    episode_id: np.ndarray
    month_budget: np.ndarray | None = None
    active: np.ndarray | None = None
    prior_spend: np.ndarray | None = None

    @property
    def days_left(self) -> np.ndarray:
        return self.n_days - self.day


#: The per-channel parameters the core simulates, in its table's order: the funnel's
#: ``PARAM_NAMES`` (holiday, weekend and acquisitions are 0 for the channel data) and ``adstock``.
CORE_PARAM_NAMES = PARAM_NAMES + ("adstock",)


def _param_table(draws: FunnelDraws | ChannelDraws) -> np.ndarray:
    """``(len(CORE_PARAM_NAMES), K, n_draws)``: every draw's parameters, channel by channel."""
    if isinstance(draws, FunnelDraws):
        P = draws.as_matrix().T[:, None, :]  # (10, 1, J)
        return np.concatenate([P, np.zeros((1, 1, draws.n_draws))])
    zeros = np.zeros((draws.n_channels, draws.n_draws))
    rows = {k: getattr(draws, k).T for k in CHANNEL_PARAM_NAMES}  # (K, J) each
    return np.stack([rows.get(k, zeros) for k in CORE_PARAM_NAMES])


class PacingCore:
    """The dynamics of ``n_envs`` months side by side (the only copy of them), for one channel
    or several.

    Args:
        draws: posterior draws, ``FunnelDraws`` (one channel) or ``ChannelDraws`` (several;
            ``config.channels`` must then describe the same channels, see :func:`channel_config`);
            with ``config.params == "mean"`` their mean.
        config: an :class:`EnvConfig` (resolved here).
        n_envs: how many months are simulated in parallel.

    Use: ``seed(s)``, ``start(idx)`` new months in slots ``idx``, then alternate
    ``observe()`` -> ``(n_envs, obs_dim)`` and ``step(actions (n_envs, action_dim))``. A slot
    whose month is over stays inert (spends and earns nothing) until it is started again.

    One channel is the case ``K = 1`` of the same arrays: per-channel state has shape
    ``(K, n_envs)``, and with one channel every random number is drawn in the same order as
    before the code knew of channels (tests/test_channel_env.py replays recorded trajectories).

    Speed: every step is a few dozen numpy operations on ``(K, n_envs)`` arrays and three calls
    to numpy's samplers, whatever ``n_envs``; the calendar part of the observation is a table
    lookup. No Python loop runs over slots or channels.
    """

    def __init__(self, draws: FunnelDraws | ChannelDraws, config: EnvConfig | None = None, n_envs: int = 1):
        if not isinstance(draws, (FunnelDraws, ChannelDraws)):
            raise TypeError(f"draws must be a helpers.bayes.FunnelDraws or ChannelDraws, got {type(draws).__name__}")
        if int(n_envs) < 1:
            raise ValueError(f"n_envs must be >= 1, got {n_envs}")
        self.config = cfg = (config or EnvConfig()).resolved()
        self.multichannel = multi = isinstance(draws, ChannelDraws)
        if multi and cfg.channels is None:
            raise ValueError("ChannelDraws need a config with channels: build it with helpers.env.channel_config()")
        if not multi and cfg.channels is not None:
            raise ValueError("this config describes several channels: pass ChannelDraws, not FunnelDraws")
        if multi and tuple(draws.channels) != cfg.channels.channels:
            raise ValueError(f"the draws' channels {tuple(draws.channels)} differ from the config's {cfg.channels.channels}")
        self.draws = draws.mean() if cfg.params == "mean" else draws
        self.calendar = cal = month_calendar(cfg.months)
        self.n_envs = n = int(n_envs)
        M = len(cal.months)
        self.history = hist = cfg.channels
        self.channels: tuple[str, ...] = hist.channels if multi else ("funnel",)
        self.n_channels = K = len(self.channels)
        self.action_dim = 1 + K if multi else 1
        self._log_max_mult = math.log(cfg.max_multiplier)
        # Per (month, day, channel) tables, indexed like the calendar: which channels may spend, the
        # prior split, the budget, the saturation cap and the reference costs per click.
        if multi:
            h = hist.month_index(cfg.months)
            self.active = np.ascontiguousarray(hist.active[h])  # (M, _PAD, K) bool
            self.prior_spend = hist.prior_spend[h]  # (M, K)
            self.month_budget = hist.budget[h].copy() if cfg.budget is None else np.full(M, float(cfg.budget))
            self._carry_in = hist.carry_in[h]  # (M, LAGS - 1, K)
            self.cap = None if cfg.cap_multiple is None else cfg.cap_multiple * hist.max_daily_spend
            ref = hist.reference_cpc if cfg.reference_cpc is None else np.full(K, cfg.reference_cpc)
            self._log_ref_cpc = np.log(ref)[:, None]  # (K, 1)
            self.budget = None if cfg.budget is None else float(cfg.budget)
        else:
            self.active = np.zeros((M, _PAD, 1), dtype=bool)
            self.active[:, :, 0] = np.arange(_PAD)[None, :] < cal.n_days[:, None]
            self.prior_spend = np.ones((M, 1))
            self.month_budget = np.full(M, float(cfg.budget))
            self.cap = None
            self._log_ref_cpc = math.log(cfg.reference_cpc)
            self.budget = float(cfg.budget)
        for arr in (self.active, self.month_budget):
            arr.setflags(write=False)
        # (15, K, n_draws): the 11 parameters, then imp_alpha and clk_alpha again (one gamma call
        # serves both funnel stages), then acq_rate and 1 - acq_rate (one Poisson call splits
        # the clicks), so that one fancy assignment starts a month.
        P = _param_table(self.draws)
        ia, ca, ar = (CORE_PARAM_NAMES.index(k) for k in ("imp_alpha", "clk_alpha", "acq_rate"))
        self._param_table = np.ascontiguousarray(np.concatenate([P, P[[ia, ca]], P[[ar]], 1.0 - P[[ar]]]))
        self.has_acquisitions = not multi
        self.adstock_on = bool(np.any(P[CORE_PARAM_NAMES.index("adstock")] > 0))
        self.obs_names = channel_obs_names(self.channels, self.adstock_on) if multi else OBS_NAMES
        self._build_obs_tables()
        self._action_floor = np.where(np.arange(_PAD) == 1, 1.0, -1.0)  # indexed by days left
        # Per-slot state, shape (n,) or (K, n). day == n_days: month over (or not started).
        k = len(CORE_PARAM_NAMES)
        self._slot_params = np.ones((k + 4, K, n))  # (15, K, n): this month's draw, per slot
        self.slot_params = self._slot_params[:k]  # (11, K, n) view, rows in CORE_PARAM_NAMES order
        self._alpha = self._slot_params[k : k + 2].reshape(-1)  # (2Kn,) view: imp_alpha, clk_alpha
        self._acq_split = self._slot_params[k + 2 :]  # (2, K, n) view: acq_rate, 1 - acq_rate
        self.month_idx = np.zeros(n, dtype=np.int64)
        self.draw_idx = np.zeros(n, dtype=np.int64)
        self.episode_id = np.full(n, -1, dtype=np.int64)
        self.n_days = np.zeros(n, dtype=np.int64)
        self.day = np.zeros(n, dtype=np.int64)
        # Float state in one block so that starting a month is one assignment: rows are
        # return, spend, clicks, acquisitions (this month so far), budget left.
        self._floats = np.zeros((5, n))
        self._totals = self._floats[:4]
        self._float_init = np.zeros((5, M))
        self._float_init[4] = self.month_budget
        self._cpc = np.zeros((K, n))  # obs cpc_yesterday per channel (0 = no information)
        self.ep_channel_spend = np.zeros((K, n))  # this month's spend per channel
        self.ep_channel_clicks = np.zeros((K, n))
        # the last step's per-channel figures, (K, n)
        self.last_channel_spend = np.zeros((K, n))
        self.last_channel_impressions = np.zeros((K, n), dtype=np.int64)
        self.last_channel_clicks = np.zeros((K, n), dtype=np.int64)
        self.last_effective_spend = np.zeros((K, n))  # capped, adstocked: what the response saw
        if self.adstock_on:
            # _past[j] = spend j + 1 days ago; _weights[j] = adstock weight of a spend j days old
            # (normalised geometric, helpers.bayes.adstock_weights, per slot's draw); _carry = the
            # part of today's effective spend already paid for (sum over j >= 1).
            self._past = np.zeros((ADSTOCK_LAGS - 1, K, n))
            self._weights = np.zeros((ADSTOCK_LAGS, K, n))
            self._carry = np.zeros((K, n))
        self._next_episode = 0
        self.seed(None)

    @property
    def params(self) -> np.ndarray:
        """This month's parameters per slot: one channel ``(len(PARAM_NAMES), n_envs)`` (rows in
        ``PARAM_NAMES`` order); several ``(len(CORE_PARAM_NAMES), K, n_envs)``. A view."""
        return self.slot_params if self.multichannel else self._slot_params[: len(PARAM_NAMES), 0]

    def observation_space(self) -> gym.spaces.Box:
        return observation_space(self.obs_names)

    def action_space(self) -> gym.spaces.Box:
        return action_space(self.n_channels if self.multichannel else None)

    def _build_obs_tables(self) -> None:
        """Everything in the observation that depends only on (month, day), as lookup tables."""
        cal = self.calendar
        M = len(cal.months)
        d = np.arange(_PAD)[None, :]
        L = cal.n_days[:, None] - d  # days left, (M, _PAD)
        valid = L > 0
        Lpos = np.maximum(L, 1)
        t = np.zeros((M, _PAD, len(self.obs_names)), dtype=np.float32)
        t[:, :, 0] = np.maximum(L, 0) / MAX_DAYS
        t[:, :, 1] = np.where(valid, -1.0, 0.0)  # + budget_left * _pace_factor below
        if self.multichannel:
            K = self.n_channels
            act = self.active.astype(np.float64)  # (M, _PAD, K)
            left = np.cumsum(act[:, ::-1], axis=1)[:, ::-1]  # active days from d to the month's end
            t[:, :, 2 : 2 + K] = act
            t[:, :, 2 + K : 2 + 2 * K] = np.where(valid[:, :, None], left / Lpos[:, :, None], 0.0)
            self._cpc_cols = np.arange(2 + 2 * K, 2 + 3 * K)
            self._carry_cols = np.arange(2 + 3 * K, 2 + 4 * K) if self.adstock_on else None
        else:
            t[:, :-1, 2] = cal.holiday[:, :-1]
            t[:, :-1, 3] = cal.holiday[:, 1:]
            t[:, :, 4] = np.where(valid, cal.holidays_left / Lpos, 0.0)
            t[:, :, 5] = _DOW_SIN[cal.weekday]
            t[:, :, 6] = _DOW_COS[cal.weekday]
            t[:, :, 8] = np.where(valid, cal.weekends_left / Lpos, 0.0)
            self._cpc_cols = np.array([_CPC_OBS])
            self._carry_cols = None
        self._obs_table = t
        self._pace_factor = np.where(valid, cal.n_days[:, None] / (self.month_budget[:, None] * Lpos), 0.0)  # (M, _PAD)

    # -- seeding and starting months --

    def seed(self, seed: int | None) -> None:
        """Re-seed the three streams (episodes, gamma noise, counts) and renumber episodes from 0."""
        e, g, c = np.random.SeedSequence(seed).spawn(3)
        self.rng_episode = np.random.default_rng(e)
        self.rng_noise = np.random.default_rng(g)
        self.rng_counts = np.random.default_rng(c)
        self._next_episode = 0

    def start(self, idx, month_idx=None, draw_idx=None) -> None:
        """Start new months in slots ``idx``; month and draw random unless given (arrays like ``idx``)."""
        idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))
        k = len(idx)
        M, J = len(self.calendar.months), self._param_table.shape[2]
        u = self.rng_episode.random((2, k))  # uniform month and draw: floor(u * count), one cheap call
        m = (u[0] * M).astype(np.int64) if month_idx is None else _checked_index(month_idx, k, M, "month")
        j = (u[1] * J).astype(np.int64) if draw_idx is None else _checked_index(draw_idx, k, J, "posterior draw")
        self.month_idx[idx] = m
        self.draw_idx[idx] = j
        self._slot_params[:, :, idx] = self._param_table[:, :, j]
        self.n_days[idx] = self.calendar.n_days[m]
        self.day[idx] = 0
        self._floats[:, idx] = self._float_init[:, m]
        self._cpc[:, idx] = 0.0
        self.ep_channel_spend[:, idx] = 0.0
        self.ep_channel_clicks[:, idx] = 0.0
        if self.adstock_on:
            theta = self.slot_params[CORE_PARAM_NAMES.index("adstock"), :, idx]  # (k, K)
            self._weights[:, :, idx] = adstock_weights(theta).transpose(2, 1, 0)  # (k, K, LAGS) -> (LAGS, K, k)
            self._past[:, :, idx] = self._carry_in[m].transpose(1, 2, 0)  # (k, LAGS - 1, K) -> (LAGS - 1, K, k)
            self._carry[:, idx] = np.einsum("jkn,jkn->kn", self._weights[1:, :, idx], self._past[:, :, idx])
        self.episode_id[idx] = self._next_episode + np.arange(k)
        self._next_episode += k

    # -- reading the state --

    def observe(self, rows: np.ndarray | None = None) -> np.ndarray:
        """The observation of every slot (or of slots ``rows``): ``(n, obs_dim)`` float32, a fresh array."""
        if rows is None:
            m, d, f, cpc = self.month_idx, self.day, self._floats, self._cpc
        else:
            m, d, f, cpc = self.month_idx[rows], self.day[rows], self._floats[:, rows], self._cpc[:, rows]
        obs = self._obs_table[m, d]  # fancy indexing copies
        obs[:, 1] += f[4] * self._pace_factor[m, d]
        obs[:, self._cpc_cols] = cpc.T
        if self._carry_cols is not None:
            carry = self._carry if rows is None else self._carry[:, rows]
            obs[:, self._carry_cols] = np.minimum(carry.T / self.history.typical_spend, CARRY_CLIP)
        return obs

    def state(self) -> EnvState:
        return EnvState(self.calendar, self.budget, self.month_idx, self.day, self.n_days, self.budget_left, self.draw_idx,
                        self.episode_id, self.month_budget, self.active if self.multichannel else None,
                        self.prior_spend if self.multichannel else None)

    @property
    def budget_left(self) -> np.ndarray:
        """Budget left in each slot, ``(n_envs,)`` (a view)."""
        return self._floats[4]

    @property
    def ep_return(self) -> np.ndarray:
        return self._totals[0]

    @property
    def ep_spend(self) -> np.ndarray:
        return self._totals[1]

    @property
    def ep_clicks(self) -> np.ndarray:
        return self._totals[2]

    @property
    def ep_acquisitions(self) -> np.ndarray:
        return self._totals[3]

    @property
    def ep_budget(self) -> np.ndarray:
        """Each slot's monthly budget, ``(n_envs,)``."""
        return self.month_budget[self.month_idx]

    # -- stepping --

    def _effective_spend(self, spend: np.ndarray) -> np.ndarray:
        """Today's spend per channel ``(K, n)`` -> what the response sees: capped (money above a
        channel's cap buys nothing), then adstocked (the same geometric weights as the model's,
        ``helpers.bayes.adstock_weights``, over this and the previous ``ADSTOCK_LAGS - 1`` days)."""
        x = spend if self.cap is None else np.minimum(spend, self.cap[:, None])
        if self.adstock_on:
            capped = x
            x = self._weights[0] * capped + self._carry
            self._past[1:] = self._past[:-1]  # everything a day older; the oldest drops out
            self._past[0] = capped
            self._carry = np.einsum("jkn,jkn->kn", self._weights[1:], self._past)  # tomorrow's
        self.last_effective_spend = x
        return x

    def step(self, actions) -> tuple[np.ndarray, ...]:
        """Play one day in every slot.

        Args:
            actions: ``(n_envs, action_dim)`` finite numbers (one channel: also ``(n_envs,)``);
                clipped to [-1, 1].

        Returns:
            ``(reward, terminated, spend, impressions, clicks, acquisitions)``, each
            ``(n_envs,)`` (totals over the channels; per channel in ``last_channel_*``);
            ``terminated`` is True in the slots whose month just ended.
        """
        n, K, A = self.n_envs, self.n_channels, self.action_dim
        a = np.asarray(actions, dtype=np.float64)
        if a.size != n * A:
            raise ValueError(f"expected {n} actions of size {A} (shape ({n}, {A})), got an array of shape {a.shape}")
        a = a.reshape(n, A)
        if not math.isfinite(a.sum()):  # cheap test first; the sum of finite numbers may overflow
            bad = np.argwhere(~np.isfinite(a))
            if len(bad):
                raise ValueError(f"action of env {bad[0][0]} is {a[tuple(bad[0])]}: actions must be finite numbers (NaN/inf would corrupt the budget)")
        L = self.n_days - self.day
        # Clip to [-1, 1]; on the last day force +1, which spends everything left in both
        # transforms (min(R, R * max_multiplier) == R, and R * (1 + 1) / 2 == R).
        pace = np.minimum(np.maximum(a[:, 0], self._action_floor[L]), 1.0)

        # Spend. A finished month has budget_left == 0, so it spends 0 whatever the action.
        R = self.budget_left
        spend = spend_from_action(pace, R, L, self.config)
        R -= spend  # in place; >= 0 because spend <= R; exactly 0 after the last day
        m, d = self.month_idx, self.day
        if self.multichannel:  # the split across today's active channels (K, n)
            logits = np.minimum(np.maximum(a[:, 1:], -1.0), 1.0)
            ch_spend = (split_weights(logits, self.prior_spend[m], self.active[m, d], self.config.max_multiplier) * spend[:, None]).T
        else:
            ch_spend = spend[None, :]  # (1, n)

        # The funnel, channel by channel. Spend 0 -> impressions 0 -> clicks 0 (masks, so no
        # log(0) reaches a count); with adstock, a channel that does not spend today serves
        # nothing today, even though its past spend still lifts the days it does spend.
        h = self.calendar.holiday[m, d]
        wk = self.calendar.weekend[m, d]
        ii, isl, ih, ia, ci, cs, ch, cw, ca, _, _ = self.slot_params  # each (K, n)
        gamma = self.rng_noise.standard_gamma(self._alpha)  # (2Kn,): NB = Poisson(mu * Gamma(alpha) / alpha)
        Kn = K * n
        spent = ch_spend > 0
        log_spend = np.log(np.maximum(ch_spend, _TINY))
        x = self._effective_spend(ch_spend)
        log_x = log_spend if x is ch_spend else np.log(np.maximum(x, _TINY))
        mu_imp = np.exp(ii + isl * log_x + ih * h) * spent
        impressions = self.rng_counts.poisson(mu_imp * gamma[:Kn].reshape(K, n) / ia)
        # (0 impressions: log(max(0, 1)) = 0 gives a small rate, and the cap below makes clicks 0.)
        mu_clk = np.exp(ci + cs * np.log(np.maximum(impressions, 1)) + ch * h + cw * wk)
        lam = mu_clk * gamma[Kn:].reshape(K, n) / ca
        if self.has_acquisitions:
            # Clicks ~ Poisson(lam) given the gamma-mixed rate lam, and acquisitions ~
            # Binomial(clicks, acq_rate). By Poisson thinning the same joint law is
            # acquisitions ~ Poisson(lam * acq_rate), the other clicks ~ Poisson(lam * (1 - acq_rate)),
            # independent: one sampler call instead of two.
            split = self.rng_counts.poisson(lam * self._acq_split)  # (2, K, n): lam * [ar, 1 - ar]
            acquisitions = split[0]
            clicks = acquisitions + split[1]
        else:  # the channel data have no acquisitions
            clicks = self.rng_counts.poisson(lam)
            acquisitions = np.zeros_like(clicks)
        # Clicks are capped at impressions like the data generator's: it zeroes the clicks of a
        # day without impressions, and keeps acquisitions <= clicks <= impressions by construction.
        clicks = np.minimum(clicks, impressions)
        acquisitions = np.minimum(acquisitions, clicks)

        # Reward, and yesterday's cost per click for tomorrow's observation (0 = no information).
        log_cpc = log_spend - np.log(np.maximum(clicks, 1)) - self._log_ref_cpc  # (K, n)
        total_clicks = clicks.sum(axis=0) if self.multichannel else clicks[0]
        total_acq = acquisitions.sum(axis=0) if self.multichannel else acquisitions[0]
        cfg = self.config
        if cfg.reward == "clicks":
            reward = total_clicks / cfg.reward_scale
        elif cfg.reward == "acquisitions":
            reward = total_acq / cfg.reward_scale
        else:  # the talk's -log(spend / clicks), relative to the reference CPC; 0 without spend (one channel)
            reward = log_cpc[0] * (spent[0] / -cfg.reward_scale)
        self._cpc = np.minimum(np.maximum(log_cpc, -CPC_CLIP), CPC_CLIP) * spent

        totals = self._totals
        totals[0] += reward
        totals[1] += spend
        totals[2] += total_clicks
        totals[3] += total_acq
        self.ep_channel_spend += ch_spend
        self.ep_channel_clicks += clicks
        self.last_channel_spend, self.last_channel_impressions, self.last_channel_clicks = ch_spend, impressions, clicks
        self.day = self.day + (L > 0)
        total_imp = impressions.sum(axis=0) if self.multichannel else impressions[0]
        return reward, L == 1, spend, total_imp, total_clicks, total_acq


# --- the single environment ---------------------------------------------------------------


class BudgetPacingEnv(gym.Env):
    """One month at a time, as a ``gymnasium.Env`` (a :class:`PacingCore` with one slot).

    ``reset(seed=..., options={"month": "2024-04", "draw": 3})`` pins the month (one of
    ``config.months``) and/or the posterior draw; without options both are random.
    ``step`` returns ``info`` with ``date``, ``spend``, ``impressions``, ``clicks``,
    ``acquisitions``, ``budget_left``, ``holiday``, ``weekend`` and ``action_ignored`` (True on the
    last day) of the day just played; with several channels also ``channel_spend``,
    ``channel_clicks`` (``(K,)`` arrays) and ``action_ignored`` is always False (the last day's
    split still decides where the rest goes). Stepping after the month ended raises
    ``RuntimeError`` (call ``reset``).
    """

    metadata = {"render_modes": []}

    def __init__(self, draws: FunnelDraws | ChannelDraws, config: EnvConfig | None = None):
        super().__init__()
        self.core = PacingCore(draws, config, n_envs=1)
        self.config = self.core.config
        self.observation_space = self.core.observation_space()
        self.action_space = self.core.action_space()
        self._seeded = False
        self._done = True

    @property
    def state(self) -> EnvState:
        return self.core.state()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.core.seed(seed)
            self._seeded = True
        elif not self._seeded:  # fresh entropy, through Gymnasium's generator
            self.core.seed(int(self.np_random.integers(2**63)))
            self._seeded = True
        options = options or {}
        unknown = set(options) - {"month", "draw"}
        if unknown:
            raise ValueError(f"BudgetPacingEnv.reset: unknown options {sorted(unknown)} (known: 'month', 'draw')")
        month = options.get("month")
        if isinstance(month, str):
            month = self.core.calendar.index(month)
        self.core.start([0], month_idx=month, draw_idx=options.get("draw"))
        self._done = False
        return self.core.observe()[0], self._info()

    def _info(self) -> dict[str, Any]:
        c = self.core
        return {"month": c.calendar.months[c.month_idx[0]], "draw": int(c.draw_idx[0]), "day": int(c.day[0]), "budget_left": float(c.budget_left[0])}

    def step(self, action):
        if self._done:
            raise RuntimeError("BudgetPacingEnv.step: the month is over (or never started); call reset() first")
        c = self.core
        day = int(c.day[0])
        month = c.calendar.months[c.month_idx[0]]
        holiday = int(c.calendar.holiday[c.month_idx[0], day])
        weekend = int(c.calendar.weekend[c.month_idx[0], day])
        reward, term, spend, imp, clk, acq = c.step(np.asarray(action, dtype=np.float64).reshape(1, -1))
        self._done = bool(term[0])
        info = {
            "date": str((pd.Period(month, "M").start_time + pd.Timedelta(days=day)).date()),
            "day": day,
            "holiday": holiday,
            "weekend": weekend,
            "spend": float(spend[0]),
            "impressions": int(imp[0]),
            "clicks": int(clk[0]),
            "acquisitions": int(acq[0]),
            "budget_left": float(c.budget_left[0]),
            # the last day spends what is left, whatever the pace action (with channels, its split still counts)
            "action_ignored": self._done and not c.multichannel,
        }
        if c.multichannel:
            info["channel_spend"] = c.last_channel_spend[:, 0].copy()
            info["channel_clicks"] = c.last_channel_clicks[:, 0].copy()
        return c.observe()[0], float(reward[0]), self._done, False, info


# --- the vector environment ---------------------------------------------------------------


class BudgetPacingVectorEnv(VectorEnv):
    """``num_envs`` months in parallel as a Gymnasium 1.x ``VectorEnv`` (SAME_STEP autoreset).

    Observations ``(num_envs, 9)`` float32, actions ``(num_envs, 1)`` (several channels:
    ``(num_envs, len(core.obs_names))`` and ``(num_envs, 1 + K)``), rewards ``(num_envs,)``
    float64, terminations/truncations ``(num_envs,)`` bool (truncations are always False). See
    the module docstring for the autoreset and info conventions.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, draws: FunnelDraws | ChannelDraws, num_envs: int = 64, config: EnvConfig | None = None):
        self.core = PacingCore(draws, config, n_envs=num_envs)
        self.config = self.core.config
        self.num_envs = self.core.n_envs
        self.single_observation_space = self.core.observation_space()
        self.single_action_space = self.core.action_space()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._started = False

    @property
    def state(self) -> EnvState:
        return self.core.state()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start a new month in every slot. ``seed`` re-seeds (identical seeds, identical runs)."""
        super().reset(seed=seed)
        if options:
            raise ValueError(f"BudgetPacingVectorEnv.reset: options are not supported, got {sorted(options)}")
        if seed is not None:
            self.core.seed(seed)
        elif not self._started:
            self.core.seed(int(self.np_random.integers(2**63)))
        self.core.start(np.arange(self.num_envs))
        self._started = True
        return self.core.observe(), {}

    def step(self, actions):
        if not self._started:
            raise RuntimeError("BudgetPacingVectorEnv.step: call reset() first")
        core = self.core
        reward, term, spend, imp, clk, acq = core.step(actions)
        obs = core.observe()
        # The last day spends what is left whatever the action: that day's action was ignored
        # (with several channels only its pace: the split still decides where the rest goes).
        ignored = term.copy() if not core.multichannel else np.zeros(self.num_envs, dtype=bool)
        info: dict[str, Any] = {"spend": spend, "impressions": imp, "clicks": clk, "acquisitions": acq, "action_ignored": ignored}
        if core.multichannel:
            info["channel_spend"], info["channel_clicks"] = core.last_channel_spend.T.copy(), core.last_channel_clicks.T.copy()
        if term.any():
            done = np.flatnonzero(term)
            final_obs = np.full(self.num_envs, None, dtype=object)
            for i in done:
                final_obs[i] = obs[i].copy()
            r, s, c, q = np.where(term, core._totals, 0.0)
            episode = {"r": r, "l": np.where(term, core.n_days, 0), "clicks": c.astype(np.int64), "acquisitions": q.astype(np.int64), "spend": s}
            info.update(final_obs=final_obs, _final_obs=term, episode=episode, _episode=term)
            info.update(final_info={"episode": episode, "_episode": term}, _final_info=term)
            core.start(done)
            obs[done] = core.observe(done)  # SAME_STEP: the next month's first observation
        return obs, reward, term, np.zeros(self.num_envs, dtype=bool), info

