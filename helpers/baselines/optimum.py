"""The yardstick: the open-loop optimum of one month's daily spends under the posterior (notebook 03).

:func:`optimal_allocation` maximises the expected total clicks (or acquisitions) of a month over
the posterior, ``sum_d mean_j E[clicks_d | spend_d, draw j]``, subject to ``sum_d spend_d =
budget``, with scipy's SLSQP over the daily shares. The expected daily clicks of a draw are
``k * spend**e * day_boost_d`` (:func:`response_terms`; ``e`` the elasticity, ``day_boost_d`` =
:meth:`helpers.bayes.FunnelDraws.day_boost`, ``k`` includes the exact gamma-mixture factor
``E[G**clk_slope]``), so for a single parameter point the optimum has a closed form: spend
proportional to ``day_boost_d ** (1 / (1 - e))`` (:func:`closed_form_allocation`; tests check
SLSQP against it to 0.1%). Holidays and weekends are the only things that make one day different
from another, and they are the whole of the optimum's advantage over even pacing. It is the
yardstick, not a ceiling: it plans once for the whole posterior (the ceiling is the oracle).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special

from helpers.bayes import ChannelDraws, FunnelDraws

OBJECTIVES = ("clicks", "acquisitions")


def response_terms(draws: FunnelDraws | ChannelDraws, objective: str = "clicks") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(log_k, e, log_hboost, log_wboost)``, each ``(n_draws,)``: the expected daily count is
    ``k * spend**e * exp(log_hboost * holiday + log_wboost * weekend)``. For ``ChannelDraws``
    each is ``(n_draws, K)``, per channel, with no holiday or weekend terms (zeros) and clicks only.

    ``E[clicks] = exp(clk_intercept + clk_holiday*h + clk_weekend*w) * E[impressions**clk_slope]`` and, with
    impressions ~ Poisson(mu_imp * G), G ~ Gamma(imp_alpha) / imp_alpha, the moment is
    ``mu_imp**clk_slope * E[G**clk_slope]`` up to O(1/mu_imp) (mu_imp is ~10^5 here), where
    ``E[G**b] = Gamma(alpha + b) / (Gamma(alpha) * alpha**b)``. Acquisitions add ``acq_rate``
    (the cap of clicks at impressions is ignored: it never binds at these volumes).
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    if isinstance(draws, ChannelDraws) and objective != "clicks":
        raise ValueError("the channel data have clicks only: objective must be 'clicks'")
    a, b = draws.imp_alpha, draws.clk_slope
    log_gamma_moment = special.gammaln(a + b) - special.gammaln(a) - b * np.log(a)
    log_k = draws.clk_intercept + draws.clk_slope * draws.imp_intercept + log_gamma_moment
    if objective == "acquisitions":
        log_k = log_k + np.log(draws.acq_rate)
    if isinstance(draws, ChannelDraws):
        zeros = np.zeros_like(log_k)
        return log_k, draws.elasticity, zeros, zeros
    return log_k, draws.elasticity, np.log(draws.holiday_boost), draws.clk_weekend


def _day_flags(holiday, weekend) -> tuple[np.ndarray, np.ndarray]:
    """Both 0/1 flag arrays of a month as float64, checked to have the same shape."""
    h = np.asarray(holiday, dtype=np.float64)
    w = np.asarray(weekend, dtype=np.float64)
    if h.shape != w.shape:
        raise ValueError(f"holiday and weekend flags must have the same shape, got {h.shape} and {w.shape}")
    return h, w


def expected_daily(spend, holiday, weekend, draws: FunnelDraws, objective: str = "clicks") -> np.ndarray:
    """Expected clicks (or acquisitions) of each day, averaged over the draws.

    Args:
        spend: ``(..., n_days)`` daily spend (0 allowed).
        holiday, weekend: ``(n_days,)`` 0/1 flags.
    Returns:
        ``(..., n_days)``.
    """
    log_k, e, log_hb, log_wb = response_terms(draws, objective)
    h, w = _day_flags(holiday, weekend)
    s = np.asarray(spend, dtype=np.float64)[..., None, :]  # (..., 1, n_days)
    with np.errstate(divide="ignore"):
        log_s = np.log(s)
    per_draw = np.exp(log_k[:, None] + e[:, None] * log_s + log_hb[:, None] * h + log_wb[:, None] * w)  # (..., J, n_days)
    return per_draw.mean(axis=-2)


def closed_form_allocation(holiday, weekend, budget: float, point: FunnelDraws) -> np.ndarray:
    """The optimum for ONE parameter point: spend proportional to ``day_boost ** (1 / (1 - e))``.

    ``day_boost`` is :meth:`helpers.bayes.FunnelDraws.day_boost` (holiday and weekend).
    (Equal marginal clicks per unit of spend on every day: ``e k s**(e-1) day_boost = lambda``.)
    """
    if point.n_draws != 1:
        raise ValueError(f"closed_form_allocation needs a single parameter point, got {point.n_draws} draws (use .mean())")
    h, w = _day_flags(holiday, weekend)
    e = float(point.elasticity[0])
    if not 0 < e < 1:
        raise ValueError(f"the closed form needs an elasticity in (0, 1), got {e}")
    weights = point.day_boost(h, w)[0] ** (1.0 / (1.0 - e))
    return budget * weights / weights.sum()


def optimal_allocation(holiday, weekend, budget: float, draws: FunnelDraws, objective: str = "clicks", pool_equal_days: bool = True) -> np.ndarray:
    """Daily spends of one month maximising expected total clicks/acquisitions over the posterior.

    maximise ``mean_j sum_d k_j spend_d**e_j day_boost_jd`` subject to
    ``sum_d spend_d = budget``, solved with SLSQP over daily *shares* of the budget (each in
    [1e-12, 1]) from even pacing, with the analytic gradient, the objective scaled to 1 at
    even pacing. It is concave (every ``e_j < 1``), so the optimum is unique, and days with
    the same (holiday, weekend) flags are interchangeable, so they get the same spend: with
    ``pool_equal_days`` (default) SLSQP solves for one share per kind of day (at most four:
    ordinary weekday, weekend, holiday, holiday on a weekend) weighted by how many there are,
    which is exact and ~100x faster than one variable per day (``pool_equal_days=False``;
    tests check both agree).

    Args:
        holiday: ``(n_days,)`` 0/1 holiday flags of the month.
        weekend: ``(n_days,)`` 0/1 weekend (Saturday/Sunday) flags of the month.
        budget: the monthly budget.
        draws: posterior draws (the expectation is their average) or a single point.
        objective: ``"clicks"`` or ``"acquisitions"``.
    Returns:
        ``(n_days,)`` daily spends summing to ``budget``.
    """
    h, w = _day_flags(holiday, weekend)
    n = len(h)
    if n == 0 or not budget > 0:
        raise ValueError(f"need at least one day and a positive budget, got {n} days and {budget}")
    log_k, e, log_hb, log_wb = response_terms(draws, objective)
    if np.any(e >= 1) or np.any(e <= 0):
        raise ValueError("optimal_allocation assumes diminishing returns: every elasticity must be in (0, 1)")
    if pool_equal_days:
        _, first, day_kind, count = np.unique(2 * h + w, return_index=True, return_inverse=True, return_counts=True)
        kh, kw = h[first], w[first]
    else:
        kh, kw, day_kind, count = h, w, np.arange(n), np.ones(n)
    count = count.astype(np.float64)
    J = len(e)
    # value(x) = mean_j sum_g count_g * A_jg * x_g**e_j, x_g = share of the budget per day of kind g
    A = np.exp((log_k + e * math.log(budget))[:, None] + log_hb[:, None] * kh[None, :] + log_wb[:, None] * kw[None, :])  # (J, G)
    E = e[:, None]
    x0 = np.full(len(kh), 1.0 / n)
    scale = float((count * A * x0**E).sum()) / J

    def negative_value(x):
        xe = x[None, :] ** E  # (J, G)
        value = (count * A * xe).sum() / (J * scale)
        grad = count * (A * E * xe).sum(axis=0) / (J * scale * x)
        return -value, -grad

    res = optimize.minimize(
        negative_value,
        x0,
        jac=True,
        method="SLSQP",
        bounds=[(1e-12, 1.0)] * len(kh),
        constraints=[{"type": "eq", "fun": lambda x: count @ x - 1.0, "jac": lambda x: count}],
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    if not res.success:
        raise RuntimeError(f"optimal_allocation: SLSQP did not converge ({res.message})")
    spend = np.maximum(res.x, 0.0)[day_kind]
    return budget * spend / spend.sum()


def _shares_of_remaining(weights: np.ndarray) -> np.ndarray:
    """``(k, _PAD)`` daily weights (0 beyond the month) -> share of the remaining budget per day."""
    remaining = np.cumsum(weights[:, ::-1], axis=1)[:, ::-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(remaining > 0, weights / remaining, 0.0)
