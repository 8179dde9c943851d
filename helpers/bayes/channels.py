"""Several channels (notebook 06): the campaigns' data as arrays (:class:`ChannelData`), the
channel model with partially pooled clicks slopes and optional carryover
(:func:`build_channel_model`), its sampler settings, fit and cache (:func:`load_channel_idata`,
:func:`load_channel_posterior`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from dataclasses import replace as dataclasses_replace
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.bayes.cache import CACHE_DIR, _cached_fit, cache_key, cache_path
from helpers.bayes.draws import ChannelDraws, to_channel_draws
from helpers.bayes.fit import FitSettings, _tree, check_convergence, sample_model
from helpers.bayes.model import PRIORS, Priors, count_regression, least_squares_slopes
from helpers.carryover import adstock_lags, adstock_weights, prior as carryover_prior

#: Bump when the channel model changes (2: the pooled slopes sampled as ``clk_slope_z``, see
#: :func:`pooled_slopes`, and their spread's prior Gamma(4, .)): older caches are stale and refitted.
CHANNEL_MODEL_VERSION = "channels-nb-pooled/2-slope-z-gamma4"


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
    15-day flash sale) borrows strength from the others. The sampler sees them through
    :func:`pooled_slopes` (``clk_slope_z``; ``clk_slope`` stays, a deterministic of the same name
    and meaning), so the posterior has no funnel to diverge in. The impressions slopes are not pooled
    by default: every channel pins its own to a few hundredths, so pooling changes nothing and
    only adds parameters to sample (``pool_impressions=True`` to compare). With ``adstock``, ``theta[c] ~ Beta(adstock_a,
    adstock_b)`` per channel and the weights are :func:`adstock_weights`: yesterday's spend
    moves today's impressions. Intercepts and noise stay per channel (their scales differ).
    """
    import pymc as pm

    t_idx, c_idx = ch.rows
    coords = {"channel": list(ch.channels), "row": np.arange(len(t_idx))}
    p = priors
    with pm.Model(coords=coords, check_bounds=False) as model:
        if adstock:
            theta = carryover_prior("adstock", dims="channel", a=p.adstock_a, b=p.adstock_b)  # Beta(1, 3) by default
            lags = adstock_lags(ch.spend)[t_idx, c_idx]  # (rows, lags)
            x = (lags * adstock_weights(theta)[c_idx]).sum(axis=-1)
            log_x = pm.math.log(x)
        else:
            log_x = np.log(ch.spend[t_idx, c_idx])
        # pooled impressions slopes: how the sampler sees them comes from the spend's own slopes (no
        # adstock: with it, x depends on theta; the parameterisation only needs to be roughly right)
        imp_own = least_squares_slopes(np.log(ch.impressions[t_idx, c_idx] + 0.5), np.log(ch.spend[t_idx, c_idx]), c_idx,
                                       len(ch.channels)) if pool_impressions else None
        count_regression("imp", ch.impressions[t_idx, c_idx], log_x - ch.log_spend_centres()[c_idx], intercept_mu=p.imp_intercept_mu,
                         dims="row", priors=p, group=(c_idx, "channel"), pool_slopes=pool_impressions, own_slopes=imp_own)
        log_imp = np.log(np.maximum(ch.impressions[t_idx, c_idx], 1))
        count_regression("clk", ch.clicks[t_idx, c_idx], log_imp - ch.log_imp_centres()[c_idx], intercept_mu=p.clk_intercept_mu,
                         dims="row", priors=p, group=(c_idx, "channel"), pool_slopes=True)
    return model


# --- the channel model's fit and cache (notebook 06) --------------------------------------


def channel_fit_settings(quick: bool = False, **overrides) -> FitSettings:
    """Sampler settings of the channel model: the course's (``target_accept`` 0.8, the default),
    with the full 1,000 tuning steps and 1,000 kept draws per chain in quick mode too (quick mode
    only relaxes the ESS floor, as for the funnel).

    Measured by ``benchmarks/bench_channel_fit.py --full``: nutpie, 4 chains x (1,000 + 1,000),
    8 seeds x adstock off/on x ``NUMBA_CPU_NAME`` host/generic, every fit a fresh process with
    empty compile caches, 2 shared cores. The first version of this model (centred pooled slopes,
    spread ~ Gamma(2, .)) diverged in 25 of those 32 fits at target_accept 0.8 (88 divergent
    transitions, up to 15 in one fit; one sweep) and still in 7 of 32 at the 0.95 it used to set
    (20, up to 10; measured twice, the same counts): a setting tuned on one machine, not a cure.
    This model (:func:`pooled_slopes`, spread ~ Gamma(:data:`POOLED_SLOPE_SHAPE`, .)): 0
    divergences in 32 of 32 fits at 0.8, worst r_hat 1.006, lowest bulk ESS 874 of the checked
    quantities; so no override. With 500 kept draws the first version's r_hat reached 1.016 once
    (over the 1.01 threshold): hence 1,000 draws in quick mode too. On other data (a 3-campaign
    export in notebook 07) the pooled spread is weakly identified and a fit can still diverge:
    the checks then say so and what to try (a higher target_accept first).
    """
    base = FitSettings.quick(tune=1000, draws=1000) if quick else FitSettings.full()
    return dataclasses_replace(base, **overrides)


def channel_var_names(adstock: bool = False, pool_impressions: bool = False) -> list[str]:
    """What the convergence checks look at: the channel model's free variables (the sampler's
    health; ``*_slope_z`` for pooled slopes) and the pooled slopes themselves, deterministics the
    simulator reads (r_hat and ESS of the quantities the environment uses)."""
    names = ["imp_intercept_c", "imp_slope", "imp_cv", "clk_intercept_c", "clk_slope_z", "clk_slope", "clk_slope_mu", "clk_slope_sigma",
             "clk_cv"]
    if pool_impressions:
        names += ["imp_slope_z", "imp_slope_mu", "imp_slope_sigma"]
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
                 priors: Priors = PRIORS, progressbar: bool | None = None, strict: bool = True):
    """Build, sample and check :func:`build_channel_model`; return its ArviZ ``DataTree``
    (posterior, sample_stats, observed_data, constant_data). A failed check raises
    :class:`ConvergenceError`, or with ``strict=False`` warns and returns the draws marked
    ``posterior.attrs["converged"] = 0`` (:func:`check_convergence`)."""
    settings = settings or channel_fit_settings()
    t0 = time.perf_counter()
    model = build_channel_model(ch, adstock=adstock, pool_impressions=pool_impressions, priors=priors)
    build_s = time.perf_counter() - t0
    idata = sample_model(model, settings, progressbar=progressbar)
    idata = _tree({**{g: idata[g].to_dataset() for g in idata.children}, **_channel_data_groups(ch)})
    diag = check_convergence(idata, var_names=channel_var_names(adstock, pool_impressions), max_rhat=settings.max_rhat,
                             min_ess_bulk=settings.min_ess_bulk, max_divergences=settings.max_divergences, strict=strict,
                             target_accept=settings.target_accept)
    idata.posterior.attrs["converged"] = int(diag.attrs["converged"])
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
    strict: bool = True,
):
    """The channel model's ``DataTree`` (external campaign data), from the cache when sound, else
    fitted (:func:`fit_channels`) and cached, like :func:`load_idata`.

    The cache (``build/cache/channels[_adstock]_posterior_{quick,full}.nc``) is keyed on the data
    file's bytes, :data:`CHANNEL_MODEL_VERSION`, adstock and pooling, the priors and the settings.
    ``strict=False`` (notebook 06 in JupyterLab): a fit that fails its convergence checks warns
    (:class:`ConvergenceWarning`: what failed, what it means, what to try) and its draws are
    returned, not cached; ``strict=True`` raises :class:`ConvergenceError`.
    """
    from helpers.data import EXTERNAL_PATH, load_external

    data_path = Path(data_path or EXTERNAL_PATH)
    settings = settings or channel_fit_settings(quick)
    name = "channels" + ("_adstock" if adstock else "") + ("_pooled_impressions" if pool_impressions else "")
    key = cache_key(data_path, settings, priors, model_version=CHANNEL_MODEL_VERSION, adstock=adstock, pool_impressions=pool_impressions)

    def fit():
        return fit_channels(channel_data(load_external(data_path)), settings, adstock=adstock, pool_impressions=pool_impressions,
                            priors=priors, progressbar=progressbar, strict=strict)

    return _cached_fit(cache_path(quick, cache_dir, name), key, fit, required=channel_var_names(adstock, pool_impressions), refit=refit)


def load_channel_posterior(quick: bool = False, **kwargs) -> ChannelDraws:
    """The cached channel posterior as :class:`ChannelDraws` (``kwargs`` go to :func:`load_channel_idata`)."""
    from helpers.data import EXTERNAL_PATH, load_external

    idata = load_channel_idata(quick, **kwargs)
    return to_channel_draws(idata, channel_data(load_external(kwargs.get("data_path") or EXTERNAL_PATH)))
