"""Pictures of the Bayesian model (notebooks 02 and 06): negative binomial against Poisson, prior and
posterior predictive bands, many plausible regression lines, recovered parameters, the channels'
pooled slopes and their carryover.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers.carryover import PRIOR as CARRYOVER_PRIOR

from helpers.plots.style import COURSE_PALETTE, POSTERIOR_COLOR, POINT_COLOR, POISSON_COLOR, _hdi_band, _short


def plot_nb_vs_poisson(mu: float, alpha: float, n: int = 20_000, seed: int = 0) -> plt.Figure:
    """Why counts need the negative binomial: the same mean, very different spreads.

    Left: histograms of Poisson(mu) and NegativeBinomial(mu, alpha) draws. Right: standard
    deviation against the mean for both (log-log): Poisson's sd is sqrt(mu); the NB's
    sqrt(mu + mu^2/alpha) grows like mu / sqrt(alpha), i.e. a constant relative noise.
    """
    from helpers.data import nb_sample

    rng = np.random.default_rng(seed)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    nb = nb_sample(rng, np.full(n, mu), alpha)
    po = rng.poisson(mu, n)
    bins = np.linspace(min(nb.min(), po.min()), max(nb.max(), po.max()), 80)
    ax1.hist(nb, bins=bins, color=POSTERIOR_COLOR, alpha=0.7, label=f"NegativeBinomial(mu, alpha={alpha:g})")
    ax1.hist(po, bins=bins, color=POISSON_COLOR, alpha=0.8, label="Poisson(mu)")
    ax1.set_xlabel(f"daily count (mean mu = {mu:,.0f})")
    ax1.set_ylabel("draws")
    ax1.legend(loc="upper right", fontsize=9)
    ax1.set_title("Same mean, different spread")
    grid = np.logspace(0, 7, 100)
    ax2.loglog(grid, np.sqrt(grid), color=POISSON_COLOR, lw=2, label="Poisson: sd = sqrt(mu)")
    ax2.loglog(grid, np.sqrt(grid + grid**2 / alpha), color=POSTERIOR_COLOR, lw=2, label="NB: sd = sqrt(mu + mu^2/alpha)")
    ax2.axvline(mu, color="grey", ls=":", lw=1)
    ax2.set_xlabel("mean mu")
    ax2.set_ylabel("standard deviation")
    ax2.set_title("Big counts: the NB's noise is a share of the mean")
    ax2.legend(fontsize=9)
    fig.tight_layout()
    return fig


def plot_prior_predictive(prior: dict[str, np.ndarray], observed: dict[str, np.ndarray]) -> plt.Figure:
    """Prior predictive vs data: one panel per count, histograms of log10(count).

    ``prior[name]`` has any shape (all draws are pooled); ``observed[name]`` is the data.
    Weakly informative priors should cover the data comfortably while keeping absurd values
    (a billion impressions a day) rare.
    """
    names = list(observed)
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6))
    for ax, name in zip(np.atleast_1d(axes), names):
        x = np.log10(np.asarray(prior[name], dtype=float).ravel() + 1)
        ax.hist(x, bins=80, color=POSTERIOR_COLOR, alpha=0.6, density=True, label="prior predictive")
        obs = np.log10(np.asarray(observed[name], dtype=float) + 1)
        ax.axvspan(obs.min(), obs.max(), color=POINT_COLOR, alpha=0.25, label="observed range")
        ax.set_xlabel(f"log10({name} per day + 1)")
        ax.set_yticks([])
        ax.set_title(f"{name}: prior predictive")
        ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def plot_regression_lines(
    x: np.ndarray,
    y: np.ndarray,
    holiday: np.ndarray,
    point: tuple[float, float],
    lines: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    xlabel: str,
    ylabel: str,
    n_lines: int = 100,
    seed: int = 0,
) -> plt.Figure:
    """Regression as one line vs Bayesian regression as many lines (log-log axes).

    ``point = (intercept, slope)`` is the point estimate (red); ``lines = (intercepts, slopes)``
    are posterior draws (shape ``(n_draws,)``), of which ``n_lines`` are drawn in blue. The
    line is ``log y = intercept + slope * log x`` on ordinary days. With ``lines``, a right
    panel shows each posterior line relative to the point line (in %), where the spread --
    invisible at data scale -- shows: tight where the data are dense, fanning out at the ends.
    """
    grid = np.exp(np.linspace(np.log(x.min()), np.log(x.max()), 60))
    ncols = 1 if lines is None else 2
    fig, axes = plt.subplots(1, ncols, figsize=(6.5 * ncols, 4.2), squeeze=False)
    ax = axes[0, 0]
    hol = np.asarray(holiday) == 1
    ax.scatter(x[~hol], y[~hol], s=6, color="grey", alpha=0.5, label="ordinary day")
    ax.scatter(x[hol], y[hol], s=12, color=COURSE_PALETTE[1], alpha=0.8, label="public holiday")
    base = point[0] + point[1] * np.log(grid)
    if lines is not None:
        rng = np.random.default_rng(seed)
        idx = rng.choice(len(lines[0]), size=min(n_lines, len(lines[0])), replace=False)
        curves = lines[0][idx, None] + lines[1][idx, None] * np.log(grid)[None, :]
        ax.plot(grid, np.exp(curves.T), color=POSTERIOR_COLOR, alpha=0.08, lw=1)
        ax.plot([], [], color=POSTERIOR_COLOR, label=f"{len(idx)} posterior lines")
        ax2 = axes[0, 1]
        ax2.plot(grid, 100 * (np.exp(curves - base[None, :]).T - 1), color=POSTERIOR_COLOR, alpha=0.1, lw=1)
        ax2.axhline(0, color=POINT_COLOR, lw=2)
        ax2.set_xscale("log")
        ax2.set_xlabel(xlabel)
        ax2.set_ylabel("posterior line vs point line (%)")
        ax2.set_title("The uncertainty, magnified")
    ax.plot(grid, np.exp(base), color=POINT_COLOR, lw=2.5, label="point estimate (one line)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=9, loc="upper left")
    ax.set_title(f"{ylabel} vs {xlabel}")
    fig.tight_layout()
    return fig


def plot_ppc_band(dates, observed: np.ndarray, predictive: dict[str, np.ndarray], *, ylabel: str, prob: float = 0.94, days: int = 120) -> plt.Figure:
    """Posterior predictive check over time: each model's ``prob`` band vs the observed days.

    ``predictive`` maps a label to draws of shape ``(n_draws, n_days)``; the last ``days`` days
    are shown. Each legend entry gives the share of observed days inside the band: a
    well-calibrated model covers about ``prob`` of them.
    """
    dates = pd.DatetimeIndex(dates)[-days:]
    obs = np.asarray(observed)[-days:]
    fig, ax = plt.subplots(figsize=(11, 4))
    colors = [POSTERIOR_COLOR, POISSON_COLOR, COURSE_PALETTE[2]]
    for (label, draws), color in zip(predictive.items(), colors):
        lo, hi = _hdi_band(np.asarray(draws)[:, -days:], prob)
        cover = np.mean((obs >= lo) & (obs <= hi))
        ax.fill_between(dates, lo, hi, color=color, alpha=0.35, step="mid", label=f"{label}: {prob:.0%} band covers {cover:.0%} of days")
    ax.plot(dates, obs, "o", ms=3, color="black", label="observed")
    ax.set_ylabel(ylabel)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.legend(fontsize=9, loc="upper left")
    ax.set_title(f"Posterior predictive check: {ylabel}, last {days} days")
    fig.tight_layout()
    return fig


def plot_recovery(draws, truth: dict[str, float], prob: float = 0.94) -> plt.Figure:
    """One panel per parameter: posterior histogram, its ``prob`` HDI (bar) and the true value (red line).

    ``draws`` is a ``helpers.bayes.FunnelDraws``; ``truth`` maps parameter names to true values.
    """
    import arviz as az

    names = list(truth)
    ncols = 3
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(12, 2.6 * nrows))
    for ax, name in zip(axes.ravel(), names):
        x = getattr(draws, name)
        lo, hi = az.hdi(x, prob=prob)
        ax.hist(x, bins=40, color=POSTERIOR_COLOR, alpha=0.6)
        ax.hlines(0, lo, hi, color="black", lw=5, label=f"{prob:.0%} HDI")
        ax.axvline(truth[name], color=POINT_COLOR, lw=2, label="truth")
        ax.set_title(name, fontsize=10)
        ax.set_yticks([])
    for ax in axes.ravel()[len(names) :]:
        ax.set_visible(False)
    axes.ravel()[0].legend(fontsize=8)
    fig.suptitle("Recovering the ground truth of data/ground_truth.json", fontweight="bold")
    fig.tight_layout()
    return fig


def plot_campaign_ppc(ext: pd.DataFrame, predictive: np.ndarray, prob: float = 0.94) -> plt.Figure:
    """External data: per campaign, impressions vs spend with the posterior predictive band.

    ``ext`` holds the active rows (``campaign``, ``spend``, ``impressions``) in the order the
    model saw them; ``predictive`` has shape ``(n_draws, len(ext))``. Each title gives the
    share of days inside the ``prob`` band.
    """
    campaigns = list(pd.unique(ext["campaign"]))
    ncols = 4
    nrows = int(np.ceil(len(campaigns) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(14, 3.2 * nrows))
    lo, hi = _hdi_band(np.asarray(predictive), prob)
    for ax, name in zip(axes.ravel(), campaigns):
        m = (ext["campaign"] == name).to_numpy()
        order = np.argsort(ext["spend"].to_numpy()[m])
        s = ext["spend"].to_numpy()[m][order]
        y = ext["impressions"].to_numpy()[m][order]
        ax.fill_between(s, lo[m][order], hi[m][order], color=POSTERIOR_COLOR, alpha=0.35)
        ax.plot(s, y, "o", ms=3, color="black")
        cover = np.mean((y >= lo[m][order]) & (y <= hi[m][order]))
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):  # plain numbers, no crowded minor labels
            axis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}"))
            axis.set_minor_formatter(plt.NullFormatter())
        ax.tick_params(labelsize=8)
        ax.set_title(f"{name}\n{m.sum()} days, {cover:.0%} inside", fontsize=9)
    for ax in axes.ravel()[len(campaigns) :]:
        ax.set_visible(False)
    fig.supxlabel("spend per day (log)")
    fig.supylabel("impressions per day (log)")
    fig.tight_layout()
    return fig


def plot_channel_slopes(channels, days, unpooled: np.ndarray, pooled: np.ndarray, population: np.ndarray | None = None,
                        prob: float = 0.94, title: str = "Clicks slope per channel: alone vs partially pooled") -> plt.Figure:
    """What partial pooling does: per channel, the slope estimated from its own days alone
    (``unpooled``, ``(K,)``: least squares) and the pooled posterior (``pooled``, ``(n_draws, K)``:
    mean and ``prob`` interval); ``population`` ``(n_draws,)``: the pooled mean's posterior
    (band). Channels are labelled with their number of ``days``."""
    K = len(channels)
    fig, ax = plt.subplots(figsize=(9, 0.55 * K + 1.4))
    y = np.arange(K)[::-1]
    if population is not None:
        lo, hi = np.quantile(population, [(1 - prob) / 2, (1 + prob) / 2])
        ax.axvspan(lo, hi, color="0.85", lw=0, label=f"population mean ({prob:.0%} interval)", gid="population")
    lo, hi = np.quantile(pooled, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    ax.hlines(y, lo, hi, color=COURSE_PALETTE[0], lw=3, label=f"partially pooled ({prob:.0%} interval)", gid="pooled_interval")
    ax.plot(pooled.mean(axis=0), y, "o", color=COURSE_PALETTE[0], gid="pooled_mean")
    ax.plot(unpooled, y, "x", color=COURSE_PALETTE[3], ms=9, mew=2, label="its own days alone (least squares)", gid="unpooled")
    for yi, u, m in zip(y, unpooled, pooled.mean(axis=0)):
        ax.annotate("", xy=(m, yi), xytext=(u, yi), arrowprops={"arrowstyle": "->", "color": "0.4", "lw": 0.8})
    ax.set_yticks(y, [f"{_short(c)} ({d} days)" for c, d in zip(channels, days)])
    ax.set_xlabel("clicks slope (elasticity of clicks to impressions)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def plot_adstock_posterior(channels, theta: np.ndarray, prior: tuple[float, float] = CARRYOVER_PRIOR, what_if: float | None = None,
                           prob: float = 0.94) -> plt.Figure:
    """The carryover share ``theta`` per channel (``(n_draws, K)``): posterior mean and ``prob``
    interval against the Beta ``prior``'s interval, and the what-if value used later."""
    from scipy import stats

    K = len(channels)
    fig, ax = plt.subplots(figsize=(9, 0.5 * K + 1.4))
    y = np.arange(K)[::-1]
    plo, phi = stats.beta(*prior).ppf([(1 - prob) / 2, (1 + prob) / 2])
    ax.axvspan(plo, phi, color="0.9", lw=0, label=f"prior Beta{prior} ({prob:.0%} interval)", gid="prior")
    lo, hi = np.quantile(theta, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    ax.hlines(y, lo, hi, color=COURSE_PALETTE[0], lw=3, label=f"posterior ({prob:.0%} interval)", gid="posterior_interval")
    ax.plot(theta.mean(axis=0), y, "o", color=COURSE_PALETTE[0], gid="posterior_mean")
    if what_if is not None:
        ax.axvline(what_if, color=COURSE_PALETTE[3], ls="--", lw=1.5, label=f"the what-if scenario (theta = {what_if:g})", gid="what_if")
    ax.set_yticks(y, [_short(c) for c in channels])
    ax.set_xlim(0, 1)
    ax.set_xlabel("adstock theta: share of a day's effect carried to the next day")
    ax.set_title("Carryover: what the data say")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
