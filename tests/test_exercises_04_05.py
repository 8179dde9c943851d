"""The exercises of notebooks 04 and 05 (helpers/exercises/nb04.py, nb05.py): for each id, the right
answer passes, two plausible wrong answers fail with what is wrong and a hint, and the expected value
appears neither in what the check prints nor in the student copy's source.

Right answers are computed here independently of the graders (by hand, or with helpers.ppo / the
evaluator directly); the expensive experiments run at tiny sizes.
"""

from __future__ import annotations

import math
import re

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch

from helpers import course, ppo
from helpers import exercises as ex
from helpers.baselines import Evaluator, even_pacing
from helpers.env import OBS_NAMES, EnvConfig
from helpers.exercises import check
from helpers.exercises import nb04, nb05

from funnel_fixtures import TRUTH, jittered_posterior  # tests/ is on sys.path under pytest
from exercise_checks import assert_fails_with_hint, assert_student_copy_holds_no_solution, learner_kernel  # noqa: F401  (learner_kernel: autouse)

NB04 = course.NOTEBOOKS_DIR / "04_ppo_from_scratch.ipynb"
NB05 = course.NOTEBOOKS_DIR / "05_training_the_budget_agent.ipynb"


def assert_right(capsys, exercise_id, answer, **context):
    check(exercise_id, answer, **context)
    assert capsys.readouterr().out.strip() == f"{exercise_id}: correct."


# --- 04: the learner writes the core -----------------------------------------------------------


def gae_by_hand(rewards, values, terminations, truncations, next_values, gamma, gae_lambda):
    T = len(rewards)
    adv = torch.zeros_like(values)
    for t in reversed(range(T)):
        end = torch.maximum(terminations[t], truncations[t])
        delta = rewards[t] + gamma * (1 - terminations[t]) * next_values[t] - values[t]
        adv[t] = delta + (gamma * gae_lambda * (1 - end) * adv[t + 1] if t + 1 < T else 0)
    return adv, adv + values


def test_04_gae(capsys):
    assert_right(capsys, "04.gae", gae_by_hand)
    assert_fails_with_hint(capsys, "04.gae", lambda r, v, te, tr, nv, g, l: gae_by_hand(r, v, torch.maximum(te, tr), 0 * tr, nv, g, l),
                           says="truncated step")
    assert_fails_with_hint(capsys, "04.gae", lambda *a: (gae_by_hand(*a)[0],) * 2, says="the advantage plus V")
    assert "hint 2" in assert_fails_with_hint(capsys, "04.gae", lambda *a: (gae_by_hand(*a)[0] * 0.9, gae_by_hand(*a)[1]))


def test_04_clipped_objective(capsys):
    assert_right(capsys, "04.clipped_objective", lambda r, a, eps: torch.min(r * a, r.clamp(1 - eps, 1 + eps) * a))
    assert_fails_with_hint(capsys, "04.clipped_objective", lambda r, a, eps: torch.max(r * a, r.clamp(1 - eps, 1 + eps) * a),
                           says="larger of the two")
    assert_fails_with_hint(capsys, "04.clipped_objective", lambda r, a, eps: -torch.min(r * a, r.clamp(1 - eps, 1 + eps) * a).mean(),
                           says="one per sample")
    # right values but no gradient: computed outside torch's graph
    assert_fails_with_hint(capsys, "04.clipped_objective",
                           lambda r, a, eps: torch.as_tensor(np.minimum(r.detach().numpy() * a.numpy(),
                                                                        np.clip(r.detach().numpy(), 1 - eps, 1 + eps) * a.numpy())),
                           says="no gradient")


def learner_step(norm=True, clip_grad=True, zero_grad=True):
    """A learner's minibatch_step written from the notebook's text (helpers.ppo's Actor/Critic calls)."""
    def step(agent, mb):
        cfg = agent.cfg
        log_ratio = agent.actor.log_prob(mb["obs"], mb["actions"]) - mb["log_probs"]
        adv = mb["advantages"]
        if norm and cfg.norm_adv:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        r = log_ratio.exp()
        policy_loss = -torch.min(r * adv, r.clamp(1 - cfg.clip_eps, 1 + cfg.clip_eps) * adv).mean()
        value = agent.critic(mb["obs"])
        err = (value - mb["returns"]) ** 2
        if cfg.clip_vloss:
            vc = mb["values"] + (value - mb["values"]).clamp(-cfg.clip_eps, cfg.clip_eps)
            err = torch.max(err, (vc - mb["returns"]) ** 2)
        value_loss = 0.5 * err.mean()
        loss = policy_loss + cfg.vf_coef * value_loss - cfg.ent_coef * agent.actor.entropy()
        if zero_grad:
            agent.optimizer.zero_grad()
        loss.backward()
        if clip_grad:
            torch.nn.utils.clip_grad_norm_(agent.params, cfg.max_grad_norm)
        agent.optimizer.step()
        with torch.no_grad():
            agent.actor.log_std.clamp_(*agent.actor.log_std_bounds)
        return {"policy_loss": policy_loss.detach(), "value_loss": value_loss.detach(), "log_ratio": log_ratio.detach()}
    return step


def test_04_minibatch_step(capsys):
    assert_right(capsys, "04.minibatch_step", learner_step())
    assert_fails_with_hint(capsys, "04.minibatch_step", learner_step(clip_grad=False), says="gradient norm is not clipped")
    assert_fails_with_hint(capsys, "04.minibatch_step", learner_step(zero_grad=False), says="zero them")
    assert_fails_with_hint(capsys, "04.minibatch_step", learner_step(norm=False), says="policy loss is off")


def test_04_solved_or_uses_the_helper_until_the_answer_passes(capsys):
    def stub(*args):
        raise NotImplementedError

    assert nb04.solved_or("04.gae", stub, ppo.compute_gae) is ppo.compute_gae
    assert "not solved yet" in capsys.readouterr().out
    assert nb04.solved_or("04.gae", gae_by_hand, ppo.compute_gae) is gae_by_hand
    assert capsys.readouterr().out == ""


def test_04_clip_case(capsys):
    right = (min(1.3 * -2, 1.2 * -2), -2.0, 0)
    assert_right(capsys, "04.clip_case", right)
    assert_fails_with_hint(capsys, "04.clip_case", (1.2 * -2, 0.0, 1), expected=[right[0]], says="clipped term")
    assert_fails_with_hint(capsys, "04.clip_case", (right[0], 0.0, 1), expected=[right[0]], says="derivative")


def test_04_truncation_advantages(capsys):
    truncated, terminated = [1 + 0.5 + 0.25 + 0.125 * 10, 1 + 0.5 + 0.25 * 10, 1 + 0.5 * 10], [1.75, 1.5, 1.0]
    assert_right(capsys, "04.truncation_advantages", (truncated, terminated))
    assert_fails_with_hint(capsys, "04.truncation_advantages", (terminated, terminated), expected=truncated, says="bootstrap")
    assert_fails_with_hint(capsys, "04.truncation_advantages", (terminated, truncated), expected=truncated, says="swapped")


def test_04_kl_clipfrac(capsys):
    ratios = np.array([0.5, 0.5, 2.0, 2.0])
    kl = float(np.mean((ratios - 1) - np.log(ratios)))
    assert_right(capsys, "04.kl_clipfrac", (kl, 1.0))
    assert_fails_with_hint(capsys, "04.kl_clipfrac", (float(np.mean(-np.log(ratios))), 1.0), expected=[kl], says="k1")
    assert_fails_with_hint(capsys, "04.kl_clipfrac", (kl, 4), says="a count")


def test_04_clipped_share(capsys):
    from scipy import stats

    low, high = np.array([-2.0]), np.array([2.0])
    right = stats.norm(1.5, 1).sf(2.0) + stats.norm(1.5, 1).cdf(-2.0)
    assert_right(capsys, "04.clipped_share", right, low=low, high=high)
    assert_fails_with_hint(capsys, "04.clipped_share", 100 * right, expected=[right], says="percentage", low=low, high=high)
    assert_fails_with_hint(capsys, "04.clipped_share", 1 - right, expected=[right], low=low, high=high)


def test_04_value_clip_interval(capsys):
    right = (2 * 1.0 - (2.0 - 0.3), 2.0 - 0.3)
    assert_right(capsys, "04.value_clip_interval", right)
    assert_fails_with_hint(capsys, "04.value_clip_interval", (1.7, 2.3), expected=right, says="clip range around V_old")
    assert_fails_with_hint(capsys, "04.value_clip_interval", (1.0, 1.7), expected=right, says="low end")


def test_04_no_normalisation(capsys):
    import gymnasium as gym

    config = ppo.PPOConfig(num_steps=16, num_epochs=1, num_minibatches=1, hidden_sizes=(8,), seed=3)
    context = dict(config=config, steps=64, eval_episodes=1, seed=5, num_envs=2)
    cfg = ppo.PPOConfig(**{**config.to_dict(), "norm_obs": False, "norm_reward": False})
    agent = ppo.PPO(gym.make_vec("Pendulum-v1", num_envs=2, vectorization_mode="sync"), cfg)
    agent.learn(64, progress=False)
    right = float(ppo.evaluate(agent, gym.make_vec("Pendulum-v1", num_envs=4, vectorization_mode="sync"), n_episodes=1, seed=5).mean())
    assert_right(capsys, "04.no_normalisation", right, **context)
    assert_fails_with_hint(capsys, "04.no_normalisation", 0.5 * right, expected=[right], **context)
    assert_fails_with_hint(capsys, "04.no_normalisation", 0.0, expected=[right], **context)


def my_log_prob(a, mean, log_std):  # what notebook 04 defines; exercise A.1's grader swaps it, then puts it back
    z = (a - mean) * torch.exp(-log_std)
    return (-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


PROBE = (torch.randn(256, 2, generator=torch.Generator().manual_seed(0)), torch.zeros(256, 2), torch.tensor([0.37, -1.3]))


def compare_with_helper(config):
    """A stand-in for notebook 04's comparison: (history, history, differences) of my_log_prob against the helper."""
    return None, None, pd.Series({"log_prob": float((my_log_prob(*PROBE) - ppo.gaussian_log_prob(*PROBE)).abs().max())})


def test_04_division_difference(capsys):
    a, mean, log_std = PROBE
    z = (a - mean) / torch.exp(log_std)
    right = float(((-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1) - ppo.gaussian_log_prob(*PROBE)).abs().max())
    assert right > 0  # the two forms round differently somewhere on the probe
    context = dict(compare_with_helper=compare_with_helper, config=ppo.PPOConfig(), tol=0.0)
    assert_right(capsys, "04.division_difference", right, **context)
    assert my_log_prob is globals()["my_log_prob"] and compare_with_helper(None)[2].max() == 0.0  # put back
    assert_fails_with_hint(capsys, "04.division_difference", 0.0, says="within the tolerance", **context)
    assert_fails_with_hint(capsys, "04.division_difference", 1e4 * right, **context)


# --- 05 --------------------------------------------------------------------------------------------


def test_05_vs_humans(capsys):
    table = pd.DataFrame({"pct_of_optimum": [98.7, 98.5, 96.4], "mean_clicks": [1000.0, 998.0, 977.0]},
                         index=["PPO (seed 0)", "PPO (mean of 3 seeds)", "historical (human)"])
    right = 98.5 - 96.4
    assert_right(capsys, "05.vs_humans", right, table=table, ppo_name="PPO (mean of 3 seeds)")
    assert_fails_with_hint(capsys, "05.vs_humans", -right, expected=[right], says="sign", table=table, ppo_name="PPO (mean of 3 seeds)")
    assert_fails_with_hint(capsys, "05.vs_humans", 98.7 - 96.4, expected=[right], says="one seed", table=table,
                           ppo_name="PPO (mean of 3 seeds)")


def test_05_weekend_factor(capsys):
    draws = jittered_posterior(50)
    point = draws.mean()
    boost, e = float(point.weekend_boost[0]), float(point.elasticity[0])
    right = boost ** (1 / (1 - e))
    assert_right(capsys, "05.weekend_factor", right, draws=draws)
    assert_fails_with_hint(capsys, "05.weekend_factor", boost, expected=[right], says="boost", draws=draws)
    assert_fails_with_hint(capsys, "05.weekend_factor", boost ** (1 / e), expected=[right], says="1 / (1 - e)", draws=draws)


def test_05_crumb_reward(capsys):
    cfg = EnvConfig(reward="neg_log_cpc")
    resolved = cfg.resolved()
    right = math.log(resolved.reference_cpc / 0.01) / resolved.reward_scale
    assert_right(capsys, "05.crumb_reward", right, cpc_config=cfg)
    assert_fails_with_hint(capsys, "05.crumb_reward", -right, expected=[right], says="sign", cpc_config=cfg)
    assert_fails_with_hint(capsys, "05.crumb_reward", math.log10(resolved.reference_cpc / 0.01) / resolved.reward_scale,
                           expected=[right], says="base 10", cpc_config=cfg)


def test_05_lab_verdict_grades_the_bands_not_the_means(capsys, monkeypatch):
    context = dict(draws=None, env_config=None, evaluator=None, steps=1, seeds=[0, 1])
    monkeypatch.setattr(nb05, "lab_verdict", lambda *a, **k: "no effect shown")  # the bands overlap
    assert_right(capsys, "05.lab_verdict", "no effect shown", **context)
    assert_fails_with_hint(capsys, "05.lab_verdict", 0.5, says="not yet an effect", **context)  # the higher mean
    assert_fails_with_hint(capsys, "05.lab_verdict", 0.05, says="not yet an effect", **context)
    monkeypatch.setattr(nb05, "lab_verdict", lambda *a, **k: 0.05)  # 0.05's whole band is above
    assert_right(capsys, "05.lab_verdict", "0.05", **context)
    assert_fails_with_hint(capsys, "05.lab_verdict", "no effect shown", says="do not overlap", **context)
    check("05.lab_verdict", "maybe", **context)
    assert "answer 0.05, 0.5 or 'no effect shown'" in capsys.readouterr().out


def test_05_lab_verdict_trains_the_two_settings_and_reads_their_bands(monkeypatch):
    from helpers import widgets

    seen = []
    real = widgets.seed_runs

    def spy(draws, eps, lr, seeds, steps, **kw):
        seen.append((eps, lr, tuple(seeds), steps))
        return {"finals": [97.0 + eps * s for s in seeds] if eps == 0.5 else [96.0, 96.1]}

    monkeypatch.setattr(widgets, "seed_runs", spy)
    nb05._LAB_CACHE.clear()
    assert nb05.lab_verdict(TRUTH, None, object(), 4096, [0, 1]) == 0.5  # 0.5's band [97, 97.5] above [96, 96.1]
    assert seen == [(0.05, 3e-4, (0, 1), 4096), (0.5, 3e-4, (0, 1), 4096)]
    monkeypatch.setattr(widgets, "seed_runs", real)
    nb05._LAB_CACHE.clear()


@pytest.fixture(scope="module")
def evaluator():
    return Evaluator(jittered_posterior(50), n_months=200)


def rule_from_the_optimum(draws, config=None):
    """Exercise 5's solution: spend in proportion to the optimum's day weights."""
    point = draws.mean()
    e = float(point.elasticity[0])
    w_hol, w_wkd = (float(b[0]) ** (1 / (1 - e)) for b in (point.holiday_boost, point.weekend_boost))
    col = {n: k for k, n in enumerate(OBS_NAMES)}
    m = (config or EnvConfig()).resolved().max_multiplier

    def rule(obs):
        weekend = obs[:, col["dow_sin"]] < -0.6
        w_today = np.where(obs[:, col["holiday_today"]] > 0, w_hol, np.where(weekend, w_wkd, 1.0))
        w_left = 1 + obs[:, col["holidays_left"]] * (w_hol - 1) + obs[:, col["weekend_days_left"]] * (w_wkd - 1)
        return (np.log(w_today / w_left) / np.log(m))[:, None]

    return rule


def test_05_pacing_rule(capsys, evaluator):
    assert_right(capsys, "05.pacing_rule", rule_from_the_optimum(evaluator.draws), evaluator=evaluator)
    front_load = lambda obs: np.where(obs[:, :1] > 0.6, 0.4, -0.2)  # noqa: E731  spend early, starve late
    assert_fails_with_hint(capsys, "05.pacing_rule", front_load, says="fewer clicks than even pacing", evaluator=evaluator)
    assert_fails_with_hint(capsys, "05.pacing_rule", even_pacing, says="exactly", evaluator=evaluator)
    assert_fails_with_hint(capsys, "05.pacing_rule", lambda obs: np.zeros(len(obs)), says="not (4, 1)", evaluator=evaluator)


# --- the student copies -------------------------------------------------------------------------


@pytest.mark.parametrize("path", [NB04, NB05], ids=lambda p: p.name[:2])
def test_the_student_copy_holds_no_solution_and_no_expected_value(path):
    source = assert_student_copy_holds_no_solution(nbformat.read(path, as_version=4), at_least=5, name=path.name)
    ids = sorted(set(re.findall(r'check\("(0[45]\.\w+)"', source)))
    assert len(ids) >= (9 if path == NB04 else 5), ids
    for exercise_id in ids:
        assert exercise_id in ex.GRADERS or ex.get_grader(exercise_id)
    if path == NB04:  # the numbers a learner is asked for (exercises 1-3, B.1) never appear in the copy
        for value in ("-2.6", "1.75", "0.25,", "(0.3, 1.7)", "0.309"):
            assert value not in source, value
