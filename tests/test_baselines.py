"""Tests of helpers.baselines: the optimum against its closed form, the policies, the evaluation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from helpers import data
from helpers.baselines import (
    Evaluator,
    HolidayRule,
    HumanPolicy,
    OpenLoopPolicy,
    closed_form_allocation,
    even_pacing,
    expected_daily,
    fit_human_pacing,
    optimal_allocation,
    optimum_policy,
    play_month,
    response_terms,
    standard_policies,
)
from helpers.bayes import FunnelDraws
from helpers.env import EVAL_MONTHS, TRAIN_MONTHS, EnvConfig, PacingCore, month_calendar

from funnel_fixtures import TRUTH, jittered_posterior  # tests/ is on sys.path under pytest

POSTERIOR = jittered_posterior()
CAL = month_calendar(TRAIN_MONTHS + EVAL_MONTHS)
BUDGET = 30_000.0


@pytest.fixture(scope="module")
def evaluator():
    return Evaluator(POSTERIOR, n_months=240)


# --- the optimum ------------------------------------------------------------------------------


# 2, 4, 2 and 0 holidays; 2024-03 and 2024-02 have a holiday on a weekend (all four kinds of day)
@pytest.mark.parametrize("month", ["2024-04", "2026-05", "2025-03", "2024-10", "2024-03", "2024-02"])
@pytest.mark.parametrize("pool", [True, False])
def test_slsqp_matches_the_closed_form_for_one_parameter_point(month, pool):
    h, w = CAL.flags(month), CAL.weekend_flags(month)
    x = optimal_allocation(h, w, BUDGET, TRUTH, pool_equal_days=pool)
    # by hand: spend proportional to (hboost**h * wboost**w) ** (1 / (1 - e)), e = 0.85 * 0.92,
    # hboost = exp(0.92 * 0.05 + 0.20), wboost = exp(0.25)
    e, hboost, wboost = 0.85 * 0.92, math.exp(0.92 * 0.05 + 0.20), math.exp(0.25)
    weights = (hboost**h * wboost**w) ** (1 / (1 - e))
    np.testing.assert_allclose(x, BUDGET * weights / weights.sum(), rtol=1e-3)
    np.testing.assert_allclose(x, closed_form_allocation(h, w, BUDGET, TRUTH), rtol=1e-3)
    assert x.sum() == pytest.approx(BUDGET, rel=1e-12)
    plain = x[(h == 0) & (w == 0)][0]
    assert x[(h == 0) & (w == 1)][0] / plain == pytest.approx(wboost ** (1 / (1 - e)), rel=1e-3)  # ~3.15x
    if h.any():
        assert x[(h == 1) & (w == 0)][0] / plain == pytest.approx(hboost ** (1 / (1 - e)), rel=1e-3)  # ~3.09x
    if ((h == 1) & (w == 1)).any():
        assert x[(h == 1) & (w == 1)][0] / plain == pytest.approx((hboost * wboost) ** (1 / (1 - e)), rel=1e-3)


def test_day_boost_combines_holiday_and_weekend():
    b = TRUTH.day_boost([0, 1, 0, 1], [0, 0, 1, 1])
    assert b.shape == (1, 4)
    hb, wb = math.exp(0.92 * 0.05 + 0.20), math.exp(0.25)
    np.testing.assert_allclose(b[0], [1.0, hb, wb, hb * wb], rtol=1e-12)
    np.testing.assert_allclose(TRUTH.day_boost(1, 0), TRUTH.holiday_boost)
    np.testing.assert_allclose(POSTERIOR.day_boost(0, 1), np.exp(POSTERIOR.clk_weekend))
    assert POSTERIOR.day_boost(np.zeros(5), np.ones(5)).shape == (POSTERIOR.n_draws, 5)


@pytest.mark.parametrize("objective", ["clicks", "acquisitions"])
def test_optimum_over_the_posterior_satisfies_kkt_and_beats_the_alternatives(objective):
    h, w = CAL.flags("2026-05"), CAL.weekend_flags("2026-05")
    x = optimal_allocation(h, w, BUDGET, POSTERIOR, objective)
    np.testing.assert_allclose(x, optimal_allocation(h, w, BUDGET, POSTERIOR, objective, pool_equal_days=False), rtol=1e-5)
    assert x.sum() == pytest.approx(BUDGET) and np.all(x > 0)
    # KKT: the marginal expected count of one more unit of spend is the same on every day
    log_k, e, log_hb, log_wb = response_terms(POSTERIOR, objective)
    marginal = np.mean(np.exp(log_k[:, None] + log_hb[:, None] * h + log_wb[:, None] * w) * e[:, None] * x ** (e[:, None] - 1), axis=0)
    np.testing.assert_allclose(marginal, marginal.mean(), rtol=1e-5)
    value = expected_daily(x, h, w, POSTERIOR, objective).sum()
    for other in (np.full(len(h), BUDGET / len(h)), closed_form_allocation(h, w, BUDGET, POSTERIOR.mean())):
        assert value >= expected_daily(other, h, w, POSTERIOR, objective).sum()


def test_optimal_allocation_rejects_bad_input():
    with pytest.raises(ValueError, match="positive budget"):
        optimal_allocation([0, 1], [0, 0], 0.0, TRUTH)
    with pytest.raises(ValueError, match="objective"):
        optimal_allocation([0, 1], [0, 0], 1.0, TRUTH, objective="revenue")
    with pytest.raises(ValueError, match="same shape"):
        optimal_allocation([0, 1], [0, 0, 1], 1.0, TRUTH)
    with pytest.raises(ValueError, match="single parameter point"):
        closed_form_allocation([0, 1], [1, 1], 1.0, POSTERIOR)


def test_expected_daily_matches_the_simulator():
    """The analytic mean response (used by the optimiser) is what the simulator produces on average."""
    month, n_months = "2024-04", 3000
    core = PacingCore(TRUTH, EnvConfig(months=(month,), budget=BUDGET), n_envs=n_months)
    core.seed(0)
    core.start(np.arange(n_months), month_idx=0, draw_idx=0)
    while np.any(core.day < core.n_days):
        core.step(np.zeros((n_months, 1)))
    h, w = CAL.flags(month), CAL.weekend_flags(month)
    expected = expected_daily(np.full(len(h), BUDGET / len(h)), h, w, TRUTH)
    for got, want in ((core.ep_clicks, expected.sum()), (core.ep_acquisitions, expected.sum() * 0.03)):
        se = got.std(ddof=1) / math.sqrt(n_months)
        assert abs(got.mean() - want) < 4 * se, (got.mean(), want, se)


# --- policies ---------------------------------------------------------------------------------


def test_open_loop_optimum_is_followed_exactly_in_the_env():
    for month in ("2024-04", "2024-03"):  # 2024-03 needs the smallest multiplier of all (~0.46x)
        cfg = EnvConfig(months=(month,))
        df = play_month(optimum_policy(POSTERIOR, cfg), POSTERIOR, month, cfg, draw=3)
        target = optimal_allocation(CAL.flags(month), CAL.weekend_flags(month), cfg.resolved().budget, POSTERIOR)
        np.testing.assert_allclose(df["spend"].to_numpy(), target, rtol=1e-9)
        np.testing.assert_array_equal(df["holiday"].to_numpy(), CAL.flags(month))
        np.testing.assert_array_equal(df["weekend"].to_numpy(), data.weekend_flags(df["date"]))


def test_even_pacing_and_holiday_rule_spend_as_documented():
    cfg = EnvConfig(budget=31_000.0)
    even = play_month(even_pacing, TRUTH, "2023-01", cfg)
    np.testing.assert_allclose(even["spend"], 1000.0, rtol=1e-12)
    rule = play_month(HolidayRule(2.0, cfg), TRUTH, "2023-01", cfg)
    pace = (31_000.0 - rule["spend"].cumsum().shift(fill_value=0.0)).to_numpy() / (31 - np.arange(31))
    expected = np.where(rule["holiday"] == 1, 2.0, 1.0) * pace
    expected[-1] = pace[-1]  # the last day spends the rest
    np.testing.assert_allclose(rule["spend"], expected, rtol=1e-6)
    assert rule["holiday"].sum() == 2 and rule["spend"].sum() == pytest.approx(31_000.0)
    with pytest.raises(ValueError, match="outside the action bounds"):
        HolidayRule(20.0)


def test_human_rule_estimated_from_the_data_recovers_the_generator():
    fit = fit_human_pacing()
    assert fit.holiday_uplift == pytest.approx(data.TRUE_PACING["holiday_uplift"], abs=0.08)
    assert fit.pacing_noise == pytest.approx(data.TRUE_PACING["pacing_noise"], abs=0.02)
    assert fit.n_days == 731


def test_human_policy_follows_its_plan_and_replays_the_same_noise():
    cfg = EnvConfig()
    noiseless = HumanPolicy(cfg, noise=False)
    df = play_month(noiseless, TRUTH, "2024-04", cfg)
    w = 1 + noiseless.pacing.holiday_uplift * df["holiday"].to_numpy()
    np.testing.assert_allclose(df["spend"], cfg.resolved().budget * w / w.sum(), rtol=1e-9)
    noisy = HumanPolicy(cfg, seed=4)
    a, b = play_month(noisy, TRUTH, "2024-04", cfg), play_month(HumanPolicy(cfg, seed=4), TRUTH, "2024-04", cfg)
    np.testing.assert_array_equal(a["spend"], b["spend"])
    ratio = a["spend"].to_numpy() / (w / w.sum() * cfg.resolved().budget)
    assert 0.1 < np.std(np.log(ratio)) < 0.45  # the humans' day-to-day noise (sd ~0.25) is there


def test_open_loop_policy_validates_its_plan():
    bad = OpenLoopPolicy(lambda month, h, w: -np.ones(len(h)), name="negative")
    with pytest.raises(ValueError, match="negative: plan for 2024-04"):
        play_month(bad, TRUTH, "2024-04")


# --- the evaluation ---------------------------------------------------------------------------


def test_evaluation_table_and_the_yardstick(evaluator):
    table = evaluator.table(standard_policies())
    assert list(table.index) == ["even pacing", "historical (human)", "holiday rule (2x)", "optimum (clicks)", "optimum (acquisitions)"]
    for col in ("mean_clicks", "mean_acquisitions", "mean_cpc", "cvar5_clicks", "budget_used", "pct_of_optimum", "pct_of_optimum_se", "pct_of_optimum_acquisitions"):
        assert col in table.columns
    np.testing.assert_allclose(table["budget_used"], 1.0, rtol=1e-9)
    # exact on any CPU: the optimum's own totals divided by themselves, in one process
    assert table.loc["optimum (clicks)", "pct_of_optimum"] == 100.0
    assert table.loc["optimum (acquisitions)", "pct_of_optimum_acquisitions"] == 100.0
    assert (table["cvar5_clicks"] < table["mean_clicks"]).all()
    pct = table["pct_of_optimum"]
    # the headroom the course's RL lesson needs: weekends and holidays leave ~3% on the table
    assert 95.5 < pct["historical (human)"] < pct["even pacing"] < pct["holiday rule (2x)"] < 98.5
    assert table.loc["even pacing", "pct_of_optimum_se"] < 0.35  # 240 months; ~0.1 at the default 1,000


def test_even_pacing_pct_agrees_with_the_analytic_expectation(evaluator):
    """Simulated % of optimum = ratio of expected totals over the same episodes (within 3 SE)."""
    result = evaluator.evaluate(even_pacing)
    budget = evaluator.config.budget
    even_total = opt_total = 0.0
    sub = POSTERIOR.subset(evaluator.draw_idx)
    for i, month in enumerate(evaluator.calendar.months):
        h, w = evaluator.calendar.flags(month), evaluator.calendar.weekend_flags(month)
        rows = np.flatnonzero(evaluator.month_idx == i)
        draws = sub.subset(rows)
        x = optimal_allocation(h, w, budget, POSTERIOR)
        even_total += expected_daily(np.full(len(h), budget / len(h)), h, w, draws).sum() * len(rows)
        opt_total += expected_daily(x, h, w, draws).sum() * len(rows)
    analytic = 100 * even_total / opt_total
    assert abs(result["pct_of_optimum"] - analytic) < 3 * result["pct_of_optimum_se"], (result["pct_of_optimum"], analytic)


def test_evaluation_is_deterministic_and_shared(evaluator):
    a = evaluator.evaluate(HolidayRule(2.0))
    b = evaluator.evaluate(HolidayRule(2.0))
    c = Evaluator(POSTERIOR, n_months=240).evaluate(HolidayRule(2.0))
    assert a == b
    assert {k: v for k, v in a.items() if k != "policy"} == pytest.approx({k: v for k, v in c.items() if k != "policy"})
    ep = evaluator.run(even_pacing)
    assert set(ep["month"]) == set(EVAL_MONTHS)  # evaluation months, cycled
    np.testing.assert_array_equal(ep["draw"], evaluator.draw_idx)


def test_any_callable_is_a_policy(evaluator):
    import torch

    flat = evaluator.evaluate(lambda obs: np.zeros(len(obs)), name="flat")  # (n,) is fine
    as_tensor = evaluator.evaluate(lambda obs: torch.zeros(len(obs), 1), name="torch")
    assert flat["mean_clicks"] == as_tensor["mean_clicks"] == evaluator.evaluate(even_pacing)["mean_clicks"]
    with pytest.raises(ValueError, match="shape"):
        evaluator.evaluate(lambda obs: np.zeros((len(obs), 2)))
    with pytest.raises(ValueError, match="finite"):
        evaluator.evaluate(lambda obs: np.full((len(obs), 1), np.nan))


def test_evaluator_with_the_posterior_mean():
    ev = Evaluator(POSTERIOR, EnvConfig(params="mean"), n_months=48)
    assert ev.core.draws.n_draws == 1 and set(ev.draw_idx) == {0}
    result = ev.evaluate(even_pacing)
    assert 95.5 < result["pct_of_optimum"] < 98.5
    df = pd.DataFrame([result])
    assert df.loc[0, "n_months"] == 48


def test_human_policy_replans_when_the_months_change():
    """One HumanPolicy reused across evaluators with other months must not reuse stale plans."""
    policy = HumanPolicy(noise=False)
    a = Evaluator(TRUTH, n_months=24, months=TRAIN_MONTHS).evaluate(policy)
    b = Evaluator(TRUTH, n_months=24).evaluate(policy)
    fresh = Evaluator(TRUTH, n_months=24).evaluate(HumanPolicy(noise=False))
    assert a["mean_clicks"] != b["mean_clicks"] and b == fresh


def test_plot_allocation_draws_each_allocation_and_marks_holidays_and_weekends():
    import matplotlib

    matplotlib.use("Agg")
    from helpers import plots

    h, w = CAL.flags("2024-04"), CAL.weekend_flags("2024-04")
    opt = optimal_allocation(h, w, BUDGET, TRUTH)
    fig = plots.plot_allocation(CAL.dates("2024-04"), h, {"optimum": opt, "even": np.full(len(h), BUDGET / len(h))})
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if ln.get_label() in ("optimum", "even")]
    assert [ln.get_label() for ln in lines] == ["optimum", "even"]
    np.testing.assert_allclose(lines[0].get_ydata(), opt)
    assert len(ax.patches) == int(h.sum() + w.sum())  # one shaded span per holiday and per weekend day
    labels = ax.get_legend_handles_labels()[1]
    assert "public holiday" in labels and "weekend" in labels
    assert ax.get_xlabel() == "day of April 2024"


# --- issue 10: the oracle ---------------------------------------------------------------------


def test_oracle_plans_each_months_own_draw():
    """Item 8: the oracle knows which posterior draw a month got and spends that draw's optimum."""
    from helpers.baselines import oracle_policy

    cfg = EnvConfig()
    budget = cfg.resolved().budget
    for month, draw in (("2024-04", 3), ("2024-03", 117)):
        df = play_month(oracle_policy(POSTERIOR, cfg), POSTERIOR, month, cfg, draw=draw)
        h, w = CAL.flags(month), CAL.weekend_flags(month)
        np.testing.assert_allclose(df["spend"], closed_form_allocation(h, w, budget, POSTERIOR.subset([draw])), rtol=1e-9)
        # ... which is not the open-loop optimum over the whole posterior
        assert not np.allclose(df["spend"], optimal_allocation(h, w, budget, POSTERIOR), rtol=1e-3)


def test_the_oracle_bounds_every_policy_and_joins_the_table():
    """Item 8: the open-loop optimum is not an upper bound for a closed-loop agent (it could learn the
    month's draw from what it observes); the oracle that knows each month's draw is. With one
    parameter point, knowing the draw is worth nothing: the oracle is the optimum."""
    from helpers.baselines import ORACLE_NAME, oracle_policy

    wide = jittered_posterior(day_spread=5.0)
    ev = Evaluator(wide, n_months=480)
    table = ev.table(standard_policies(), include_oracle=True)
    assert list(table.index) == ["even pacing", "historical (human)", "holiday rule (2x)", "optimum (clicks)",
                                 "optimum (acquisitions)", ORACLE_NAME]
    pct = table["pct_of_optimum"]
    gain = pct[ORACLE_NAME] - 100.0
    assert gain > 4 * table.loc[ORACLE_NAME, "pct_of_optimum_se"] and 0.1 < gain < 3.0, table.loc[ORACLE_NAME]
    assert pct.drop(ORACLE_NAME).max() < pct[ORACLE_NAME]
    one_point = Evaluator(TRUTH, n_months=48)
    assert one_point.evaluate(oracle_policy(TRUTH))["pct_of_optimum"] == pytest.approx(100.0, abs=1e-3)
