"""The posterior as plain arrays for the simulator: :class:`FunnelDraws` (one channel, notebooks
02-05) and :class:`ChannelDraws` (several channels, notebook 06), and the converters from an
ArviZ ``DataTree`` (:func:`to_funnel_draws`, :func:`to_channel_draws`).

Numpy only: ``helpers.env`` reads these without importing PyMC.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from helpers.bayes.channels import ChannelData

#: Parameter names, in a fixed order, on the natural (uncentred) log scale:
#:   log mu_impressions = imp_intercept + imp_slope * log(spend) + imp_holiday * holiday
#:   log mu_clicks      = clk_intercept + clk_slope * log(impressions) + clk_holiday * holiday
#:                        + clk_weekend * weekend          (weekend = Saturday or Sunday)
#:   impressions ~ NB(mu_impressions, imp_alpha); clicks ~ NB(mu_clicks, clk_alpha)
#:   acquisitions ~ Binomial(clicks, acq_rate)
PARAM_NAMES = (
    "imp_intercept",
    "imp_slope",
    "imp_holiday",
    "imp_alpha",
    "clk_intercept",
    "clk_slope",
    "clk_holiday",
    "clk_weekend",
    "clk_alpha",
    "acq_rate",
)


@dataclass(frozen=True)
class FunnelDraws:
    """Posterior draws of every funnel parameter: plain arrays of shape ``(n_draws,)``.

    This is the whole interface between the Bayesian model and the simulator: the
    environment takes these arrays, never a PyMC model. A single parameter point (the
    ground truth, or the posterior mean) is a ``FunnelDraws`` with ``n_draws == 1``.
    """

    imp_intercept: np.ndarray
    imp_slope: np.ndarray
    imp_holiday: np.ndarray
    imp_alpha: np.ndarray
    clk_intercept: np.ndarray
    clk_slope: np.ndarray
    clk_holiday: np.ndarray
    clk_weekend: np.ndarray
    clk_alpha: np.ndarray
    acq_rate: np.ndarray

    def __post_init__(self):
        n = None
        for f in fields(self):
            arr = np.atleast_1d(np.asarray(getattr(self, f.name), dtype=np.float64))
            if arr.ndim != 1:
                raise ValueError(f"FunnelDraws.{f.name}: expected a 1-D array of draws, got shape {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"FunnelDraws.{f.name}: contains NaN or inf")
            if n is None:
                n = len(arr)
            elif len(arr) != n:
                raise ValueError(f"FunnelDraws.{f.name}: {len(arr)} draws, expected {n} like the others")
            object.__setattr__(self, f.name, arr)
        for name in ("imp_alpha", "clk_alpha"):
            if np.any(getattr(self, name) <= 0):
                raise ValueError(f"FunnelDraws.{name}: dispersion must be > 0")
        if np.any((self.acq_rate < 0) | (self.acq_rate > 1)):
            raise ValueError("FunnelDraws.acq_rate: must lie in [0, 1]")

    @property
    def n_draws(self) -> int:
        return len(self.imp_intercept)

    @classmethod
    def from_dict(cls, d: dict) -> "FunnelDraws":
        """Build from a mapping of parameter name -> scalar or array (extra keys ignored)."""
        missing = [k for k in PARAM_NAMES if k not in d]
        if missing:
            raise KeyError(f"FunnelDraws.from_dict: missing parameters {missing}")
        return cls(**{k: d[k] for k in PARAM_NAMES})

    def to_dict(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in PARAM_NAMES}

    def as_matrix(self) -> np.ndarray:
        """All draws as one ``(n_draws, len(PARAM_NAMES))`` array, columns in ``PARAM_NAMES`` order."""
        return np.column_stack([getattr(self, k) for k in PARAM_NAMES])

    def mean(self) -> "FunnelDraws":
        """The posterior-mean point, as a one-draw ``FunnelDraws``."""
        return FunnelDraws(**{k: np.array([getattr(self, k).mean()]) for k in PARAM_NAMES})

    def subset(self, idx) -> "FunnelDraws":
        """The draws at integer positions ``idx``."""
        return FunnelDraws(**{k: np.atleast_1d(getattr(self, k)[idx]) for k in PARAM_NAMES})

    @property
    def elasticity(self) -> np.ndarray:
        """Clicks per spend elasticity of the mean response: ``imp_slope * clk_slope``."""
        return self.imp_slope * self.clk_slope

    @property
    def holiday_boost(self) -> np.ndarray:
        """Multiplier of mean clicks on a holiday at equal spend: ``exp(clk_slope*imp_holiday + clk_holiday)``."""
        return np.exp(self.clk_slope * self.imp_holiday + self.clk_holiday)

    @property
    def weekend_boost(self) -> np.ndarray:
        """Multiplier of mean clicks on a weekend day at equal spend: ``exp(clk_weekend)``."""
        return np.exp(self.clk_weekend)

    def day_boost(self, holiday, weekend) -> np.ndarray:
        """Per-day multiplier of mean clicks at equal spend, relative to an ordinary weekday.

        ``exp(clk_slope*imp_holiday*holiday + clk_holiday*holiday + clk_weekend*weekend)``.

        Args:
            holiday, weekend: ``(n_days,)`` 0/1 flags (or scalars).
        Returns:
            ``(n_draws, n_days)`` (``(n_draws,)`` for scalar flags).
        """
        h = np.asarray(holiday, dtype=np.float64)
        w = np.asarray(weekend, dtype=np.float64)
        col = (slice(None),) + (None,) * max(h.ndim, w.ndim)
        log_b = (self.clk_slope * self.imp_holiday + self.clk_holiday)[col] * h + self.clk_weekend[col] * w
        return np.exp(log_b)


#: Per-channel parameters of the channel model, natural scale (intercepts at log spend 0).
CHANNEL_PARAM_NAMES = ("imp_intercept", "imp_slope", "imp_alpha", "clk_intercept", "clk_slope", "clk_alpha", "adstock")


@dataclass(frozen=True)
class ChannelDraws:
    """Posterior draws of several channels: arrays of shape ``(n_draws, n_channels)``.

    The simulator's view of the channel model, like :class:`FunnelDraws` for one channel:
    natural-scale intercepts, dispersions ``alpha = 1 / cv**2``, and ``adstock`` (0 = none).
    """

    channels: tuple[str, ...]
    imp_intercept: np.ndarray
    imp_slope: np.ndarray
    imp_alpha: np.ndarray
    clk_intercept: np.ndarray
    clk_slope: np.ndarray
    clk_alpha: np.ndarray
    adstock: np.ndarray

    def __post_init__(self):
        shape = None
        for name in CHANNEL_PARAM_NAMES:
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.ndim == 1:
                arr = arr[:, None]
            if arr.ndim != 2 or arr.shape[1] != len(self.channels):
                raise ValueError(f"ChannelDraws.{name}: expected shape (n_draws, {len(self.channels)}), got {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"ChannelDraws.{name}: contains NaN or inf")
            if shape is not None and arr.shape != shape:
                raise ValueError(f"ChannelDraws.{name}: shape {arr.shape}, expected {shape} like the others")
            shape = arr.shape
            object.__setattr__(self, name, arr)
        if np.any(self.imp_alpha <= 0) or np.any(self.clk_alpha <= 0):
            raise ValueError("ChannelDraws: dispersions must be > 0")
        if np.any((self.adstock < 0) | (self.adstock >= 1)):
            raise ValueError("ChannelDraws.adstock: must lie in [0, 1)")

    @property
    def n_draws(self) -> int:
        return self.imp_slope.shape[0]

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def elasticity(self) -> np.ndarray:
        """Clicks-per-spend elasticity of each channel's mean response, ``(n_draws, K)``."""
        return self.imp_slope * self.clk_slope

    def mean(self) -> "ChannelDraws":
        """The posterior-mean point, as a one-draw ``ChannelDraws``."""
        return self.replace(**{k: getattr(self, k).mean(axis=0, keepdims=True) for k in CHANNEL_PARAM_NAMES})

    def subset(self, idx) -> "ChannelDraws":
        """The draws at integer positions ``idx``."""
        return self.replace(**{k: np.atleast_2d(getattr(self, k)[idx]) for k in CHANNEL_PARAM_NAMES})

    def replace(self, **changes) -> "ChannelDraws":
        """A copy with some fields replaced (e.g. ``adstock=0.5`` for a carryover scenario).

        A scalar or a ``(K,)`` vector is broadcast to every draw; a 2-D array is taken as it is
        (``mean`` and ``subset`` replace every field by arrays of another number of draws).
        """
        fields_now = {k: getattr(self, k) for k in ("channels", *CHANNEL_PARAM_NAMES)}
        for k, v in changes.items():
            if k not in fields_now:
                raise KeyError(f"ChannelDraws.replace: unknown field {k!r}")
            if k != "channels":
                v = np.asarray(v, dtype=float)
                v = v.copy() if v.ndim == 2 else np.broadcast_to(v, np.shape(self.imp_slope)).copy()
            fields_now[k] = v
        return ChannelDraws(**fields_now)


def to_channel_draws(idata, ch: ChannelData) -> ChannelDraws:
    """The channel model's posterior as :class:`ChannelDraws` (``chains * draws`` draws, chain-major)."""
    post = idata.posterior

    def flat(name):
        return post[name].transpose("chain", "draw", "channel").to_numpy().reshape(-1, len(ch.channels))

    s_c, i_c = ch.log_spend_centres(), ch.log_imp_centres()
    imp_b, clk_b = flat("imp_slope"), flat("clk_slope")
    return ChannelDraws(
        channels=ch.channels,
        imp_intercept=flat("imp_intercept_c") - imp_b * s_c,
        imp_slope=imp_b,
        imp_alpha=1.0 / flat("imp_cv") ** 2,
        clk_intercept=flat("clk_intercept_c") - clk_b * i_c,
        clk_slope=clk_b,
        clk_alpha=1.0 / flat("clk_cv") ** 2,
        adstock=flat("adstock") if "adstock" in post else np.zeros_like(imp_b),
    )


def to_funnel_draws(idata) -> FunnelDraws:
    """The posterior of ``idata`` as :class:`FunnelDraws`: ``chains * draws`` draws, chain-major."""
    post = idata.posterior
    missing = [k for k in PARAM_NAMES if k not in post]
    if missing:
        raise KeyError(f"to_funnel_draws: posterior lacks {missing} (run add_natural_scale first?)")
    return FunnelDraws(**{k: post[k].transpose("chain", "draw").to_numpy().reshape(-1) for k in PARAM_NAMES})
