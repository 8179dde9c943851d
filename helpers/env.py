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
``clicks`` and ``acquisitions`` arrays (of the step just played).

Random numbers and seeds
------------------------
A core draws from three independent streams spawned from one ``SeedSequence(seed)``:
episodes (which month, which posterior draw), gamma noise, and Poisson counts.
The gamma stream consumes the same numbers whatever the spend, so two policies evaluated
from the same seed face the *same* market noise (common random numbers): differences
between policies are measured far more precisely than each policy alone.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from helpers import data
from helpers.bayes import PARAM_NAMES, FunnelDraws

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


# --- configuration --------------------------------------------------------------------

REWARDS = ("clicks", "acquisitions", "neg_log_cpc")
ACTION_TRANSFORMS = ("pace_multiplier", "budget_fraction")


@dataclass(frozen=True)
class EnvConfig:
    """Every knob of the environment. ``None`` means "derive from the historical data"."""

    #: Monthly budget in currency units; None = the historical mean monthly spend (~33.6k).
    budget: float | None = None
    #: Reward kind: "clicks" (default), "acquisitions" or the talk's "neg_log_cpc".
    reward: str = "clicks"
    #: Reward divisor; None = historical mean daily clicks / acquisitions, or 1 for neg_log_cpc.
    reward_scale: float | None = None
    #: "draws": each episode samples one posterior draw; "mean": always the posterior mean.
    params: str = "draws"
    #: Action +-1 means spending max_multiplier (or 1/max_multiplier) times the even pace.
    max_multiplier: float = 8.0
    #: "pace_multiplier" (default, see module doc) or "budget_fraction" (the lesson's foil).
    action_transform: str = "pace_multiplier"
    #: Months episodes are drawn from, uniformly ("YYYY-MM"); default the 24 historical months.
    months: tuple[str, ...] = TRAIN_MONTHS
    #: Historical median cost per click (the reference of obs "cpc_yesterday" and of
    #: neg_log_cpc); None = from the data.
    reference_cpc: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "months", _check_months(tuple(self.months) if not isinstance(self.months, str) else self.months))
        if self.reward not in REWARDS:
            raise ValueError(f"EnvConfig.reward: {self.reward!r} is not one of {REWARDS}")
        if self.params not in ("draws", "mean"):
            raise ValueError(f"EnvConfig.params: {self.params!r} is not 'draws' or 'mean'")
        if self.action_transform not in ACTION_TRANSFORMS:
            raise ValueError(f"EnvConfig.action_transform: {self.action_transform!r} is not one of {ACTION_TRANSFORMS}")
        for name in ("budget", "reward_scale", "reference_cpc"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ValueError(f"EnvConfig.{name}: must be a positive finite number or None, got {v!r}")
        if not (math.isfinite(self.max_multiplier) and self.max_multiplier > 1):
            raise ValueError(f"EnvConfig.max_multiplier: must be > 1, got {self.max_multiplier!r}")

    def resolved(self) -> "EnvConfig":
        """A copy with every ``None`` replaced by its value from the historical data."""
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


def observation_space() -> gym.spaces.Box:
    return gym.spaces.Box(OBS_LOW, OBS_HIGH, dtype=np.float32)


def action_space() -> gym.spaces.Box:
    return gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)


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
    """

    calendar: Calendar
    budget: float
    month_idx: np.ndarray
    day: np.ndarray
    n_days: np.ndarray
    budget_left: np.ndarray
    draw_idx: np.ndarray
    episode_id: np.ndarray

    @property
    def days_left(self) -> np.ndarray:
        return self.n_days - self.day


class PacingCore:
    """The dynamics of ``n_envs`` months side by side (the only copy of them).

    Args:
        draws: posterior draws (``FunnelDraws``); with ``config.params == "mean"`` their mean.
        config: an :class:`EnvConfig` (resolved here).
        n_envs: how many months are simulated in parallel.

    Use: ``seed(s)``, ``start(idx)`` new months in slots ``idx``, then alternate
    ``observe()`` -> ``(n_envs, 9)`` and ``step(actions (n_envs, 1))``. A slot whose month is
    over stays inert (spends and earns nothing) until it is started again.

    Speed: every step is ~60 numpy operations on ``(n_envs,)`` arrays and three calls to
    numpy's samplers, whatever ``n_envs``; the calendar part of the observation is a table
    lookup. No Python loop runs over slots.
    """

    def __init__(self, draws: FunnelDraws, config: EnvConfig | None = None, n_envs: int = 1):
        if not isinstance(draws, FunnelDraws):
            raise TypeError(f"draws must be a helpers.bayes.FunnelDraws, got {type(draws).__name__}")
        if int(n_envs) < 1:
            raise ValueError(f"n_envs must be >= 1, got {n_envs}")
        self.config = cfg = (config or EnvConfig()).resolved()
        self.draws = draws.mean() if cfg.params == "mean" else draws
        self.calendar = cal = month_calendar(cfg.months)
        self.n_envs = n = int(n_envs)
        self.budget = float(cfg.budget)
        self._log_max_mult = math.log(cfg.max_multiplier)
        self._log_ref_cpc = math.log(cfg.reference_cpc)
        # (14, n_draws): the 10 parameters, then imp_alpha and clk_alpha again (one gamma call
        # serves both funnel stages), then acq_rate and 1 - acq_rate (one Poisson call splits
        # the clicks), so that one fancy assignment starts a month.
        P = self.draws.as_matrix().T
        ia, ca, ar = (PARAM_NAMES.index(k) for k in ("imp_alpha", "clk_alpha", "acq_rate"))
        self._param_table = np.ascontiguousarray(np.vstack([P, P[[ia, ca]], P[[ar]], 1.0 - P[[ar]]]))
        self._build_obs_tables()
        self._action_floor = np.where(np.arange(_PAD) == 1, 1.0, -1.0)  # indexed by days left
        # Per-slot state, shape (n,) unless noted. day == n_days: month over (or not started).
        k = len(PARAM_NAMES)
        self._slot_params = np.ones((k + 4, n))  # (14, n): this month's draw, per slot
        self.params = self._slot_params[:k]  # (10, n) view, rows in PARAM_NAMES order
        self._alpha = self._slot_params[k : k + 2].reshape(-1)  # (2n,) view: imp_alpha, clk_alpha
        self._acq_split = self._slot_params[k + 2 :]  # (2, n) view: acq_rate, 1 - acq_rate
        self.month_idx = np.zeros(n, dtype=np.int64)
        self.draw_idx = np.zeros(n, dtype=np.int64)
        self.episode_id = np.full(n, -1, dtype=np.int64)
        self.n_days = np.zeros(n, dtype=np.int64)
        self.day = np.zeros(n, dtype=np.int64)
        # Float state in one block so that starting a month is one assignment: rows are
        # return, spend, clicks, acquisitions (this month so far), budget left, obs cpc_yesterday.
        self._floats = np.zeros((6, n))
        self._totals = self._floats[:4]
        self._float_init = np.array([0.0, 0.0, 0.0, 0.0, self.budget, 0.0])[:, None]
        self._next_episode = 0
        self.seed(None)

    def _build_obs_tables(self) -> None:
        """Everything in the observation that depends only on (month, day), as lookup tables."""
        cal = self.calendar
        M = len(cal.months)
        d = np.arange(_PAD)[None, :]
        L = cal.n_days[:, None] - d  # days left, (M, _PAD)
        valid = L > 0
        Lpos = np.maximum(L, 1)
        t = np.zeros((M, _PAD, OBS_DIM), dtype=np.float32)
        t[:, :, 0] = np.maximum(L, 0) / MAX_DAYS
        t[:, :, 1] = np.where(valid, -1.0, 0.0)  # + budget_left * _pace_factor below
        t[:, :-1, 2] = cal.holiday[:, :-1]
        t[:, :-1, 3] = cal.holiday[:, 1:]
        t[:, :, 4] = np.where(valid, cal.holidays_left / Lpos, 0.0)
        t[:, :, 5] = _DOW_SIN[cal.weekday]
        t[:, :, 6] = _DOW_COS[cal.weekday]
        t[:, :, 8] = np.where(valid, cal.weekends_left / Lpos, 0.0)
        self._obs_table = t
        self._pace_factor = np.where(valid, cal.n_days[:, None] / (self.budget * Lpos), 0.0)  # (M, _PAD)

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
        M, J = len(self.calendar.months), self._param_table.shape[1]
        u = self.rng_episode.random((2, k))  # uniform month and draw: floor(u * count), one cheap call
        m = (u[0] * M).astype(np.int64) if month_idx is None else _checked_index(month_idx, k, M, "month")
        j = (u[1] * J).astype(np.int64) if draw_idx is None else _checked_index(draw_idx, k, J, "posterior draw")
        self.month_idx[idx] = m
        self.draw_idx[idx] = j
        self._slot_params[:, idx] = self._param_table[:, j]
        self.n_days[idx] = self.calendar.n_days[m]
        self.day[idx] = 0
        self._floats[:, idx] = self._float_init
        self.episode_id[idx] = self._next_episode + np.arange(k)
        self._next_episode += k

    # -- reading the state --

    def observe(self, rows: np.ndarray | None = None) -> np.ndarray:
        """The observation of every slot (or of slots ``rows``): ``(n, 9)`` float32, a fresh array."""
        if rows is None:
            m, d, f = self.month_idx, self.day, self._floats
        else:
            m, d, f = self.month_idx[rows], self.day[rows], self._floats[:, rows]
        obs = self._obs_table[m, d]  # fancy indexing copies
        obs[:, 1] += f[4] * self._pace_factor[m, d]
        obs[:, _CPC_OBS] = f[5]
        return obs

    def state(self) -> EnvState:
        return EnvState(self.calendar, self.budget, self.month_idx, self.day, self.n_days, self.budget_left, self.draw_idx, self.episode_id)

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

    # -- stepping --

    def step(self, actions) -> tuple[np.ndarray, ...]:
        """Play one day in every slot.

        Args:
            actions: ``(n_envs, 1)`` (or ``(n_envs,)``) finite numbers; clipped to [-1, 1].

        Returns:
            ``(reward, terminated, spend, impressions, clicks, acquisitions)``, each
            ``(n_envs,)``; ``terminated`` is True in the slots whose month just ended.
        """
        n = self.n_envs
        a = np.asarray(actions, dtype=np.float64)
        if a.size != n:
            raise ValueError(f"expected {n} actions (shape ({n}, 1)), got an array of shape {a.shape}")
        a = a.reshape(n)
        if not math.isfinite(a.sum()):  # cheap test first; the sum of finite numbers may overflow
            bad = np.flatnonzero(~np.isfinite(a))
            if len(bad):
                raise ValueError(f"action of env {bad[0]} is {a[bad[0]]}: actions must be finite numbers (NaN/inf would corrupt the budget)")
        L = self.n_days - self.day
        # Clip to [-1, 1]; on the last day force +1, which spends everything left in both
        # transforms (min(R, R * max_multiplier) == R, and R * (1 + 1) / 2 == R).
        a = np.minimum(np.maximum(a, self._action_floor[L]), 1.0)

        # Spend. A finished month has budget_left == 0, so it spends 0 whatever the action.
        R = self.budget_left
        spend = spend_from_action(a, R, L, self.config)
        R -= spend  # in place; >= 0 because spend <= R; exactly 0 after the last day

        # The funnel. Spend 0 -> impressions 0 -> clicks 0 (masks, so no log(0) reaches a count).
        m, d = self.month_idx, self.day
        h = self.calendar.holiday[m, d]
        wk = self.calendar.weekend[m, d]
        ii, isl, ih, ia, ci, cs, ch, cw, ca, _ = self.params
        gamma = self.rng_noise.standard_gamma(self._alpha)  # (2n,): NB = Poisson(mu * Gamma(alpha) / alpha)
        spent = spend > 0
        log_spend = np.log(np.maximum(spend, _TINY))
        mu_imp = np.exp(ii + isl * log_spend + ih * h) * spent
        impressions = self.rng_counts.poisson(mu_imp * gamma[:n] / ia)
        # (0 impressions: log(max(0, 1)) = 0 gives a small rate, and the cap below makes clicks 0.)
        mu_clk = np.exp(ci + cs * np.log(np.maximum(impressions, 1)) + ch * h + cw * wk)
        # Clicks ~ Poisson(lam) given the gamma-mixed rate lam, and acquisitions ~
        # Binomial(clicks, acq_rate). By Poisson thinning the same joint law is
        # acquisitions ~ Poisson(lam * acq_rate), the other clicks ~ Poisson(lam * (1 - acq_rate)),
        # independent: one sampler call instead of two.
        lam = mu_clk * gamma[n:] / ca
        split = self.rng_counts.poisson(lam * self._acq_split)  # (2, n): lam * [ar, 1 - ar]
        acquisitions = split[0]
        clicks = acquisitions + split[1]
        # Clicks are capped at impressions like the data generator's: it zeroes the clicks of a
        # day without impressions, and keeps acquisitions <= clicks <= impressions by construction.
        clicks = np.minimum(clicks, impressions)
        acquisitions = np.minimum(acquisitions, clicks)

        # Reward, and yesterday's cost per click for tomorrow's observation (0 = no information).
        log_cpc = log_spend - np.log(np.maximum(clicks, 1)) - self._log_ref_cpc
        cfg = self.config
        if cfg.reward == "clicks":
            reward = clicks / cfg.reward_scale
        elif cfg.reward == "acquisitions":
            reward = acquisitions / cfg.reward_scale
        else:  # the talk's -log(spend / clicks), relative to the reference CPC; 0 without spend
            reward = log_cpc * (spent / -cfg.reward_scale)
        self._floats[5] = np.minimum(np.maximum(log_cpc, -CPC_CLIP), CPC_CLIP) * spent

        totals = self._totals
        totals[0] += reward
        totals[1] += spend
        totals[2] += clicks
        totals[3] += acquisitions
        self.day = self.day + (L > 0)
        return reward, L == 1, spend, impressions, clicks, acquisitions


# --- the single environment ---------------------------------------------------------------


class BudgetPacingEnv(gym.Env):
    """One month at a time, as a ``gymnasium.Env`` (a :class:`PacingCore` with one slot).

    ``reset(seed=..., options={"month": "2024-04", "draw": 3})`` pins the month (one of
    ``config.months``) and/or the posterior draw; without options both are random.
    ``step`` returns ``info`` with ``date``, ``spend``, ``impressions``, ``clicks``,
    ``acquisitions``, ``budget_left``, ``holiday`` and ``weekend`` of the day just played. Stepping
    after the month ended raises ``RuntimeError`` (call ``reset``).
    """

    metadata = {"render_modes": []}

    def __init__(self, draws: FunnelDraws, config: EnvConfig | None = None):
        super().__init__()
        self.core = PacingCore(draws, config, n_envs=1)
        self.config = self.core.config
        self.observation_space = observation_space()
        self.action_space = action_space()
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
        }
        return c.observe()[0], float(reward[0]), self._done, False, info


# --- the vector environment ---------------------------------------------------------------


class BudgetPacingVectorEnv(VectorEnv):
    """``num_envs`` months in parallel as a Gymnasium 1.x ``VectorEnv`` (SAME_STEP autoreset).

    Observations ``(num_envs, 9)`` float32, actions ``(num_envs, 1)``, rewards
    ``(num_envs,)`` float64, terminations/truncations ``(num_envs,)`` bool (truncations are
    always False). See the module docstring for the autoreset and info conventions.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, draws: FunnelDraws, num_envs: int = 64, config: EnvConfig | None = None):
        self.core = PacingCore(draws, config, n_envs=num_envs)
        self.config = self.core.config
        self.num_envs = self.core.n_envs
        self.single_observation_space = observation_space()
        self.single_action_space = action_space()
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
        info: dict[str, Any] = {"spend": spend, "impressions": imp, "clicks": clk, "acquisitions": acq}
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

