"""Graders of notebook 01's exercises (the data, the funnel's rates, diminishing returns, the noise).

The value graders compute the right answer from the course's data file (``helpers.data``), never
from a notebook variable, and name the likely mistake when the learner's number matches one.
``01.nb_draw`` checks a learner's negative-binomial draw by what it does: the mean, the variance
and the share of zeros of many draws against those of ``NB(mu, alpha)``, the distribution that
:func:`helpers.data.nb_sample` draws the data set from and notebook 02's PyMC model fits.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from helpers.exercises import as_number, call, grader, off_by


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


#: Draws of each checked (mu, alpha): the mean's and the variance's standard errors are ~0.7% and
#: ~1-2% of their values, so a Poisson, a Gamma alone or statsmodels' inverse alpha miss by far.
NB_DRAWS = 20_000
NB_SEED = 20180923
#: A right answer lies within this many standard errors of each NB moment (the chance that a
#: correct draw fails one of the seven checks is below 1e-5).
NB_TOLERANCE_SE = 5.0


def nb_cases() -> list[tuple[str, float, float]]:
    """``(words, mu, alpha)``: a day's impressions at a spend of 1,000 and the clicks those bring,
    with the data's dispersions (helpers.data's generating process), and a small count, where the
    Poisson's share of the variance is as large as the Gamma's."""
    from helpers.data import TRUE_PARAMS as p

    mu_imp = float(np.exp(p["imp_intercept"] + p["imp_slope"] * np.log(1000.0)))
    mu_clk = float(np.exp(p["clk_intercept"] + p["clk_slope"] * np.log(mu_imp)))
    return [("the impressions-sized mean", mu_imp, p["imp_alpha"]),
            ("the clicks-sized mean", mu_clk, p["clk_alpha"]),
            ("the small mean", 4.0, 2.0)]


@grader("01.nb_draw", hints=(
    "A Gamma with shape alpha and mean mu has scale mu / alpha (numpy: rng.gamma(shape, scale)). Draw one such "
    "rate per element of mu, then one Poisson count at each rate.",
    "rate = rng.gamma(alpha, mu / alpha) gives one rate per element of mu; return rng.poisson(rate).",
))
def _nb_draw(answer) -> str | None:
    from scipy import stats

    for k, (what, mu, alpha) in enumerate(nb_cases()):
        mus = np.full(NB_DRAWS, mu)
        # the clicks-sized case passes alpha as a one-element array, as notebook 03's posterior draw holds it
        a = np.array([alpha]) if k == 1 else alpha
        got = call(answer, np.random.default_rng(NB_SEED + k), mus, a)
        try:
            got = np.asarray(got, dtype=float)
        except (TypeError, ValueError):
            return f"nb_draw returned a {type(got).__name__}, not an array of counts"
        if got.shape != mus.shape:
            return f"nb_draw returned shape {got.shape} for mu of shape {mus.shape}: one count per element of mu"
        if not np.all(np.isfinite(got)) or np.any(got < 0) or np.any(got != np.round(got)):
            return ("some draws are negative, not finite or not whole numbers: a count is a whole number >= 0 "
                    "(the Gamma gives the day's rate; the count is a Poisson draw at that rate)")
        nb = stats.nbinom(alpha, alpha / (alpha + mu))  # scipy's (n, p) form of NB(mu, alpha)
        mean, var, kurt = (float(m) for m in nb.stats(moments="mvk"))  # kurt: the excess kurtosis
        # a mean about right with a Poisson's spread (here the NB's variance is 100s of times the mean)
        if k < 2 and got.var() < 1.5 * mu and abs(got.mean() / mean - 1) < 0.5:
            return (f"your counts at {what} vary far too little from draw to draw: a Poisson alone has "
                    "variance = mean; a Gamma-distributed rate adds the negative binomial's extra mu**2 / alpha")
        # the mean's standard error from the larger variance: a wrong spread is named as such below
        if abs(got.mean() - mean) > NB_TOLERANCE_SE * np.sqrt(max(var, got.var()) / NB_DRAWS):
            return f"the mean of your counts at {what} is {off_by(got.mean(), mean)}: it should be mu"
        se_var = var * np.sqrt((2.0 + kurt) / NB_DRAWS)  # the sample variance's standard error
        if abs(got.var() - var) > NB_TOLERANCE_SE * se_var:
            return f"the variance of your counts at {what} is {off_by(got.var(), var)}: it should be mu + mu**2 / alpha"
        if k == 2:
            p0 = float(nb.pmf(0))
            zeros = float(np.mean(got == 0))
            if abs(zeros - p0) > NB_TOLERANCE_SE * np.sqrt(p0 * (1 - p0) / NB_DRAWS):
                return (f"the share of zero counts at {what} is {off_by(zeros, p0)}: the mean and variance are right, "
                        "the distribution's shape is not a negative binomial's")
    small = np.full(200, 5.0)
    first = np.asarray(call(answer, np.random.default_rng(NB_SEED), small, 2.0))
    again = np.asarray(call(answer, np.random.default_rng(NB_SEED), small, 2.0))
    if not np.array_equal(first, again):
        return ("two generators with the same seed gave different counts: draw with the rng you are given "
                "(rng.gamma, rng.poisson), not with np.random or a new generator")
    return None
