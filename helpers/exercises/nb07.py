"""Graders of notebook 07's exercises (your own account: change the budget, explain the plan's shape).

Both work on the learner's own fitted posterior (``draws``, one campaign: ``FunnelDraws``) and
planning month, passed as context; what is right is computed here from the course's helpers.
"""

from __future__ import annotations

import numpy as np

from helpers.exercises import as_number, grader, off_by


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
