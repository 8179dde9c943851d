"""Plotting helpers shared by the notebooks (matplotlib + seaborn).

Sections follow the notebooks. Functions return the matplotlib ``Figure`` (or ``Axes``)
they drew on, so tests can inspect what was drawn.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

COURSE_PALETTE = sns.color_palette("colorblind")


def set_style() -> None:
    """One look for every notebook."""
    sns.set_theme(context="notebook", style="whitegrid", palette=COURSE_PALETTE)
    plt.rcParams.update({"figure.figsize": (9, 4), "figure.dpi": 100, "axes.titleweight": "bold"})


# --- 01: the data --------------------------------------------------------------------

HOLIDAY_COLOR = COURSE_PALETTE[1]  # orange: holidays in every plot of notebook 01
TREND_COLOR = COURSE_PALETTE[0]  # blue: daily values and rolling means


def funnel_rates(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` (from ``helpers.data.load_daily``) plus daily rates: ``cpc`` (spend per click),
    ``ctr`` (clicks per impression), ``cpm`` (spend per 1,000 impressions), ``cpa`` (spend per
    acquisition; NaN on a day without acquisitions) and ``month`` (a monthly Period)."""
    out = df.copy()
    out["cpc"] = out["spend"] / out["clicks"]
    out["ctr"] = out["clicks"] / out["impressions"]
    out["cpm"] = 1000 * out["spend"] / out["impressions"]
    out["cpa"] = out["spend"] / out["acquisitions"].where(out["acquisitions"] > 0)
    out["month"] = out["date"].dt.to_period("M")
    return out


def _mark_holidays(ax, df: pd.DataFrame, column: str, label: bool = True) -> None:
    hol = df[df["holiday"] == 1]
    ax.scatter(hol["date"], hol[column], s=22, color=HOLIDAY_COLOR, zorder=3, label="public holiday" if label else None)


def plot_funnel(df: pd.DataFrame) -> plt.Figure:
    """The funnel over the whole data set: total impressions -> clicks -> acquisitions (log
    scale), each bar labelled with its total and its conversion from the stage above."""
    totals = df[["impressions", "clicks", "acquisitions"]].sum()
    spend = df["spend"].sum()
    fig, ax = plt.subplots(figsize=(9, 3.2))
    stages = ["impressions", "clicks", "acquisitions"]
    ax.barh(stages[::-1], totals[stages[::-1]], color=[COURSE_PALETTE[2], COURSE_PALETTE[0], COURSE_PALETTE[4]])
    ax.set_xscale("log")
    notes = [
        f"{totals['impressions']:,.0f}  (cost per 1,000: {1000 * spend / totals['impressions']:.2f})",
        f"{totals['clicks']:,.0f}  (CTR {totals['clicks'] / totals['impressions']:.2%}, cost per click {spend / totals['clicks']:.2f})",
        f"{totals['acquisitions']:,.0f}  ({totals['acquisitions'] / totals['clicks']:.1%} of clicks, cost per acquisition {spend / totals['acquisitions']:.2f})",
    ]
    for stage, note in zip(stages, notes):
        ax.text(totals[stage] * 1.15, stage, note, va="center", fontsize=10)
    ax.set_xlim(totals["acquisitions"] / 3, totals["impressions"] * 400)
    ax.set_xlabel("total over the whole period (log scale)")
    ax.set_title(f"The funnel: {spend:,.0f} spent over {len(df)} days")
    ax.grid(axis="y", visible=False)
    fig.tight_layout()
    return fig


def plot_daily_spend(df: pd.DataFrame, window: int = 28) -> plt.Figure:
    """Daily spend with a ``window``-day rolling mean; public holidays marked."""
    fig, ax = plt.subplots(figsize=(11, 4))
    ax.plot(df["date"], df["spend"], lw=0.7, color=TREND_COLOR, alpha=0.55, label="daily spend")
    ax.plot(df["date"], df["spend"].rolling(window, center=True, min_periods=1).mean(), lw=2.2, color="black", label=f"{window}-day rolling mean")
    _mark_holidays(ax, df, "spend")
    ax.set_ylabel("spend per day")
    ax.set_title("Daily spend: a monthly budget paced by hand, extra on holidays")
    ax.legend(loc="upper left", ncols=3)
    ax.set_ylim(0, df["spend"].max() * 1.15)
    fig.tight_layout()
    return fig


def plot_impressions_clicks(df: pd.DataFrame, window: int = 28) -> plt.Figure:
    """Impressions and clicks per day (two panels sharing the date axis), rolling means, holidays."""
    fig, axes = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    for ax, column, color in zip(axes, ["impressions", "clicks"], [COURSE_PALETTE[2], TREND_COLOR]):
        ax.plot(df["date"], df[column], lw=0.7, color=color, alpha=0.55, label=f"daily {column}")
        ax.plot(df["date"], df[column].rolling(window, center=True, min_periods=1).mean(), lw=2.2, color="black", label=f"{window}-day rolling mean")
        _mark_holidays(ax, df, column)
        ax.set_ylabel(column)
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    axes[0].legend(loc="upper left", ncols=3)
    axes[0].set_title("Impressions and clicks follow spend, with day-to-day noise")
    fig.tight_layout()
    return fig


def plot_cpc(df: pd.DataFrame, window: int = 28) -> plt.Figure:
    """Cost per click over time: daily values, a rolling median, the overall CPC; holidays marked."""
    rates = funnel_rates(df)
    overall = df["spend"].sum() / df["clicks"].sum()
    fig, ax = plt.subplots(figsize=(11, 4))
    ax.plot(rates["date"], rates["cpc"], lw=0.7, color=TREND_COLOR, alpha=0.55, label="daily cost per click")
    ax.plot(rates["date"], rates["cpc"].rolling(window, center=True, min_periods=1).median(), lw=2.2, color="black", label=f"{window}-day rolling median")
    ax.axhline(overall, ls="--", color="grey", label=f"overall: {overall:.3f}")
    _mark_holidays(ax, rates, "cpc")
    ax.set_ylabel("cost per click (spend / clicks)")
    ax.set_title("Cost per click: noisy from day to day, cheaper on holidays")
    ax.legend(loc="upper left", ncols=4)
    fig.tight_layout()
    return fig


def loglog_slope(x, y) -> tuple[float, float]:
    """Least-squares line through ``(log x, log y)``: ``(slope, intercept)``."""
    slope, intercept = np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)
    return float(slope), float(intercept)


def _plain_log_ticks(*axes) -> None:
    """Log-scale ticks at 1, 2, 5 x 10^k labelled as plain numbers (2,000 rather than 2x10^3)."""
    for axis in axes:
        axis.set_major_locator(plt.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        axis.set_minor_formatter(plt.NullFormatter())


def plot_diminishing_returns(df: pd.DataFrame, n_bins: int = 8) -> plt.Figure:
    """Left: spend vs impressions on log-log axes with the fitted line (slope < 1 means
    diminishing returns) and a slope-1 reference. Right: cost per 1,000 impressions by spend
    bin (mean and 95% interval), rising with spend."""
    rates = funnel_rates(df)
    slope, intercept = loglog_slope(df["spend"], df["impressions"])
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    other, hol = rates[rates["holiday"] == 0], rates[rates["holiday"] == 1]
    sns.scatterplot(data=other, x="spend", y="impressions", color=TREND_COLOR, s=14, alpha=0.5, label="other day", ax=ax)
    sns.scatterplot(data=hol, x="spend", y="impressions", color=HOLIDAY_COLOR, s=30, edgecolor="black", label="public holiday", ax=ax)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_ticks(ax.xaxis, ax.yaxis)
    grid = np.geomspace(df["spend"].min(), df["spend"].max(), 50)
    ax.plot(grid, np.exp(intercept) * grid**slope, color="black", lw=2, label=f"fitted: slope {slope:.2f}")
    mid = np.exp(np.log(df["spend"]).mean())
    ax.plot(grid, np.exp(intercept) * mid**slope * (grid / mid), color="grey", ls="--", lw=1.5, label="slope 1: proportional")
    ax.legend(loc="upper left")
    ax.set_title("Spend vs impressions (log-log)")
    ax.set_xlabel("spend per day (log scale)")
    ax.set_ylabel("impressions (log scale)")
    rates["spend bin"] = pd.qcut(rates["spend"], n_bins)
    centres = rates.groupby("spend bin", observed=True)["spend"].median()
    binned = rates.groupby("spend bin", observed=True)["cpm"].agg(["mean", "sem"])
    ax2.errorbar(centres, binned["mean"], yerr=1.96 * binned["sem"], fmt="o-", color="black", capsize=3)
    ax2.set_title("Each extra unit of spend buys fewer impressions")
    ax2.set_xlabel(f"spend per day (median of each of {n_bins} equal-count bins)")
    ax2.set_ylabel("cost per 1,000 impressions")
    fig.tight_layout()
    return fig


def plot_holiday_comparison(df: pd.DataFrame, weekdays_only: bool = False) -> plt.Figure:
    """Holidays vs other days: spend relative to its month's mean (the marketers' rule of thumb),
    click-through rate, and cost per click. Boxes with the individual days on top.

    ``weekdays_only`` compares Monday-to-Friday holidays with ordinary weekdays, so that the
    weekend effect (holidays that fall on a weekend) does not mix into the comparison.
    """
    rates = funnel_rates(df)
    rates["spend / month mean"] = rates["spend"] / rates.groupby("month")["spend"].transform("mean")
    if weekdays_only:
        from helpers.data import weekend_flags

        rates = rates[weekend_flags(rates["date"]) == 0]
    rates["CTR (%)"] = 100 * rates["ctr"]
    rates["cost per click"] = rates["cpc"]
    rates["day"] = np.where(rates["holiday"] == 1, "public holiday", "other day")
    order, palette = ["other day", "public holiday"], {"other day": TREND_COLOR, "public holiday": HOLIDAY_COLOR}
    columns = ["spend / month mean", "CTR (%)", "cost per click"]
    fig, axes = plt.subplots(1, len(columns), figsize=(12, 4))
    for ax, column in zip(axes, columns):
        import warnings

        with warnings.catch_warnings():  # seaborn 0.13 passes matplotlib 3.11's deprecated `vert`
            warnings.filterwarnings("ignore", message="vert: bool was deprecated", category=DeprecationWarning)
            sns.boxplot(data=rates, x="day", y=column, hue="day", order=order, palette=palette, showfliers=False, width=0.5, ax=ax)
        sns.stripplot(data=rates, x="day", y=column, order=order, color="black", size=2, alpha=0.35, ax=ax)
        means = rates.groupby("day")[column].mean()
        ax.set_title(f"{column}\nmeans {means['other day']:.3g} vs {means['public holiday']:.3g}", fontsize=11)
        ax.set_xlabel("")
        ax.set_ylabel("")
    fig.suptitle("Holidays: the marketers spend more, and travellers click more" + (" (Monday to Friday only)" if weekdays_only else ""),
                 fontweight="bold")
    fig.tight_layout()
    return fig


WEEKEND_COLOR = COURSE_PALETTE[2]  # green: weekends (Saturday, Sunday)
WEEKDAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def weekday_ctr(df: pd.DataFrame) -> pd.DataFrame:
    """Click-through rate by day of the week on non-holiday days: one row per weekday (Mon..Sun),
    columns ``days`` (how many), ``ctr`` (mean of the daily CTRs), ``ctr_pooled`` (total clicks /
    total impressions) and ``weekend`` (bool). Holidays are left out so they do not blur the
    weekday pattern."""
    rates = funnel_rates(df)
    rates = rates[rates["holiday"] == 0]
    dow = rates["date"].dt.day_of_week
    g = rates.groupby(dow)
    out = pd.DataFrame(
        {
            "days": g.size(),
            "ctr": g["ctr"].mean(),
            "ctr_pooled": g["clicks"].sum() / g["impressions"].sum(),
        }
    ).reindex(range(7))
    out.index = pd.Index(WEEKDAY_NAMES, name="weekday")
    out["weekend"] = [False] * 5 + [True] * 2
    return out


def plot_weekday_ctr(df: pd.DataFrame) -> plt.Figure:
    """Left: click-through rate (%) of every non-holiday day by day of the week (boxes and days),
    weekends in green. Right: daily clicks against impressions on log axes, weekdays vs weekends:
    at the same impressions, weekends get more clicks (the two clouds are parallel, shifted up)."""
    import warnings

    rates = funnel_rates(df)
    rates = rates[rates["holiday"] == 0].copy()
    rates["weekday"] = pd.Categorical([WEEKDAY_NAMES[d] for d in rates["date"].dt.day_of_week], categories=WEEKDAY_NAMES)
    rates["CTR (%)"] = 100 * rates["ctr"]
    palette = {d: (WEEKEND_COLOR if d in ("Sat", "Sun") else TREND_COLOR) for d in WEEKDAY_NAMES}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    with warnings.catch_warnings():  # seaborn 0.13 passes matplotlib 3.11's deprecated `vert`
        warnings.filterwarnings("ignore", message="vert: bool was deprecated", category=DeprecationWarning)
        sns.boxplot(data=rates, x="weekday", y="CTR (%)", hue="weekday", order=WEEKDAY_NAMES, palette=palette, showfliers=False, width=0.6, ax=ax1)
    sns.stripplot(data=rates, x="weekday", y="CTR (%)", order=WEEKDAY_NAMES, color="black", size=2, alpha=0.3, ax=ax1)
    table = weekday_ctr(df)
    wk, we = table.loc[~table["weekend"], "ctr"].mean(), table.loc[table["weekend"], "ctr"].mean()
    ax1.set_title(f"CTR by day of the week (no holidays)\nweekdays {100 * wk:.2f}% vs weekends {100 * we:.2f}%", fontsize=11)
    ax1.set_xlabel("")
    is_we = rates["weekday"].isin(["Sat", "Sun"]).to_numpy()
    for mask, label, color in ((~is_we, "Mon-Fri", TREND_COLOR), (is_we, "Sat-Sun", WEEKEND_COLOR)):
        ax2.scatter(rates.loc[mask, "impressions"], rates.loc[mask, "clicks"], s=9, alpha=0.5, color=color, label=label)
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    _plain_log_ticks(ax2.xaxis, ax2.yaxis)
    ax2.set_xlabel("impressions")
    ax2.set_ylabel("clicks")
    ax2.set_title("Same impressions, more clicks on weekends", fontsize=11)
    ax2.legend(fontsize=9)
    fig.suptitle("Weekends: travellers browse and plan trips, and click more", fontweight="bold")
    fig.tight_layout()
    return fig


def plot_budget_pacing(df: pd.DataFrame, budgets: dict[str, float], highlight: str | None = None) -> plt.Figure:
    """How the marketers paced their monthly budgets, in three panels (axes in this order):

    1. every month as a race against even pacing: share of the budget spent minus share of the
       month gone (above 0 = ahead of an even plan), day by day; every line ends at 0;
    2. the ``highlight`` month ('YYYY-MM'; default the last), day by day: spend bars (holidays in
       orange) against the even pace, budget / days;
    3. the monthly budgets (bars) and what was actually spent (dots).
    """
    rates = funnel_rates(df)
    highlight = highlight or str(rates["month"].iloc[-1])
    fig = plt.figure(figsize=(12, 8))
    grid = fig.add_gridspec(2, 2, height_ratios=[1, 0.85])
    ax, axm, ax2 = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, :])

    for month, g in rates.groupby("month"):
        elapsed = np.arange(0, len(g) + 1) / len(g)
        spent = np.concatenate([[0.0], g["spend"].cumsum().to_numpy() / budgets[str(month)]])
        is_hl = str(month) == highlight
        style = dict(color=HOLIDAY_COLOR, lw=2.5, zorder=3, label=highlight) if is_hl else dict(color="grey", lw=0.8, alpha=0.5)
        ax.plot(elapsed, 100 * (spent - elapsed), **style)
        if is_hl:
            hol = np.concatenate([[False], g["holiday"].to_numpy() == 1])
            ax.scatter(elapsed[hol], 100 * (spent - elapsed)[hol], color="black", zorder=4, s=25, label="its holidays")
    ax.axhline(0, color="black", ls="--", lw=1.2, label="perfectly even pacing")
    ax.set_xlabel("share of the month gone")
    ax.set_ylabel("ahead (+) / behind (-) an even plan\n(% of the monthly budget)")
    ax.set_title("Every month: close to even, always ends on budget")
    ax.legend(loc="lower left", fontsize=9)

    month = rates[rates["month"] == pd.Period(highlight)]
    day = month["date"].dt.day.to_numpy()
    colors = [HOLIDAY_COLOR if h == 1 else TREND_COLOR for h in month["holiday"]]
    axm.bar(day, month["spend"].to_numpy(), color=colors)
    even_line = axm.axhline(budgets[highlight] / len(month), color="black", ls="--", lw=1.2, label="even pace: budget / days")
    handles = [
        plt.Rectangle((0, 0), 1, 1, color=TREND_COLOR, label="other day"),
        plt.Rectangle((0, 0), 1, 1, color=HOLIDAY_COLOR, label="public holiday"),
        even_line,
    ]
    axm.set_ylim(0, month["spend"].max() * 1.3)
    axm.set_xlabel(f"day of {highlight}")
    axm.set_ylabel("spend")
    axm.set_title(f"{highlight}, day by day")
    axm.legend(handles=handles, loc="upper left", fontsize=9, ncols=3)

    monthly = rates.groupby("month")["spend"].sum()
    labels = [str(m) for m in monthly.index]
    ax2.bar(labels, [budgets[m] for m in labels], color=COURSE_PALETTE[2], alpha=0.6, label="monthly budget")
    ax2.plot(labels, monthly.to_numpy(), "o", color="black", ms=4, label="actually spent")
    ax2.set_xticks(range(len(labels)), [m if m.endswith(("-01", "-04", "-07", "-10")) else "" for m in labels])
    ax2.set_ylabel("per month")
    ax2.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax2.set_title("Monthly budgets: growing, seasonal, and always spent")
    ax2.legend(loc="upper left")
    fig.tight_layout()
    return fig


# --- 02: the Bayesian funnel ---------------------------------------------------------

POSTERIOR_COLOR = COURSE_PALETTE[0]  # blue: the posterior (many lines, predictive bands)
POINT_COLOR = COURSE_PALETTE[3]  # red: a point estimate (one line) and true values
POISSON_COLOR = COURSE_PALETTE[1]  # orange: the Poisson strawman


def _hdi_band(samples: np.ndarray, prob: float = 0.94) -> tuple[np.ndarray, np.ndarray]:
    """Central ``prob`` interval of ``samples`` (shape ``(n_samples, n_points)``) per point."""
    lo = (1 - prob) / 2
    return np.quantile(samples, lo, axis=0), np.quantile(samples, 1 - lo, axis=0)


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


# --- 03: the simulator and baselines -------------------------------------------------


HOLIDAY_SHADE_03 = COURSE_PALETTE[1]  # orange spans: public holidays
WEEKEND_SHADE_03 = COURSE_PALETTE[2]  # green spans: weekends


def _shade_holidays_03(ax, holiday, label: bool = True) -> None:
    """Shade holiday days (x = day index 1..n) on ``ax``."""
    first = True
    for i in np.flatnonzero(np.asarray(holiday) > 0):
        ax.axvspan(i + 0.5, i + 1.5, color=HOLIDAY_SHADE_03, alpha=0.25, lw=0, label="public holiday" if (label and first) else None)
        first = False


def _shade_weekends_03(ax, weekend, label: bool = True) -> None:
    """Shade weekend days (x = day index 1..n) on ``ax``, lighter than holidays."""
    first = True
    for i in np.flatnonzero(np.asarray(weekend) > 0):
        ax.axvspan(i + 0.5, i + 1.5, color=WEEKEND_SHADE_03, alpha=0.13, lw=0, label="weekend" if (label and first) else None)
        first = False


def plot_allocation(dates, holiday, allocations: dict[str, np.ndarray], ax=None, title: str | None = None) -> plt.Figure:
    """Daily spend of one month under several allocations (dict name -> ``(n_days,)``), holidays
    (orange) and weekends (green, from ``dates``) shaded.

    Used for "the optimum against even pacing" (notebook 03) and "the learned allocation
    against the optimum" (notebook 05).
    """
    dates = pd.DatetimeIndex(dates)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(10, 4))
    day = np.arange(1, len(dates) + 1)
    _shade_weekends_03(ax, dates.day_of_week >= 5)
    _shade_holidays_03(ax, holiday)
    styles = ["-", "--", "-.", ":"]
    for k, (name, spend) in enumerate(allocations.items()):
        ax.step(day, np.asarray(spend, dtype=float), where="mid", lw=2.2 if k == 0 else 1.6, ls=styles[k % len(styles)], label=name, color=COURSE_PALETTE[[0, 7, 2, 4, 3, 5][k % 6]])
    ax.set_xlim(0.5, len(dates) + 0.5)
    ax.set_ylim(0, None)
    ax.set_xticks(day[::2], [f"{d:%d}\n{d:%a}" for d in dates[::2]], fontsize=8)
    ax.set_xlabel(f"day of {dates[0]:%B %Y}")
    ax.set_ylabel("daily spend")
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_title(title or f"Daily allocation, {dates[0]:%B %Y}")
    ax.legend(loc="upper right", fontsize=9)
    fig.tight_layout()
    return fig


def plot_played_month(df: pd.DataFrame, budget: float, title: str | None = None) -> plt.Figure:
    """A month as played (``helpers.baselines.play_month`` or a hand-built table with columns
    ``date, holiday, spend, clicks, budget_left``): spend and budget left on top, clicks and
    cost per click below; holidays and weekends shaded."""
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    day = np.arange(1, len(df) + 1)
    weekend = df["weekend"] if "weekend" in df else (pd.DatetimeIndex(df["date"]).day_of_week >= 5)
    for ax in (ax1, ax2):
        _shade_weekends_03(ax, weekend, label=ax is ax1)
        _shade_holidays_03(ax, df["holiday"], label=ax is ax1)
    ax1.bar(day, df["spend"], color=COURSE_PALETTE[0], label="spend")
    ax1.axhline(budget / len(df), color="black", ls="--", lw=1, label="budget / days")
    ax1.set_ylabel("spend")
    left = ax1.twinx()
    left.plot(day, df["budget_left"] / budget, color=COURSE_PALETTE[2], marker="o", ms=3, label="budget left (share)")
    left.set_ylim(0, 1.05)
    left.set_ylabel("budget left (share)")
    left.grid(False)
    h1, l1 = ax1.get_legend_handles_labels()
    h2, l2 = left.get_legend_handles_labels()
    ax1.legend(h1 + h2, l1 + l2, loc="upper right", fontsize=8, ncols=2)
    ax2.bar(day, df["clicks"], color=COURSE_PALETTE[4], label="clicks")
    ax2.set_ylabel("clicks")
    cpc = ax2.twinx()
    cpc.plot(day, df["spend"] / df["clicks"].clip(lower=1), color="black", marker=".", label="cost per click")
    cpc.set_ylabel("cost per click")
    cpc.grid(False)
    h1, l1 = ax2.get_legend_handles_labels()
    h2, l2 = cpc.get_legend_handles_labels()
    ax2.legend(h1 + h2, l1 + l2, loc="upper right", fontsize=8)
    ax2.set_xlabel("day of the month")
    ax1.set_title(title or "One month, day by day")
    fig.tight_layout()
    return fig


def plot_budget_paths(paths: dict[str, np.ndarray], ax=None, title: str | None = None) -> plt.Figure:
    """Share of the budget left at the start of each day, one median line and 10-90% band per
    entry of ``paths`` (name -> ``(n_months, n_days + 1)``); the dotted diagonal is even pacing."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 4))
    for k, (name, p) in enumerate(paths.items()):
        p = np.asarray(p, dtype=float)
        x = np.arange(p.shape[1])
        lo, med, hi = np.percentile(p, [10, 50, 90], axis=0)
        color = COURSE_PALETTE[[0, 3, 2, 4][k % 4]]
        ax.plot(x, med, color=color, lw=2, label=name)
        ax.fill_between(x, lo, hi, color=color, alpha=0.2)
    n = max(np.asarray(p).shape[1] for p in paths.values()) - 1
    ax.plot([0, n], [1, 0], ":", color="black", lw=1, label="even pacing")
    ax.set_xlabel("day")
    ax.set_ylabel("budget left (share)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title or "Budget left through the month")
    ax.legend(fontsize=8)
    return fig


# --- 04: PPO -------------------------------------------------------------------------

#: Diagnostics drawn by ``plot_ppo_diagnostics`` / ``LiveTrainingPlot``: (column, title, y-scale).
PPO_PANELS: list[tuple[str, str, str]] = [
    ("episode_return_mean", "episode return (raw)", "linear"),
    ("value_loss", "value loss", "log"),
    ("approx_kl", "approx. KL (k3)", "linear"),
    ("clip_frac", "clip fraction", "linear"),
    ("explained_variance", "explained variance", "linear"),
    ("action_std", "policy std", "linear"),
]


def plot_ppo_diagnostics(histories: pd.DataFrame | dict[str, pd.DataFrame], fig: plt.Figure | None = None,
                         smooth: int = 1, panels: list[tuple[str, str, str]] | None = None) -> plt.Figure:
    """Convergence panels of ``PPO.learn`` histories against environment steps.

    ``histories``: one DataFrame (columns of ``helpers.ppo.DIAGNOSTIC_COLUMNS``) or a dict
    ``label -> DataFrame`` to overlay runs (seeds, epsilons). ``smooth`` > 1 applies a centred
    rolling mean. Draws on ``fig`` if given (cleared first), else on a new 2 x 3 figure.
    """
    if isinstance(histories, pd.DataFrame):
        histories = {"": histories}
    panels = panels or PPO_PANELS
    ncols = 3
    nrows = -(-len(panels) // ncols)
    if fig is None:
        fig = plt.figure(figsize=(12, 3.2 * nrows))
    fig.clear()
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (col, title, scale) in zip(axes, panels):
        for k, (label, df) in enumerate(histories.items()):
            if col not in df or df.empty:
                continue
            y = df[col].astype(float)
            if smooth > 1:
                y = y.rolling(smooth, min_periods=1, center=True).mean()
            ax.plot(df["global_step"], y, color=COURSE_PALETTE[k % len(COURSE_PALETTE)],
                    label=str(label) or None, lw=1.6)
        ax.set_title(title, fontsize=10)
        ax.set_yscale(scale)
        ax.set_xlabel("environment steps")
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    if len(histories) > 1 or any(str(label) for label in histories):
        axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


class LiveTrainingPlot:
    """A ``PPO.learn`` callback that redraws the convergence panels while training runs.

    ``every``: redraw after every ``every``-th update (the figure is drawn once more by
    ``finish()``; in quick mode use a large ``every`` so only the final picture costs anything).
    Shown through an IPython display handle (updated in place); outside IPython it only draws.
    Returns ``True`` from ``__call__`` (never stops training); ``records`` keeps what it saw.
    """

    def __init__(self, every: int = 5, smooth: int = 1, title: str | None = None):
        self.every, self.smooth, self.title = max(1, int(every)), smooth, title
        self.records: list[dict] = []
        self.n_draws = 0
        self._drawn_at = -1  # number of records at the last draw
        self.fig = plt.figure(figsize=(12, 6.4))
        plt.close(self.fig)  # displayed through the handle only
        self._handle = None

    @property
    def history(self) -> pd.DataFrame:
        return pd.DataFrame(self.records)

    def _plot(self) -> None:
        """Draw the panels onto ``self.fig`` (subclasses draw other panels)."""
        plot_ppo_diagnostics(self.history, fig=self.fig, smooth=self.smooth)

    def draw(self) -> plt.Figure:
        self._plot()
        if self.title:
            self.fig.suptitle(self.title, fontweight="bold")
            self.fig.tight_layout()
        self.n_draws += 1
        self._drawn_at = len(self.records)
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            if self._handle is None:
                self._handle = display(self.fig, display_id=True)
            else:
                self._handle.update(self.fig)
        return self.fig

    def __call__(self, record: dict) -> bool:
        self.records.append(dict(record))
        if len(self.records) % self.every == 0:
            self.draw()
        return True

    def finish(self) -> plt.Figure:
        """Final redraw (if the last update was not drawn yet); returns the figure."""
        if self.records and self._drawn_at != len(self.records):
            self.draw()
        return self.fig



# --- 05: training the budget agent ---------------------------------------------------

#: Panels of ``plot_budget_training``: (column, title, y-scale); ``pct_of_optimum`` is measured
#: every few updates only (NaN elsewhere), the rest every update.
BUDGET_PANELS: list[tuple[str, str, str]] = [
    ("pct_of_optimum", "% of the optimum (deterministic policy)", "linear"),
    ("episode_return_mean", "episode return (clicks / mean daily clicks)", "linear"),
    ("value_loss", "value loss", "log"),
    ("approx_kl", "approx. KL (k3)", "linear"),
    ("clip_frac", "clip fraction", "linear"),
    ("explained_variance", "explained variance", "linear"),
    ("action_std", "policy std (action units)", "linear"),
]
#: Line styles of reference levels (baselines) drawn on % of optimum axes.
_LEVEL_STYLES = ["--", ":", "-.", (0, (5, 1, 1, 1)), (0, (3, 3))]


def _x_column(df: pd.DataFrame) -> str:
    return "step" if "step" in df else "global_step"


def _draw_levels(ax, levels: dict[str, float] | None) -> None:
    """Horizontal reference lines (name -> % of optimum), e.g. the baselines, in grey."""
    for k, (name, value) in enumerate((levels or {}).items()):
        ax.axhline(value, color="0.35", lw=1.1, ls=_LEVEL_STYLES[k % len(_LEVEL_STYLES)], label=f"{name} ({value:.2f}%)", gid=f"level_{name}")


def _pct_ylim(ax, values, levels: dict[str, float] | None, top: float = 100.25) -> None:
    """Y range of a % of optimum axis: from a little below the lowest level/value to just above 100."""
    finite = [v for v in np.ravel(np.asarray(values, dtype=float)) if np.isfinite(v)] + list((levels or {}).values())
    low = min(finite) if finite else 95.0
    ax.set_ylim(low - 0.15 * (top - low) - 0.05, top)


def plot_budget_training(histories: pd.DataFrame | dict[str, pd.DataFrame], fig: plt.Figure | None = None, smooth: int = 1,
                         levels: dict[str, float] | None = None) -> plt.Figure:
    """Convergence of PPO on the budget env: the :data:`BUDGET_PANELS` against env steps, plus
    % of the optimum against training wall time (last panel).

    ``histories``: ``TrainingRun.history`` (one row per update) or a dict label -> history to
    overlay runs. ``levels``: name -> % of optimum lines (baselines) on the two % panels.
    """
    if isinstance(histories, pd.DataFrame):
        histories = {"": histories}
    if fig is None:
        fig = plt.figure(figsize=(15, 6.4))
    fig.clear()
    axes = fig.subplots(2, 4).ravel()
    panels = BUDGET_PANELS + [("pct_of_optimum", "% of the optimum vs training time", "linear")]
    pct_values = []
    for i, (ax, (col, title, scale)) in enumerate(zip(axes, panels)):
        wall = i == len(panels) - 1
        for k, (label, df) in enumerate(histories.items()):
            if col not in df or df.empty:
                continue
            d = df[[_x_column(df), "train_wall_s" if "train_wall_s" in df else _x_column(df), col]].dropna()
            x = d["train_wall_s" if wall else _x_column(df)]
            y = d[col].astype(float)
            if smooth > 1 and col != "pct_of_optimum":
                y = y.rolling(smooth, min_periods=1, center=True).mean()
            if col == "pct_of_optimum":
                pct_values.extend(y.tolist())
            ax.plot(x, y, color=COURSE_PALETTE[k % len(COURSE_PALETTE)], lw=1.6, label=str(label) or None,
                    marker="." if col == "pct_of_optimum" else None, ms=4)
        if col == "pct_of_optimum":
            _draw_levels(ax, levels)
            _pct_ylim(ax, pct_values, levels)
        ax.set_title(title, fontsize=10)
        ax.set_yscale(scale)
        ax.set_xlabel("training wall time (s)" if wall else "environment steps")
        if not wall:
            ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


class LiveBudgetPlot(LiveTrainingPlot):
    """``LiveTrainingPlot`` drawing :func:`plot_budget_training` (with % of the optimum panels).

    Chain it after ``helpers.training.OptimumTracker`` (``train_budget_agent(..., callback=live)``)
    so the records it sees carry ``pct_of_optimum``.
    """

    def __init__(self, every: int = 5, smooth: int = 1, title: str | None = None, levels: dict[str, float] | None = None):
        super().__init__(every=every, smooth=smooth, title=title)
        self.levels = levels
        self.fig.set_size_inches(15, 6.4)

    def _plot(self) -> None:
        plot_budget_training(self.history, fig=self.fig, smooth=self.smooth, levels=self.levels)


def plot_seed_band(curves: dict[str, list[pd.DataFrame]], x: str = "step", levels: dict[str, float] | None = None,
                   ax=None, title: str | None = None) -> plt.Figure:
    """Mean learning curve and min-max band across seeds, one per label.

    ``curves``: label -> list of ``TrainingRun.curve`` (columns ``x`` and ``pct_of_optimum``);
    runs are aligned on the ``x`` values they share (``x="step"``) or interpolated on a common
    grid (``x="train_wall_s"``, whose values differ between runs). ``levels``: baselines.
    """
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(9, 4.2))
    values = []
    for k, (label, runs) in enumerate(curves.items()):
        color = COURSE_PALETTE[[0, 3, 2, 4, 5, 6][k % 6]]
        if x == "step":
            wide = pd.concat([c.set_index(x)["pct_of_optimum"].rename(i) for i, c in enumerate(runs)], axis=1, join="inner")
        else:
            grid = np.linspace(0, min(float(c[x].max()) for c in runs), 60)
            wide = pd.DataFrame({i: np.interp(grid, c[x], c["pct_of_optimum"]) for i, c in enumerate(runs)}, index=grid)
        mean = wide.mean(axis=1)
        values.extend(mean.tolist())
        ax.fill_between(wide.index, wide.min(axis=1), wide.max(axis=1), color=color, alpha=0.2, lw=0, gid=f"band_{label}")
        ax.plot(wide.index, mean, color=color, lw=2, label=f"{label} (mean of {wide.shape[1]}, band min-max)", gid=f"mean_{label}")
    _draw_levels(ax, levels)
    _pct_ylim(ax, values, levels)
    ax.set_xlabel("environment steps" if x == "step" else "training wall time (s)")
    if x == "step":
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
    ax.set_ylabel("% of the open-loop optimum")
    ax.set_title(title or "Learning curves across seeds")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_epsilon_sweep(sweep: pd.DataFrame, levels: dict[str, float] | None = None) -> plt.Figure:
    """The clip-epsilon sweep (``helpers.training.epsilon_sweep``): final % of the optimum per
    epsilon (one dot per seed, line through the means) and the mean learning curve per epsilon."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.4), gridspec_kw={"width_ratios": [1, 1.5]})
    last = sweep.sort_values("step").groupby(["clip_eps", "seed"]).tail(1)
    means = last.groupby("clip_eps")["pct_of_optimum"].mean()
    ax1.scatter(last["clip_eps"], last["pct_of_optimum"], color=COURSE_PALETTE[0], alpha=0.6, s=25, label="one seed", gid="seeds")
    ax1.plot(means.index, means.values, color=COURSE_PALETTE[0], lw=2, marker="o", label="mean over seeds", gid="means")
    _draw_levels(ax1, levels)
    _pct_ylim(ax1, last["pct_of_optimum"], levels)
    ax1.set_xlabel("clip ε")
    ax1.set_ylabel("final % of the optimum")
    ax1.set_title(f"After {int(last['step'].max()):,} steps")
    ax1.legend(fontsize=7, loc="lower right")
    cmap = plt.get_cmap("viridis")
    epsilons = sorted(sweep["clip_eps"].unique())
    values = []
    for k, eps in enumerate(epsilons):
        mean = sweep[sweep["clip_eps"] == eps].groupby("step")["pct_of_optimum"].mean()
        values.extend(mean.tolist())
        ax2.plot(mean.index, mean.values, color=cmap(k / max(1, len(epsilons) - 1)), lw=1.8, label=f"ε = {eps:g}", gid=f"curve_{eps:g}")
    _draw_levels(ax2, levels)
    _pct_ylim(ax2, values, levels)
    ax2.set_xlabel("environment steps")
    ax2.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
    ax2.set_ylabel("% of the optimum (mean over seeds)")
    ax2.set_title("Learning curves by clip ε")
    ax2.legend(fontsize=7, loc="lower right", ncols=2)
    fig.tight_layout()
    return fig


def plot_settling(history: pd.DataFrame, value_settled: float, pct_settled: float) -> plt.Figure:
    """Value loss (log scale, left) and % of the optimum (right) against env steps, with the
    steps where each settled (``helpers.training.settle_step``) marked."""
    fig, ax = plt.subplots(figsize=(9, 3.8))
    x = _x_column(history)
    ax.plot(history[x], history["value_loss"], color=COURSE_PALETTE[3], lw=1.4, label="value loss", gid="value_loss")
    ax.set_yscale("log")
    ax.set_ylabel("value loss (log)")
    ax.set_xlabel("environment steps")
    right = ax.twinx()
    pct = history[[x, "pct_of_optimum"]].dropna()
    right.plot(pct[x], pct["pct_of_optimum"], color=COURSE_PALETTE[0], lw=2, marker=".", label="% of optimum", gid="pct")
    right.set_ylabel("% of the optimum")
    right.grid(False)
    for value, color, name in ((value_settled, COURSE_PALETTE[3], "value loss settles"), (pct_settled, COURSE_PALETTE[0], "reward saturates")):
        if np.isfinite(value):
            ax.axvline(value, color=color, ls="--", lw=1.2, label=f"{name} ({value:,.0f} steps)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = right.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="center right")
    ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
    ax.set_title("Does the value loss settle before the reward saturates?")
    fig.tight_layout()
    return fig


def plot_new_data_costs(curves: dict[str, pd.DataFrame], levels: dict[str, float] | None = None) -> plt.Figure:
    """After a posterior update: % of the new optimum against env steps and against training
    wall time, one line per way of updating the policy (label -> ``TrainingRun.curve``)."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), sharey=True)
    values = []
    for k, (label, c) in enumerate(curves.items()):
        color = COURSE_PALETTE[[2, 0, 3, 4][k % 4]]
        values.extend(c["pct_of_optimum"].tolist())
        for ax, x in zip(axes, ("step", "train_wall_s")):
            ax.plot(c[x], c["pct_of_optimum"], color=color, lw=2, marker=".", label=label, gid=f"{label}_{x}")
    for ax, xlabel in zip(axes, ("environment steps", "training wall time (s)")):
        _draw_levels(ax, levels)
        ax.set_xlabel(xlabel)
    _pct_ylim(axes[0], values, levels)
    axes[0].ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
    axes[0].set_ylabel("% of the new optimum")
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("One more month of data: warm start vs from scratch", fontweight="bold")
    fig.tight_layout()
    return fig



# --- 06: many channels and carryover ---------------------------------------------------


def _short(channel: str) -> str:
    """A campaign name short enough for an axis label."""
    return channel.replace("_", " ")


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


def plot_adstock_posterior(channels, theta: np.ndarray, prior: tuple[float, float] = (1.0, 3.0), what_if: float | None = None,
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


def plot_channel_heatmaps(plans: dict[str, np.ndarray], channels, active: np.ndarray, title: str | None = None) -> plt.Figure:
    """Daily spend per channel as heat-maps (days down, channels across), one panel per plan
    (name -> ``(n_days, K)``), on one colour scale; days a channel cannot spend are hatched."""
    n = len(plans)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n + 1.2, 6.2), sharey=True, squeeze=False)
    axes = axes[0]
    vmax = max(float(np.nanmax(p)) for p in plans.values())
    T, K = active.shape
    for ax, (name, plan) in zip(axes, plans.items()):
        shown = np.where(active, plan, np.nan)
        mesh = ax.imshow(shown, aspect="auto", cmap="viridis", vmin=0, vmax=vmax, interpolation="nearest")
        mesh.set_gid(f"heatmap_{name}")
        for t, k in zip(*np.nonzero(~active)):
            ax.add_patch(plt.Rectangle((k - 0.5, t - 0.5), 1, 1, fill=False, hatch="///", color="0.75", lw=0))
        ax.set_xticks(range(K), [_short(c) for c in channels], rotation=60, ha="right", fontsize=8)
        ax.set_title(name, fontsize=10)
        ax.grid(False)
    axes[0].set_yticks(range(0, T, 5), [str(d + 1) for d in range(0, T, 5)])
    axes[0].set_ylabel("day of the month")
    fig.colorbar(mesh, ax=list(axes), label="spend per day", shrink=0.8)
    if title:
        fig.suptitle(title, fontweight="bold")
    return fig
