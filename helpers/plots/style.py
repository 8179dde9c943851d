"""The course's one look: the palette, the colours every figure shares (holidays orange,
weekends green, the posterior blue, a point estimate red), :func:`set_style`, and the small drawing
helpers the other plot modules use (holiday and weekend shading, HDI bands, reference levels).
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


HOLIDAY_COLOR = COURSE_PALETTE[1]  # orange: holidays in every plot of notebook 01


TREND_COLOR = COURSE_PALETTE[0]  # blue: daily values and rolling means


WEEKEND_COLOR = COURSE_PALETTE[2]  # green: weekends (Saturday, Sunday)


WEEKDAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


POSTERIOR_COLOR = COURSE_PALETTE[0]  # blue: the posterior (many lines, predictive bands)


POINT_COLOR = COURSE_PALETTE[3]  # red: a point estimate (one line) and true values


POISSON_COLOR = COURSE_PALETTE[1]  # orange: the Poisson strawman


def _mark_holidays(ax, df: pd.DataFrame, column: str, label: bool = True) -> None:
    hol = df[df["holiday"] == 1]
    ax.scatter(hol["date"], hol[column], s=22, color=HOLIDAY_COLOR, zorder=3, label="public holiday" if label else None)


def _plain_log_ticks(*axes) -> None:
    """Log-scale ticks at 1, 2, 5 x 10^k labelled as plain numbers (2,000 rather than 2x10^3)."""
    for axis in axes:
        axis.set_major_locator(plt.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        axis.set_minor_formatter(plt.NullFormatter())


def _hdi_band(samples: np.ndarray, prob: float = 0.94) -> tuple[np.ndarray, np.ndarray]:
    """Central ``prob`` interval of ``samples`` (shape ``(n_samples, n_points)``) per point."""
    lo = (1 - prob) / 2
    return np.quantile(samples, lo, axis=0), np.quantile(samples, 1 - lo, axis=0)


def _shade_holidays(ax, holiday, label: bool = True) -> None:
    """Shade holiday days (x = day index 1..n) on ``ax``."""
    first = True
    for i in np.flatnonzero(np.asarray(holiday) > 0):
        ax.axvspan(i + 0.5, i + 1.5, color=HOLIDAY_COLOR, alpha=0.25, lw=0, label="public holiday" if (label and first) else None)
        first = False


def _shade_weekends(ax, weekend, label: bool = True) -> None:
    """Shade weekend days (x = day index 1..n) on ``ax``, lighter than holidays."""
    first = True
    for i in np.flatnonzero(np.asarray(weekend) > 0):
        ax.axvspan(i + 0.5, i + 1.5, color=WEEKEND_COLOR, alpha=0.13, lw=0, label="weekend" if (label and first) else None)
        first = False


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


def _short(channel: str) -> str:
    """A campaign name short enough for an axis label."""
    return channel.replace("_", " ")
