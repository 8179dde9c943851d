"""Several channels: what the external campaign data say, in the form the simulator needs (notebook 06).

The data's complete months (2025-01..2025-04), each campaign spending only on its real active
days (every day has at least one); each month's budget is its historical total spend, the split
of the zero action each channel's mean daily spend over its active days of the month, and the
spends before the month the adstock state a month starts from (:class:`ChannelHistory`).
Training and evaluation can only use these calendars: keep validation and test apart by seed.
"""

from __future__ import annotations

import functools
import hashlib
import json

import numpy as np
import pandas as pd

from helpers import data
from helpers.bayes import ChannelData, channel_data
from helpers.carryover import ADSTOCK_LAGS
from helpers.env.calendar import _PAD

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
