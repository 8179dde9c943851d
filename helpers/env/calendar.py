"""The months an episode can be, their calendar (holidays, weekends) and what the data say (notebook 03).

One episode is one calendar month (28-31 days) with the real Indonesian holiday calendar
(:func:`helpers.data.holiday_flags`) and weekends (:func:`helpers.data.weekend_flags`). Training
draws months from :data:`TRAIN_MONTHS` (the data's 2023-2024); every policy is evaluated on
:data:`EVAL_MONTHS` (2025-2026: holiday dates no agent has trained on). :func:`month_calendar`
tabulates a tuple of months once (cached); :func:`historical_stats` gives the budget and the
reward scales from the data.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from helpers import data

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
