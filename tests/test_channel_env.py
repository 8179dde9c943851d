"""The several-channel simulator (helpers.env, notebook 06): one channel is the case K = 1 of the same
code, the budget is exact for any actions, channels spend only on their active days, the split,
the saturation cap and the adstock behave as documented."""

from __future__ import annotations

import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import carryover
from helpers.bayes import ADSTOCK_LAGS, adstock_weights
from helpers.env import (
    CHANNEL_OBS_FEATURES,
    LOGIT_ON_FLOOR,
    BudgetPacingEnv,
    BudgetPacingVectorEnv,
    EnvConfig,
    PacingCore,
    channel_config,
    channel_history,
    channel_obs_names,
    logits_for_split,
    split_weights,
)

from channel_fixtures import channel_posterior  # tests/ is on sys.path under pytest
from funnel_fixtures import jittered_posterior
from tolerances import assert_replays

GOLDEN = Path(__file__).parent / "data" / "env_single_channel_golden.npz"
HIST = channel_history()
CONFIG = channel_config()
POSTERIOR = channel_posterior()
CARRYOVER = channel_posterior(adstock=0.5)
K = HIST.n_channels


# --- one channel is the case K = 1 ---------------------------------------------------------------


def test_one_channel_replays_the_trajectories_recorded_before_the_generalisation():
    """tests/data/env_single_channel_golden.npz was recorded from the one-channel env before it
    learnt about channels (same stand-in posterior, seeds and actions): every count and flag must
    come out exactly the same, every observation, spend, reward and evaluation figure the same to
    ``assert_replays``' tolerance (1e-12 of the array's largest value; the file was recorded on an
    AVX-512 CPU; other CPUs' SIMD exp and log differ in the last bit: measured <= 5e-16; tests/test_cross_cpu.py)."""
    from helpers.baselines import Evaluator, standard_policies

    ref = np.load(GOLDEN)
    post = jittered_posterior()
    assert_replays(post.as_matrix().sum(), ref["draws_matrix_sum"], err_msg="the fixture has moved")
    configs = {
        "default": EnvConfig(),
        "fraction_acq": EnvConfig(action_transform="budget_fraction", reward="acquisitions", budget=20000.0),
        "cpc_mean": EnvConfig(reward="neg_log_cpc", params="mean", months=("2024-02", "2024-04", "2025-06")),
    }
    fields = ("obs", "reward", "term", "spend", "impressions", "clicks", "acquisitions")
    for name, cfg in configs.items():
        env = BudgetPacingVectorEnv(post, num_envs=6, config=cfg)
        obs, _ = env.reset(seed=11)
        rng = np.random.default_rng(5)
        got = {k: [] for k in fields}
        got["obs"].append(obs)
        for t in range(75):
            obs, r, term, _, info = env.step(rng.uniform(-1.3, 1.3, size=(6, 1)))
            for k, v in zip(fields, (obs, r, term, info["spend"], info["impressions"], info["clicks"], info["acquisitions"])):
                got[k].append(v)
        for k in fields:  # whole trajectories (steps x envs): a failure lists every step that moved
            assert_replays(np.array(got[k]), ref[f"{name}/{k}"], err_msg=f"{name} {k}")
    env = BudgetPacingEnv(post, EnvConfig())
    obs, _ = env.reset(seed=3, options={"month": "2024-04", "draw": 17})
    rng = np.random.default_rng(9)
    seen, steps = [obs], []
    while True:
        obs, r, term, _, info = env.step(rng.uniform(-1, 1, size=1).astype(np.float32))
        seen.append(obs)
        steps.append([r, info["spend"], info["impressions"], info["clicks"], info["acquisitions"], info["budget_left"]])
        if term:
            break
    assert_replays(np.array(seen), ref["single/obs"], err_msg="single obs")
    steps = np.array(steps)  # reward, spend and budget_left are floats, the counts integers held in floats
    assert_replays(steps[:, [0, 1, 5]], ref["single/steps"][:, [0, 1, 5]], err_msg="single reward, spend, budget_left")
    np.testing.assert_array_equal(steps[:, 2:5], ref["single/steps"][:, 2:5], err_msg="single counts")
    table = Evaluator(post, EnvConfig(), n_months=120).table(standard_policies(EnvConfig()), include_oracle=True)
    assert list(table.index) == list(ref["eval/names"])
    assert_replays(table["pct_of_optimum"].to_numpy(), ref["eval/pct"], err_msg="eval pct_of_optimum")


# --- spaces, configuration, errors ---------------------------------------------------------------


def test_spaces_observation_names_and_gymnasium_conformity():
    env = BudgetPacingEnv(POSTERIOR, CONFIG)
    assert env.action_space == gym.spaces.Box(-1, 1, (1 + K,), np.float32)
    assert env.core.obs_names == channel_obs_names(HIST.channels) and len(env.core.obs_names) == 2 + 3 * K
    assert BudgetPacingEnv(CARRYOVER, CONFIG).observation_space.shape == (2 + 4 * K,)
    assert channel_obs_names(HIST.channels, adstock=True)[-1] == f"{CHANNEL_OBS_FEATURES[-1]}:{HIST.channels[-1]}"
    check_env(BudgetPacingEnv(CARRYOVER, CONFIG), skip_render_check=True)
    vec = BudgetPacingVectorEnv(POSTERIOR, num_envs=3, config=CONFIG)
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (3, 2 + 3 * K) and vec.action_space.shape == (3, 1 + K)


def test_configuration_errors_are_clear():
    with pytest.raises(ValueError, match="channel_config"):
        PacingCore(POSTERIOR, EnvConfig())
    with pytest.raises(ValueError, match="pass ChannelDraws"):
        PacingCore(jittered_posterior(), CONFIG)
    with pytest.raises(ValueError, match="clicks"):
        channel_config(reward="acquisitions")
    with pytest.raises(ValueError, match="not in the channel data"):
        channel_config(months=("2024-01",))
    renamed = POSTERIOR.replace(channels=tuple(c.upper() for c in POSTERIOR.channels))
    with pytest.raises(ValueError, match="differ"):
        PacingCore(renamed, CONFIG)
    env = BudgetPacingVectorEnv(POSTERIOR, num_envs=2, config=CONFIG)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=f"size {1 + K}"):
        env.step(np.zeros((2, 1)))
    bad = np.zeros((2, 1 + K))
    bad[1, 3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        env.step(bad)


def test_the_history_is_read_from_the_data():
    assert HIST.months == ("2025-01", "2025-02", "2025-03", "2025-04")
    assert HIST.active.any(axis=2)[np.arange(_pad := HIST.active.shape[1])[None, :] < HIST.n_days[:, None]].all()
    assert HIST.active[0, :, HIST.channels.index("broad_prospecting")].sum() == 0  # April only
    assert HIST.active[3, :30, HIST.channels.index("broad_prospecting")].all()
    np.testing.assert_allclose(HIST.budget.sum(), HIST.spend.sum())
    assert np.all(HIST.carry_in[0] == 0)  # nothing before the data start (as in the model's fit)
    np.testing.assert_array_equal(HIST.carry_in[1, 0], HIST.spend[0, 30])  # Feb starts from Jan 31
    assert channel_config() == CONFIG and hash(channel_config()) == hash(CONFIG)  # equal by content


# --- the budget and the split --------------------------------------------------------------------


def play(env, actions, seed, month):
    obs, _ = env.reset(seed=seed, options={"month": month})
    infos, all_obs = [], [obs]
    t = 0
    while True:
        obs, r, term, trunc, info = env.step(actions[t % len(actions)])
        assert not trunc and np.isfinite(r)
        infos.append(info)
        all_obs.append(obs)
        t += 1
        if term:
            return all_obs, infos


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    actions=st.lists(st.lists(st.floats(-3, 3, allow_nan=False), min_size=1 + K, max_size=1 + K), min_size=1, max_size=8),
    seed=st.integers(0, 2**31),
    month=st.sampled_from(HIST.months),
    budget=st.one_of(st.none(), st.floats(1.0, 1e7)),
    carryover=st.booleans(),
    cap=st.sampled_from([None, 0.5, 3.0]),
)
def test_budget_exact_never_overspent_and_inactive_channels_get_nothing(actions, seed, month, budget, carryover, cap):
    cfg = channel_config(budget=budget, cap_multiple=cap)
    env = BudgetPacingEnv(CARRYOVER if carryover else POSTERIOR, cfg)
    acts = [np.array(a, dtype=np.float32) for a in actions]
    obs, infos = play(env, acts, seed, month)
    h = HIST.month_index([month])[0]
    want = HIST.budget[h] if budget is None else budget
    spend = np.array([i["spend"] for i in infos])
    per_channel = np.array([i["channel_spend"] for i in infos])  # (days, K)
    assert len(infos) == HIST.n_days[h]
    assert np.all(per_channel >= 0)
    np.testing.assert_allclose(per_channel.sum(axis=1), spend, rtol=1e-12, atol=1e-9 * want)
    assert spend.sum() == pytest.approx(want, rel=1e-9)
    assert per_channel.sum() <= want * (1 + 1e-9)  # never overspent
    assert infos[-1]["budget_left"] == 0.0
    assert np.all(per_channel[~HIST.active[h, : len(infos)]] == 0)  # inactive: nothing, whatever the action
    clicks = np.array([i["channel_clicks"] for i in infos])
    assert np.all(clicks[~HIST.active[h, : len(infos)]] == 0)
    assert all(env.observation_space.contains(o) for o in obs)
    # the last day's split still counts: only a day that starts with no budget left ignores its action
    left_before = [want] + [i["budget_left"] for i in infos[:-1]]
    assert [i["action_ignored"] for i in infos] == [b == 0.0 for b in left_before]


def test_the_zero_action_paces_evenly_with_the_historical_split():
    core = PacingCore(POSTERIOR, CONFIG, n_envs=4)
    core.seed(0)
    core.start(np.arange(4), month_idx=np.arange(4))
    for day in range(28):
        left, days_left = core.budget_left.copy(), core.n_days - core.day
        core.step(np.zeros((4, 1 + K)))
        active = HIST.active[np.arange(4), day]
        prior = HIST.prior_spend * active
        want = (left / days_left)[:, None] * prior / prior.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(core.last_channel_spend.T, want, rtol=1e-12)


def test_a_split_logit_of_one_multiplies_a_channels_weight_by_max_multiplier():
    prior = np.array([[1.0, 2.0, 3.0]])
    active = np.ones((1, 3), dtype=bool)
    base = split_weights(np.zeros((1, 3)), prior, active, 8.0)
    np.testing.assert_allclose(base, prior / 6)
    up = split_weights(np.array([[1.0, 0.0, 0.0]]), prior, active, 8.0)
    assert up[0, 0] / up[0, 1] == pytest.approx(8 * base[0, 0] / base[0, 1])
    off = split_weights(np.array([[1.0, 0.0, 0.0]]), prior, np.array([[False, True, True]]), 8.0)
    assert off[0, 0] == 0 and off.sum() == pytest.approx(1)
    # logits_for_split inverts split_weights (up to the logits' constant) within the reachable range
    rng = np.random.default_rng(0)
    for _ in range(50):
        logits = rng.uniform(-1, 1, (4, 3))
        mask = rng.random((4, 3)) < 0.8
        mask[:, 0] = True
        split = split_weights(logits, prior.repeat(4, 0), mask, 8.0)
        back = logits_for_split(split, prior.repeat(4, 0), mask, 8.0)
        np.testing.assert_allclose(split_weights(back, prior.repeat(4, 0), mask, 8.0), split, rtol=1e-9, atol=1e-15)


def test_the_lowest_split_logit_switches_a_channel_off():
    """Issue 19, loose end 9: a zero share must be reachable (the oracle's and the optimum's plans
    have them), so logit -1 (and every action below it, once clipped) means "off today"; any logit
    above it keeps the channel on. All active channels off: the historical split (the day's spend
    must go somewhere). logits_for_split gives -1 to a zero share only."""
    prior = np.array([[1.0, 2.0, 3.0]])
    active = np.ones((1, 3), dtype=bool)
    off = split_weights(np.array([[-1.0, 0.0, 0.0]]), prior, active, 8.0)
    np.testing.assert_allclose(off, [[0.0, 0.4, 0.6]])
    barely = split_weights(np.array([[LOGIT_ON_FLOOR, 0.0, 0.0]]), prior, active, 8.0)
    assert barely[0, 0] == pytest.approx(1 / 8 / (1 / 8 + 5))
    np.testing.assert_allclose(split_weights(np.full((1, 3), -1.0), prior, active, 8.0), prior / 6)
    back = logits_for_split(np.array([[0.0, 0.5, 0.5], [1e-9, 0.5, 0.5]]), prior.repeat(2, 0), np.ones((2, 3), bool), 8.0)
    assert back[0, 0] == -1.0 and back[1, 0] == LOGIT_ON_FLOOR  # zero: off; tiny but positive: the lowest "on"
    core = PacingCore(POSTERIOR, CONFIG, n_envs=1)
    core.seed(0)
    core.start([0], month_idx=1)  # February, day 1: the first channel is active (checked below)
    action = np.zeros((1, 1 + K))
    action[0, 1 + 0] = -3.0  # clipped to -1: the first channel off
    core.step(action)
    assert HIST.active[1, 0, 0] and core.last_channel_spend[0, 0] == 0.0 and core.last_channel_spend[:, 0].sum() > 0


# --- the response: cap and adstock ---------------------------------------------------------------


def test_money_above_the_cap_buys_nothing():
    core = PacingCore(POSTERIOR, channel_config(cap_multiple=0.5), n_envs=1)
    core.seed(0)
    core.start([0], month_idx=3)
    action = np.zeros((1, 1 + K))
    action[0, 0] = 1.0  # 8x the even pace on day 1
    core.step(action)
    cap = 0.5 * HIST.max_daily_spend
    np.testing.assert_array_equal(core.last_effective_spend[:, 0], np.minimum(core.last_channel_spend[:, 0], cap))
    assert np.any(core.last_channel_spend[:, 0] > cap)


def test_adstock_matches_the_models_definition_and_moves_tomorrows_impressions():
    """The env's effective spend over a whole month is the carryover unit's
    (``helpers.carryover.effective_spend``: the capped daily spends, adstocked with the model's
    weights) of the same spends, starting from the history before the month (January, spent before
    the data's first day: 0); spending more today raises tomorrow's impressions."""
    n = 400
    core = PacingCore(CARRYOVER, CONFIG, n_envs=n)
    core.seed(1)
    core.start(np.arange(n), month_idx=1)  # February: starts from January's spends
    rng = np.random.default_rng(0)
    spends, effective, impressions = [], [], []
    for day in range(28):
        a = rng.uniform(-1, 1, size=(n, 1 + K))
        a[:, 0] = 0.0
        if day == 5:
            a[: n // 2, 0] = 1.0  # half the months spend 8x the even pace on day 6 ...
        core.step(a)
        spends.append(core.last_channel_spend.copy())  # as spent, uncapped: the unit caps
        effective.append(core.last_effective_spend.copy())
        impressions.append(core.last_channel_impressions.copy())
    assert np.any(np.array(spends) > CONFIG.cap_multiple * HIST.max_daily_spend[:, None]), "the cap is never reached"
    history = np.concatenate([HIST.spend[0, :31][:, :, None].repeat(n, axis=2), np.array(spends)])  # (31 + 28, K, n)
    cap = carryover.saturation_cap(HIST.max_daily_spend, CONFIG.cap_multiple)
    # every (channel, month) as one column of the unit's (T, K) arrays
    want = carryover.effective_spend(history.reshape(59, K * n), np.full(K * n, 0.5), np.repeat(cap, n)).reshape(59, K, n)
    np.testing.assert_allclose(np.array(effective), want[31:], rtol=1e-12)
    # ... and on day 7 (no extra spend that day) their impressions are higher by the carryover
    on = HIST.active[1, 6]
    more = np.array(impressions)[6][on][:, : n // 2].mean() / np.array(impressions)[6][on][:, n // 2 :].mean()
    assert more > 1.2


def test_carryover_observation_is_the_part_of_today_already_paid_for():
    env = BudgetPacingVectorEnv(CARRYOVER, num_envs=2, config=CONFIG)
    obs, _ = env.reset(seed=0)
    names = env.core.obs_names
    carry = obs[:, [names.index(f"carryover:{c}") for c in HIST.channels]]
    m = env.core.month_idx
    w = adstock_weights(np.full(K, 0.5), ADSTOCK_LAGS)
    before = HIST.carry_in[m]  # (2, LAGS - 1, K)
    want = np.einsum("kj,njk->nk", w[:, 1:], before) / HIST.typical_spend
    np.testing.assert_allclose(carry, want, rtol=1e-6)
    assert math.isclose(float(obs[0, names.index("days_left")]), HIST.n_days[m[0]] / 31, rel_tol=1e-6)
    active = obs[:, [names.index(f"active_today:{c}") for c in HIST.channels]]
    np.testing.assert_array_equal(active, HIST.active[m, 0])
