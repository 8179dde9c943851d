"""Pictures of the marketing data (notebook 01): the funnel, daily spend and counts, cost per click,
diminishing returns on log-log axes, holidays and weekdays, and how a month's budget was paced.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from helpers.plots.style import COURSE_PALETTE, HOLIDAY_COLOR, TREND_COLOR, WEEKEND_COLOR, WEEKDAY_NAMES, _mark_holidays, _plain_log_ticks


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
