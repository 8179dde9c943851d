"""The Bayesian funnel: two negative-binomial regressions fitted in PyMC.

Importing this module is cheap and PyMC-free: PyMC, nutpie and ArviZ are imported inside
the functions that need them, so ``helpers.env`` can use :class:`FunnelDraws` without
pulling in a compiler.

What it offers, in the order notebook 02 uses it:

* :func:`build_funnel_model` -- both regressions and the acquisition rate as ONE PyMC model
  (centred log predictors; ``likelihood="poisson"`` gives the strawman), :class:`Priors`;
* :func:`sample_model` / :func:`fit_funnel` -- NUTS with nutpie (default, chosen by
  ``benchmarks/bench_bayes.py``) or PyMC's own, 4 chains (:class:`FitSettings`), then
  :func:`check_convergence` (r_hat, bulk ESS, divergences) and :func:`add_natural_scale`;
* :func:`load_idata` / :func:`load_posterior` -- the cached posterior (``build/cache/``,
  NetCDF, keyed on the data file's hash, the model version, the priors and the settings;
  stale or damaged caches are refitted) as an ArviZ ``DataTree`` or as :class:`FunnelDraws`;
* :func:`build_campaign_model` -- the impressions regression per campaign (external data);
* several channels (notebook 06): :func:`channel_data`, :func:`build_channel_model` (partial
  pooling, optional adstock), :class:`ChannelDraws`, and :func:`load_channel_idata` /
  :func:`load_channel_posterior`, cached like the funnel (:func:`channel_fit_settings`).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, fields
from dataclasses import replace as dataclasses_replace
from pathlib import Path

import numpy as np
import pandas as pd

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


# =====================================================================================
# The model, the fit and the cache. Everything below imports PyMC / nutpie / ArviZ lazily.
# =====================================================================================

ROOT = Path(__file__).resolve().parent.parent
#: Every cache of the course lives under here (posteriors; helpers.training adds trained runs).
#: ``COURSE_CACHE_DIR`` moves it (benchmarks/bench_course.py times the course with empty caches).
CACHE_DIR = Path(os.environ.get("COURSE_CACHE_DIR") or ROOT / "build" / "cache")

#: Bump when the model's structure changes: every cache written under another key is stale.
MODEL_VERSION = "funnel-nb-centred/4-count-regression"
#: Bump when what the cache file holds, or how it is checksummed, changes.
CACHE_FORMAT = "3"  # 3: ArviZ 1 DataTree written by xarray (h5netcdf)

#: The course's default sampler, chosen by measurement (``benchmarks/bench_bayes.py``, figures in
#: build/bench/bench_bayes.json): the lower median *cold* wall time (fresh process, empty PyTensor
#: and Numba caches, 2 shared cores, 4 chains x 2,000 steps), 3 runs each on PyMC 6.4 / nutpie 0.16:
#: nutpie 17.6 s [16.6-19.0] vs PyMC's NUTS on PyTensor's Numba backend 20.0 s [19.2-22.0] (0.88x)
#: and on its C backend 57.8 s [53.4-61.7]; with warm disk caches nutpie 10.6 s [9.1-11.7] vs 12.9 s
#: [10.4-14.0]. Sampling alone is ~4 s for both Numba variants: compiling is most of the wall, and
#: nutpie recompiles its Numba callback in every process (not cached on disk). PyMC's own NUTS stays
#: an option (``sampler="pymc"``, ``pymc_backend="numba"`` or ``"c"``).
DEFAULT_SAMPLER = "nutpie"
SAMPLERS = ("nutpie", "pymc")

#: The free parameters the sampler sees (centred intercepts, dispersion as a CV).
CENTRED_NAMES = (
    "imp_intercept_c",
    "imp_slope",
    "imp_holiday",
    "imp_cv",
    "clk_intercept_c",
    "clk_slope",
    "clk_holiday",
    "clk_weekend",
    "clk_cv",
    "acq_rate",
)
OBSERVED_NAMES = ("impressions", "clicks", "acquisitions")


class ConvergenceError(RuntimeError):
    """The sampler's draws fail the convergence checks (r_hat, bulk ESS, divergences)."""


class StaleCacheWarning(UserWarning):
    """A posterior cache file was stale or damaged and is being refitted."""


@dataclass(frozen=True)
class Priors:
    """Weakly informative priors, on the *centred* scale the sampler sees (see notebook 02).

    ``*_intercept_c`` is the log of the expected count on an ordinary day (a weekday, not a
    holiday) at the data's average log spend (impressions) or average log impressions
    (clicks), so its prior is a statement about the typical size of a day, not about spend = 1. ``*_cv`` is the
    extra-Poisson coefficient of variation ``1/sqrt(alpha)``: the relative day-to-day noise
    of a large count (``sd/mean -> 1/sqrt(alpha)``). A half-normal on it puts the most prior
    mass near the Poisson limit (cv = 0) and lets the data ask for more noise.
    """

    intercept_sigma: float = 3.0  # +-2 sd = a factor e^6 ~ 400 either way of the centre below
    imp_intercept_mu: float = 10.0  # e^10 ~ 22,000 impressions a day
    clk_intercept_mu: float = 6.0  # e^6 ~ 400 clicks a day
    slope_mu: float = 1.0  # proportional response ...
    slope_sigma: float = 0.5  # ... give or take; 0 (no response) and 2 are 2 sd away
    holiday_sigma: float = 0.5  # holidays change a count by at most ~x2.7 either way (2 sd)
    # weekends (Sat/Sun) change the click-through rate by at most ~x2.7 either way (2 sd):
    # centred on 0 (the prior does not presume that weekends help or hurt), wide enough that
    # a day-of-week effect of tens of percent either way sits inside 1 sd (0.5 ~ x1.65).
    weekend_sigma: float = 0.5
    cv_sigma: float = 0.5  # HalfNormal: day-to-day noise below ~100% (2 sd)
    acq_a: float = 1.0  # Beta(1, 1): any acquisition rate equally plausible
    acq_b: float = 1.0
    # several channels (notebook 06): how far one channel's elasticity sits from the others',
    # the mean of a Gamma(2, 2 / 0.2) prior: channels differ by ~0.1-0.2 in elasticity
    pooled_slope_sigma: float = 0.2
    # carryover (adstock) share theta ~ Beta(1, 3): most prior mass on little carryover (mean
    # 0.25), none ruled out; theta = 0.5 means half of today's effect comes from earlier days.
    adstock_a: float = 1.0
    adstock_b: float = 3.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


PRIORS = Priors()


@dataclass(frozen=True)
class FitSettings:
    """How to sample: sampler, chains, tuning and kept draws per chain, seed, and the checks.

    ``full()`` is the course's setting; ``quick()`` (``COURSE_QUICK=1``) halves tuning and
    draws and relaxes the ESS floor from 400 to 200 (r_hat stays <= 1.01).
    """

    sampler: str = DEFAULT_SAMPLER  # "nutpie" or "pymc" (PyMC's own NUTS)
    # nutpie only: "numba" (default; vs "jax": compiles ~10x slower, samples ~5x faster) or "jax"
    # (needs the optional jax package; see benchmarks/bench_bayes.py for the trade-off)
    nutpie_backend: str = "numba"
    # PyMC's own NUTS only: PyTensor's backend, "numba" (PyMC 6's default) or "c" (PyMC 5's)
    pymc_backend: str = "numba"
    chains: int = 4
    tune: int = 1000
    draws: int = 1000
    seed: int = 20180923
    target_accept: float = 0.8
    max_rhat: float = 1.01
    min_ess_bulk: int = 400
    max_divergences: int = 0

    def __post_init__(self):
        if self.sampler not in SAMPLERS:
            raise ValueError(f"FitSettings.sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.nutpie_backend not in ("numba", "jax"):
            raise ValueError(f"FitSettings.nutpie_backend must be 'numba' or 'jax', got {self.nutpie_backend!r}")
        if self.pymc_backend not in ("numba", "c"):
            raise ValueError(f"FitSettings.pymc_backend must be 'numba' or 'c', got {self.pymc_backend!r}")
        if self.chains < 2:
            raise ValueError("FitSettings.chains must be >= 2: r_hat needs several chains")

    @classmethod
    def full(cls, **overrides) -> "FitSettings":
        return cls(**overrides)

    @classmethod
    def quick(cls, **overrides) -> "FitSettings":
        return cls(**{"tune": 500, "draws": 500, "min_ess_bulk": 200, **overrides})

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def _progress_default(progressbar: bool | None) -> bool:
    """Progress bars on unless ``TQDM_DISABLE`` is set (quick mode / headless runs)."""
    if progressbar is not None:
        return progressbar
    return os.environ.get("TQDM_DISABLE", "") in ("", "0")


def _read_daily(path: str | os.PathLike) -> pd.DataFrame:
    """The validated daily data (``helpers.data.load_daily``): date, spend, counts, holiday."""
    from helpers.data import load_daily

    return load_daily(path)


# --- the model ------------------------------------------------------------------------


def funnel_predictors(df: pd.DataFrame) -> dict[str, np.ndarray | float]:
    """Centred log predictors of the two regressions.

    Returns ``log_spend_c`` and ``log_imp_c`` (shape ``(n_days,)``), their centres
    ``log_spend_centre``/``log_imp_centre`` (scalars: the data means of the logs) and
    ``holiday`` and ``weekend`` (0.0/1.0; weekend = Saturday or Sunday, from the ``date``
    column, or a ``weekend`` column when the frame has one). Centring decorrelates intercept and slope: without it the
    posterior is a thin diagonal ridge and NUTS's ESS collapses.
    """
    log_spend = np.log(df["spend"].to_numpy(dtype=float))
    log_imp = np.log(np.maximum(df["impressions"].to_numpy(dtype=float), 1.0))
    if not np.all(np.isfinite(log_spend)):
        raise ValueError("funnel_predictors: spend must be > 0 on every day (log spend)")
    cs, ci = float(log_spend.mean()), float(log_imp.mean())
    return {
        "log_spend_c": log_spend - cs,
        "log_imp_c": log_imp - ci,
        "log_spend_centre": cs,
        "log_imp_centre": ci,
        "holiday": df["holiday"].to_numpy(dtype=float),
        "weekend": _weekend(df),
    }


def _weekend(df: pd.DataFrame) -> np.ndarray:
    """0.0/1.0 weekend flag per row: the ``weekend`` column if present, else from ``date``."""
    if "weekend" in df:
        return df["weekend"].to_numpy(dtype=float)
    if "date" not in df:
        raise ValueError("funnel_predictors: the data need a 'date' column (or a 'weekend' column) for the weekend term")
    from helpers.data import weekend_flags

    return weekend_flags(df["date"]).astype(float)


def count_regression(
    prefix: str,
    observed: np.ndarray,
    log_x_c: np.ndarray,
    *,
    intercept_mu: float,
    dims: str,
    priors: Priors = PRIORS,
    effects: dict[str, tuple[np.ndarray, float]] | None = None,
    group: tuple[np.ndarray, str] | None = None,
    pool_slopes: bool = False,
    likelihood: str = "negative_binomial",
):
    """One count regression with a log link, added to the PyMC model of the current context.

    The building block of every model in the course (the funnel's two regressions, the
    campaigns of notebook 02, the channels of notebook 06). For observation ``i`` (arrays of
    shape ``(n,)``) in group ``g_i``::

        log mu[i] = {prefix}_intercept_c[g_i] + {prefix}_slope[g_i] * log_x_c[i]
                    + sum over effects k of {prefix}_{k} * flag_k[i]
        observed[i] ~ NegativeBinomial(mu[i], alpha = 1 / {prefix}_cv[g_i]**2)    (or Poisson(mu[i]))

    Args:
        log_x_c: the centred log predictor (so the intercept is the log of a typical count).
        intercept_mu: prior mean of the centred intercept (sd ``priors.intercept_sigma``).
        effects: ``{name: (flags, prior sd)}``: additive log-scale terms, ``Normal(0, sd)``.
        group: ``(codes, dim)``: one intercept, slope and cv per group (codes index ``dim``'s
            coordinate); ``None``: one regression.
        pool_slopes: with ``group``, partial pooling of the slopes: ``{prefix}_slope[g] =
            {prefix}_slope_mu + {prefix}_slope_sigma * {prefix}_slope_z[g]`` (non-centred: right
            when the groups' data are weak next to the population; where every group has plenty,
            leave the slopes unpooled), ``slope_mu ~ Normal(slope_mu, slope_sigma)``,
            ``slope_sigma ~ HalfNormal(pooled_slope_sigma)``, ``slope_z ~ Normal(0, 1)``.
    Returns:
        ``mu``, the mean of every observation (a PyTensor expression).
    """
    import pymc as pm

    p = priors
    gdim = group[1] if group is not None else None
    idx = group[0] if group is not None else slice(None)
    a = pm.Normal(f"{prefix}_intercept_c", intercept_mu, p.intercept_sigma, dims=gdim)
    if pool_slopes:
        if group is None:
            raise ValueError("count_regression: pool_slopes needs groups to pool across")
        b_mu = pm.Normal(f"{prefix}_slope_mu", p.slope_mu, p.slope_sigma)
        # Gamma(2, 2 / mean): a zero-avoiding prior for a spread across only a handful of groups
        # (with HalfNormal the posterior piles up at 0, a funnel NUTS diverges in)
        b_sigma = pm.Gamma(f"{prefix}_slope_sigma", alpha=2.0, beta=2.0 / p.pooled_slope_sigma)
        b = pm.Normal(f"{prefix}_slope", b_mu, b_sigma, dims=gdim)
    else:
        b = pm.Normal(f"{prefix}_slope", p.slope_mu, p.slope_sigma, dims=gdim)
    eta = (a[idx] + b[idx] * log_x_c) if group is not None else (a + b * log_x_c)
    for name, (flags, sd) in (effects or {}).items():
        eta = eta + pm.Normal(f"{prefix}_{name}", 0.0, sd) * flags
    mu = pm.math.exp(eta)
    if likelihood == "negative_binomial":
        cv = pm.HalfNormal(f"{prefix}_cv", p.cv_sigma, dims=gdim)
        alpha = 1.0 / (cv[idx] if group is not None else cv) ** 2
        pm.NegativeBinomial(OBSERVED_OF[prefix], mu=mu, alpha=alpha, observed=np.asarray(observed), dims=dims)
    elif likelihood == "poisson":
        pm.Poisson(OBSERVED_OF[prefix], mu=mu, observed=np.asarray(observed), dims=dims)
    else:
        raise ValueError(f"likelihood must be 'negative_binomial' or 'poisson', got {likelihood!r}")
    return mu


#: The observed count each regression prefix explains.
OBSERVED_OF = {"imp": "impressions", "clk": "clicks"}


def build_funnel_model(df: pd.DataFrame, *, likelihood: str = "negative_binomial", priors: Priors = PRIORS):
    """The funnel as ONE PyMC model (one compile): two count regressions plus the acquisition rate.

    ``likelihood="negative_binomial"`` (the course's model) or ``"poisson"`` (the strawman of
    notebook 02: same means, variance = mean). Per day ``t`` (arrays of shape ``(n_days,)``)::

        log mu_imp[t] = imp_intercept_c + imp_slope * log_spend_c[t] + imp_holiday * holiday[t]
        log mu_clk[t] = clk_intercept_c + clk_slope * log_imp_c[t]   + clk_holiday * holiday[t]
                        + clk_weekend * weekend[t]
        impressions[t] ~ NegativeBinomial(mu_imp[t], alpha = 1 / imp_cv**2)
        clicks[t]      ~ NegativeBinomial(mu_clk[t], alpha = 1 / clk_cv**2)
        acquisitions[t] ~ Binomial(clicks[t], acq_rate)

    The clicks regression conditions on the *observed* impressions, so the two regressions
    share no parameter: fitting them in one model is the same as fitting them separately.
    Notebook 02 writes this model out by hand and checks it gives the same log-probability.
    """
    import pymc as pm

    if likelihood not in ("negative_binomial", "poisson"):
        raise ValueError(f"likelihood must be 'negative_binomial' or 'poisson', got {likelihood!r}")
    x = funnel_predictors(df)
    coords = {"day": pd.DatetimeIndex(df["date"]) if "date" in df else np.arange(len(df))}
    p = priors
    # check_bounds=False: every parameter is sampled on a transformed scale that keeps it in
    # its support (alpha = 1/cv^2 > 0, mu = exp(.) > 0), so PyMC's run-time parameter checks
    # can never fire; dropping them makes the graph ~10% smaller to compile.
    with pm.Model(coords=coords, check_bounds=False) as model:
        count_regression("imp", df["impressions"].to_numpy(), x["log_spend_c"], intercept_mu=p.imp_intercept_mu, dims="day",
                         priors=p, effects={"holiday": (x["holiday"], p.holiday_sigma)}, likelihood=likelihood)
        count_regression("clk", df["clicks"].to_numpy(), x["log_imp_c"], intercept_mu=p.clk_intercept_mu, dims="day", priors=p,
                         effects={"holiday": (x["holiday"], p.holiday_sigma), "weekend": (x["weekend"], p.weekend_sigma)},
                         likelihood=likelihood)
        acq = pm.Beta("acq_rate", p.acq_a, p.acq_b)
        pm.Binomial("acquisitions", n=df["clicks"].to_numpy(), p=acq, observed=df["acquisitions"].to_numpy(), dims="day")
    return model


def build_campaign_model(ext: pd.DataFrame, *, priors: Priors = PRIORS):
    """The impressions regression fitted per campaign, as ONE model with a campaign index.

    ``ext`` holds the *active* rows of the external data (``helpers.data.load_external``):
    columns ``campaign``, ``spend``, ``impressions``. Each campaign ``c`` gets its own
    centred intercept, slope and cv (shapes ``(n_campaigns,)``; no pooling), with log spend
    centred per campaign::

        log mu[i] = intercept_c[c_i] + slope[c_i] * (log spend[i] - centre[c_i])
        impressions[i] ~ NegativeBinomial(mu[i], 1 / cv[c_i]**2)

    The data have no holiday flag, so there is no holiday term.
    """
    import pymc as pm

    if (ext["spend"] <= 0).any():
        raise ValueError("build_campaign_model: pass the active rows only (spend > 0)")
    codes, names = pd.factorize(ext["campaign"], sort=False)
    log_spend = np.log(ext["spend"].to_numpy(dtype=float))
    centres = pd.Series(log_spend).groupby(codes).mean().to_numpy()
    with pm.Model(coords={"campaign": list(names), "row": np.arange(len(ext))}, check_bounds=False) as model:
        count_regression("imp", ext["impressions"].to_numpy(), log_spend - centres[codes], intercept_mu=priors.imp_intercept_mu,
                         dims="row", priors=priors, group=(codes, "campaign"))
    model.log_spend_centres = dict(zip(names, centres))  # for plotting on the natural scale
    return model


# --- several channels (notebook 06) ----------------------------------------------------

#: Days of carryover the adstock keeps (weights theta**k, k < ADSTOCK_LAGS; theta**ADSTOCK_LAGS
#: is below 1e-4 for theta <= 0.75, so truncating there changes nothing that matters).
ADSTOCK_LAGS = 28
CHANNEL_MODEL_VERSION = "channels-nb-pooled/1"


@dataclass(frozen=True)
class ChannelData:
    """Daily data of several channels on one calendar, as ``(n_days, n_channels)`` arrays.

    Built from the external campaign data by :func:`channel_data`. Inactive days (a channel
    that did not run) have ``active == False`` and zero spend and counts: they are not
    observations of the response (no spend, no impressions by construction), but they are days
    on the calendar: the adstock carries yesterday's spend through them, and the simulator of
    notebook 06 lets a channel spend only on its active days.
    """

    dates: pd.DatetimeIndex
    channels: tuple[str, ...]
    active: np.ndarray  # (T, K) bool
    spend: np.ndarray  # (T, K) float
    impressions: np.ndarray  # (T, K) int
    clicks: np.ndarray  # (T, K) int

    @property
    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        """``(day, channel)`` indices of the active rows, day-major: the model's observations."""
        return np.nonzero(self.active)

    def log_spend_centres(self) -> np.ndarray:
        """Per channel: the mean log spend over its active days, ``(K,)``."""
        return np.array([np.log(self.spend[self.active[:, k], k]).mean() for k in range(len(self.channels))])

    def log_imp_centres(self) -> np.ndarray:
        """Per channel: the mean log impressions over its active days, ``(K,)``."""
        return np.array([np.log(np.maximum(self.impressions[self.active[:, k], k], 1)).mean() for k in range(len(self.channels))])


def channel_data(ext: pd.DataFrame) -> ChannelData:
    """The external data (``helpers.data.load_external``: one row per day and campaign) as a
    :class:`ChannelData`; channels in the order they first appear, days consecutive."""
    channels = tuple(pd.unique(ext["campaign"]))
    wide = ext.pivot(index="date", columns="campaign")
    dates = pd.DatetimeIndex(wide.index)
    if len(dates) != (dates.max() - dates.min()).days + 1:
        raise ValueError("channel_data: the data must cover consecutive days")

    def col(name, dtype):
        return wide[name][list(channels)].to_numpy(dtype=dtype)

    active = col("active", bool)
    spend = col("spend", float)
    if np.any(active & (spend <= 0)):
        raise ValueError("channel_data: an active day with zero spend: the log-log model needs spend > 0 on active days")
    return ChannelData(dates, channels, active, spend, col("impressions", np.int64), col("clicks", np.int64))


def adstock_lags(spend: np.ndarray, n_lags: int = ADSTOCK_LAGS) -> np.ndarray:
    """``lags[t, k, j] = spend[t - j, k]`` (0 before the first day): shape ``(T, K, n_lags)``."""
    T, K = spend.shape
    lags = np.zeros((T, K, n_lags))
    for j in range(n_lags):
        lags[j:, :, j] = spend[: T - j]
    return lags


def adstock_weights(theta, n_lags: int = ADSTOCK_LAGS):
    """Normalised geometric weights ``(1 - theta) theta**j / (1 - theta**n_lags)``, ``j < n_lags``.

    ``theta`` of shape ``(...,)`` gives weights of shape ``(..., n_lags)`` summing to 1: a
    constant spend keeps its level (so the intercept keeps its meaning) and ``theta = 0`` is no
    carryover. Works on numpy arrays and on PyTensor variables alike.
    """
    j = np.arange(n_lags)
    t = theta[..., None]
    return (1 - t) * t**j / (1 - t**n_lags)


def build_channel_model(ch: ChannelData, *, adstock: bool = False, pool_impressions: bool = False, priors: Priors = PRIORS):
    """The funnel of several channels as ONE model: per channel an impressions and a clicks
    regression (:func:`count_regression`), with partial pooling of the elasticities.

    On the active ``(day t, channel c)`` rows::

        x[t, c]      = spend[t, c]                                   (adstock=False)
                     = sum_j w_j(theta[c]) * spend[t - j, c]           (adstock=True, j < ADSTOCK_LAGS)
        log mu_imp   = imp_intercept_c[c] + imp_slope[c] * (log x[t, c] - log_spend_centre[c])
        log mu_clk   = clk_intercept_c[c] + clk_slope[c] * (log impressions[t, c] - log_imp_centre[c])
        impressions ~ NB(mu_imp, 1 / imp_cv[c]**2);  clicks ~ NB(mu_clk, 1 / clk_cv[c]**2)

    The clicks slopes are pooled across channels (``pool_slopes``): a channel with few days (the
    15-day flash sale) borrows strength from the others. The impressions slopes are not pooled
    by default: every channel pins its own to a few hundredths, so pooling changes nothing and
    its funnel-shaped posterior only slows the sampler (``pool_impressions=True`` to compare). With ``adstock``, ``theta[c] ~ Beta(adstock_a,
    adstock_b)`` per channel and the weights are :func:`adstock_weights`: yesterday's spend
    moves today's impressions. Intercepts and noise stay per channel (their scales differ).
    """
    import pymc as pm

    t_idx, c_idx = ch.rows
    coords = {"channel": list(ch.channels), "row": np.arange(len(t_idx))}
    p = priors
    with pm.Model(coords=coords, check_bounds=False) as model:
        if adstock:
            theta = pm.Beta("adstock", p.adstock_a, p.adstock_b, dims="channel")
            lags = adstock_lags(ch.spend)[t_idx, c_idx]  # (rows, lags)
            x = (lags * adstock_weights(theta)[c_idx]).sum(axis=-1)
            log_x = pm.math.log(x)
        else:
            log_x = np.log(ch.spend[t_idx, c_idx])
        count_regression("imp", ch.impressions[t_idx, c_idx], log_x - ch.log_spend_centres()[c_idx], intercept_mu=p.imp_intercept_mu,
                         dims="row", priors=p, group=(c_idx, "channel"), pool_slopes=pool_impressions)
        log_imp = np.log(np.maximum(ch.impressions[t_idx, c_idx], 1))
        count_regression("clk", ch.clicks[t_idx, c_idx], log_imp - ch.log_imp_centres()[c_idx], intercept_mu=p.clk_intercept_mu,
                         dims="row", priors=p, group=(c_idx, "channel"), pool_slopes=True)
    return model


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


# --- sampling and checks --------------------------------------------------------------


def sample_model(model, settings: FitSettings = FitSettings(), *, progressbar: bool | None = None):
    """Sample ``model`` with NUTS (nutpie or PyMC's own) and return an ArviZ ``DataTree``.

    Only the model's free variables and deterministics are kept (no unconstrained copies, no
    warm-up); the tree
    has the groups ``posterior`` and ``sample_stats``. Timings go into ``posterior.attrs``:
    ``compile_s`` (graph compilation; for PyMC everything before the first draw),
    ``sampling_s`` (tuning + draws) and ``fit_wall_s``.
    """
    import pymc as pm

    progress = _progress_default(progressbar)
    keep = [rv.name for rv in model.free_RVs + model.deterministics]
    t0 = time.perf_counter()
    if settings.sampler == "nutpie":
        import nutpie

        backend = settings.nutpie_backend
        gradient_backend = "jax" if backend == "jax" else "pytensor"
        compiled = nutpie.compile_pymc_model(model, backend=backend, gradient_backend=gradient_backend, var_names=keep)
        t1 = time.perf_counter()
        idata = nutpie.sample(
            compiled,
            draws=settings.draws,
            tune=settings.tune,
            chains=settings.chains,
            seed=settings.seed,
            target_accept=settings.target_accept,
            save_warmup=False,
            progress_bar=progress,
        )
        sampling_s = time.perf_counter() - t1
        compile_s = t1 - t0
    else:
        idata = pm.sample(
            draws=settings.draws,
            tune=settings.tune,
            chains=settings.chains,
            cores=min(settings.chains, os.cpu_count() or 1),
            # Trap: the default start method on Linux is fork(). Forking a process in which
            # torch or BLAS already started their OpenMP threads copies locks held by threads
            # that do not exist in the child, which then waits forever. "spawn" starts clean
            # interpreters (and is what macOS and Windows use anyway).
            mp_ctx="spawn",
            backend=settings.pymc_backend,
            random_seed=settings.seed,
            target_accept=settings.target_accept,
            progressbar=progress,
            compute_convergence_checks=False,  # we run our own, stricter ones
            var_names=keep,
            model=model,
        )
        sampling_s = float(idata.posterior.attrs.get("sampling_time", np.nan))
        compile_s = time.perf_counter() - t0 - sampling_s
    wall = time.perf_counter() - t0
    # keep only what NetCDF can store and what we need
    idata = _tree({g: idata[g].to_dataset() for g in ("posterior", "sample_stats") if g in idata.children})
    idata.posterior.attrs.update(
        {"sampler": settings.sampler, "compile_s": float(compile_s), "sampling_s": float(sampling_s), "fit_wall_s": float(wall)}
    )
    return idata


def _tree(groups: dict):
    """An ArviZ ``DataTree`` with one child group per ``{name: xarray.Dataset}`` entry.

    ArviZ 1 stores inference results in xarray's ``DataTree`` (ArviZ 0.x had ``InferenceData``):
    ``tree.posterior`` is a group, ``list(tree.children)`` its group names.
    """
    import xarray as xr

    return xr.DataTree.from_dict({g: ds for g, ds in groups.items()})


def check_convergence(
    idata,
    var_names=None,
    *,
    max_rhat: float = 1.01,
    min_ess_bulk: float = 400,
    max_divergences: int = 0,
) -> pd.DataFrame:
    """Assert convergence with ArviZ; return the diagnostics table (one row per scalar).

    Raises :class:`ConvergenceError` naming the offending parameters when any
    ``r_hat > max_rhat``, any bulk ESS ``< min_ess_bulk``, or there are more than
    ``max_divergences`` divergent transitions.
    """
    import arviz as az

    # round_to="none": summary() rounds for display by default, and a rounded 1.012 reads 1.01
    diag = az.summary(idata, var_names=var_names, kind="diagnostics", round_to="none")
    problems = []
    bad = diag[~(diag["r_hat"] <= max_rhat)]
    if len(bad):
        problems.append(f"r_hat > {max_rhat}: " + ", ".join(f"{k}={v:.3f}" for k, v in bad["r_hat"].items()))
    bad = diag[~(diag["ess_bulk"] >= min_ess_bulk)]
    if len(bad):
        problems.append(f"bulk ESS < {min_ess_bulk}: " + ", ".join(f"{k}={v:.0f}" for k, v in bad["ess_bulk"].items()))
    if "sample_stats" in idata.children and "diverging" in idata.sample_stats:
        n_div = int(idata.sample_stats["diverging"].sum())
        if n_div > max_divergences:
            problems.append(f"{n_div} divergent transitions (allowed {max_divergences})")
    if problems:
        raise ConvergenceError("the sampler did not converge: " + "; ".join(problems))
    return diag


def natural_scale(centred, log_spend_centre: float, log_imp_centre: float) -> dict:
    """The natural-scale parameters from centred ones (floats, arrays or xarray alike).

    ``log mu = a_c + b * (log x - centre) + ...  =  (a_c - b * centre) + b * log x + ...``, so
    ``intercept = intercept_c - slope * centre``; and ``alpha = 1 / cv**2``.
    """
    c = centred
    return {
        "imp_intercept": c["imp_intercept_c"] - c["imp_slope"] * log_spend_centre,
        "clk_intercept": c["clk_intercept_c"] - c["clk_slope"] * log_imp_centre,
        "imp_alpha": 1.0 / c["imp_cv"] ** 2,
        "clk_alpha": 1.0 / c["clk_cv"] ** 2,
    }


def add_natural_scale(idata) -> None:
    """Add the :data:`PARAM_NAMES` (natural, uncentred scale) to ``idata.posterior`` in place.

    The centres are read from ``idata.constant_data`` (``log_spend_centre``, ``log_imp_centre``);
    see :func:`natural_scale`.
    """
    const = idata.constant_data
    extra = natural_scale(idata.posterior, float(const["log_spend_centre"]), float(const["log_imp_centre"]))
    for name, value in extra.items():
        idata.posterior[name] = value


def _data_groups(df: pd.DataFrame) -> dict:
    """``observed_data`` and ``constant_data`` groups for the funnel's ``DataTree``."""
    import xarray as xr

    x = funnel_predictors(df)
    day = pd.DatetimeIndex(df["date"]) if "date" in df else np.arange(len(df))
    observed = xr.Dataset({k: ("day", df[k].to_numpy()) for k in OBSERVED_NAMES}, coords={"day": day})
    constant = xr.Dataset(
        {
            "spend": ("day", df["spend"].to_numpy(dtype=float)),
            "holiday": ("day", df["holiday"].to_numpy(dtype=np.int64)),
            "weekend": ("day", x["weekend"].astype(np.int64)),
            "log_spend_centre": x["log_spend_centre"],
            "log_imp_centre": x["log_imp_centre"],
        },
        coords={"day": day},
    )
    return {"observed_data": observed, "constant_data": constant}


def fit_funnel(df: pd.DataFrame, settings: FitSettings = FitSettings(), *, priors: Priors = PRIORS, progressbar: bool | None = None):
    """Build, sample and check the funnel model; return its ArviZ ``DataTree``.

    The posterior holds the sampler's :data:`CENTRED_NAMES` plus the natural-scale
    :data:`PARAM_NAMES`; ``observed_data``/``constant_data`` hold the data and the centres.
    Raises :class:`ConvergenceError` when the checks of ``settings`` fail.
    """
    t0 = time.perf_counter()
    model = build_funnel_model(df, priors=priors)
    build_s = time.perf_counter() - t0
    idata = sample_model(model, settings, progressbar=progressbar)
    idata = _tree({**{g: idata[g].to_dataset() for g in idata.children}, **_data_groups(df)})
    add_natural_scale(idata)
    check_convergence(
        idata,
        var_names=list(CENTRED_NAMES) + list(PARAM_NAMES),
        max_rhat=settings.max_rhat,
        min_ess_bulk=settings.min_ess_bulk,
        max_divergences=settings.max_divergences,
    )
    idata.posterior.attrs["build_s"] = float(build_s)
    idata.posterior.attrs["fit_wall_s"] = float(time.perf_counter() - t0)
    return idata


def to_funnel_draws(idata) -> FunnelDraws:
    """The posterior of ``idata`` as :class:`FunnelDraws`: ``chains * draws`` draws, chain-major."""
    post = idata.posterior
    missing = [k for k in PARAM_NAMES if k not in post]
    if missing:
        raise KeyError(f"to_funnel_draws: posterior lacks {missing} (run add_natural_scale first?)")
    return FunnelDraws(**{k: post[k].transpose("chain", "draw").to_numpy().reshape(-1) for k in PARAM_NAMES})


# --- the cache ------------------------------------------------------------------------


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_path(quick: bool = False, cache_dir: str | os.PathLike = CACHE_DIR, model: str = "funnel") -> Path:
    """``build/cache/<model>_posterior_full.nc`` or ``..._quick.nc``: quick and full never mix
    (``model``: ``"funnel"``, or e.g. ``"channels"`` / ``"channels_adstock"`` for notebook 06)."""
    return Path(cache_dir) / f"{model}_posterior_{'quick' if quick else 'full'}.nc"


def cache_key(data_path: str | os.PathLike, settings: FitSettings, priors: Priors = PRIORS, *,
              model_version: str | None = None, **options) -> dict[str, str]:
    """What a cache must match to be used: the data file's bytes, the model (version, default
    :data:`MODEL_VERSION`, and ``options``, e.g. ``adstock=True``), the priors, the settings."""
    key = {
        "cache_data_sha256": file_sha256(data_path),
        "cache_model_version": model_version or MODEL_VERSION,
        "cache_format": CACHE_FORMAT,
        "cache_priors": priors.to_json(),
        "cache_fit_settings": settings.to_json(),
    }
    key.update({f"cache_option_{k}": json.dumps(v, sort_keys=True) for k, v in sorted(options.items())})
    return key


_CHECKSUM_GROUPS = ("posterior", "observed_data", "constant_data")


def _content_sha256(idata) -> str:
    """Checksum of the posterior, the data and the centres (names, shapes, float64 bytes).

    Stored in the cache's attributes at write time and recomputed at read time, it catches
    damage that still parses as NetCDF (a flipped number, a truncated array).
    """
    h = hashlib.sha256()
    for group in _CHECKSUM_GROUPS:
        if group not in idata.children:
            continue
        ds = idata[group]
        for name in sorted(ds.data_vars):
            arr = np.ascontiguousarray(ds[name].to_numpy(), dtype=np.float64)
            h.update(f"{group}/{name}{arr.shape}".encode() + arr.tobytes())
    return h.hexdigest()


def write_cache(idata, path: str | os.PathLike, key: dict[str, str]) -> Path:
    """Save ``idata`` (posterior, sample_stats, observed/constant data) as NetCDF, atomically.

    The key and a checksum of the posterior go into ``posterior.attrs``. Written to a
    temporary file in the same folder, then ``os.replace``: a crash leaves the old file or
    nothing, never half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    groups = [g for g in ("posterior", "sample_stats", "observed_data", "constant_data") if g in idata.children]
    out = _tree({g: idata[g].to_dataset().copy() for g in groups})
    out.posterior.attrs.update(key)
    out.posterior.attrs["cache_posterior_sha256"] = _content_sha256(out)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        out.to_netcdf(tmp, engine="h5netcdf")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a cache is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_cache(path: str | os.PathLike, key: dict[str, str], required=(*PARAM_NAMES, *CENTRED_NAMES)):
    """``(idata, None)`` when ``path`` holds a sound cache matching ``key``; else ``(None, reason)``.

    ``required``: the posterior variables a sound cache holds (default: the funnel's).

    Reasons: ``"missing"``; ``"unreadable: ..."`` (garbage, truncated); ``"stale: <attr> changed"``
    (data, model, priors or settings differ); ``"corrupted: ..."`` (checksum or parameters).
    """
    import xarray as xr

    path = Path(path)
    if not path.exists():
        return None, "missing"
    try:
        # load everything into memory and close the file: a cache may be replaced while in use
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            idata = tree.load().copy()
        attrs = dict(idata.posterior.attrs)
    except Exception as e:  # any failure to read back is damage, whatever the library raises
        return None, f"unreadable: {type(e).__name__}: {str(e)[:200]}"
    for k, v in key.items():
        if attrs.get(k) != v:
            return None, f"stale: {k.removeprefix('cache_')} changed"
    missing = [k for k in required if k not in idata.posterior]
    if missing:
        return None, f"corrupted: posterior lacks {missing}"
    if attrs.get("cache_posterior_sha256") != _content_sha256(idata):
        return None, "corrupted: the checksum of the posterior and data does not match"
    return idata, None


def load_idata(
    quick: bool = False,
    *,
    data_path: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike = CACHE_DIR,
    settings: FitSettings | None = None,
    priors: Priors = PRIORS,
    refit: bool = False,
    progressbar: bool | None = None,
):
    """The funnel's full ArviZ ``DataTree``, from the cache when sound, else fitted and cached.

    ``quick`` picks the quick or full cache file and the default settings
    (:meth:`FitSettings.quick` / :meth:`FitSettings.full`). A stale or damaged cache is
    never used: it is refitted, with a :class:`StaleCacheWarning` saying why.
    """
    from helpers.data import DATA_PATH

    data_path = Path(data_path or DATA_PATH)
    settings = settings or (FitSettings.quick() if quick else FitSettings.full())
    return _cached_fit(cache_path(quick, cache_dir), cache_key(data_path, settings, priors),
                       lambda: fit_funnel(_read_daily(data_path), settings, priors=priors, progressbar=progressbar), refit=refit)


def _cached_fit(path: Path, key: dict[str, str], fit, *, required=(*PARAM_NAMES, *CENTRED_NAMES), refit: bool = False):
    """The ``DataTree`` cached at ``path`` when sound and matching ``key``; else ``fit()``, cached.

    A stale or damaged cache is never used: it is refitted, with a :class:`StaleCacheWarning`
    saying why. Shared by every cached posterior of the course.
    """
    if not refit:
        idata, reason = read_cache(path, key, required)
        if idata is not None:
            return idata
        if reason != "missing":
            warnings.warn(f"{path}: {reason}; refitting", StaleCacheWarning, stacklevel=3)
    idata = fit()
    write_cache(idata, path, key)
    return idata


def load_posterior(quick: bool = False, **kwargs) -> FunnelDraws:
    """The cached posterior draws for the simulator (fits and caches when missing or stale).

    ``kwargs`` go to :func:`load_idata` (``data_path``, ``cache_dir``, ``settings``, ...).
    """
    return to_funnel_draws(load_idata(quick, **kwargs))


# --- the channel model's fit and cache (notebook 06) --------------------------------------


def channel_fit_settings(quick: bool = False, **overrides) -> FitSettings:
    """Sampler settings of the channel model: the course's, with ``target_accept=0.95`` and the
    full 1,000 tuning steps and 1,000 kept draws per chain in quick mode too (quick mode only
    relaxes the ESS floor, as for the funnel).

    Measured (nutpie, 4 chains, 2 shared cores): at the default target_accept 0.8 with 500 tuning
    steps the pooled clicks slopes gave 1-3 divergent transitions (their spread sits near 0 for
    some draws: a funnel); 0.95 with 1,000 tuning steps gave none. With 500 kept draws the worst
    r_hat was 1.009 here and 1.016 in one test run (over the 1.01 threshold); 1,000 draws gave
    1.003, for ~4 s more sampling (~10 s instead of ~7 s without adstock, after ~6 s of compiling).
    """
    base = FitSettings.quick(tune=1000, draws=1000) if quick else FitSettings.full()
    return dataclasses_replace(base, **{"target_accept": 0.95, **overrides})


def channel_var_names(adstock: bool = False, pool_impressions: bool = False) -> list[str]:
    """The channel model's free variables (what the convergence checks look at)."""
    names = ["imp_intercept_c", "imp_slope", "imp_cv", "clk_intercept_c", "clk_slope", "clk_slope_mu", "clk_slope_sigma", "clk_cv"]
    if pool_impressions:
        names += ["imp_slope_mu", "imp_slope_sigma"]
    return names + (["adstock"] if adstock else [])


def _channel_data_groups(ch: ChannelData) -> dict:
    """``observed_data`` and ``constant_data`` of the channel model (its active rows)."""
    import xarray as xr

    t, c = ch.rows
    coords = {"row": np.arange(len(t))}
    observed = xr.Dataset({"impressions": ("row", ch.impressions[t, c]), "clicks": ("row", ch.clicks[t, c])}, coords=coords)
    constant = xr.Dataset(
        {
            "spend": ("row", ch.spend[t, c]),
            "day": ("row", t.astype(np.int64)),
            "channel_index": ("row", c.astype(np.int64)),
            "log_spend_centre": ("channel", ch.log_spend_centres()),
            "log_imp_centre": ("channel", ch.log_imp_centres()),
        },
        coords={**coords, "channel": list(ch.channels)},
    )
    return {"observed_data": observed, "constant_data": constant}


def fit_channels(ch: ChannelData, settings: FitSettings | None = None, *, adstock: bool = False, pool_impressions: bool = False,
                 priors: Priors = PRIORS, progressbar: bool | None = None):
    """Build, sample and check :func:`build_channel_model`; return its ArviZ ``DataTree``
    (posterior, sample_stats, observed_data, constant_data). Raises :class:`ConvergenceError`."""
    settings = settings or channel_fit_settings()
    t0 = time.perf_counter()
    model = build_channel_model(ch, adstock=adstock, pool_impressions=pool_impressions, priors=priors)
    build_s = time.perf_counter() - t0
    idata = sample_model(model, settings, progressbar=progressbar)
    idata = _tree({**{g: idata[g].to_dataset() for g in idata.children}, **_channel_data_groups(ch)})
    check_convergence(idata, var_names=channel_var_names(adstock, pool_impressions), max_rhat=settings.max_rhat,
                      min_ess_bulk=settings.min_ess_bulk, max_divergences=settings.max_divergences)
    idata.posterior.attrs["build_s"] = float(build_s)
    idata.posterior.attrs["fit_wall_s"] = float(time.perf_counter() - t0)
    return idata


def load_channel_idata(
    quick: bool = False,
    *,
    adstock: bool = False,
    pool_impressions: bool = False,
    data_path: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike = CACHE_DIR,
    settings: FitSettings | None = None,
    priors: Priors = PRIORS,
    refit: bool = False,
    progressbar: bool | None = None,
):
    """The channel model's ``DataTree`` (external campaign data), from the cache when sound, else
    fitted (:func:`fit_channels`) and cached, like :func:`load_idata`.

    The cache (``build/cache/channels[_adstock]_posterior_{quick,full}.nc``) is keyed on the data
    file's bytes, :data:`CHANNEL_MODEL_VERSION`, adstock and pooling, the priors and the settings.
    """
    from helpers.data import EXTERNAL_PATH, load_external

    data_path = Path(data_path or EXTERNAL_PATH)
    settings = settings or channel_fit_settings(quick)
    name = "channels" + ("_adstock" if adstock else "") + ("_pooled_impressions" if pool_impressions else "")
    key = cache_key(data_path, settings, priors, model_version=CHANNEL_MODEL_VERSION, adstock=adstock, pool_impressions=pool_impressions)

    def fit():
        return fit_channels(channel_data(load_external(data_path)), settings, adstock=adstock, pool_impressions=pool_impressions,
                            priors=priors, progressbar=progressbar)

    return _cached_fit(cache_path(quick, cache_dir, name), key, fit, required=channel_var_names(adstock, pool_impressions), refit=refit)


def load_channel_posterior(quick: bool = False, **kwargs) -> ChannelDraws:
    """The cached channel posterior as :class:`ChannelDraws` (``kwargs`` go to :func:`load_channel_idata`)."""
    from helpers.data import EXTERNAL_PATH, load_external

    idata = load_channel_idata(quick, **kwargs)
    return to_channel_draws(idata, channel_data(load_external(kwargs.get("data_path") or EXTERNAL_PATH)))
