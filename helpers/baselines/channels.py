"""The open-loop optimum over days x channels, with saturation caps and carryover (notebook 06).

:func:`optimal_channel_allocation` is what a marketing-mix optimiser computes, per (day, channel),
subject to the budget, the active days and the caps, and with carryover (one adstock shared by
the draws: a what-if) its dynamics too; :func:`expected_channel_clicks` values any plan;
``_waterfill_power`` plans a batch of months each with ONE draw (the oracle's). The comment below
explains the solvers and their stopping rule (the KKT conditions). The caps and the adstock are
:mod:`helpers.carryover`'s.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special

from helpers import carryover
from helpers.baselines.optimum import _shares_of_remaining, response_terms
from helpers.bayes import ChannelDraws
from helpers.env import EnvConfig, logits_for_split

#
# The expected daily clicks of channel c, for one draw, are k_c * x ** e_c (response_terms),
# where x is the channel's effective spend: its daily spends, each capped at cap_c (money above
# the cap buys nothing), adstocked (x = the weighted sum of today's and earlier days' capped
# spends; without carryover x is today's spend). Over the posterior: G_c(x) = mean_j k_jc x ** e_jc.
# Days differ only by which channels are active (the channel model has no holiday or weekend
# terms) and, with carryover, by the adstock: a day's spend also lifts the next days' x (the last
# days of a month waste part of theirs) and a month starts from the history's spend.
#
# The plan maximises the month's sum of G over (active day, channel) subject to the budget and
# 0 <= spend <= cap. Without carryover every active day of a channel is alike, so the plan has one
# variable per channel (the water-filling of a marketing-mix optimiser), solved with SLSQP. With
# carryover it has one per (active day, channel): mirror ascent (exponentiated gradient) on the
# capped budget simplex, from the plan without carryover. Both stop at the KKT conditions: every
# spend strictly between 0 and its cap earns the same marginal clicks per unit of spend.

#: Mirror ascent: at most this many iterations, step ``MIRROR_STEP``; it stops once the
#: budget-weighted relative gap between each spend's marginal clicks and the budget's price is
#: below ``MIRROR_TOL`` (and no spend's marginal exceeds the price by 100x that). Measured on the
#: channel data with adstock 0.5: the gap falls ~10x every 500 iterations (~0.15 s) at step 2;
#: step 8 diverges, 0.5 is 4x slower.
MIRROR_ITERATIONS = 5000
MIRROR_STEP = 2.0
MIRROR_TOL = 1e-8
_GRID_POINTS = 4000


class _ChannelResponse:
    """``G_c(x)`` and ``G_c'(x)`` for arrays ``x`` of shape ``(b, T, K)``.

    ``per_batch=True``: row ``i`` of the batch has its own single draw (exact power laws; the
    oracle). Otherwise every row uses the posterior mean over all draws, tabulated once on a log
    grid of x per channel (linear interpolation of log G in log x: G is a mixture of power laws,
    almost a straight line there, so the table is exact to ~1e-8).
    """

    def __init__(self, draws: ChannelDraws, per_batch: bool = False, x_max: float = 1e5):
        log_k, e, _, _ = response_terms(draws)  # (J, K) each
        self.per_batch = per_batch
        if per_batch:
            self.log_k, self.e = log_k, e  # (b, K): one draw per row
            return
        K = log_k.shape[1]
        self.grid = np.linspace(math.log(1e-6), math.log(4.0 * x_max), _GRID_POINTS)
        log_g = np.empty((_GRID_POINTS, K))
        for c in range(K):  # the mean over draws, once: (grid, J) per channel
            log_g[:, c] = special.logsumexp(log_k[None, :, c] + e[None, :, c] * self.grid[:, None], axis=1) - math.log(len(e))
        self.log_g, self.dlog_g = log_g, np.gradient(log_g, self.grid, axis=0)

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.maximum(x, 1e-6)
        lx = np.log(x)
        if self.per_batch:
            v = np.exp(self.log_k[:, None, :] + self.e[:, None, :] * lx)
            return v, v * self.e[:, None, :] / x
        v, el = np.empty_like(x), np.empty_like(x)
        for c in range(x.shape[-1]):
            v[..., c] = np.exp(np.interp(lx[..., c], self.grid, self.log_g[:, c]))
            el[..., c] = np.interp(lx[..., c], self.grid, self.dlog_g[:, c])
        return v, v * el / x


class _ChannelMonth:
    """One month (or a batch of them) of the channel allocation problem, on arrays ``(b, T, K)``.

    ``count``: weight of each entry (1 = a day on which the channel may spend, 0 = may not; with
    pooled days, how many days the entry stands for); ``cap``: ``(K,)`` upper bound of a day's
    spend (None: none); ``budget``: ``(b,)``; ``weights``: the adstock weights ``(K, LAGS)`` (None:
    no carryover) and ``carry``: the effective spend carried into each day from before the month.
    """

    def __init__(self, count, budget, cap=None, weights=None, carry=None):
        self.count = np.asarray(count, dtype=np.float64)
        self.budget = np.atleast_1d(np.asarray(budget, dtype=np.float64))
        b, T, K = self.count.shape
        self.cap = np.full(K, np.inf) if cap is None else np.asarray(cap, dtype=np.float64)
        with np.errstate(invalid="ignore"):  # 0 days x an infinite cap
            capacity = np.where(self.count > 0, self.count * self.cap, 0.0).sum(axis=(1, 2))
        if np.any(capacity < self.budget * (1 - 1e-12)):
            raise ValueError("the budget does not fit under the channels' caps on the active days (raise cap_multiple)")
        self.W = None
        if weights is not None:  # W[c, t, u] = weight of day u's spend in day t's effective spend
            lag = np.arange(T)[:, None] - np.arange(T)[None, :]
            L = weights.shape[1]
            self.W = np.where((lag >= 0) & (lag < L), weights[:, np.clip(lag, 0, L - 1)], 0.0)  # (K, T, T)
        self.carry = np.zeros((b, T, K)) if carry is None else np.asarray(carry, dtype=np.float64)

    def effective(self, s):
        """``x`` of spends ``s`` ``(b, T, K)`` (already within their caps)."""
        return (s if self.W is None else np.einsum("ctu,buc->btc", self.W, s)) + self.carry

    def value_and_marginal(self, s, response):
        """Expected clicks per row ``(b,)`` and the marginal clicks per unit of spend ``(b, T, K)``."""
        v, dv = response(self.effective(s))
        dx = self.count * dv
        if self.W is not None:  # chain rule through the adstock: d value / d s[u] = sum_t W[t, u] dx[t]
            dx = np.einsum("ctu,btc->buc", self.W, dx)
        return (self.count * v).sum(axis=(1, 2)), dx / np.where(self.count > 0, self.count, 1.0)

    def project(self, s):
        """Spends within ``[0, cap]`` that add up to the budget (``count``-weighted), by rescaling the uncapped ones."""
        s = np.where(self.count > 0, np.minimum(s, self.cap), 0.0)
        for _ in range(100):
            deficit = self.budget - (self.count * s).sum(axis=(1, 2))
            if np.all(np.abs(deficit) <= 1e-13 * self.budget):
                break
            free = (self.count > 0) & (s < self.cap)
            room = (self.count * s * free).sum(axis=(1, 2))
            factor = (room + deficit) / np.where(room > 0, room, 1.0)
            s = np.where(free, np.minimum(s * factor[:, None, None], self.cap), s)
        return s

    def kkt_gap(self, s, g):
        """Per row: the budget-weighted mean of ``|marginal / price - 1|`` over spends below their
        caps, and the largest ``marginal / price - 1`` of any such entry (both 0 at the optimum)."""
        below = (self.count > 0) & (s < self.cap * (1 - 1e-9))
        weight = self.count * s * below
        lam = (weight * g).sum(axis=(1, 2)) / np.maximum(weight.sum(axis=(1, 2)), 1e-300)  # the price, from the uncapped spends
        r = g / lam[:, None, None] - 1.0
        gap = (weight * np.abs(r)).sum(axis=(1, 2)) / self.budget
        return gap, np.where(below, r, -np.inf).max(axis=(1, 2))

    def mirror_ascent(self, response, start, iterations: int = MIRROR_ITERATIONS, tol: float = MIRROR_TOL):
        """Exponentiated gradient from ``start``: every spend is multiplied by
        ``exp(MIRROR_STEP * (marginal / price - 1))`` (``price`` = the budget-weighted mean
        marginal), then projected back onto the caps and the budget. Returns the spends ``(b, T, K)``."""
        s = self.project(np.where(self.count > 0, np.maximum(start, 1e-12), 0.0))
        for it in range(iterations):
            _, g = self.value_and_marginal(s, response)
            if it % 25 == 0:
                gap, above = self.kkt_gap(s, g)
                if np.all((gap < tol) & (above < 100 * tol)):
                    break
            lam = (self.count * s * g).sum(axis=(1, 2)) / self.budget
            s = self.project(s * np.exp(np.clip(MIRROR_STEP * (g / lam[:, None, None] - 1.0), -5.0, 5.0)))
        return s

    def slsqp(self, response):
        """The pooled problem of ONE row (few variables) by SLSQP, in units of the even spend."""
        (i,) = np.nonzero(self.count[0, 0] > 0)
        c = self.count[0, 0, i]
        unit = self.budget[0] / c.sum()  # the even spend: z = 1 everywhere meets the budget
        scale = self.value_and_marginal(self.project(np.where(self.count > 0, unit, 0.0)), response)[0][0]

        def negative(z):
            s = np.zeros(self.count.shape)
            s[0, 0, i] = z * unit
            v, g = self.value_and_marginal(s, response)
            return -v[0] / scale, -g[0, 0, i] * c * unit / scale

        res = optimize.minimize(negative, np.ones(len(i)), jac=True, method="SLSQP",
                                bounds=[(0.0, b / unit) for b in np.broadcast_to(self.cap, self.count.shape[2:])[i]],
                                constraints=[{"type": "eq", "fun": lambda z: c @ z / c.sum() - 1.0, "jac": lambda z: c / c.sum()}],
                                options={"ftol": 1e-14, "maxiter": 1000})
        if not res.success:
            raise RuntimeError(f"the channel allocation did not converge ({res.message})")
        s = np.zeros(self.count.shape)
        s[0, 0, i] = np.maximum(res.x, 0.0) * unit
        return self.project(s)


def _common_adstock(draws: ChannelDraws) -> np.ndarray | None:
    """The channels' adstock ``(K,)`` if every draw has the same (None if all are 0); else an error."""
    theta = draws.adstock
    if np.all(theta == 0):
        return None
    if np.any(np.ptp(theta, axis=0) > 0):
        raise ValueError("the open-loop plan with carryover needs one adstock per channel shared by every draw "
                         "(e.g. draws.replace(adstock=0.5)); these draws differ")
    return theta[0]


def channel_response(draws: ChannelDraws, config: EnvConfig) -> "_ChannelResponse":
    """The posterior-mean response of every channel (tabulated once; pass it to the functions below)."""
    hist = config.channels
    return _ChannelResponse(draws, x_max=float(np.max(hist.max_daily_spend)) * (config.cap_multiple or 100.0))


def _channel_month(draws: ChannelDraws, config: EnvConfig, month: str, *, pooled: bool):
    """``(problem, active (T, K), prior (K,))`` of one month (``pooled``: one entry per channel,
    weighted by its active days; only without carryover)."""
    cfg = config.resolved()
    hist = cfg.channels
    if hist is None:
        raise ValueError("the channel plans need a config with channels (helpers.env.channel_config)")
    h = int(hist.month_index([month])[0])
    n = int(hist.n_days[h])
    active = hist.active[h, :n].astype(np.float64)  # (T, K)
    budget = float(hist.budget[h] if cfg.budget is None else cfg.budget)
    cap = carryover.saturation_cap(hist.max_daily_spend, cfg.cap_multiple)
    theta = _common_adstock(draws)
    if theta is None:
        count = active.sum(axis=0)[None, None, :] if pooled else active[None]
        return _ChannelMonth(count, budget, cap), active, hist.prior_spend[h]
    if pooled:
        raise ValueError("with carryover the days of a month are not interchangeable: pooled=False")
    w = carryover.adstock_weights(theta)  # (K, LAGS)
    # What the days before the month add to each day's effective spend: the effective spend of the
    # history (carry_in[j] is the spend j + 1 days before the month) followed by a month of zeros.
    before_then_zeros = np.concatenate([hist.carry_in[h][::-1], np.zeros((n, len(theta)))])
    carry = carryover.effective_spend(before_then_zeros, theta)[-n:]  # (n, K)
    return _ChannelMonth(active[None], budget, cap, weights=w, carry=carry[None]), active, hist.prior_spend[h]


def optimal_channel_allocation(draws: ChannelDraws, config: EnvConfig, month: str, response: "_ChannelResponse | None" = None) -> np.ndarray:
    """The open-loop plan of one month over days x channels: ``(n_days, K)`` daily spends.

    Maximises the month's expected clicks under the posterior (the mean over ``draws``) subject
    to the month's budget, spending only on active days, at most each channel's cap a day and,
    if the draws have carryover (the same adstock in every draw), with its dynamics: the plan
    accounts for what today's spend adds to the next days and for the history the month starts
    from. Without carryover every active day of a channel gets the same spend. ``response``:
    :func:`channel_response` of these draws, to reuse across months.
    """
    response = response or channel_response(draws, config.resolved())
    pooled, active, _ = _channel_month(draws, config, month, pooled=_common_adstock(draws) is None)
    if _common_adstock(draws) is None:
        return active * pooled.slsqp(response)[0, 0]
    start = optimal_channel_allocation(draws.replace(adstock=0.0), config, month, response)  # the plan without carryover
    return pooled.mirror_ascent(response, start[None])[0]


def expected_channel_clicks(plan: np.ndarray, draws: ChannelDraws, config: EnvConfig, month: str, response: "_ChannelResponse | None" = None) -> float:
    """Expected clicks of a month's plan ``(n_days, K)`` under the posterior (caps and carryover included)."""
    cfg = config.resolved()
    response = response or channel_response(draws, cfg)
    problem, _, _ = _channel_month(draws, cfg, month, pooled=False)
    value, _ = problem.value_and_marginal(np.minimum(np.asarray(plan, dtype=np.float64)[None], problem.cap), response)
    return float(value[0])


def _waterfill_power(log_k: np.ndarray, e: np.ndarray, count: np.ndarray, budget: np.ndarray, cap: np.ndarray | None) -> np.ndarray:
    """The pooled allocation of a batch of months, each with ONE draw: ``(b, K)`` daily spends.

    For a price ``lam`` of the budget, channel c's best daily spend maximises ``k s**e - lam s``
    on ``[0, cap]``: ``(lam / (e k)) ** (1 / (e - 1))`` capped when ``e < 1`` (decreasing returns),
    ``cap`` or 0 when ``e >= 1`` (then ``k cap**e >= lam cap`` decides). Bisection on ``log lam``
    until the spends meet the budget (all rows at once), then the uncapped spends are scaled by
    the last sliver so that the budget is met exactly.
    """
    cap = np.full(e.shape[1], np.inf) if cap is None else cap
    on = count > 0
    k = np.exp(log_k)

    def spends(log_lam):
        lam = np.exp(log_lam)[:, None]
        with np.errstate(over="ignore", divide="ignore"):
            interior = np.exp((log_lam[:, None] - np.log(np.maximum(e, 1e-300)) - log_k) / np.where(e < 1, e - 1.0, -1.0))
        worth = k * np.minimum(cap, 1e300) ** (e - 1) >= lam  # for e >= 1: the whole cap or nothing
        s = np.where(e < 1, np.minimum(interior, cap), np.where(worth, cap, 0.0))
        s = np.where(e > 0, s, 0.0)  # a draw in which spend does not help
        return np.where(on, s, 0.0)

    lo = np.full(len(budget), -60.0)  # log price: low = spend a lot, high = spend little
    hi = np.full(len(budget), 60.0)
    for _ in range(200):
        mid = (lo + hi) / 2
        over = (count * spends(mid)).sum(axis=1) > budget
        lo, hi = np.where(over, mid, lo), np.where(over, hi, mid)
    s = np.where(on, spends(hi), 0.0)  # within the budget
    problem = _ChannelMonth(count[:, None, :], budget, None if np.all(np.isinf(cap)) else cap)
    # A channel not worth any money keeps a zero share (carried out as the split logit that switches
    # it off), unless nothing else can take the rest of the budget: then every active channel gets
    # a sliver to scale up.
    stuck = ~((s > 0) & (s < cap)).any(axis=1, keepdims=True)
    s = np.where(stuck & on, np.maximum(s, 1e-12), s)
    return problem.project(s[:, None, :])[:, 0]


def _channel_plan_actions(plans: np.ndarray, prior: np.ndarray, active: np.ndarray, config: EnvConfig) -> tuple[np.ndarray, np.ndarray]:
    """Daily plans ``(b, MAX_DAYS + 2, K)`` (0 past the month) -> the share of the remaining budget
    each day spends ``(b, MAX_DAYS + 2)`` and the split logits ``(b, MAX_DAYS + 2, K)``."""
    totals = plans.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        split = np.where(totals[..., None] > 0, plans / totals[..., None], 0.0)
    b, D, K = plans.shape
    logits = logits_for_split(split.reshape(b * D, K), np.repeat(prior, D, axis=0), active.reshape(b * D, K),
                              config.max_multiplier).reshape(b, D, K)
    return _shares_of_remaining(totals), logits
