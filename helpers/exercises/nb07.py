"""Graders of notebook 07's exercises (your own account: the held-out check, the plan's shape).

``07.simulate_clicks`` checks a learner's posterior-predictive simulation of one campaign's days
against :func:`helpers.plan.simulate_clicks` (the held-out check's own): first at one parameter
point (the market's noise: means and variances per kind of day), then on a wide posterior (its
uncertainty must widen the band). The others work on the learner's own fitted posterior (``draws``,
one campaign: ``FunnelDraws``) and planning month, passed as context; what is right is computed
here from the course's helpers.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from helpers.exercises import as_number, call, grader, off_by

#: The days the simulation check plays: (spend, holiday, weekend): an ordinary weekday, a weekend
#: day, a holiday and a holiday on a weekend, at spends like the sample export's.
SIM_DAYS = ((1000.0, 0, 0), (800.0, 0, 1), (1300.0, 1, 0), (600.0, 1, 1))
SIM_DRAWS = 4000  # posterior draws (rows): the means' standard errors are ~1.6% of a sd
SIM_SEED = 20250107
#: A learner's variance may differ from the reference's by this factor (sampling error: ~5 standard
#: errors at SIM_DRAWS rows); a plain Poisson misses it by a factor of hundreds, one parameter point
#: for every row (no posterior uncertainty) on the wide posterior by a factor of about two.
VARIANCE_FACTOR = 1.3
#: The wide posterior's spread of the clicks intercept and of the day boosts (log scale): what a
#: short export leaves unknown, so that the posterior's uncertainty is a large part of the band.
WIDE_SD = {"clk_intercept": 0.25, "clk_weekend": 0.1, "clk_holiday": 0.1}


@lru_cache(maxsize=1)
def _posteriors():
    """``(one point repeated, wide posterior)``, both SIM_DRAWS draws around the course's truth."""
    from helpers.bayes import FunnelDraws
    from helpers.data import TRUE_PARAMS

    rng = np.random.default_rng(SIM_SEED)
    point = FunnelDraws(**{k: np.full(SIM_DRAWS, v) for k, v in TRUE_PARAMS.items()})
    wide = FunnelDraws(**{k: v + WIDE_SD.get(k, 0.0) * rng.standard_normal(SIM_DRAWS) for k, v in point.to_dict().items()})
    return point, wide


def _compare(answer, draws, seed: int) -> tuple[str, int, float, float] | str | None:
    """None when the learner's simulation matches the reference's on every day of SIM_DAYS; a message
    when its output is malformed; else what is off first, as ``("mean"|"variance", day, got, ref)``."""
    from helpers.plan import simulate_clicks

    spend, holiday, weekend = (np.array(col) for col in zip(*SIM_DAYS))
    ref = simulate_clicks(draws, spend, holiday, weekend, np.random.default_rng(seed)).astype(float)
    got = call(answer, draws, spend.copy(), holiday.copy(), weekend.copy(), np.random.default_rng(seed + 1))
    got = np.asarray(got, dtype=float)
    if got.shape != ref.shape:
        return (f"simulate_clicks returned shape {got.shape}; it should return one row per posterior draw and one column "
                f"per day: shape (draws.n_draws, len(spend)) = {ref.shape}")
    if not np.all(np.isfinite(got)) or np.any(got < 0):
        return "some simulated clicks are negative or not finite; clicks are whole numbers >= 0"
    mean_off = [d for d in range(len(spend)) if abs(got[:, d].mean() - ref[:, d].mean())
                > 5 * np.sqrt((ref[:, d].var() + got[:, d].var()) / SIM_DRAWS) + 1e-9]
    var_off = [d for d in range(len(spend)) if not 1 / VARIANCE_FACTOR <= got[:, d].var() / ref[:, d].var() <= VARIANCE_FACTOR]
    # a mean far off first (a wrong formula); then a spread far too narrow, which also biases the means
    # a little (E exp(x) > exp(E x)) and is then the mistake to name
    far = [d for d in mean_off if abs(got[:, d].mean() / ref[:, d].mean() - 1) > 0.1]
    narrow = [d for d in var_off if got[:, d].var() < ref[:, d].var() / 2]
    for what, days, stat in (("mean", far, np.mean), ("variance", narrow, np.var), ("mean", mean_off, np.mean), ("variance", var_off, np.var)):
        if days:
            return what, days[0], float(stat(got[:, days[0]])), float(stat(ref[:, days[0]]))
    return None


def _day(d: int) -> str:
    _, h, w = SIM_DAYS[d]
    return {(0, 0): "an ordinary weekday", (0, 1): "a weekend day", (1, 0): "a holiday", (1, 1): "a holiday on a weekend"}[(h, w)]


@grader("07.simulate_clicks", hints=(
    "Row j of the result is posterior draw j playing every day: draws.imp_intercept[:, None] (shape (n_draws, 1)) broadcasts "
    "against np.log(spend)[None, :] (shape (1, days)). Each negative binomial is a Gamma-mixed Poisson, as in notebook 03's "
    "simulate_day: impressions first, then clicks from them.",
    "mu_imp = exp(imp_intercept + imp_slope * log(spend) + imp_holiday * holiday); impressions = rng.poisson(rng.gamma(imp_alpha, "
    "mu_imp / imp_alpha)); mu_clk = exp(clk_intercept + clk_slope * log(impressions) + clk_holiday * holiday + clk_weekend * "
    "weekend); clicks the same way with clk_alpha, at most the impressions. Every parameter with [:, None].",
))
def _simulate_clicks(answer) -> str | None:
    point, wide = _posteriors()
    for draws, seed in ((point, SIM_SEED + 10), (wide, SIM_SEED + 20)):
        found = _compare(answer, draws, seed)
        if found is None:
            continue
        if isinstance(found, str):
            return found
        what, d, got, ref = found
        if what == "mean":
            return f"the mean of the simulated clicks on {_day(d)} is {off_by(got, ref)}"
        if draws is point and got < 0.1 * ref:
            return (f"at one parameter point the clicks on {_day(d)} vary far too little from draw to draw: a Poisson alone has "
                    "variance = mean; the Gamma-distributed rate adds the negative binomial's market noise")
        if draws is wide and got < ref:
            return (f"on a wide posterior the clicks on {_day(d)} vary too little: the band must hold the posterior's uncertainty "
                    "too, so row j should use posterior draw j's parameters (not one point for every row)")
        return f"the variance of the simulated clicks on {_day(d)} is {off_by(got, ref)}"
    return None


def _flags(month: str):
    from helpers.env import month_calendar

    cal = month_calendar((month,))
    return cal.flags(month), cal.weekend_flags(month)


def _one_campaign(draws) -> None:
    from helpers.bayes import FunnelDraws

    if not isinstance(draws, FunnelDraws):
        raise ValueError("these exercises are about one campaign's plan (FunnelDraws); with several campaigns, read along")


@grader("07.shape_at_double_budget", hints=(
    "baselines.optimal_allocation(holiday, weekend, 2 * BUDGET, draws) gives the month's daily spends for twice the budget; "
    "the flags: env.month_calendar((MONTH,)).flags(MONTH) and .weekend_flags(MONTH).",
    "Divide the largest of those daily spends by the smallest. Then compare with the same ratio at BUDGET.",
))
def _shape(answer, *, draws, month: str, budget: float) -> str | None:
    from helpers.baselines import optimal_allocation

    _one_campaign(draws)
    x = as_number(answer)
    holiday, weekend = _flags(month)
    plan = optimal_allocation(holiday, weekend, 2 * budget, draws)
    right = float(plan.max() / plan.min())
    if np.isclose(x, right, rtol=0.01):
        return None
    return f"your ratio is {off_by(x, right)}: it should compare the busiest planned day with the quietest one"


@grader("07.weekend_multiplier", hints=(
    "For one parameter point the optimum spends in proportion to day_boost ** (1 / (1 - elasticity)) (notebook 03).",
    "Take the posterior mean point, draws.mean(): its weekend_boost and its elasticity; a Saturday that is not a holiday.",
))
def _weekend(answer, *, draws) -> str | None:
    _one_campaign(draws)
    x = as_number(answer)
    point = draws.mean()
    right = float((point.weekend_boost ** (1.0 / (1.0 - point.elasticity)))[0])
    if np.isclose(x, right, rtol=0.01):
        return None
    if np.isclose(x, float(point.weekend_boost[0]), rtol=0.01):
        return "that is how many more clicks a weekend day brings at equal spend, not how much more the optimum spends on it"
    return f"your multiplier is {off_by(x, right)}"


@grader("07.least_budget", hints=(
    "The reader refuses a monthly budget whose even daily pace is below the least the account ever spent in a day "
    "(all campaigns together): account.totals() has the spend per day.",
    "The smallest daily total with spend, times the number of days in MONTH (pd.Period(MONTH, 'M').days_in_month).",
))
def _least_budget(answer, *, account, month: str) -> str | None:
    import pandas as pd

    x = as_number(answer)
    per_day = account.totals()["spend"]
    right = float(per_day[per_day > 0].min() * pd.Period(month, "M").days_in_month)
    if np.isclose(x, right, rtol=1e-3):
        return None
    return f"your budget is {off_by(x, right)}: it should be the least monthly budget the planner accepts for that month"
