"""The several-channel baselines (helpers.baselines, notebook 06): the open-loop optimum over days x
channels satisfies its optimality (KKT) conditions and beats every feasible perturbation, plans are
followed exactly by the env, the oracle bounds the optimum, the evaluation table is complete."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.baselines import (
    ORACLE_NAME,
    Evaluator,
    OraclePolicy,
    _channel_month,
    channel_response,
    expected_channel_clicks,
    historical_replay_policy,
    optimal_channel_allocation,
    optimum_policy,
    proportional_policy,
    response_terms,
    standard_policies,
)
from helpers.env import PacingCore, channel_config, channel_history

from channel_fixtures import channel_posterior  # tests/ is on sys.path under pytest

HIST = channel_history()
CONFIG = channel_config()
POSTERIOR = channel_posterior()
CARRYOVER = channel_posterior(adstock=0.5)
K = HIST.n_channels


def random_moves(plan, active, cap, rng, n=200, size=0.02):
    """Feasible perturbations of a plan: move a share of one (day, channel)'s spend to another active one."""
    t, c = np.nonzero(active)
    for _ in range(n):
        i, j = rng.choice(len(t), 2, replace=False)
        moved = plan.copy()
        amount = size * moved[t[i], c[i]]
        amount = min(amount, cap[c[j]] - moved[t[j], c[j]])
        moved[t[i], c[i]] -= amount
        moved[t[j], c[j]] += amount
        yield moved


@pytest.mark.parametrize("month", HIST.months)
def test_the_plan_without_carryover_satisfies_kkt_and_beats_every_move(month):
    response = channel_response(POSTERIOR, CONFIG)
    plan = optimal_channel_allocation(POSTERIOR, CONFIG, month, response)
    h = HIST.month_index([month])[0]
    n = HIST.n_days[h]
    active = HIST.active[h, :n]
    cap = CONFIG.cap_multiple * HIST.max_daily_spend
    assert plan.sum() == pytest.approx(HIST.budget[h], rel=1e-12)
    assert np.all(plan[~active] == 0) and np.all(plan <= cap * (1 + 1e-12))
    daily = plan.max(axis=0)  # one spend per channel on its active days
    np.testing.assert_allclose(plan, active * daily, rtol=1e-12)
    # KKT: equal marginal clicks per unit of spend on every channel strictly between 0 and its cap,
    # at least that much on a capped channel
    _, marginal = response(daily[None, None, :])
    marginal = marginal[0, 0]
    on = active.any(axis=0)
    inside = on & (daily < cap * (1 - 1e-9)) & (daily > 1e-9)
    price = marginal[inside].mean()
    np.testing.assert_allclose(marginal[inside], price, rtol=1e-5)
    assert np.all(marginal[on & ~inside & (daily >= cap * (1 - 1e-9))] >= price * (1 - 1e-6))
    value = expected_channel_clicks(plan, POSTERIOR, CONFIG, month, response)
    rng = np.random.default_rng(0)
    assert all(expected_channel_clicks(m, POSTERIOR, CONFIG, month, response) <= value * (1 + 1e-12) for m in random_moves(plan, active, cap, rng))
    proportional = active * HIST.prior_spend[h]
    proportional *= HIST.budget[h] / proportional.sum()
    assert value > expected_channel_clicks(proportional, POSTERIOR, CONFIG, month, response)


@pytest.mark.parametrize("month", ["2025-02", "2025-04"])
def test_the_plan_with_carryover_is_a_kkt_point_and_beats_every_move(month):
    response = channel_response(CARRYOVER, CONFIG)
    plan = optimal_channel_allocation(CARRYOVER, CONFIG, month, response)
    problem, active, _ = _channel_month(CARRYOVER, CONFIG, month, pooled=False)
    h = HIST.month_index([month])[0]
    assert plan.sum() == pytest.approx(HIST.budget[h], rel=1e-12)
    assert np.all(plan[active == 0] == 0)
    _, g = problem.value_and_marginal(plan[None], response)
    gap, above = problem.kkt_gap(plan[None], g)
    assert gap[0] < 1e-5 and above[0] < 1e-3
    value = expected_channel_clicks(plan, CARRYOVER, CONFIG, month, response)
    rng = np.random.default_rng(1)
    cap = CONFIG.cap_multiple * HIST.max_daily_spend
    assert all(expected_channel_clicks(m, CARRYOVER, CONFIG, month, response) <= value * (1 + 1e-9)
               for m in random_moves(plan, active.astype(bool), cap, rng, size=0.05))
    # planning for the carryover beats ignoring it (the plan without, played with carryover)
    naive = optimal_channel_allocation(POSTERIOR, CONFIG, month)
    assert value > expected_channel_clicks(naive, CARRYOVER, CONFIG, month, response)


def test_the_env_follows_a_plan_exactly():
    policy = optimum_policy(POSTERIOR, CONFIG)
    core = PacingCore(POSTERIOR, CONFIG, n_envs=4)
    core.seed(0)
    core.start(np.arange(4), month_idx=np.arange(4))
    spent = []
    for _ in range(31):
        core.step(policy(core.observe(), core.state()))
        spent.append(core.last_channel_spend.T.copy())
    spent = np.array(spent)  # (31, 4, K)
    for i, month in enumerate(HIST.months):
        n = HIST.n_days[i]
        np.testing.assert_allclose(spent[:n, i], policy.plan(month, None, None), rtol=1e-9, atol=1e-9)


def test_expected_clicks_match_the_simulator():
    """response_terms' k * spend**e (per channel) is the simulator's mean daily clicks."""
    point = POSTERIOR.mean()
    n = 4000
    core = PacingCore(point, CONFIG, n_envs=n)
    core.seed(2)
    core.start(np.arange(n), month_idx=3)  # April: brand, lookalike, video (6 days), niche, broad
    core.step(np.zeros((n, 1 + K)))
    log_k, e, _, _ = response_terms(point)
    s = core.last_channel_spend[:, 0]
    on = s > 0
    want = np.exp(log_k[0] + e[0] * np.log(np.where(on, s, 1.0)))
    got = core.last_channel_clicks.mean(axis=1)
    np.testing.assert_allclose(got[on], want[on], rtol=0.03)


@pytest.fixture(scope="module")
def evaluator():
    return Evaluator(POSTERIOR, CONFIG, n_months=200)


def test_the_table_has_the_channel_baselines_the_optimum_and_the_oracle(evaluator):
    table = evaluator.table(standard_policies(CONFIG), include_oracle=True)
    assert list(table.index) == ["historical (replay)", "even pacing, historical split", "optimum (clicks)", ORACLE_NAME]
    assert table.loc["optimum (clicks)", "pct_of_optimum"] == 100.0  # exact: its own totals over themselves
    np.testing.assert_allclose(table["budget_used"], 1.0, rtol=1e-12)
    assert table.loc[ORACLE_NAME, "pct_of_optimum"] > 100.0  # it knows each month's draw
    assert table.loc["even pacing, historical split", "pct_of_optimum"] < 97.0
    assert np.isnan(table["pct_of_optimum_acquisitions"]).all()  # the channel data have no acquisitions


def test_the_replay_spends_what_the_marketers_spent(evaluator):
    replay = historical_replay_policy(CONFIG)
    core = evaluator.core
    core.seed(0)
    core.start(np.arange(4), month_idx=np.arange(4))
    for day in range(31):
        spend_before = core.ep_channel_spend[:, :4].copy()
        core.step(replay(core.observe(), core.state()))
    for i in range(4):
        np.testing.assert_allclose(core.ep_channel_spend[:, i], HIST.spend[i].sum(axis=0), rtol=1e-9)
    assert spend_before.shape == (K, 4)
    zero = proportional_policy(K)(np.zeros((3, 2 + 3 * K)))
    assert zero.shape == (3, 1 + K) and not zero.any()


def test_an_oracle_with_one_draw_is_the_optimum():
    point = POSTERIOR.mean()
    ev = Evaluator(point, CONFIG, n_months=8)
    opt = ev.evaluate(ev.optimum()[0])
    oracle = ev.evaluate(ev.oracle())
    assert oracle["mean_clicks"] == pytest.approx(opt["mean_clicks"], rel=1e-6)
    with pytest.raises(NotImplementedError, match="carryover"):
        OraclePolicy(CARRYOVER, CONFIG)


def test_the_oracle_carries_out_its_own_plan_with_a_zero_share():
    """Issue 19, loose end 9: a channel not worth any money in a draw (here its response is
    convex, elasticity 1.08, and too weak to pay even at its cap) gets a zero share in the
    oracle's plan, and that share became the lowest split logit, -1, which still gave the channel
    an eighth of its historical weight: the oracle did not carry out its own plan. The lowest
    logit now switches a channel off for the day; the env follows the plan to the cent."""
    from helpers.baselines import _waterfill_power

    dead = HIST.channels.index("lookalike_conversions")  # active every day of every month
    draws = POSTERIOR.subset(np.arange(4))
    imp_slope = draws.imp_slope.copy()
    clk_slope = draws.clk_slope.copy()
    clk_intercept = draws.clk_intercept.copy()
    imp_slope[:, dead], clk_slope[:, dead] = 1.2, 0.9
    clk_intercept[:, dead] -= 8.0
    draws = draws.replace(imp_slope=imp_slope, clk_slope=clk_slope, clk_intercept=clk_intercept)
    oracle = OraclePolicy(draws, CONFIG)
    core = PacingCore(draws, CONFIG, n_envs=4)
    core.seed(0)
    core.start(np.arange(4), month_idx=np.arange(4), draw_idx=np.arange(4))  # month m with draw m
    spent = []
    for _ in range(31):
        core.step(oracle(core.observe(), core.state()))
        spent.append(core.last_channel_spend.T.copy())
    spent = np.array(spent)  # (31, 4, K)
    assert np.all(spent[:, :, dead] == 0.0)
    log_k, e, _, _ = response_terms(draws)
    active = HIST.active[:, :31]  # (4, 31, K)
    plan = _waterfill_power(log_k, e, active.sum(axis=1).astype(float), HIST.budget, CONFIG.cap_multiple * HIST.max_daily_spend)
    assert np.all(plan[:, dead] == 0.0) and np.all(plan.sum(axis=1) > 0)
    for m in range(4):
        n = HIST.n_days[m]
        np.testing.assert_allclose(spent[:n, m], active[m, :n] * plan[m], rtol=1e-9, atol=1e-9 * HIST.budget[m])
