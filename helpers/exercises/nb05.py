"""Graders of notebook 05 (training the budget agent).

Each computes what is right from the learner's own objects (the comparison table, the posterior
draws, the reward's configuration, the validation evaluator) with the course's helpers, and says
what is wrong without the expected value. Exercise 4 trains its own runs (the lab's, cached per
kernel) and grades the verdict of the seeds' bands, not which mean is higher; exercise 5 plays
the learner's own pacing rule on the validation months against even pacing.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from helpers.exercises import as_number, grader, off_by


def _near(a: float, b: float, rtol: float) -> bool:
    return bool(np.isclose(a, b, rtol=rtol, atol=1e-9))


def _judge(x: float, expected: float, rtol: float, mistakes: dict[str, float], what: str) -> str | None:
    if _near(x, expected, rtol):
        return None
    for words, value in mistakes.items():
        if np.isfinite(value) and _near(x, value, rtol):
            return words
    return f"{what} is {off_by(x, expected)}"


# --- 05.vs_humans --------------------------------------------------------------------------------

HUMAN_ROW = "historical (human)"


@grader("05.vs_humans", hints=(
    "Both numbers are in the table's 'pct_of_optimum' column: the row of the PPO mean (its name is in ppo_name) and "
    "the row of the historical (human) policy.",
    "table.loc[ppo_name, 'pct_of_optimum'] minus table.loc['historical (human)', 'pct_of_optimum']: a difference of "
    "two percentages, in points.",
))
def _vs_humans(answer, *, table, ppo_name: str) -> str | None:
    x = as_number(answer)
    ppo, human = table.loc[ppo_name], table.loc[HUMAN_ROW]
    expected = ppo["pct_of_optimum"] - human["pct_of_optimum"]
    seeds = [i for i in table.index if str(i).startswith("PPO (seed")]
    return _judge(x, expected, 1e-6, {
        "the sign is flipped: PPO minus the humans": -expected,
        "that is the relative difference in clicks (%); the question asks for points of % of the optimum":
            100 * (ppo["mean_clicks"] / human["mean_clicks"] - 1),
        "that is one seed's row; use the mean of the seeds (ppo_name)":
            table.loc[seeds[0], "pct_of_optimum"] - human["pct_of_optimum"] if seeds else math.nan,
    }, "your difference")


# --- 05.weekend_factor ---------------------------------------------------------------------------


@grader("05.weekend_factor", hints=(
    "At the optimum every day's last unit of spend buys the same number of clicks. With clicks ~ boost * spend**e, "
    "that makes a day's spend grow like boost**(1/(1-e)).",
    "point = draws.mean(); point.weekend_boost[0] ** (1 / (1 - point.elasticity[0])).",
))
def _weekend_factor(answer, *, draws) -> str | None:
    x = as_number(answer)
    point = draws.mean()
    boost, e = float(point.weekend_boost[0]), float(point.elasticity[0])
    return _judge(x, boost ** (1 / (1 - e)), 1e-3, {
        "that is the weekend boost of the clicks itself; the spend that equalises the marginal clicks grows faster":
            boost,
        "the exponent is 1 / (1 - e), not 1 / e": boost ** (1 / e),
        "that is the holiday's factor, not the weekend's": float(point.holiday_boost[0]) ** (1 / (1 - e)),
    }, "your factor")


# --- 05.crumb_reward -----------------------------------------------------------------------------


@grader("05.crumb_reward", hints=(
    "The reward of a day is -log(spend / max(clicks, 1) / reference_cpc) / reward_scale (helpers/env/config.py, reward_scale).",
    "spend = 0.01 and no click: cost per click = 0.01 / 1; so the reward is log(reference_cpc / 0.01) / reward_scale, "
    "with both from cpc_config.resolved().",
))
def _crumb_reward(answer, *, cpc_config) -> str | None:
    x = as_number(answer)
    cfg = cpc_config.resolved()
    raw = math.log(cfg.reference_cpc / 0.01)
    return _judge(x, raw / cfg.reward_scale, 1e-6, {
        "divide by the reward's scale (reward_scale)": raw,
        "the sign is flipped: a cost per click below the reference earns a positive reward": -raw / cfg.reward_scale,
        "natural logarithms, not base 10": math.log10(cfg.reference_cpc / 0.01) / cfg.reward_scale,
    }, "your reward")


# --- 05.lab_verdict ------------------------------------------------------------------------------

#: Exercise 4's experiment: the usual learning rate, a tight clip against a loose one.
LAB_LR = 3e-4
LAB_EPSILONS = (0.05, 0.5)
#: What the answer may be: the epsilon whose whole band ends higher, or no effect shown.
LAB_ANSWERS = (0.05, 0.5, "no effect shown")
_LAB_CACHE: dict[tuple, str] = {}


def lab_verdict(draws, env_config, evaluator, steps: int, seeds, eval_every: int = 10_000) -> str:
    """Train exercise 4's runs (``LAB_EPSILONS`` at ``LAB_LR``, ``seeds`` each, as the lab does) and say
    which epsilon's whole band ends higher, or ``"no effect shown"`` when the bands overlap.
    Cached per kernel (the check cell and a hidden test do not pay twice)."""
    from helpers.widgets import band_verdict, seed_runs

    seeds = tuple(int(s) for s in seeds)
    key = (id(draws), id(env_config), id(evaluator), int(steps), seeds)
    if key not in _LAB_CACHE:
        tight, loose = (seed_runs(draws, eps, LAB_LR, seeds, steps, env_config=env_config, evaluator=evaluator,
                                  eval_every=eval_every)["finals"] for eps in LAB_EPSILONS)
        verdict = band_verdict(loose, tight)
        _LAB_CACHE[key] = {"higher": LAB_EPSILONS[1], "lower": LAB_EPSILONS[0]}.get(verdict, "no effect shown")
    return _LAB_CACHE[key]


def _as_lab_answer(answer) -> Any:
    if isinstance(answer, str):
        text = answer.strip().lower()
        if text in ("no effect shown", "no effect", "none", "no difference"):
            return "no effect shown"
        try:
            answer = float(text)
        except ValueError:
            raise ValueError("answer 0.05, 0.5 or 'no effect shown'") from None
    x = as_number(answer)
    for eps in LAB_EPSILONS:
        if math.isclose(x, eps):
            return eps
    raise ValueError("answer 0.05, 0.5 or 'no effect shown'")


@grader("05.lab_verdict", hints=(
    "Train both settings in the lab (learning rate 3e-4, the same seeds and steps), then read the two final bands "
    "(min to max over the seeds), not only the two means.",
    "A run is higher only if its whole band lies above the other's; if the bands overlap the difference is within the "
    "seeds' noise: no effect shown, whichever mean is higher. The lab's status line gives this verdict.",
))
def _lab_verdict(answer, *, draws, env_config, evaluator, steps: int, seeds) -> str | None:
    given = _as_lab_answer(answer)
    right = lab_verdict(draws, env_config, evaluator, steps, seeds)
    if given == right:
        return None
    if given == "no effect shown":
        return "the bands of the two runs do not overlap: one whole band lies above the other"
    if right == "no effect shown":
        return "a higher mean is not yet an effect: compare the whole bands (min to max over the seeds), not the means"
    return "the other epsilon's band is the higher one"


# --- 05.pacing_rule ------------------------------------------------------------------------------

#: How far above even pacing a rule must be, in standard errors of the paired difference.
PACING_Z = 3.0


@grader("05.pacing_rule", hints=(
    "Your function gets the observations (n, 9) (names in helpers.env.OBS_NAMES) and returns actions (n, 1): 0 is "
    "even pacing, a > 0 spends more than the even pace today (max_multiplier ** a times it). Section 5 showed where "
    "the optimum spends more.",
    "Spend more on weekends and holidays: e.g. a = log(w_today / w_left) / log(max_multiplier), with w = the day's "
    "boost ** (1 / (1 - e)) at the posterior mean (exercise 2), and w_left the mean of w over the days left (from "
    "holidays_left and weekend_days_left).",
))
def _pacing_rule(answer, *, evaluator) -> str | None:
    from helpers.baselines import even_pacing
    from helpers.env import OBS_DIM

    if not callable(answer):
        return f"answer a function obs -> actions, not a {type(answer).__name__}"
    probe = np.zeros((4, OBS_DIM), dtype=np.float32)
    probe[:, 0] = 0.5
    out = np.asarray(answer(probe))
    if out.shape != (4, 1):
        return f"for observations of shape (4, {OBS_DIM}) your function returned shape {out.shape}, not (4, 1)"
    mine, even = evaluator.run(answer), evaluator.run(even_pacing)
    if not np.all(np.isfinite(mine["clicks"])):
        return "your rule produced months without a finite number of clicks (NaN actions?)"
    diff = np.asarray(mine["clicks"], dtype=float) - np.asarray(even["clicks"], dtype=float)  # same months, same noise
    se = diff.std(ddof=1) / math.sqrt(len(diff))
    if np.all(diff == 0):
        return "your rule spends exactly as even pacing does (action 0 every day): make it spend more on some days"
    if diff.mean() <= 0:
        return "on the validation months your rule gets fewer clicks than even pacing"
    if diff.mean() < PACING_Z * se:
        return (f"your rule is ahead of even pacing by less than {PACING_Z:g} standard errors of the paired difference: "
                "not yet distinguishable from noise")
    return None
