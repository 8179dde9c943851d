"""What the agent sees and does: the observation layouts, the spaces, and the action transforms (notebooks 03, 06).

One channel: 9 observations (:data:`OBS_NAMES`, one line each in :data:`OBS_DESCRIPTIONS`), seen
*before* choosing today's spend; ``holidays_left`` and ``weekend_days_left`` make the state Markov
(the calendar is public). The action ``a`` in ``[-1, 1]`` is the log of a multiplier of the **even
pace** ``R / L`` (budget left / days left) in units of ``log(max_multiplier)``:
``spend = min(R, R / L * max_multiplier ** a)``, and the last day spends the rest; so ``a = 0`` is even
pacing and the budget is spent exactly, never overspent (:func:`spend_from_action`, inverse
:func:`action_for_share`). ``action_transform="budget_fraction"`` is notebook 03's foil.
Several channels: ``days_left``, ``budget_vs_even``, then one block of K per feature
(:data:`CHANNEL_OBS_DESCRIPTIONS`); the action adds K split logits (:func:`split_weights`,
inverse :func:`logits_for_split`); the lowest logit, -1, switches a channel off for the day.
Out-of-range actions are clipped inside the env; NaN or inf raise ``ValueError``.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np

from helpers.env.calendar import MAX_DAYS
from helpers.env.config import EnvConfig

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
#: One line per observation entry (their ranges: :data:`OBS_LOW`, :data:`OBS_HIGH`; notebook 03 teaches them).
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
#: (names ``"<feature>:<channel>"``; :data:`CHANNEL_OBS_DESCRIPTIONS` has one line each).
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


#: The split logit that switches a channel off for the day (the lowest one; see :func:`split_weights`).
LOGIT_OFF = -1.0
#: The lowest split logit that keeps a channel on: the float32 just above :data:`LOGIT_OFF`.
LOGIT_ON_FLOOR = float(np.nextafter(np.float32(LOGIT_OFF), np.float32(0.0)))


def split_weights(logits: np.ndarray, prior: np.ndarray, active: np.ndarray, max_multiplier: float) -> np.ndarray:
    """Today's split of the spend across channels, ``(n, K)`` rows summing to 1 (0 for a row with no active channel).

    ``share_k  proportional to  prior_k * max_multiplier ** logit_k`` over the active channels
    (inactive ones get 0): the zero action splits in proportion to ``prior`` (the history), and a
    logit of +-1 multiplies a channel's weight by ``max_multiplier`` (or divides it), except that
    the lowest logit, -1 (:data:`LOGIT_OFF`; every action at or below it, once clipped), switches
    the channel off for the day: share 0, which no weight above it reaches. If every active
    channel is off, the spend is split as the history splits it (the logits all say the same).

    Args:
        logits: ``(n, K)`` split logits, already clipped to [-1, 1].
        prior: ``(n, K)`` positive prior weights (a channel's historical daily spend).
        active: ``(n, K)`` 0/1 or bool.
    """
    base = prior * active
    w = base * np.exp(logits * math.log(max_multiplier)) * (logits > LOGIT_OFF)
    total = w.sum(axis=1, keepdims=True)
    if not np.all(total > 0):  # rows whose active channels are all off: the historical split
        w = np.where(total > 0, w, base)
        total = w.sum(axis=1, keepdims=True)
    return np.divide(w, total, out=np.zeros_like(w), where=total > 0)


def logits_for_split(split: np.ndarray, prior: np.ndarray, active: np.ndarray, max_multiplier: float) -> np.ndarray:
    """The split logits (clipped to [-1, 1]) whose :func:`split_weights` is ``split`` (inverse).

    Logits are defined up to a constant per row; this one centres the active channels' range on
    0, so that any split whose largest and smallest ``split / prior`` differ by at most
    ``max_multiplier ** 2`` is reached exactly (beyond that, the smallest shares are raised to the
    lowest logit that keeps a channel on, :data:`LOGIT_ON_FLOOR`). A channel with no share gets
    :data:`LOGIT_OFF`, -1: switched off, so a zero share is carried out exactly. Inactive
    channels get 0 (ignored).
    """
    active = np.asarray(active, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(active & (split > 0), np.log(split / np.where(prior > 0, prior, 1.0)), np.nan) / math.log(max_multiplier)
    ok = np.isfinite(r)
    some = ok.any(axis=1, keepdims=True)
    hi = np.where(some, np.where(ok, r, -np.inf).max(axis=1, keepdims=True), 0.0)
    lo = np.where(some, np.where(ok, r, np.inf).min(axis=1, keepdims=True), 0.0)
    centre = np.maximum((hi + lo) / 2, hi - 1.0)  # keep the largest share exact when the range is too wide
    out = np.where(ok, np.clip(r - centre, LOGIT_ON_FLOOR, 1.0), LOGIT_OFF)  # a share > 0 stays on
    return np.where(active, out, 0.0)


def _checked_index(value, k: int, count: int, what: str) -> np.ndarray:
    v = np.broadcast_to(np.asarray(value, dtype=np.int64), (k,))
    if np.any((v < 0) | (v >= count)):
        raise ValueError(f"{what} index out of range 0..{count - 1}: {v}")
    return v
