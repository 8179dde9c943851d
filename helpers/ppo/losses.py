"""GAE and the PPO losses, each a pure function on tensors (notebook 04 teaches them one by one).

``compute_gae`` (TRAP 1, *truncation is not termination*: a time limit cuts the episode but the
state still has a future, so it bootstraps from the value of the final observation; a real
termination has none), the clipped surrogate (``importance_ratio``, ``clipped_surrogate_*``), the
value loss, and the diagnostics: ``approx_kl`` (k3), ``clip_fraction``, ``explained_variance``.
TRAP 5, *the first ratio is 1*: old log-probs are those of the rollout's own policy on the same
(already normalised) inputs, so the first minibatch's ratio is exactly 1 (``PPO`` checks it).
Shapes: ``T`` steps per rollout, ``N`` parallel envs, ``B`` samples in a minibatch.
"""

from __future__ import annotations

import torch

def compute_gae(rewards: torch.Tensor, values: torch.Tensor, terminations: torch.Tensor,
                truncations: torch.Tensor, next_values: torch.Tensor, gamma: float,
                gae_lambda: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over a rollout (pure function).

    Args (all ``(T, N)``, step ``t`` is the transition ``s_t --a_t--> r_t, s_{t+1}``):
        rewards: ``r_t``.
        values: ``V(s_t)``.
        terminations: 1 where ``s_{t+1}`` is terminal (the episode really ended).
        truncations: 1 where the episode was cut after this step (time limit) but not terminal.
        next_values: ``V(s_{t+1})`` for the *true* next state: for a truncated step, the value of
            the final observation (not of the next episode's first observation).

    Returns:
        ``advantages (T, N)`` and ``returns = advantages + values (T, N)`` (the value targets).

    ``delta_t = r_t + gamma * (1 - term_t) * V(s_{t+1}) - V(s_t)`` and
    ``A_t = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}`` with ``done = term or trunc``.
    """
    terminations = terminations.to(values.dtype)
    dones = torch.maximum(terminations, truncations.to(values.dtype))
    # TRAP 1: bootstrap through a truncation (the state had a future), not through a termination.
    deltas = rewards + gamma * (1.0 - terminations) * next_values - values
    # ...but never carry the advantage across an episode boundary of either kind.
    carry = gamma * gae_lambda * (1.0 - dones)
    advantages = torch.empty_like(values)
    last = torch.zeros_like(values[0])
    for t in range(values.shape[0] - 1, -1, -1):
        last = deltas[t] + carry[t] * last
        advantages[t] = last
    return advantages, advantages + values


# --- the losses ------------------------------------------------------------------------------


def importance_ratio(new_log_prob: torch.Tensor, old_log_prob: torch.Tensor) -> torch.Tensor:
    """``pi_new(a|s) / pi_old(a|s) = exp(log pi_new - log pi_old)``: ``(B,), (B,)`` -> ``(B,)``."""
    return torch.exp(new_log_prob - old_log_prob)


def clipped_surrogate_objective(ratio: torch.Tensor, advantages: torch.Tensor,
                                clip_eps: float) -> torch.Tensor:
    """Per-sample ``L^CLIP = min(r A, clip(r, 1-eps, 1+eps) A)``: ``(B,), (B,)`` -> ``(B,)``.

    The min makes it a pessimistic bound: once the ratio has moved past ``1 + eps`` (A > 0) or
    below ``1 - eps`` (A < 0) in the direction that helps, the clipped term wins and its gradient
    with respect to the ratio is zero; moves that hurt are never clipped.
    """
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    return torch.minimum(unclipped, clipped)


def clipped_surrogate_loss(ratio: torch.Tensor, advantages: torch.Tensor,
                           clip_eps: float) -> torch.Tensor:
    """Policy loss to *minimise*: ``-mean(L^CLIP)``, a scalar."""
    return -clipped_surrogate_objective(ratio, advantages, clip_eps).mean()


def value_loss(new_values: torch.Tensor, returns: torch.Tensor, old_values: torch.Tensor | None = None,
               clip_eps: float | None = None) -> torch.Tensor:
    """``0.5 * mean((V - returns)^2)``, optionally clipped around the rollout's values (CleanRL).

    ``new_values, returns, old_values``: ``(B,)``; scalar out. With clipping the loss is the max of
    the plain and the clipped squared errors (pessimistic, like the policy's clip): once a sample's
    value has moved more than ``clip_eps`` from ``old_values`` towards its return, the clipped term
    wins and that sample's gradient is zero. This removes the *incentive* to move further; it does
    not bound the move (the other samples share the network's weights, Adam has momentum), and a
    move away from the return is never clipped. ``clip_eps`` is in the units of the value (the
    scaled return), unrelated to the ratio's. Off by default (``PPOConfig.clip_vloss``).
    """
    err = (new_values - returns).pow(2)
    if clip_eps is not None and old_values is not None:
        v_clipped = old_values + torch.clamp(new_values - old_values, -clip_eps, clip_eps)
        err = torch.maximum(err, (v_clipped - returns).pow(2))
    return 0.5 * err.mean()


def approx_kl(log_ratio: torch.Tensor) -> torch.Tensor:
    """The k3 estimator of ``KL(pi_old || pi_new)``: ``mean((r - 1) - log r)`` (>= 0, low variance).

    ``log_ratio``: ``(B,)`` = ``log pi_new - log pi_old`` on actions sampled from ``pi_old``.
    """
    return ((torch.exp(log_ratio) - 1.0) - log_ratio).mean()


def clip_fraction(ratio: torch.Tensor, clip_eps: float) -> torch.Tensor:
    """Share of samples whose ratio lies outside ``[1 - eps, 1 + eps]``: ``(B,)`` -> scalar."""
    return ((ratio - 1.0).abs() > clip_eps).to(ratio.dtype).mean()


def explained_variance(y_pred: torch.Tensor, y_true: torch.Tensor) -> float:
    """``1 - Var(y_true - y_pred) / Var(y_true)``: 1 is perfect, 0 no better than the mean.

    NaN when ``y_true`` is constant.
    """
    var_y = torch.var(y_true)
    if var_y.item() == 0.0:
        return float("nan")
    return float(1.0 - torch.var(y_true - y_pred) / var_y)

