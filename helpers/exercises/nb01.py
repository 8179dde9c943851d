"""Graders of notebook 01's exercises (the data, the funnel's rates, diminishing returns).

Each computes the right answer from the course's data file (``helpers.data``), never from a
notebook variable, and names the likely mistake when the learner's number matches one.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from helpers.exercises import as_number, grader, off_by


@lru_cache(maxsize=1)
def _daily() -> pd.DataFrame:
    from helpers.data import load_daily

    return load_daily()


def _loglog_slope(x, y) -> float:
    from helpers.plots import loglog_slope

    return float(loglog_slope(x, y)[0])


def _near(a: float, b: float, rtol: float) -> bool:
    return bool(np.isclose(a, b, rtol=rtol, atol=0.0))


def _judge(x: float, expected: float, rtol: float, mistakes: dict[str, float], what: str) -> str | None:
    """None when ``x`` is ``expected`` within ``rtol``; else the first matching mistake's words,
    else which way ``x`` misses."""
    if _near(x, expected, rtol):
        return None
    for words, value in mistakes.items():
        if _near(x, value, rtol):
            return words
    return f"{what} is {off_by(x, expected)}"


@grader("01.cpc_2024", hints=(
    "Select the rows of 2024 (df['date'].dt.year == 2024), then add up their spend and their clicks.",
    "One division of two sums: the total spend of 2024 divided by the total clicks of 2024.",
))
def _cpc_2024(answer) -> str | None:
    df = _daily()
    x = as_number(answer)
    year = df[df["date"].dt.year == 2024]
    return _judge(x, year["spend"].sum() / year["clicks"].sum(), 1e-3, {
        "that is the mean of the daily costs per click; the question asks for the price of a click over the year: "
        "total spend / total clicks": float((year["spend"] / year["clicks"]).mean()),
        "that covers both years of the data; keep 2024 only": df["spend"].sum() / df["clicks"].sum(),
        "that is clicks per unit of spend, the inverse": year["clicks"].sum() / year["spend"].sum(),
    }, "your cost per click")


@grader("01.doubling", hints=(
    "plots.loglog_slope(df['spend'], df['clicks']) gives the slope s of log(clicks) on log(spend).",
    "Clicks grow like spend**s, so doubling the spend multiplies clicks by 2**s.",
))
def _doubling(answer) -> str | None:
    df = _daily()
    x = as_number(answer)
    s = _loglog_slope(df["spend"], df["clicks"])
    from helpers.data import TRUE_PARAMS

    return _judge(x, 2**s, 0.01, {
        "that is the slope itself; the question asks for the factor by which clicks grow when spend doubles": s,
        "that is how impressions grow, not clicks": 2 ** _loglog_slope(df["spend"], df["impressions"]),
        "that comes from the true elasticity; the question asks what the data's fitted line says":
            2 ** (TRUE_PARAMS["imp_slope"] * TRUE_PARAMS["clk_slope"]),
    }, "your factor")


@grader("01.holiday_uplift", hints=(
    "relative = df['spend'] / (the mean spend of the day's month): groupby on df['date'].dt.to_period('M') and "
    "transform('mean').",
    "Then relative[df['holiday'] == 1].mean() / relative[df['holiday'] == 0].mean().",
))
def _holiday_uplift(answer) -> str | None:
    df = _daily()
    x = as_number(answer)
    relative = df["spend"] / df.groupby(df["date"].dt.to_period("M"))["spend"].transform("mean")
    holiday = df["holiday"] == 1
    return _judge(x, relative[holiday].mean() / relative[~holiday].mean(), 0.01, {
        "that compares raw spends; first divide each day's spend by its month's mean spend (budgets differ by month)":
            df.loc[holiday, "spend"].mean() / df.loc[~holiday, "spend"].mean(),
        "that is the uplift minus 1 (a share); the question asks for the ratio":
            relative[holiday].mean() / relative[~holiday].mean() - 1,
    }, "your uplift")


@grader("01.cpm_doubling", hints=(
    "CPM = 1000 * spend / impressions, and impressions = c * spend**0.9: write CPM as a power of spend.",
    "CPM is proportional to spend**(1 - 0.9); doubling spend multiplies it by 2 to that power.",
))
def _cpm_doubling(answer) -> str | None:
    x = as_number(answer)
    return _judge(x, 2 ** (1 - 0.9), 1e-3, {
        "that is how impressions grow; CPM = 1000 * spend / impressions": 2**0.9,
        "that is the inverse: a CPM that falls; with diminishing returns impressions get dearer": 2 ** (0.9 - 1),
        "that is how much more spend costs, not the price of 1,000 impressions": 2.0,
    }, "your factor")
