"""The funnel's PyMC models (notebook 02 writes them out by hand and checks they are the same):
the priors, one negative-binomial count regression with a log link (:func:`count_regression`),
the funnel (:func:`build_funnel_model`), the impressions regression per campaign
(:func:`build_campaign_model`) and the partially pooled slopes of notebook 06
(:func:`pooled_slopes`). PyMC is imported inside the builders.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from helpers.carryover import PRIOR as CARRYOVER_PRIOR

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
    # the mean of a Gamma(POOLED_SLOPE_SHAPE = 4, 4 / 0.2) prior: channels differ by ~0.1-0.3 in
    # elasticity (95% prior interval 0.05-0.44), and hardly by less than 0.05 (see POOLED_SLOPE_SHAPE)
    pooled_slope_sigma: float = 0.2
    # carryover (adstock) share theta ~ Beta(adstock_a, adstock_b): helpers.carryover.PRIOR, Beta(1, 3)
    adstock_a: float = CARRYOVER_PRIOR[0]
    adstock_b: float = CARRYOVER_PRIOR[1]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


PRIORS = Priors()

#: Shape of the Gamma prior on a pooled spread (``*_slope_sigma``; mean ``Priors.pooled_slope_sigma``).
#: 4, not 2: with shape 2 (density ~ sigma near 0) the channel model's posterior kept ~1% of its
#: mass below a spread of 0.05, where every slope and their mean are squeezed together: a neck in
#: which NUTS diverged (benchmarks/bench_channel_fit.py, whatever the slopes' parameterisation).
#: Shape 4 (density ~ sigma**3) says the same about the typical spread (mean 0.2, the posterior's
#: median moves from 0.175 to 0.18) and that seven campaigns on different audiences hardly share
#: one elasticity to within 0.05. A module constant, not a Priors field: it is part of the channel
#: model (CHANNEL_MODEL_VERSION), and the funnel's caches, keyed on the Priors, stay valid.
POOLED_SLOPE_SHAPE = 4.0


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
    own_slopes: tuple[np.ndarray, np.ndarray] | None = None,
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
        pool_slopes: with ``group``, partial pooling of the slopes: ``{prefix}_slope[g] ~
            Normal({prefix}_slope_mu, {prefix}_slope_sigma)``, ``slope_mu ~ Normal(slope_mu,
            slope_sigma)``, ``slope_sigma ~ Gamma(4, 4 / pooled_slope_sigma)``; sampled through
            :func:`pooled_slopes` (standardised ``{prefix}_slope_z``, no funnel), the slopes kept
            as the deterministic ``{prefix}_slope`` (same name and meaning as unpooled slopes).
        own_slopes: with ``pool_slopes``, ``(slope, se)`` per group from its own data alone
            (:func:`least_squares_slopes`; default: computed from ``observed`` and ``log_x_c``, which must
            then be an array). They shape how the sampler sees the slopes, not the model.
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
        if own_slopes is None:
            try:
                log_x = np.asarray(log_x_c, dtype=float)
            except (TypeError, ValueError):
                raise ValueError("count_regression: log_x_c is not an array (adstock?): pass own_slopes") from None
            own_slopes = least_squares_slopes(np.log(np.asarray(observed) + 0.5), log_x, group[0], int(np.max(group[0])) + 1)
        b_mu = pm.Normal(f"{prefix}_slope_mu", p.slope_mu, p.slope_sigma)
        # Gamma(4, 4 / mean): a spread across only a handful of groups, kept away from 0 (see Priors)
        b_sigma = pm.Gamma(f"{prefix}_slope_sigma", alpha=POOLED_SLOPE_SHAPE, beta=POOLED_SLOPE_SHAPE / p.pooled_slope_sigma)
        b = pooled_slopes(prefix, b_mu, b_sigma, *own_slopes, dims=gdim)
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


def least_squares_slopes(log_y: np.ndarray, log_x: np.ndarray, codes: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Per group, the least-squares slope of ``log_y`` on ``log_x`` and its standard error, ``(K,)``
    each: where a group's own data alone put its slope, and how sure they are. A group with fewer
    than 3 points or a constant ``log_x`` gets slope 0 and standard error 1e3 (no information)."""
    slope, se = np.zeros(n_groups), np.full(n_groups, 1e3)
    for g in range(n_groups):
        x, y = log_x[codes == g], log_y[codes == g]
        sxx = float(np.sum((x - x.mean()) ** 2)) if len(x) else 0.0
        if len(x) < 3 or sxx <= 0:
            continue
        slope[g] = float(np.sum((x - x.mean()) * (y - y.mean()))) / sxx
        resid = y - y.mean() - slope[g] * (x - x.mean())
        se[g] = max(float(np.sqrt(np.sum(resid**2) / (len(x) - 2) / sxx)), 1e-6)
    return slope, se


def pooled_slopes(prefix: str, mu, sigma, own_slope: np.ndarray, own_se: np.ndarray, *, dims: str):
    """Partially pooled slopes ``{prefix}_slope[g] ~ Normal(mu, sigma)``, written so NUTS does not diverge.

    Written as it reads (centred), the posterior has the shape of Neal's funnel: where ``sigma`` is
    small the slopes of groups with little data squeeze into a narrow neck around ``mu``, and no step
    size suits both the neck and the mouth. Non-centring (``slope = mu + sigma * z``, ``z ~ N(0, 1)``)
    removes that neck but makes one for groups with plenty of data, whose slope the data fix: their
    ``z`` must then move in lockstep with ``sigma`` (on the channel data, fully non-centred slopes
    diverged at large spreads, centred ones at small spreads). So each slope is standardised around
    where the data and the population together put it, given ``mu`` and ``sigma`` (the normal
    approximation of partial pooling, with ``own_slope``, ``own_se`` from
    :func:`least_squares_slopes`)::

        w      = sigma**2 / (sigma**2 + own_se**2)        # 1: its own data decide, 0: the population does
        centre = mu + w * (own_slope - mu)
        scale  = sigma * sqrt(1 - w)
        z      ~ Normal((mu - centre) / scale, sigma / scale)     # the sampler's {prefix}_slope_z
        slope  = centre + scale * z                               # the deterministic {prefix}_slope

    The model is unchanged (``slope ~ Normal(mu, sigma)`` exactly, for any ``own_slope``, ``own_se``):
    little data (``w -> 0``) is the non-centred form, plenty (``w -> 1``) the centred one, and each
    group moves between the two with ``sigma``. ``z`` is then roughly standard normal a posteriori,
    whatever ``mu`` and ``sigma`` are: no funnel for NUTS to fall into. (One neck remains that no
    coordinates for the slopes remove: as ``sigma -> 0`` it squeezes ``mu`` too; the prior on
    ``sigma`` keeps the posterior out of it, see :data:`POOLED_SLOPE_SHAPE`.)
    """
    import pymc as pm

    w = sigma**2 / (sigma**2 + np.asarray(own_se) ** 2)
    centre = mu + w * (np.asarray(own_slope) - mu)
    scale = sigma * pm.math.sqrt(1 - w)
    z = pm.Normal(f"{prefix}_slope_z", (mu - centre) / scale, sigma / scale, dims=dims)
    return pm.Deterministic(f"{prefix}_slope", centre + scale * z, dims=dims)


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
