"""Tests of helpers.env: API conformity, the budget invariants, hand-computed values, seeds."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from gymnasium.vector import AutoresetMode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import data
from helpers.bayes import PARAM_NAMES, FunnelDraws
from helpers.env import (
    EVAL_MONTHS,
    MAX_DAYS,
    OBS_NAMES,
    TRAIN_MONTHS,
    BudgetPacingEnv,
    BudgetPacingVectorEnv,
    EnvConfig,
    PacingCore,
    historical_stats,
    month_calendar,
)

from funnel_fixtures import TRUTH, jittered_posterior  # tests/ is on sys.path under pytest

OBS = {name: i for i, name in enumerate(OBS_NAMES)}
POSTERIOR = jittered_posterior()


def play(env: BudgetPacingEnv, actions, seed=0, month=None):
    """Play one month with the given action sequence (cycled); return obs, rewards, infos."""
    obs, info = env.reset(seed=seed, options={"month": month} if month else None)
    all_obs, rewards, infos = [obs], [], []
    t = 0
    while True:
        obs, r, term, trunc, info = env.step(np.array([actions[t % len(actions)]], dtype=np.float32))
        assert not trunc
        all_obs.append(obs), rewards.append(r), infos.append(info)
        t += 1
        if term:
            return np.array(all_obs), np.array(rewards), infos


# --- import hygiene, API conformity ---------------------------------------------------------


def test_importing_env_does_not_import_pymc():
    code = "import helpers.env, helpers.baselines, sys; bad = [m for m in ('pymc', 'pytensor', 'nutpie', 'arviz') if m in sys.modules]; assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_gymnasium_check_env_passes():
    from gymnasium.utils.env_checker import check_env

    env = BudgetPacingEnv(POSTERIOR)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    # The only remark allowed: no registered spec, so no render-mode variants to test.
    assert [str(w.message) for w in caught if "render" not in str(w.message)] == []


def test_stable_baselines3_ppo_trains_on_the_single_env_unchanged():
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = BudgetPacingEnv(POSTERIOR)
    sb3_check_env(env, warn=True)
    model = PPO("MlpPolicy", env, n_steps=128, batch_size=64, n_epochs=2, seed=0, device="cpu", verbose=0)
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action.astype(np.float32))
    # The same trained model plugs into the shared evaluation as a plain callable.
    from helpers.baselines import Evaluator

    result = Evaluator(POSTERIOR, n_months=48).evaluate(lambda o: model.predict(o, deterministic=True)[0], name="sb3")
    assert result["budget_used"] == pytest.approx(1.0, rel=1e-9)
    assert 50 < result["pct_of_optimum"] <= 101


def test_spaces_and_metadata():
    env = BudgetPacingVectorEnv(POSTERIOR, num_envs=5)
    assert env.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert env.single_observation_space.shape == (len(OBS_NAMES),) == (9,)
    assert env.single_action_space == gym.spaces.Box(-1, 1, (1,), np.float32)
    assert env.observation_space.shape == (5, 9) and env.action_space.shape == (5, 1)
    obs, info = env.reset(seed=0)
    assert obs.shape == (5, 9) and obs.dtype == np.float32 and env.observation_space.contains(obs)


# --- the budget and the action --------------------------------------------------------------


def test_zero_action_is_exact_even_pacing():
    env = BudgetPacingEnv(TRUTH)
    _, _, infos = play(env, [0.0], month="2024-02")
    spend = np.array([i["spend"] for i in infos])
    assert len(spend) == 29  # leap year
    np.testing.assert_allclose(spend, env.config.budget / 29, rtol=1e-12)


@pytest.mark.parametrize(
    "transform, action, expected_share",
    [
        ("pace_multiplier", 1 / 3, 2 / 30),  # 8 ** (1/3) = 2x the even pace of a 30-day month
        ("pace_multiplier", -1.0, 1 / 8 / 30),
        ("pace_multiplier", 7.0, 8 / 30),  # clipped to +1
        ("budget_fraction", 0.0, 0.5),  # the zero action spends half the budget on day 1
        ("budget_fraction", -1.0, 0.0),
    ],
)
def test_first_day_spend_hand_computed(transform, action, expected_share):
    env = BudgetPacingEnv(TRUTH, EnvConfig(action_transform=transform, budget=30_000.0))
    env.reset(seed=0, options={"month": "2024-04"})
    _, _, _, _, info = env.step(np.array([action], dtype=np.float32))
    # rel 1e-6: the action travels as float32
    assert info["spend"] == pytest.approx(30_000.0 * expected_share, rel=1e-6, abs=1e-9)
    assert info["budget_left"] == pytest.approx(30_000.0 * (1 - expected_share), rel=1e-6)


def test_last_day_spends_the_rest_even_with_the_smallest_action():
    env = BudgetPacingEnv(TRUTH, EnvConfig(budget=10_000.0))
    _, _, infos = play(env, [-1.0], month="2023-01")
    spend = np.array([i["spend"] for i in infos])
    assert spend[:-1].max() < spend[-1]  # pinched every day, then the rest on day 31
    assert spend.sum() == pytest.approx(10_000.0, rel=1e-12) and infos[-1]["budget_left"] == 0.0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_actions_raise_a_clear_error(bad):
    env = BudgetPacingEnv(TRUTH)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([bad], dtype=np.float32))
    venv = BudgetPacingVectorEnv(TRUTH, num_envs=3)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="env 1 .*finite"):
        venv.step(np.array([[0.0], [bad], [0.0]]))
    with pytest.raises(ValueError, match="expected 3 actions"):
        venv.step(np.zeros((2, 1)))


def test_zero_spend_gives_zero_impressions_and_clicks_without_nans():
    # budget_fraction with a = +1 spends everything on day 1; every later day spends 0.
    for reward in ("clicks", "neg_log_cpc"):
        env = BudgetPacingEnv(TRUTH, EnvConfig(action_transform="budget_fraction", reward=reward))
        obs, rewards, infos = play(env, [1.0], month="2024-04")
        assert infos[0]["spend"] == pytest.approx(env.config.budget)
        later = infos[1:]
        assert all(i["spend"] == 0 and i["impressions"] == 0 and i["clicks"] == 0 and i["acquisitions"] == 0 for i in later)
        assert np.all(np.isfinite(obs)) and np.all(np.isfinite(rewards))
        assert np.all(rewards[1:] == 0)  # nothing spent: no clicks, and no CPC to reward
        assert np.all(obs[2:, OBS["cpc_yesterday"]] == 0)  # no spend yesterday: no information


# --- observation and reward, by hand ----------------------------------------------------------


def test_first_observations_of_april_2024_by_hand():
    env = BudgetPacingEnv(TRUTH, EnvConfig(budget=30_000.0))
    obs, info = env.reset(seed=3, options={"month": "2024-04"})
    dates = pd.date_range("2024-04-01", "2024-05-01")
    flags = data.holiday_flags(dates)
    assert obs[OBS["days_left"]] == pytest.approx(30 / 31)
    assert obs[OBS["budget_vs_even"]] == pytest.approx(0.0, abs=1e-6)
    assert obs[OBS["holiday_today"]] == flags[0] and obs[OBS["holiday_tomorrow"]] == flags[1]
    assert obs[OBS["holidays_left"]] == pytest.approx(flags[:30].sum() / 30)
    assert (obs[OBS["dow_sin"]], obs[OBS["dow_cos"]]) == pytest.approx((0.0, 1.0), abs=1e-6)  # a Monday
    assert obs[OBS["cpc_yesterday"]] == 0.0  # day 1: no yesterday
    assert obs[OBS["weekend_days_left"]] == pytest.approx(8 / 30)  # April 2024: Sat/Sun 6-7, 13-14, 20-21, 27-28
    obs, r, *_, i = env.step(np.array([1 / 3], dtype=np.float32))  # 2x even pace
    assert i["weekend"] == 0 and i["date"] == "2024-04-01"
    # R = B - 2B/30 = 28B/30 over 29 days left: R / (B * 29/30) - 1 = 28/29 - 1
    assert obs[OBS["budget_vs_even"]] == pytest.approx(28 / 29 - 1, abs=1e-6)
    assert obs[OBS["days_left"]] == pytest.approx(29 / 31)
    ref = historical_stats().median_cpc
    assert obs[OBS["cpc_yesterday"]] == pytest.approx(math.log(i["spend"] / i["clicks"] / ref), abs=1e-5)
    assert (obs[OBS["dow_sin"]], obs[OBS["dow_cos"]]) == pytest.approx((math.sin(2 * math.pi / 7), math.cos(2 * math.pi / 7)), abs=1e-6)
    assert obs[OBS["weekend_days_left"]] == pytest.approx(8 / 29)
    for _ in range(5):  # to Saturday 6 April
        obs, *_, i = env.step(np.zeros(1, dtype=np.float32))
    assert i["date"] == "2024-04-06" and i["weekend"] == 1
    assert obs[OBS["weekend_days_left"]] == pytest.approx(7 / 24)  # Sunday 7th .. 30th


def test_holiday_tomorrow_on_the_last_day_looks_into_next_month():
    env = BudgetPacingEnv(TRUTH)
    obs, _, _ = play(env, [0.0], month="2024-04")
    assert data.holiday_flags(pd.DatetimeIndex(["2024-05-01"]))[0] == 1  # Labour Day
    assert obs[-2, OBS["holiday_tomorrow"]] == 1 and obs[-2, OBS["days_left"]] == pytest.approx(1 / 31)
    assert obs[-1, OBS["days_left"]] == 0 and obs[-1, OBS["budget_vs_even"]] == 0  # terminal obs


@pytest.mark.parametrize("kind", ["clicks", "acquisitions", "neg_log_cpc"])
def test_reward_kinds_by_hand(kind):
    env = BudgetPacingEnv(TRUTH, EnvConfig(reward=kind))
    _, rewards, infos = play(env, [0.3, -0.2], month="2023-06")
    stats = historical_stats()
    for r, i in zip(rewards, infos):
        if kind == "clicks":
            assert r == pytest.approx(i["clicks"] / stats.mean_daily_clicks)
        elif kind == "acquisitions":
            assert r == pytest.approx(i["acquisitions"] / stats.mean_daily_acquisitions)
        else:
            assert r == pytest.approx(-math.log(i["spend"] / i["clicks"]) + math.log(stats.median_cpc))


def test_neg_log_cpc_prefers_spending_almost_nothing():
    """The talk's reward alone: pinching every day beats even pacing, and loses clicks."""
    env = BudgetPacingEnv(TRUTH, EnvConfig(reward="neg_log_cpc"))
    _, r_even, i_even = play(env, [0.0], seed=5, month="2024-06")
    _, r_pinch, i_pinch = play(env, [-1.0], seed=5, month="2024-06")
    assert r_pinch.sum() > r_even.sum() + 3
    assert sum(i["clicks"] for i in i_pinch) < 0.95 * sum(i["clicks"] for i in i_even)


def test_month_end_is_termination_not_truncation():
    env = BudgetPacingEnv(TRUTH)
    env.reset(seed=0, options={"month": "2023-02"})
    for t in range(28):
        _, _, term, trunc, _ = env.step(np.zeros(1, dtype=np.float32))
        assert trunc is False and term is (t == 27)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(1, dtype=np.float32))


# --- properties over arbitrary action sequences (hypothesis) ----------------------------------

actions_strategy = st.lists(st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False, width=32), min_size=1, max_size=MAX_DAYS)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    actions=actions_strategy,
    seed=st.integers(0, 2**31),
    month=st.sampled_from(TRAIN_MONTHS),
    transform=st.sampled_from(["pace_multiplier", "budget_fraction"]),
    reward=st.sampled_from(["clicks", "acquisitions", "neg_log_cpc"]),
    budget=st.floats(1.0, 1e7),
)
def test_budget_invariants_for_any_action_sequence(actions, seed, month, transform, reward, budget):
    env = BudgetPacingEnv(POSTERIOR, EnvConfig(action_transform=transform, reward=reward, budget=budget))
    obs, rewards, infos = play(env, actions, seed=seed, month=month)
    spend = np.array([i["spend"] for i in infos])
    assert len(infos) == pd.Period(month, "M").days_in_month
    assert np.all(spend >= 0)
    assert spend.sum() == pytest.approx(budget, rel=1e-9)
    assert infos[-1]["budget_left"] == 0.0
    for i in infos:
        for key in ("impressions", "clicks", "acquisitions"):
            assert isinstance(i[key], int) and i[key] >= 0
        assert i["acquisitions"] <= i["clicks"] <= i["impressions"]
        assert i["impressions"] > 0 or i["clicks"] == 0
    assert all(env.observation_space.contains(o) for o in obs)
    assert np.all(np.isfinite(rewards))
    # identical seeds give identical episodes
    obs2, rewards2, infos2 = play(env, actions, seed=seed, month=month)
    np.testing.assert_array_equal(obs, obs2)
    np.testing.assert_array_equal(rewards, rewards2)
    assert infos == infos2


# --- the vector env ---------------------------------------------------------------------------


def test_vector_env_autoresets_in_the_same_step():
    env = BudgetPacingVectorEnv(POSTERIOR, num_envs=4)
    obs, _ = env.reset(seed=11)
    returns = np.zeros(4)
    steps = np.zeros(4, dtype=int)
    first_days = env.core.n_days.copy()
    for _ in range(MAX_DAYS):
        obs, r, term, trunc, info = env.step(np.zeros((4, 1)))
        returns += r
        steps += 1
        assert not trunc.any()
        if term.any():
            break
    done = np.flatnonzero(term)
    assert len(done) > 0 and np.array_equal(info["_final_obs"], term) and np.array_equal(info["_episode"], term)
    for i in done:
        assert info["final_obs"][i][OBS["days_left"]] == 0  # the ended month's last observation
        assert obs[i][OBS["days_left"]] == pytest.approx(env.core.n_days[i] / 31)  # the next month's first
        assert obs[i][OBS["budget_vs_even"]] == pytest.approx(0.0, abs=1e-6)
        assert info["episode"]["l"][i] == steps[i] == first_days[i]
        assert info["episode"]["r"][i] == pytest.approx(returns[i])
        assert info["episode"]["spend"][i] == pytest.approx(env.config.budget)
        assert info["final_info"]["episode"]["clicks"][i] == info["episode"]["clicks"][i] > 0
    assert all(info["final_obs"][i] is None for i in range(4) if i not in done)


def test_vector_env_with_one_slot_equals_the_single_env():
    single = BudgetPacingEnv(POSTERIOR)
    vector = BudgetPacingVectorEnv(POSTERIOR, num_envs=1)
    o1, _ = single.reset(seed=42)
    o2, _ = vector.reset(seed=42)
    np.testing.assert_array_equal(o1, o2[0])
    rng = np.random.default_rng(0)
    for _ in range(40):  # beyond one month: the vector env restarts by itself
        a = rng.uniform(-1, 1, size=(1, 1)).astype(np.float32)
        o2, r2, t2, _, _ = vector.step(a)
        o1, r1, t1, _, _ = single.step(a[0])
        assert r1 == r2[0] and t1 == t2[0]
        if t1:
            break
        np.testing.assert_array_equal(o1, o2[0])
    assert t1


def test_vector_env_seeds_are_reproducible():
    def run(seed):
        env = BudgetPacingVectorEnv(POSTERIOR, num_envs=8)
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(1)
        out = [obs]
        for _ in range(70):
            obs, r, term, _, info = env.step(rng.uniform(-1.5, 1.5, size=(8, 1)))
            out += [obs, r[:, None], term[:, None]]
        return np.hstack([x.reshape(len(x), -1).astype(np.float64) for x in out])

    np.testing.assert_array_equal(run(7), run(7))
    assert not np.array_equal(run(7), run(8))


def test_episodes_sample_posterior_draws_or_the_mean():
    env = BudgetPacingVectorEnv(POSTERIOR, num_envs=2000)
    env.reset(seed=0)
    draws = env.core.draw_idx
    assert len(np.unique(draws)) > 190  # 2000 episodes over 200 draws
    np.testing.assert_array_equal(env.core.params[:, 5], POSTERIOR.as_matrix()[draws[5]])
    months = np.bincount(env.core.month_idx, minlength=24)
    assert months.min() > 40  # uniform over the 24 training months
    mean_env = BudgetPacingVectorEnv(POSTERIOR, num_envs=3, config=EnvConfig(params="mean"))
    mean_env.reset(seed=0)
    np.testing.assert_allclose(mean_env.core.params, np.repeat(POSTERIOR.mean().as_matrix().T, 3, axis=1))


def test_reset_options_pin_month_and_draw():
    env = BudgetPacingEnv(POSTERIOR)
    _, info = env.reset(seed=0, options={"month": "2023-12", "draw": 17})
    assert info["month"] == "2023-12" and info["draw"] == 17
    np.testing.assert_array_equal(env.core.params[:, 0], POSTERIOR.as_matrix()[17])
    with pytest.raises(ValueError, match="2025-01"):
        env.reset(options={"month": "2025-01"})  # not a training month
    with pytest.raises(ValueError, match="unknown options"):
        env.reset(options={"budget": 1})
    with pytest.raises(ValueError, match="draw index out of range"):
        env.reset(options={"draw": 200})


# --- configuration and calendar ---------------------------------------------------------------


def test_default_budget_and_scales_come_from_the_data():
    df = data.load_daily()
    cfg = EnvConfig().resolved()
    assert cfg.budget == pytest.approx(df.groupby(df["date"].dt.to_period("M"))["spend"].sum().mean())
    assert cfg.budget == pytest.approx(df["spend"].sum() / 24)
    assert cfg.reward_scale == pytest.approx(df["clicks"].mean())
    assert EnvConfig(reward="neg_log_cpc").resolved().reward_scale == 1.0
    assert cfg.reference_cpc == pytest.approx((df["spend"] / df["clicks"]).median())
    assert cfg.months == TRAIN_MONTHS and len(TRAIN_MONTHS) == 24 and EVAL_MONTHS[0] == "2025-01" and len(EVAL_MONTHS) == 24


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"reward": "cpc"}, "reward"),
        ({"params": "median"}, "params"),
        ({"budget": -5.0}, "budget"),
        ({"budget": float("nan")}, "budget"),
        ({"max_multiplier": 1.0}, "max_multiplier"),
        ({"months": ("2024-13",)}, "2024-13"),
        ({"months": "2024-01"}, "sequence"),
        ({"action_transform": "fraction"}, "action_transform"),
    ],
)
def test_bad_configuration_is_rejected_clearly(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EnvConfig(**kwargs)


def test_calendar_matches_the_holidays_package():
    cal = month_calendar(TRAIN_MONTHS + EVAL_MONTHS)
    dates = pd.date_range("2023-01-01", "2027-01-01")
    flags = pd.Series(data.holiday_flags(dates), index=dates)
    for i, m in enumerate(cal.months):
        start = pd.Period(m, "M").start_time
        n = cal.n_days[i]
        assert n == pd.Period(m, "M").days_in_month
        np.testing.assert_array_equal(cal.holiday[i, : n + 1], flags[start : start + pd.Timedelta(days=n)].to_numpy())
        assert cal.holidays_left[i, 0] == flags[start : start + pd.Timedelta(days=n - 1)].sum()
        assert cal.weekday[i, 0] == start.weekday()
        days = pd.date_range(start, periods=n + 1)
        np.testing.assert_array_equal(cal.weekend[i, : n + 1], data.weekend_flags(days))
        np.testing.assert_array_equal(cal.weekend_flags(m), data.weekend_flags(days[:n]))
        assert cal.weekends_left[i, 0] == data.weekend_flags(days[:n]).sum() and cal.weekends_left[i, n] == 0


def test_core_rejects_bad_draws():
    with pytest.raises(TypeError, match="FunnelDraws"):
        PacingCore({k: 1.0 for k in PARAM_NAMES})


def test_weekend_multiplies_mean_clicks_by_exp_clk_weekend():
    """At equal impressions, a weekend day's clicks are exp(clk_weekend) times a weekday's."""
    # Same spend every day, so same impressions on average. Friday 5 and Saturday 6 April 2024
    # (neither a holiday), 4000 parallel months, the truth as the only draw.
    n = 4000
    core = PacingCore(TRUTH, EnvConfig(months=("2024-04",), budget=30_000.0), n_envs=n)
    core.seed(11)
    core.start(np.arange(n), month_idx=0, draw_idx=0)
    ratio = {}
    for day in range(6):
        _, _, _, imp, clk, _ = core.step(np.zeros((n, 1)))
        if day in (4, 5):  # Friday, Saturday
            ratio[day] = clk / imp.astype(float) ** TRUTH.clk_slope[0]
    assert core.calendar.holiday[0, 4] == core.calendar.holiday[0, 5] == 0
    assert core.calendar.weekend[0, 4] == 0 and core.calendar.weekend[0, 5] == 1
    # clicks / impressions**clk_slope has mean exp(clk_intercept + clk_weekend * weekend): the
    # impressions' noise divides out; the NB noise of the clicks (cv ~0.22) averages over 4000 months
    est = ratio[5].mean() / ratio[4].mean()
    se = est * math.sqrt((ratio[5].std() / ratio[5].mean()) ** 2 + (ratio[4].std() / ratio[4].mean()) ** 2) / math.sqrt(n)
    assert abs(math.log(est) - data.TRUE_PARAMS["clk_weekend"]) < 4 * se / est, (math.log(est), se)
    assert est == pytest.approx(math.exp(0.25), rel=0.03)


# --- issue 10 -------------------------------------------------------------------------------------


def test_the_last_day_says_its_action_was_ignored():
    """Item 6: the last day spends what is left whatever the action; the env says so
    (``info["action_ignored"]``), so an agent can leave that step out of its policy loss."""
    env = BudgetPacingVectorEnv(POSTERIOR, num_envs=3)
    env.reset(seed=0)
    for _ in range(2 * MAX_DAYS):
        days_left = env.core.n_days - env.core.day
        _, _, term, _, info = env.step(np.zeros((3, 1)))
        np.testing.assert_array_equal(info["action_ignored"], days_left == 1)
        np.testing.assert_array_equal(info["action_ignored"], term)  # the last day is the terminal step
    single = BudgetPacingEnv(POSTERIOR)
    single.reset(seed=1, options={"month": "2024-02"})
    flags = [single.step(np.zeros(1))[4]["action_ignored"] for _ in range(29)]
    assert flags == [False] * 28 + [True]


@pytest.mark.parametrize("transform", ["pace_multiplier", "budget_fraction"])
def test_every_step_after_the_budget_is_spent_says_its_action_was_ignored(transform):
    """Issue 19, loose end 5: a month whose budget is gone with days left spends 0 whatever the
    action, but only the last day was flagged. Every step whose action changes nothing is flagged:
    here day 23 of February 2024 spends the rest (8x the even pace with 7 days left, or the whole
    rest), and days 24-29 can do nothing; two different actions on them give the same month."""
    cfg = EnvConfig(action_transform=transform)
    # 0-based day that spends the rest: day 23 (7 days left; 8 ** 1 >= 7); budget_fraction's
    # action 1 spends the whole rest on any day (its zero action spends half of it): day 1.
    spend_all_on = 22 if transform == "pace_multiplier" else 0

    def month(late_action):
        env = BudgetPacingEnv(POSTERIOR, cfg)
        env.reset(seed=4, options={"month": "2024-02", "draw": 5})
        infos = []
        for day in range(29):
            a = 0.0 if day < spend_all_on else 1.0 if day == spend_all_on else late_action
            infos.append(env.step(np.array([a], dtype=np.float32))[4])
        return infos

    infos = month(-1.0)
    flags = [i["action_ignored"] for i in infos]
    assert infos[spend_all_on]["budget_left"] == 0.0 and infos[spend_all_on]["spend"] > 0
    assert flags == [False] * (spend_all_on + 1) + [True] * (28 - spend_all_on), flags
    other = month(0.7)
    assert [i["spend"] for i in other] == [i["spend"] for i in infos]  # the flagged actions changed nothing
    assert [i["clicks"] for i in other] == [i["clicks"] for i in infos]
    # the vector env and the core say the same, slot by slot
    venv = BudgetPacingVectorEnv(POSTERIOR, num_envs=4, config=cfg)
    venv.reset(seed=0)
    for day in range(3):
        left_before = venv.core.budget_left.copy()
        days_left = venv.core.n_days - venv.core.day
        _, _, _, _, info = venv.step(np.array([[1.0], [0.0], [1.0], [0.0]]) if day == 0 else np.zeros((4, 1)))
        want = (left_before == 0) | (days_left == 1)
        np.testing.assert_array_equal(info["action_ignored"], want)
        np.testing.assert_array_equal(venv.core.last_action_ignored, want)
    if transform == "budget_fraction":
        assert info["action_ignored"].tolist() == [True, False, True, False]


class _RecordingGenerator:
    """Wraps a numpy Generator and keeps what its ``standard_gamma`` returned."""

    def __init__(self, rng):
        self.rng, self.gammas = rng, []

    def standard_gamma(self, shape):
        out = self.rng.standard_gamma(shape)
        self.gammas.append(out.copy())
        return out


def test_common_random_numbers_share_the_market_noise_not_the_counts():
    """Item 7: two policies played from one seed face the same months, draws and gamma (market)
    noise on every day, but not the same Poisson counts: numpy's Poisson sampler consumes a
    rate-dependent number of uniforms, so once the spends differ somewhere, the counts differ
    everywhere after. The module docstring says so, with the measured size of the effect."""
    import helpers.env as env_mod

    n = 300

    def play(first_action):
        core = PacingCore(POSTERIOR, EnvConfig(months=("2024-04",)), n_envs=n)
        core.seed(3)
        core.rng_noise = _RecordingGenerator(core.rng_noise)
        core.start(np.arange(n), month_idx=0)
        spend, clicks = [], []
        for day in range(30):
            a = np.zeros((n, 1))
            a[0] = first_action if day == 0 else 0.0  # only slot 0, only on day 1
            _, _, s, _, c, _ = core.step(a)
            spend.append(s)
            clicks.append(c)
        return np.array(core.rng_noise.gammas), np.array(spend), np.array(clicks), core.draw_idx.copy()

    g0, s0, c0, d0 = play(0.0)
    g1, s1, c1, d1 = play(0.5)
    np.testing.assert_array_equal(d0, d1)  # the same posterior draws
    np.testing.assert_array_equal(g0, g1)  # the same market noise, every slot, every day
    np.testing.assert_array_equal(s0[:, 1:], s1[:, 1:])  # slots 1.. spend exactly alike ...
    assert not np.array_equal(c0[:, 1:], c1[:, 1:])  # ... yet their counts differ

    # The size of the unshared count noise: 1,000 months of even pacing, the counts' stream reseeded.
    totals = []
    for counts_seed in (None, 12345):
        core = PacingCore(POSTERIOR, EnvConfig(months=EVAL_MONTHS), n_envs=1000)
        core.seed(7)
        if counts_seed is not None:
            core.rng_counts = np.random.default_rng(counts_seed)
        core.start(np.arange(1000))
        while np.any(core.day < core.n_days):
            core.step(np.zeros((1000, 1)))
        totals.append(core.ep_clicks.copy())
    per_month_pct = 100 * np.std((totals[1] - totals[0]) / totals[0], ddof=1) / math.sqrt(2)
    assert 0.3 < per_month_pct < 0.5, per_month_pct
    doc = " ".join(env_mod.core.__doc__.split())  # the core draws the random numbers
    assert "about 0.4% of a month's clicks" in doc
    # Two policies with independent count noise: a 1,000-month comparison's standard error gains
    # sqrt(2) * 0.4% / sqrt(1000) ~ 0.02 points of the optimum.
    assert round(math.sqrt(2) * per_month_pct / math.sqrt(1000), 2) == 0.02
    assert "about 0.02 points" in doc
