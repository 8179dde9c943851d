"""Graders of notebook 04 (PPO from scratch): the learner writes GAE, the clipped surrogate and the
minibatch update step; each is run on inputs made here and compared with ``helpers.ppo``.

Every grader returns ``None`` when the answer is right, else what is wrong in words: which kind of
mistake it looks like (each is recognised by comparing with the same computation done wrongly on
purpose), never the expected numbers. :func:`solved_or` lets the notebook's later cells use the
learner's function once it passes, and the helper's until then, so Run All always gets through.
"""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import torch

from helpers import ppo
from helpers.exercises import as_number, grade, grader, off_by


def solved_or(exercise_id: str, answer: Callable, helper: Callable, **context) -> Callable:
    """``answer`` if it passes the grader of ``exercise_id``, else ``helper`` (said in one line), so
    that the cells after an exercise run with the learner's code once it is right, and still run
    before."""
    if grade(exercise_id, answer, **context).status == "correct":
        return answer
    print(f"({exercise_id} not solved yet: the cells below use {getattr(helper, '__qualname__', 'the helper')} from "
          "helpers instead; rerun them once your function passes)")
    return helper


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-5, atol: float = 1e-6) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), rtol=rtol, atol=atol))


# --- 04.gae --------------------------------------------------------------------------------------


def _gae_cases() -> list[dict[str, Any]]:
    """Rollouts with terminations and truncations (never both on one step), several gamma/lambda."""
    g = torch.Generator().manual_seed(4)
    cases = []
    for T, N, gamma, lam in ((6, 1, 0.9, 0.8), (9, 3, 0.99, 0.95), (7, 4, 0.5, 1.0), (5, 2, 1.0, 0.0)):
        ends = torch.rand(T, N, generator=g)
        terms = (ends < 0.2).float()
        truncs = ((ends >= 0.2) & (ends < 0.4)).float()
        cases.append({"rewards": torch.randn(T, N, generator=g), "values": torch.randn(T, N, generator=g),
                      "terminations": terms, "truncations": truncs, "next_values": torch.randn(T, N, generator=g),
                      "gamma": gamma, "gae_lambda": lam})
    return cases


def _gae_variants(c: dict[str, Any]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The right answer and the usual mistakes, each as (advantages, returns)."""
    r, v, term, trunc, nv, gamma, lam = (c[k] for k in ("rewards", "values", "terminations", "truncations",
                                                        "next_values", "gamma", "gae_lambda"))
    right = ppo.compute_gae(r, v, term, trunc, nv, gamma, lam)
    zero = torch.zeros_like(term)

    def by_hand(bootstrap_mask, carry_mask, lam_=lam):
        delta = r + gamma * bootstrap_mask * nv - v
        adv, last = torch.empty_like(v), torch.zeros_like(v[0])
        for t in reversed(range(len(r))):
            last = delta[t] + gamma * lam_ * carry_mask[t] * last
            adv[t] = last
        return adv, adv + v

    done = torch.maximum(term, trunc)
    return {
        "right": right,
        "truncation treated as a termination": ppo.compute_gae(r, v, torch.maximum(term, trunc), zero, nv, gamma, lam),
        "bootstraps through a termination": by_hand(torch.ones_like(term), 1 - done),
        "carries the advantage across episode ends": by_hand(1 - term, torch.ones_like(term)),
        "carries the advantage across truncations": by_hand(1 - term, 1 - term),
        "returns without the values": (right[0], right[0]),
    }


_GAE_WORDS = {
    "truncation treated as a termination": "at a truncated step you do not bootstrap: a time limit cut the episode, "
                                           "the state still had a future worth gamma * V(final observation)",
    "bootstraps through a termination": "after a termination there is no future: gamma * V(s_t+1) must not be added there",
    "carries the advantage across episode ends": "the advantage flows across the end of an episode into the one before: "
                                                 "the recursion must restart at every end, termination or truncation",
    "carries the advantage across truncations": "the recursion restarts after a termination but not after a truncation: "
                                                "it must restart at every episode end",
    "returns without the values": "the second output is the critic's target: the advantage plus V(s_t)",
}


@grader("04.gae", hints=(
    "First the TD error of each step, delta_t = r_t + gamma * (1 - term_t) * V(s_t+1) - V(s_t); then, going backwards "
    "from the last step, A_t = delta_t + gamma * lambda * (1 - done_t) * A_t+1, with done = term or trunc.",
    "Loop `for t in reversed(range(T))`, keep the running advantage of the step after (zeros at the start), and return "
    "`(advantages, advantages + values)`; every tensor is (T, N): compute all envs at once.",
))
def _gae(answer, **_context) -> str | None:
    for c in _gae_cases():
        out = answer(*(c[k].clone() for k in ("rewards", "values", "terminations", "truncations", "next_values")),
                     c["gamma"], c["gae_lambda"])
        if not isinstance(out, tuple) or len(out) != 2:
            return "return two tensors: (advantages, returns)"
        adv, ret = (torch.as_tensor(x) for x in out)
        if adv.shape != c["values"].shape or ret.shape != c["values"].shape:
            return f"for (T, N) = {tuple(c['values'].shape)} inputs your tensors have shapes {tuple(adv.shape)} and {tuple(ret.shape)}"
        variants = _gae_variants(c)
        right_adv, right_ret = variants.pop("right")
        if _close(adv, right_adv) and _close(ret, right_ret):
            continue
        for name, (a, rt) in variants.items():
            if _close(adv, a) and _close(ret, rt):
                return _GAE_WORDS[name]
        if _close(adv, right_adv):
            return _GAE_WORDS["returns without the values"]
        if c["gae_lambda"] in (0.0, 1.0):
            return f"with gae_lambda = {c['gae_lambda']:g} (and gamma = {c['gamma']:g}) the advantages are off: check where lambda enters"
        return (f"on a rollout of {c['values'].shape[0]} steps x {c['values'].shape[1]} envs with gamma = {c['gamma']:g}, "
                f"lambda = {c['gae_lambda']:g} your advantages differ from helpers.ppo.compute_gae's")
    return None


# --- 04.clipped_objective ----------------------------------------------------------------------


@grader("04.clipped_objective", hints=(
    "Two candidates per sample, ratio * A and clip(ratio, 1 - eps, 1 + eps) * A; PPO keeps the smaller (pessimistic) one.",
    "torch.minimum(ratio * adv, torch.clamp(ratio, 1 - eps, 1 + eps) * adv): one value per sample, no mean, no minus sign.",
))
def _clipped_objective(answer, **_context) -> str | None:
    g = torch.Generator().manual_seed(7)
    for eps in (0.1, 0.2, 0.3):
        ratio = (torch.rand(400, generator=g, dtype=torch.float64) * 2).requires_grad_()
        adv = torch.randn(400, generator=g, dtype=torch.float64)
        out = answer(ratio, adv, eps)
        if not torch.is_tensor(out):
            return f"return a tensor (one value per sample), not a {type(out).__name__}"
        right = ppo.clipped_surrogate_objective(ratio, adv, eps)
        if out.shape != right.shape:
            return f"for {len(ratio)} samples return {len(ratio)} values, one per sample (no mean): yours has shape {tuple(out.shape)}"
        out64, r64 = out.double(), right.detach()
        if not _close(out64.detach(), r64):
            unclipped, clipped = ratio.detach() * adv, ratio.detach().clamp(1 - eps, 1 + eps) * adv
            if _close(out64.detach(), -r64):
                return "the sign is flipped: this is the objective to maximise (the loss is its negative mean, later)"
            if _close(out64.detach(), torch.maximum(unclipped, clipped)):
                return "you keep the larger of the two terms: PPO keeps the smaller, so the clip can only remove an incentive"
            if _close(out64.detach(), clipped):
                return "without the min the harmful moves are clipped too: a ratio that moved the wrong way must keep its gradient"
            if _close(out64.detach(), (ratio.detach() * adv).clamp(1 - eps, 1 + eps)):
                return "clip the ratio, not the product ratio * A"
            return f"with eps = {eps} your values differ from helpers.ppo.clipped_surrogate_objective's"
        if not out.requires_grad:
            return "your result carries no gradient: compute it with torch operations on `ratio` (no .item(), no numpy)"
        (mine,) = torch.autograd.grad(out.sum(), ratio)
        (theirs,) = torch.autograd.grad(right.sum(), ratio)
        if not _close(mine, theirs):
            return "the values are right but the gradient with respect to the ratio is not: where the clip is active it must be 0"
    return None


# --- 04.minibatch_step -------------------------------------------------------------------------

#: What the learner's ``minibatch_step(agent, mb)`` gets (the fields of the notebook's ``make_agent``).
AGENT_FIELDS = ("cfg", "actor", "critic", "params", "optimizer")


def make_agent(cfg: ppo.PPOConfig, obs_dim: int = 3, act_dim: int = 1, seed: int = 0) -> SimpleNamespace:
    """A fresh agent with the fields the notebook's loop uses: ``cfg, actor, critic, params, optimizer``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        actor = ppo.Actor(obs_dim, act_dim, cfg.hidden_sizes, cfg.init_log_std, cfg.log_std_bounds)
        critic = ppo.Critic(obs_dim, cfg.hidden_sizes)
    params = [*actor.parameters(), *critic.parameters()]
    return SimpleNamespace(cfg=cfg, actor=actor, critic=critic, params=params,
                           optimizer=torch.optim.Adam(params, lr=cfg.lr, eps=cfg.adam_eps))


def reference_minibatch_step(agent, mb: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """helpers.ppo's minibatch step (``PPO``'s, from its public pieces) on the notebook's agent.

    ``mb``: ``obs (B, O), actions (B, A), log_probs, values, advantages, returns`` (each ``(B,)``).
    Returns ``policy_loss``, ``value_loss`` and ``log_ratio`` (B,), all detached.
    """
    cfg = agent.cfg
    log_ratio = agent.actor.log_prob(mb["obs"], mb["actions"]) - mb["log_probs"]
    adv = mb["advantages"]
    if cfg.norm_adv and len(adv) > 1:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    policy_loss = ppo.clipped_surrogate_loss(log_ratio.exp(), adv, cfg.clip_eps)
    value_loss = ppo.value_loss(agent.critic(mb["obs"]), mb["returns"], mb["values"], cfg.clip_eps if cfg.clip_vloss else None)
    loss = policy_loss + cfg.vf_coef * value_loss - cfg.ent_coef * agent.actor.entropy()
    agent.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(agent.params, cfg.max_grad_norm)
    agent.optimizer.step()
    agent.actor.project_()
    return {"policy_loss": policy_loss.detach(), "value_loss": value_loss.detach(), "log_ratio": log_ratio.detach()}


def _minibatch(agent, n: int, seed: int) -> dict[str, torch.Tensor]:
    """A made-up minibatch: log-probs of a slightly different (older) policy, so ratios differ from 1."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, agent.actor.mean_net[0].in_features, generator=g)
    with torch.no_grad():
        mean, log_std = agent.actor(obs)
        actions = mean + torch.randn(mean.shape, generator=g) * log_std.exp()
        old = agent.actor.log_prob(obs, actions) + 0.3 * torch.randn(n, generator=g)
        values = agent.critic(obs) + 0.1 * torch.randn(n, generator=g)
    return {"obs": obs, "actions": actions, "log_probs": old, "values": values,
            "advantages": 2.0 * torch.randn(n, generator=g) + 0.5, "returns": values + torch.randn(n, generator=g)}


def _step_variants(agent, mb) -> dict[str, Callable]:
    def no_clip(a, m):
        saved = a.cfg
        a.cfg = ppo.PPOConfig(**{**saved.to_dict(), "max_grad_norm": 1e9})
        try:
            return reference_minibatch_step(a, m)
        finally:
            a.cfg = saved

    def no_norm(a, m):
        saved = a.cfg
        a.cfg = ppo.PPOConfig(**{**saved.to_dict(), "norm_adv": False})
        try:
            return reference_minibatch_step(a, m)
        finally:
            a.cfg = saved

    def no_zero_grad(a, m):
        a.optimizer.zero_grad = lambda set_to_none=True: None
        try:
            return reference_minibatch_step(a, m)
        finally:
            del a.optimizer.zero_grad

    return {"the gradient norm is not clipped (cfg.max_grad_norm, over both networks)": no_clip,
            "the advantages are not normalised within the minibatch (cfg.norm_adv)": no_norm,
            "the gradients of the previous step are still there: zero them before backward()": no_zero_grad}


def _run_steps(step: Callable, agent, batches) -> tuple[list[dict], list[torch.Tensor]]:
    outs = []
    for mb in batches:
        for p in agent.params:  # stale gradients, as a previous step leaves them
            p.grad = torch.full_like(p, 0.05)
        outs.append(step(agent, {k: v.clone() for k, v in mb.items()}))
    return outs, [p.detach().clone() for p in agent.params]


@grader("04.minibatch_step", hints=(
    "The combined loss of the pseudocode on the minibatch: ratio = exp(log pi_theta(a|x) - log pi_old), advantages "
    "normalised within the minibatch, the clipped surrogate, the critic loss (plain or value-clipped, as cfg says) and "
    "the entropy bonus; then zero the gradients, backward, clip the gradient norm, one Adam step, and the log-std back in bounds.",
    "Use policy(agent, mb['obs']) and my_log_prob for the log-probabilities, my_clipped_objective for the surrogate, "
    "torch.nn.utils.clip_grad_norm_(agent.params, cfg.max_grad_norm), agent.optimizer.step(), then "
    "agent.actor.log_std.clamp_(*agent.actor.log_std_bounds) under torch.no_grad(); return the two losses and the "
    "log-ratio, detached.",
))
def _minibatch_step(answer, **_context) -> str | None:
    base = ppo.PPOConfig(hidden_sizes=(16, 16), max_grad_norm=0.05, lr=3e-3, clip_eps=0.2, init_log_std=-0.5)
    configs = {"as configured": base,
               "with value clipping and an entropy bonus": ppo.PPOConfig(**{**base.to_dict(), "clip_vloss": True, "ent_coef": 0.05})}
    for label, cfg in configs.items():
        start = make_agent(cfg, seed=1)
        batches = [_minibatch(start, 32, seed) for seed in (11, 12, 13)]
        ref_out, ref_params = _run_steps(reference_minibatch_step, copy.deepcopy(start), batches)
        mine = copy.deepcopy(start)
        out, params = _run_steps(answer, mine, batches)
        if not all(isinstance(o, dict) for o in out):
            return "return a dict with 'policy_loss', 'value_loss' and 'log_ratio'"
        missing = [k for k in ("policy_loss", "value_loss", "log_ratio") if k not in out[0]]
        if missing:
            return f"your dict lacks {missing}"
        first, ref_first = out[0], ref_out[0]  # before the first step both start from the same weights
        if not _close(torch.as_tensor(first["log_ratio"]).detach(), ref_first["log_ratio"]):
            return "the log-ratio log pi_theta(a|x) - log pi_old(a|x) is off (the actor's current log-probabilities minus mb['log_probs'])"
        if not _close(torch.as_tensor(first["policy_loss"]).detach(), ref_first["policy_loss"]):
            return "the policy loss is off: minus the mean of the clipped surrogate, on advantages normalised within the minibatch"
        if not _close(torch.as_tensor(first["value_loss"]).detach(), ref_first["value_loss"]):
            return f"{label}: the value loss is off: 0.5 * mean of the squared error (the larger of plain and value-clipped with cfg.clip_vloss)"
        if all(_close(p, q, rtol=1e-4, atol=1e-6) for p, q in zip(params, ref_params)):
            lo, hi = mine.actor.log_std_bounds
            if not bool(((mine.actor.log_std >= lo) & (mine.actor.log_std <= hi)).all()):
                return "the log-std parameter has left its bounds"
            continue
        for words, variant in _step_variants(start, batches[0]).items():
            _, wrong = _run_steps(variant, copy.deepcopy(start), batches)
            if all(_close(p, q, rtol=1e-4, atol=1e-6) for p, q in zip(params, wrong)):
                return f"{label}: {words}"
        moved = any(not torch.equal(p, q.detach()) for p, q in zip(params, start.params))
        if not moved:
            return "the parameters did not move: take one optimiser step (agent.optimizer.step())"
        return (f"{label}: after three steps your parameters differ from helpers.ppo's; the losses are right, so look at the "
                "step itself (and the entropy bonus: its gradient goes to the log-std)")
    return None


# --- the questions at the end ----------------------------------------------------------------


def _numbers(answer, n: int, what: str) -> np.ndarray:
    arr = np.asarray(answer, dtype=float).ravel()
    if arr.size != n:
        raise ValueError(f"{what}: give {n} numbers, not {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: every number must be finite")
    return arr


@grader("04.clip_case", hints=(
    "L = min(r A, clip(r, 1 - eps, 1 + eps) A) with r = 1.3, A = -2, eps = 0.2: compute both terms, keep the smaller.",
    "With A < 0 a larger term is the less negative one; the derivative with respect to r is A if the unclipped term is "
    "kept and 0 if the clipped one is; the clip is active exactly when the derivative is 0.",
))
def _clip_case(answer) -> str | None:
    value, slope, active = _numbers(answer, 3, "(L_clip, derivative, clip active)")
    r = torch.tensor([1.3], dtype=torch.float64, requires_grad=True)
    objective = ppo.clipped_surrogate_objective(r, torch.tensor([-2.0], dtype=torch.float64), 0.2)
    (grad,) = torch.autograd.grad(objective.sum(), r)
    right = (float(objective.detach()), float(grad), float(grad.item() == 0.0))
    clipped_term = 1.2 * -2.0
    if math.isclose(value, clipped_term, abs_tol=1e-6):
        return "that value is the clipped term; the min keeps the other one here (A < 0: the smaller is the more negative)"
    if not math.isclose(value, right[0], rel_tol=1e-6, abs_tol=1e-6):
        return f"L_clip is {off_by(value, right[0])}"
    if not math.isclose(slope, right[1], rel_tol=1e-6, abs_tol=1e-6):
        return "the value is right but the derivative is not: which term does the min keep, and what is its derivative in r?"
    if active != right[2]:
        return "the clip-active flag does not match the derivative: the clip is active exactly when the gradient is zero"
    return None


def _truncation_case() -> tuple[np.ndarray, np.ndarray]:
    zeros = torch.zeros(3, 1, dtype=torch.float64)
    rewards, last = torch.ones(3, 1, dtype=torch.float64), torch.tensor([[0.0], [0.0], [1.0]], dtype=torch.float64)
    next_values = torch.tensor([[0.0], [0.0], [10.0]], dtype=torch.float64)
    truncated, _ = ppo.compute_gae(rewards, zeros, zeros, last, next_values, gamma=0.5, gae_lambda=1.0)
    terminated, _ = ppo.compute_gae(rewards, zeros, last, zeros, next_values, gamma=0.5, gae_lambda=1.0)
    return truncated[:, 0].numpy(), terminated[:, 0].numpy()


@grader("04.truncation_advantages", hints=(
    "With lambda = 1 the advantage is the discounted return from that step minus V (here 0): add the rewards, each "
    "discounted by gamma per step it lies ahead.",
    "Truncated: the episode had a future, worth V(final obs) = 10, discounted like a reward one step after the last one. "
    "Terminated: nothing after the last reward.",
))
def _truncation_advantages(answer) -> str | None:
    try:
        truncated, terminated = (np.asarray(x, dtype=float).ravel() for x in answer)
    except (TypeError, ValueError):
        raise ValueError("give two lists of three numbers: ([truncated], [terminated])") from None
    if truncated.size != 3 or terminated.size != 3:
        raise ValueError("give two lists of three numbers: ([truncated], [terminated])")
    right_trunc, right_term = _truncation_case()
    ok_trunc, ok_term = np.allclose(truncated, right_trunc, rtol=1e-6), np.allclose(terminated, right_term, rtol=1e-6)
    if ok_trunc and ok_term:
        return None
    if np.allclose(truncated, right_term, rtol=1e-6) and np.allclose(terminated, right_trunc, rtol=1e-6):
        return "the two lists are swapped: the truncated episode is the one that bootstraps"
    if np.allclose(truncated, right_term, rtol=1e-6):
        return "your truncated advantages do not bootstrap: a truncated episode still had a future, V(final obs) = 10"
    if not ok_trunc:
        return "the truncated advantages are off: discount V(final obs) like a reward one step after the last one"
    return "the terminated advantages are off: after a termination nothing follows the last reward"


@grader("04.kl_clipfrac", hints=(
    "k3 = mean((r - 1) - log r) over the four ratios; the clip fraction is the share of ratios with |r - 1| > eps.",
    "Pair them: ((0.5 - 1) - log 0.5) twice and ((2 - 1) - log 2) twice, averaged; and count how many of the four ratios "
    "lie outside [0.8, 1.2], divided by four.",
))
def _kl_clipfrac(answer) -> str | None:
    kl, frac = _numbers(answer, 2, "(approx_kl, clip_fraction)")
    ratios = torch.tensor([0.5, 0.5, 2.0, 2.0], dtype=torch.float64)
    right_kl, right_frac = float(ppo.approx_kl(torch.log(ratios))), float(ppo.clip_fraction(ratios, 0.2))
    if math.isclose(kl, float(-torch.log(ratios).mean()), abs_tol=1e-9) and not math.isclose(kl, right_kl, rel_tol=1e-6):
        return "that is the plain estimator mean(-log r) (k1), which can even be 0 or negative; the question asks for k3"
    if not math.isclose(kl, right_kl, rel_tol=1e-6):
        return f"the approximate KL is {off_by(kl, right_kl)}"
    if math.isclose(frac, right_frac * 4) and frac != right_frac:
        return "that is a count; the clip fraction is a share (between 0 and 1)"
    if not math.isclose(frac, right_frac, rel_tol=1e-6):
        return "the clip fraction is off: the share of ratios outside [1 - eps, 1 + eps]"
    return None


@grader("04.clipped_share", hints=(
    "P(a > high) + P(a < low) for a ~ N(1.5, 1), with low and high the torque bounds of section 5.",
    "scipy.stats.norm(1.5, 1.0).sf(high[0]) + scipy.stats.norm(1.5, 1.0).cdf(low[0]): a share between 0 and 1.",
))
def _clipped_share(answer, *, low, high) -> str | None:
    from scipy import stats

    x = as_number(answer)
    policy = stats.norm(loc=1.5, scale=1.0)
    lo, hi = float(np.ravel(low)[0]), float(np.ravel(high)[0])
    right = policy.sf(hi) + policy.cdf(lo)
    if math.isclose(x, 100 * right, rel_tol=2e-3):
        return "that is a percentage; give the share (between 0 and 1)"
    if abs(x - right) > 2e-3:
        return f"your share is {off_by(x, right)}"
    return None


@grader("04.value_clip_interval", hints=(
    "V_clip = V_old + clip(V - V_old, -eps, eps). Below V_old - eps the clipped value is stuck, and so is its squared "
    "error; the loss is the max of that constant and the plain error (V - R)^2.",
    "The gradient is zero while the constant clipped error is the larger one: from V_old - eps down to where the plain "
    "error becomes as large, the mirror image of V_old - eps across the target.",
))
def _value_clip_interval(answer) -> str | None:
    low, high = _numbers(answer, 2, "(low, high)")
    v = torch.linspace(-1.0, 4.0, 1001, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(ppo.value_loss(v, torch.full_like(v, 1.0), torch.full_like(v, 2.0), 0.3), v)
    flat = v.detach()[grad == 0]
    right_low, right_high = float(flat.min()), float(flat.max())  # one interval: the grid's zero-gradient points
    if low > high:
        return "give the interval as (low, high), the smaller end first"
    if math.isclose(low, 2.0 - 0.3, abs_tol=0.011) and math.isclose(high, 2.0 + 0.3, abs_tol=0.011):
        return "that is the clip range around V_old; the gradient vanishes elsewhere (towards the target, and beyond it)"
    if abs(low - right_low) > 0.011 or abs(high - right_high) > 0.011:
        wrong = [name for name, x, r in (("low", low, right_low), ("high", high, right_high)) if abs(x - r) > 0.011]
        return " and ".join(f"your {n} end is {off_by(x, r)}" for n, x, r in (("low", low, right_low), ("high", high, right_high))
                            if n in wrong)
    return None


_NO_NORM_CACHE: dict[tuple, float] = {}


def no_normalisation_return(config: ppo.PPOConfig, steps: int, eval_episodes: int, seed: int, num_envs: int) -> float:
    """helpers.ppo.PPO with ``config`` minus both normalisations, trained for ``steps`` on Pendulum-v1 and
    evaluated like notebook 04's section 7 (cached per kernel)."""
    import gymnasium as gym

    key = (tuple(sorted(config.to_dict().items(), key=lambda kv: kv[0])).__repr__(), steps, eval_episodes, seed, num_envs)
    if key not in _NO_NORM_CACHE:
        cfg = ppo.PPOConfig(**{**config.to_dict(), "norm_obs": False, "norm_reward": False})
        agent = ppo.PPO(gym.make_vec("Pendulum-v1", num_envs=num_envs, vectorization_mode="sync"), cfg)
        agent.learn(steps, progress=False)
        envs = gym.make_vec("Pendulum-v1", num_envs=4, vectorization_mode="sync")
        _NO_NORM_CACHE[key] = float(ppo.evaluate(agent, envs, n_episodes=eval_episodes, seed=seed).mean())
    return _NO_NORM_CACHE[key]


@grader("04.no_normalisation", hints=(
    "cfg = PPOConfig(**{**config.to_dict(), 'norm_obs': False, 'norm_reward': False}); train my_ppo(pendulum(), cfg, n) "
    "for n = math.ceil(EPS_STEPS / batch) updates.",
    "Then ppo.evaluate(deterministic_policy(agent), eval_envs(), n_episodes=EVAL_EPISODES, seed=SEED).mean(): the same "
    "evaluation as section 7's runs.",
))
def _no_normalisation(answer, *, config, steps: int, eval_episodes: int, seed: int, num_envs: int) -> str | None:
    x = as_number(answer)
    right = no_normalisation_return(config, steps, eval_episodes, seed, num_envs)
    if math.isclose(x, right, rel_tol=1e-4):
        return None
    return f"your mean return is {off_by(x, right)}: switch both normalisations off, train, then evaluate with seed=SEED"


_DIVISION_CACHE: dict[tuple, float] = {}


def division_difference(compare_with_helper: Callable, config: ppo.PPOConfig) -> float:
    """``compare_with_helper(config)[2].max()`` with the notebook's ``my_log_prob`` dividing by sigma;
    the notebook's own ``my_log_prob`` is put back afterwards (cached per kernel)."""
    key = (id(compare_with_helper), repr(config))
    if key not in _DIVISION_CACHE:
        namespace = compare_with_helper.__globals__
        original = namespace["my_log_prob"]

        def my_log_prob(a, mean, log_std):  # the same maths, other floating-point operations
            z = (a - mean) / torch.exp(log_std)
            return (-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)

        namespace["my_log_prob"] = my_log_prob
        try:
            _DIVISION_CACHE[key] = float(compare_with_helper(config)[2].max())
        finally:
            namespace["my_log_prob"] = original
    return _DIVISION_CACHE[key]


@grader("04.division_difference", hints=(
    "Redefine my_log_prob with z = (a - mean) / torch.exp(log_std), run compare_with_helper(config)[2].max(), then "
    "rerun section 1's cell to put the original back.",
    "The answer is the largest |difference| the comparison finds: one number, larger than TOL if the rounding mattered.",
))
def _division_difference(answer, *, compare_with_helper, config, tol: float) -> str | None:
    x = as_number(answer)
    right = division_difference(compare_with_helper, config)
    if x <= tol:
        return ("that is within the tolerance, as with the original my_log_prob: was my_log_prob really redefined with "
                "the division when compare_with_helper ran?")
    if abs(math.log10(x) - math.log10(right)) >= 1:  # bit-level results depend on the exact operations: a factor of 10
        return f"your difference is {off_by(x, right)}"
    return None


__all__ = ["AGENT_FIELDS", "make_agent", "reference_minibatch_step", "solved_or"]
