"""Every knob of the environment in one frozen dataclass, :class:`EnvConfig` (notebooks 03, 06).

``None`` means "derive from the historical data" (:meth:`EnvConfig.resolved`). One channel
(``FunnelDraws``) by default; several channels (``ChannelDraws``) with ``channels`` set, built
with :func:`channel_config`. The rewards: ``"clicks"`` (default; today's clicks / the historical
mean daily clicks, so a day is worth about 1), ``"acquisitions"``, and the talk's
``"neg_log_cpc"``, which alone prefers spending almost nothing (cost per click falls with spend):
only the budget constraint (the last day spends the rest) keeps it from spending zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from helpers.env.calendar import TRAIN_MONTHS, _check_months, historical_stats
from helpers.env.history import ChannelHistory, channel_history

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
    #: "pace_multiplier" (default, see ``helpers.env.spaces``) or "budget_fraction" (the lesson's foil).
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
    #: daily spend (a day's spend above it buys nothing); None = no cap. A modelling choice: the log-log
    #: fit is only trusted near its data (taken literally, an elasticity near 1 and cheap clicks would
    #: absorb the whole budget at dozens of times a campaign's busiest day), and marketing-mix tools use
    #: saturating response curves for the same reason. The budget is still spent, so a policy learns
    #: to avoid the waste (``helpers.carryover.saturation_cap``).
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
