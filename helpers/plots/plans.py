"""Pictures of spend plans (notebooks 03 and 06): a month's daily allocations, a played month with
its holidays and weekends, budget paths, and the channels-by-days heat maps.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers.plots.style import COURSE_PALETTE, _shade_holidays, _shade_weekends, _short


def plot_allocation(dates, holiday, allocations: dict[str, np.ndarray], ax=None, title: str | None = None) -> plt.Figure:
    """Daily spend of one month under several allocations (dict name -> ``(n_days,)``), holidays
    (orange) and weekends (green, from ``dates``) shaded.

    Used for "the optimum against even pacing" (notebook 03) and "the learned allocation
    against the optimum" (notebook 05).
    """
    dates = pd.DatetimeIndex(dates)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(10, 4))
    day = np.arange(1, len(dates) + 1)
    _shade_weekends(ax, dates.day_of_week >= 5)
    _shade_holidays(ax, holiday)
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
        _shade_weekends(ax, weekend, label=ax is ax1)
        _shade_holidays(ax, df["holiday"], label=ax is ax1)
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
