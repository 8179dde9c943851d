"""Graders of notebook 06's exercises (carryover, the optimum over days x channels, the cap).

``06.adstock`` checks a learner's adstock transform against :func:`helpers.carryover.effective_spend`
(the course's only copy, used by the model, the simulator and the plans) on the grader's own spends
and carryover shares, and names the usual mistakes: weights that do not sum to 1, the lags taken the
wrong way round (tomorrow's spend working today, or the oldest day weighing most), the days before
the first one wrapped around instead of counted as zero.
"""

from __future__ import annotations

import numpy as np

from helpers.exercises import as_number, call, grader, off_by

ADSTOCK_SEED = 20180923
#: The carryover shares the adstock check plays: none, some, much (one campaign each).
ADSTOCK_THETAS = (0.0, 0.3, 0.7)


def _adstock_problem(answer, spend: np.ndarray, theta: np.ndarray, n_lags: int) -> tuple[np.ndarray | None, str | None]:
    """The learner's effective spend of one input, or what is wrong with its shape or values."""
    out = np.asarray(call(answer, spend.copy(), theta.copy(), n_lags), dtype=float)
    if out.shape != spend.shape:
        return None, (f"adstock returned shape {out.shape}; it should return one effective spend per day and campaign, "
                      f"the shape of spend {spend.shape}")
    if not np.all(np.isfinite(out)):
        return None, "adstock returned NaN or inf"
    return out, None


@grader("06.adstock", hints=(
    "x[t, c] = sum over j < n_lags of w_j(theta[c]) * spend[t - j, c], with w_j = (1 - theta) * theta**j / "
    "(1 - theta**n_lags): j = 0 is today, j = 1 yesterday; the days before the first row count as 0.",
    "w = (1 - theta[:, None]) * theta[:, None] ** np.arange(n_lags) / (1 - theta[:, None] ** n_lags) gives (K, n_lags) "
    "weights; then x = zeros like spend and, for j in range(n_lags), x[j:] += w[:, j] * spend[:len(spend) - j].",
))
def _adstock(answer) -> str | None:
    from helpers.carryover import effective_spend

    rng = np.random.default_rng(ADSTOCK_SEED)
    theta = np.array(ADSTOCK_THETAS)
    K = len(theta)
    # 1. a constant spend keeps its level once n_lags days have passed: the weights sum to 1
    #    (looked at away from both ends, where lags taken the wrong way round would also lose some)
    n_lags = 6
    level = np.full((3 * n_lags, K), 100.0)
    out, problem = _adstock_problem(answer, level, theta, n_lags)
    if problem:
        return problem
    late = out[n_lags:-n_lags] / level[n_lags:-n_lags]
    if not np.allclose(late, 1.0, rtol=1e-6):
        worst = int(np.argmax(np.abs(late - 1).max(axis=0)))
        return (f"a constant spend should keep its level (after the first n_lags days), but with theta = {theta[worst]:g} "
                "it does not: normalise the weights so that they sum to 1")
    # 2. one day's spend (an impulse) works that day and the n_lags - 1 days after, never before,
    #    decreasing with the lag, and the first days are not reached from the last ones
    T = 4 * n_lags
    impulse = np.zeros((T, K))
    impulse[T - 2] = 50.0  # near the end: a wrap-around (np.roll) shows on the first days
    impulse[n_lags] = 50.0
    out, problem = _adstock_problem(answer, impulse, theta, n_lags)
    if problem:
        return problem
    if np.any(np.abs(out[:n_lags]) > 1e-9):
        if np.any(np.abs(out[: n_lags - 2]) > 1e-9) and np.all(np.abs(out[n_lags - 2 : n_lags]) <= 1e-9):
            return ("the last days' spend shows up on the first days: the days before the first row count as 0 "
                    "(np.roll wraps around; shift with zeros instead)")
        return ("spend works on days BEFORE it is spent: the lags run the wrong way; today's effective spend takes "
                "today's and the earlier days' spend (spend[t - j]), not the later days'")
    carried = out[n_lags : 2 * n_lags, 1:]  # the impulse's effect on the days after, for theta > 0
    if np.any(np.diff(carried, axis=0) > 1e-9):
        return ("the weights grow with the lag: the lag order is reversed; the most recent day (j = 0, today) "
                "weighs most and each day back weighs theta times less")
    # 3. the effective spend itself, on random spends and a realistic number of lags
    for n_lags, T in ((6, 30), (28, 90)):
        spend = rng.gamma(2.0, 50.0, size=(T, K))
        spend[rng.random((T, K)) < 0.2] = 0.0  # days a campaign does not run
        out, problem = _adstock_problem(answer, spend, theta, n_lags)
        if problem:
            return problem
        ref = effective_spend(spend, theta, None, n_lags)
        if not np.allclose(out[:, 0], spend[:, 0], rtol=1e-9, atol=1e-9):
            return "with theta = 0 (no carryover) the effective spend should be the day's spend itself"
        if not np.allclose(out, ref, rtol=1e-6, atol=1e-9):
            t, c = np.unravel_index(np.argmax(np.abs(out - ref)), out.shape)
            return (f"the effective spend differs from the course's with {n_lags} lags (theta = {theta[c]:g}, day {t}): "
                    f"yours is {off_by(out[t, c], ref[t, c])}")
    return None


@grader("06.yesterday_weight", hints=(
    "Section 2's weights: w_j = (1 - theta) * theta**j / (1 - theta**ADSTOCK_LAGS), where j counts the days back "
    "from today (j = 0).",
    "Yesterday is j = 1: (1 - THETA_WHAT_IF) * THETA_WHAT_IF / (1 - THETA_WHAT_IF ** bayes.ADSTOCK_LAGS).",
))
def _yesterday_weight(answer, theta) -> str | None:
    from helpers.carryover import ADSTOCK_LAGS, adstock_weights

    x = as_number(answer)
    w = adstock_weights(np.array(float(theta)), ADSTOCK_LAGS)
    if np.isclose(x, w[1], rtol=1e-6):
        return None
    if np.isclose(x, w[0], rtol=1e-6):
        return "that is today's weight (j = 0); yesterday is one day back"
    if np.isclose(x, w[2], rtol=1e-6):
        return "that is the weight of the day before yesterday (j = 2); yesterday is j = 1"
    if not 0 < x < 1:
        return "a weight of the normalised adstock lies between 0 and 1 (they all sum to 1)"
    return f"your weight is {off_by(x, float(w[1]))}"


def _active_marginals(draws, config, month: str):
    """The month's active campaigns (mask) and each campaign's marginal clicks per unit of spend at the
    optimum (every active day of a campaign gets the same spend without carryover)."""
    from helpers.baselines import channel_response, optimal_channel_allocation

    cfg = config.resolved()
    hist = cfg.channels
    h = int(hist.month_index([month])[0])
    on = hist.active[h, : hist.n_days[h]].any(axis=0)
    response = channel_response(draws, cfg)
    plan = optimal_channel_allocation(draws, cfg, month, response)
    marginal = response(plan.max(axis=0)[None, None, :])[1][0, 0]
    return on, marginal


@grader("06.marginal_leader", hints=(
    "response(plan.max(axis=0)[None, None, :]) returns (clicks, marginals); [1][0, 0] is one marginal per campaign. "
    "Only the campaigns active in SHOW_MONTH (the mask `on`) count.",
    "ch.channels[int(np.argmax(np.where(on, marginals, -np.inf)))]; then look at per_channel's 'at the cap' column.",
))
def _marginal_leader(answer, channels, draws, config, month) -> str | None:
    names = list(channels)
    if not isinstance(answer, str):
        return "give the campaign's name, a string from ch.channels"
    if answer not in names:
        return f"{answer!r} is not one of the campaigns in ch.channels"
    on, marginal = _active_marginals(draws, config, month)
    k = names.index(answer)
    if not on[k]:
        return f"{answer} does not run in {month}: only the campaigns active that month count"
    best = int(np.argmax(np.where(on, marginal, -np.inf)))
    if k == best:
        return None
    return f"another campaign active in {month} earns more clicks per unit of spend at the margin than {answer}"


@grader("06.uncapped_multiple", hints=(
    "baselines.optimal_channel_allocation(draws, channel_config(cap_multiple=None), SHOW_MONTH) is the plan without the "
    "cap; take the column of exercise 2's campaign.",
    "That column's largest daily spend divided by history.max_daily_spend of the same campaign (its busiest day ever), "
    "not by its spend in this month.",
))
def _uncapped_multiple(answer, channels, draws, config, month) -> str | None:
    from dataclasses import replace

    from helpers.baselines import optimal_channel_allocation

    x = as_number(answer)
    cfg = config.resolved()
    hist = cfg.channels
    on, marginal = _active_marginals(draws, cfg, month)
    star = int(np.argmax(np.where(on, marginal, -np.inf)))
    uncapped = optimal_channel_allocation(draws, replace(cfg, cap_multiple=None), month)
    daily = float(uncapped[:, star].max())
    expected = daily / float(hist.max_daily_spend[star])
    if np.isclose(x, expected, rtol=1e-4):
        return None
    if np.isclose(x, daily, rtol=1e-4):
        return "that is a daily spend; give it as a multiple of the campaign's highest observed daily spend"
    h = int(hist.month_index([month])[0])
    if hist.prior_spend[h, star] > 0 and np.isclose(x, daily / float(hist.prior_spend[h, star]), rtol=1e-4):
        return "that divides by the campaign's usual daily spend in this month; divide by its highest observed daily spend"
    if config.cap_multiple is not None and np.isclose(x, float(config.cap_multiple), rtol=1e-3):
        return "that is the cap itself: re-plan without it, channel_config(cap_multiple=None)"
    return f"your multiple is {off_by(x, expected)}"
