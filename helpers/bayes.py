"""The Bayesian funnel: two negative-binomial regressions fitted in PyMC.

Importing this module is cheap and PyMC-free: PyMC, nutpie and ArviZ are imported inside
the functions that need them, so ``helpers.env`` can use :class:`FunnelDraws` without
pulling in a compiler.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

#: Parameter names, in a fixed order, on the natural (uncentred) log scale:
#:   log mu_impressions = imp_intercept + imp_slope * log(spend) + imp_holiday * holiday
#:   log mu_clicks      = clk_intercept + clk_slope * log(impressions) + clk_holiday * holiday
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
