"""Graders of notebook 03's exercises (the simulator, the reward, the yardstick).

``03.simulate_day`` checks a learner's one-day simulator against :class:`helpers.env.PacingCore`,
the course's only copy of the dynamics: both play the same days (an ordinary weekday, a weekend
day, a holiday) many times, and the means and variances of impressions, clicks and acquisitions
must agree within their sampling error.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from helpers.exercises import as_number, call, grader, off_by

#: The month the simulator check plays: Eid al-Fitr falls on 10-11 April 2024 (a Wednesday and a
#: Thursday), so it has ordinary weekdays, weekend days and holidays.
SIM_MONTH = "2024-04"
SIM_DAYS = 4000  # draws of each checked day: the means' standard errors are ~1.5% of a sd
SIM_SEED = 20180923
#: A learner's variance may differ from the core's by this factor (sampling error: ~5 standard
#: errors at SIM_DAYS draws); a plain Poisson misses it by a factor of hundreds.
VARIANCE_FACTOR = 1.3


def _truth():
    from helpers.bayes import FunnelDraws
    from helpers.data import TRUE_PARAMS

    return FunnelDraws.from_dict(TRUE_PARAMS)


@lru_cache(maxsize=1)
def _core_days() -> dict[str, dict]:
    """PacingCore's draws of one ordinary weekday, one weekend day and one holiday of SIM_MONTH,
    ``SIM_DAYS`` months side by side, at even pace (the same spend in every slot)."""
    from helpers.env import EnvConfig, PacingCore

    core = PacingCore(_truth(), EnvConfig(months=(SIM_MONTH,)), n_envs=SIM_DAYS)
    core.seed(SIM_SEED)
    core.start(np.arange(SIM_DAYS))
    holiday, weekend = core.calendar.holiday[0], core.calendar.weekend[0]
    days = {}
    for d in range(int(core.calendar.n_days[0])):
        kind = "a holiday" if holiday[d] else "a weekend day" if weekend[d] else "an ordinary weekday"
        _, _, spend, imp, clk, acq = core.step(np.zeros(SIM_DAYS))
        if kind not in days:
            days[kind] = {"spend": float(spend[0]), "holiday": int(holiday[d]), "weekend": int(weekend[d]),
                          "impressions": imp.astype(float), "clicks": clk.astype(float), "acquisitions": acq.astype(float)}
    return days


@grader("03.simulate_day", hints=(
    "A negative binomial with mean mu and dispersion alpha is a Poisson whose rate is Gamma-distributed with "
    "shape alpha and mean mu: rng.poisson(rng.gamma(alpha, mu / alpha)). Impressions first, then clicks from them.",
    "mu_imp = exp(imp_intercept + imp_slope * log(spend) + imp_holiday * holiday); mu_clk = exp(clk_intercept + "
    "clk_slope * log(impressions) + clk_holiday * holiday + clk_weekend * weekend); acquisitions = "
    "rng.binomial(clicks, acq_rate).",
))
def _simulate_day(answer) -> str | None:
    draw = _truth()
    rng = np.random.default_rng(SIM_SEED + 1)
    for kind, day in _core_days().items():
        spend = np.full(SIM_DAYS, day["spend"])
        out = call(answer, spend, draw, day["holiday"], day["weekend"], rng)
        if not isinstance(out, tuple) or len(out) != 3:
            return "simulate_day should return three arrays: impressions, clicks, acquisitions"
        for what, got in zip(("impressions", "clicks", "acquisitions"), out):
            got = np.asarray(got, dtype=float)
            if got.shape != spend.shape:
                return f"{what} has shape {got.shape}; it should have one value per day of spend, shape {spend.shape}"
            if not np.all(np.isfinite(got)) or np.any(got < 0):
                return f"some {what} are negative or not finite; counts are whole numbers >= 0"
            ref = day[what]
            se = np.sqrt((ref.var() + got.var()) / SIM_DAYS)
            if abs(got.mean() - ref.mean()) > 5 * se + 1e-9:
                return f"the mean of the {what} on {kind} is {off_by(got.mean(), ref.mean())}"
            ratio = got.var() / ref.var() if ref.var() > 0 else np.inf
            if not (1 / VARIANCE_FACTOR <= ratio <= VARIANCE_FACTOR):
                if what != "acquisitions" and ratio < 0.1:
                    return (f"the {what} on {kind} vary far too little from day to day: a Poisson alone has variance "
                            "= mean; the Gamma-distributed rate adds the negative binomial's extra spread")
                return f"the day-to-day variance of the {what} on {kind} is {off_by(got.var(), ref.var())}"
    return None


@grader("03.cpc_halving", hints=(
    "CPC = spend / clicks and clicks grow like spend**e: write CPC as a power of spend.",
    "CPC grows like spend**(1 - e); halving spend multiplies it by 0.5**(1 - e), e = mean_point.elasticity[0].",
))
def _cpc_halving(answer, mean_point) -> str | None:
    x = as_number(answer)
    e = float(np.asarray(mean_point.elasticity).reshape(-1)[0])
    expected = 0.5 ** (1 - e)
    mistakes = {
        "that is how the clicks change; the question asks for the cost per click": 0.5**e,
        "that is what doubling the spend does; the question halves it": 2 ** (1 - e),
    }
    if np.isclose(x, expected, rtol=1e-3):
        return None
    for words, value in mistakes.items():
        if np.isclose(x, value, rtol=1e-3):
            return words
    return f"your factor is {off_by(x, expected)}"


@grader("03.best_holiday_rule", hints=(
    "Evaluate HolidayRule(m, config) with evaluator.evaluate(...) for every m in HOLIDAY_MULTIPLIERS and keep "
    "each pct_of_optimum.",
    "The answer is the m whose pct_of_optimum is the highest: max(scores, key=scores.get) on a dict {m: score}.",
))
def _best_holiday_rule(answer, evaluator, multipliers) -> str | None:
    from helpers.baselines import HolidayRule

    x = as_number(answer)
    grid = [float(m) for m in multipliers]
    if not any(np.isclose(x, m) for m in grid):
        return "give one of the multipliers of HOLIDAY_MULTIPLIERS"
    scores = {m: evaluator.evaluate(HolidayRule(m, evaluator.config))["pct_of_optimum"] for m in grid}
    best = max(scores, key=scores.get)
    if np.isclose(x, best):
        return None
    mine = scores[min(grid, key=lambda m: abs(m - x))]
    return (f"x{x:g} reaches {mine:.3f}% of the optimum; another multiplier of the grid scores higher "
            f"({'a larger' if best > x else 'a smaller'} one)")


@grader("03.observation_policy", hints=(
    "weekend_today: the weekday is round(arctan2(dow_sin, dow_cos) * 7 / (2 pi)) % 7 (Monday = 0); Saturday and "
    "Sunday are 5 and 6. Take the observations' columns by OBS_NAMES.index(...).",
    "Return (np.log(multiplier) / np.log(cfg.max_multiplier))[:, None]: one action per row, shape (n, 1); wh and ww "
    "from mean_point's holiday_boost and weekend_boost raised to 1 / (1 - e).",
))
def _observation_policy(answer, evaluator) -> str | None:
    obs = evaluator.core.observe()
    out = np.asarray(call(answer, obs), dtype=float)
    if out.shape != (len(obs), 1):
        return f"your policy returned shape {out.shape} for {len(obs)} observations; it should return ({len(obs)}, 1)"
    if not np.all(np.isfinite(out)):
        return "your policy returned NaN or inf actions"
    score = evaluator.evaluate(answer, "exercise 3")["pct_of_optimum"]
    if score >= 99.0:
        return None
    return f"your policy reaches {score:.2f}% of the optimum; it should reach 99%"


@grader("03.pinch_clicks_gap", hints=(
    "Both numbers are in cpc_table's column mean_clicks, one per row.",
    "cpc_table.loc['even pacing', 'mean_clicks'] minus the pinching policy's mean_clicks.",
))
def _pinch_clicks_gap(answer, cpc_table) -> str | None:
    x = as_number(answer)
    clicks = cpc_table["mean_clicks"]
    expected = clicks["even pacing"] - clicks["pinch, dump on the last day"]
    if np.isclose(x, expected, rtol=1e-3):
        return None
    if np.isclose(x, -expected, rtol=1e-3):
        return "the sign is reversed: pinching LOSES clicks, so give even pacing's clicks minus pinching's"
    return f"your gap is {off_by(x, expected)}"


@grader("03.oracle_ceiling", hints=(
    "Compare the oracle's row with the optimum's in section 5's table: which scores higher?",
    "The oracle knows each month's draw; a closed-loop agent sees yesterday's cost per click, which tells it "
    "something about that draw. Could it then beat a plan made for all draws at once?",
))
def _oracle_ceiling(answer) -> str | None:
    if not isinstance(answer, str):
        return 'answer "yes" or "no" (a string)'
    a = answer.strip().lower()
    if a not in ("yes", "no"):
        return 'answer "yes" or "no"'
    return None if a == "yes" else "not what the oracle's row suggests: what does the oracle know that the plan does not?"
