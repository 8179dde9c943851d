"""Proximal Policy Optimisation (PPO, clipped objective) for continuous actions, by hand in PyTorch.

No RL library inside: this file is the whole agent, meant to be read top to bottom, one idea per
screenful (in the spirit of CleanRL's ``ppo_continuous_action.py``, documented like Spinning Up).
It imports nothing from ``helpers`` and works on any Gymnasium vector env whose single observation
space is a 1-D ``Box`` and whose single action space is a ``Box``.

Reading order::

    PPOConfig                every hyperparameter, one line of doc each
    RunningMeanStd           running statistics for observation / reward normalisation
    RewardScaler             divide rewards by the running std of the discounted return
    Actor, Critic            Gaussian policy (state-independent log-std) and value MLPs
    compute_gae              GAE(lambda): termination (no bootstrap) vs truncation (bootstrap)
    clipped_surrogate_*      the PPO objective, importance_ratio, approx_kl (k3), value_loss
    VecStep, AutoresetStepper   one vector-env step, read the same way in every autoreset mode
    PPO                      learn: rollout -> advantages -> K epochs of minibatch updates;
                             then acting (predict) and persistence (save / load / resume)
    evaluate                 returns of a policy on a vector env (deterministic by default)
    make_vec_env             Gymnasium vector envs the safe way (never fork after torch started)

Shapes: ``T`` steps per rollout, ``N`` parallel envs, ``B`` samples in a minibatch, ``O`` the
observation size, ``A`` the action size.

Pseudocode of ``PPO.learn`` (Spinning Up's algorithm 1, with CleanRL's details)::

    for each update:
        anneal the learning rate
        rollout: T steps of the N envs with the current policy; store (obs, a, log pi(a), V, r, ends)
        advantages: GAE(lambda) backwards over the rollout; returns = advantages + values
        for each of K epochs, for each minibatch:
            ratio = pi_new(a) / pi_old(a);  loss = -min(ratio A, clip(ratio) A) + c_v 1/2 (V - R)^2
            one Adam step (gradient norm clipped)

The traps, each flagged where it is handled with a ``TRAP`` comment:

1. *Truncation is not termination.* A time limit cuts the episode but the state still has a
   future: bootstrap from the value of the final observation. A real termination has no future.
2. *Gymnasium 1.x autoreset.* In the default NEXT_STEP mode the step *after* an episode ends only
   resets that sub-env (action ignored, reward 0): that transition is not real and is masked out.
   In SAME_STEP mode the step that ends the episode already returns the next episode's first
   observation; the final observation is in ``info["final_obs"]``.
3. *Store the unclipped action.* Clip to the action bounds only on the way to the env; the
   log-probability must be that of the sampled (unclipped) action.
4. *Normalisation statistics are part of the agent.* They are saved with the weights; acting on
   raw observations with a network trained on normalised ones is a silent bug. Each observation
   the policy acts on is folded into them exactly once.
5. *The first ratio is 1.* Old log-probs are those of the rollout's own policy on the very same
   (already normalised) inputs, so the ratio on the first minibatch of the first epoch is 1.
6. *A bound must keep its gradient.* A hard clamp of the log-std has zero gradient beyond the
   bound: a std once pushed onto its floor could never rise again.
7. *Never fork after torch started its threads.* A forked child inherits OpenMP locks held by
   threads that do not exist in it and can wait forever: start processes with ``forkserver`` or
   ``spawn``. torch's thread count is process-wide: set once, never toggled around each call.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
from gymnasium.vector import AutoresetMode
from torch import nn
from tqdm.auto import tqdm

__all__ = [
    "PPOConfig",
    "RunningMeanStd",
    "RewardScaler",
    "Actor",
    "Critic",
    "mlp",
    "gaussian_log_prob",
    "compute_gae",
    "importance_ratio",
    "clipped_surrogate_objective",
    "clipped_surrogate_loss",
    "value_loss",
    "approx_kl",
    "clip_fraction",
    "explained_variance",
    "VecStep",
    "AutoresetStepper",
    "PPO",
    "evaluate",
    "episode_seed",
    "make_vec_env",
    "set_torch_threads",
    "DIAGNOSTIC_COLUMNS",
]

SAVE_FORMAT_VERSION = 2


# --- the hyperparameters ---------------------------------------------------------------------


@dataclass
class PPOConfig:
    """Every hyperparameter of the agent. The number of parallel envs is that of the vector env.

    A rollout holds ``num_steps * num_envs`` transitions; each update runs ``num_epochs`` passes
    over it in ``num_minibatches`` minibatches.
    """

    num_steps: int = 256  #: steps per rollout, per parallel env
    num_epochs: int = 10  #: passes (epochs) over each rollout
    num_minibatches: int = 8  #: minibatches per epoch (minibatch = rollout size / this)
    gamma: float = 0.99  #: discount factor
    gae_lambda: float = 0.95  #: GAE lambda: 0 = one-step TD advantage, 1 = Monte Carlo
    clip_eps: float = 0.2  #: PPO clip epsilon: no gradient once a ratio is past 1 +- eps the way A pushes it
    vf_coef: float = 0.5  #: weight of the value loss in the total loss
    clip_vloss: bool = False  #: value clipping: no gradient past +-clip_eps towards the target (CleanRL on, SB3 off)
    ent_coef: float = 0.0  #: weight of the entropy bonus
    lr: float = 3e-4  #: Adam learning rate (the starting one if annealed)
    anneal_lr: bool = True  #: linearly anneal the learning rate to 0 over each learn() call (or resume its schedule)
    adam_eps: float = 1e-5  #: Adam epsilon (1e-5 as in CleanRL / SB3, not PyTorch's 1e-8)
    max_grad_norm: float = 0.5  #: clip the global gradient norm to this
    target_kl: float | None = None  #: stop an update's epochs early once approx KL exceeds this
    norm_adv: bool = True  #: normalise advantages per minibatch (mean 0, std 1)
    hidden_sizes: tuple[int, ...] = (64, 64)  #: hidden layer widths of both MLPs (tanh)
    init_log_std: float = 0.0  #: initial log standard deviation of the Gaussian policy
    log_std_bounds: tuple[float, float] = (-5.0, 2.0)  #: bounds of the log-std (gradient kept: TRAP 6)
    mask_ignored_actions: bool = False  #: leave steps the env says ignored their action out of the policy loss
    norm_obs: bool = True  #: normalise observations by running mean / std (saved with the agent)
    norm_reward: bool = True  #: divide rewards by the running std of the discounted return
    clip_obs: float = 10.0  #: clip normalised observations to +-this
    clip_reward: float = 10.0  #: clip scaled rewards to +-this
    seed: int = 0  #: seeds network init, action noise, minibatch order and the envs' first reset
    device: str = "cpu"  #: torch device ("cpu" is the fast choice for these small networks)
    torch_threads: int | None = 1  #: torch's (process-wide) thread count, set when an agent is built; None: leave it

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        self.log_std_bounds = tuple(float(b) for b in self.log_std_bounds)
        lo, hi = self.log_std_bounds
        checks = {
            "num_steps": self.num_steps >= 1,
            "num_epochs": self.num_epochs >= 1,
            "num_minibatches": self.num_minibatches >= 1,
            "gamma": 0.0 <= self.gamma <= 1.0,
            "gae_lambda": 0.0 <= self.gae_lambda <= 1.0,
            "clip_eps": self.clip_eps > 0.0,
            "lr": self.lr > 0.0,
            "max_grad_norm": self.max_grad_norm > 0.0,
            "target_kl": self.target_kl is None or self.target_kl > 0.0,
            "hidden_sizes": len(self.hidden_sizes) >= 1 and min(self.hidden_sizes) >= 1,
            "log_std_bounds": lo < hi,
            "init_log_std": lo <= self.init_log_std <= hi,
            "torch_threads": self.torch_threads is None or self.torch_threads >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            values = ", ".join(f"{n}={getattr(self, n)!r}" for n in bad)
            hint = " (init_log_std must lie within log_std_bounds)" if "init_log_std" in bad else ""
            raise ValueError(f"PPOConfig: invalid value(s): {values}{hint}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dict (safe to save with ``torch.save`` and load with weights_only)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PPOConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"PPOConfig.from_dict: unknown field(s) {sorted(unknown)}")
        return cls(**d)


# --- normalisers -----------------------------------------------------------------------------


class RunningMeanStd:
    """Running mean and variance of a stream of batches (Chan et al.'s parallel update).

    Statistics are float64 numpy arrays of ``shape``; ``count`` starts at a tiny ``epsilon`` so
    the first batch dominates without dividing by zero.
    """

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4):
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = float(epsilon)

    def update(self, batch: np.ndarray) -> None:
        """Fold in ``batch`` of shape ``(n, *shape)``."""
        batch = np.asarray(batch, dtype=np.float64)
        n = batch.shape[0]
        if n == 0:
            return
        b_mean = batch.mean(axis=0)
        b_var = batch.var(axis=0)
        delta = b_mean - self.mean
        total = self.count + n
        self.mean = self.mean + delta * (n / total)
        m2 = self.var * self.count + b_var * n + delta**2 * (self.count * n / total)
        self.var = m2 / total
        self.count = total

    def normalize(self, x: np.ndarray, clip: float | None = None, eps: float = 1e-8) -> np.ndarray:
        """``(x - mean) / sqrt(var + eps)``, optionally clipped to ``[-clip, clip]``."""
        z = (np.asarray(x, dtype=np.float64) - self.mean) / np.sqrt(self.var + eps)
        return np.clip(z, -clip, clip) if clip is not None else z

    def state_dict(self) -> dict[str, torch.Tensor]:
        # Tensors, not numpy arrays, so the file loads with torch.load(weights_only=True).
        return {
            "mean": torch.from_numpy(np.array(self.mean, dtype=np.float64)),
            "var": torch.from_numpy(np.array(self.var, dtype=np.float64)),
            "count": torch.tensor(self.count, dtype=torch.float64),
        }

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        mean = state["mean"].double().numpy().copy()
        if mean.shape != np.shape(self.mean):
            raise ValueError(f"RunningMeanStd: saved shape {mean.shape} != {self.mean.shape}")
        self.mean, self.var = mean, state["var"].double().numpy().copy()
        self.count = float(state["count"])


class RewardScaler:
    """Scale rewards by the running std of the discounted return (not of the reward itself).

    Per env keeps ``G <- gamma * G + r`` (reset at episode ends); the std of ``G`` across time and
    envs sets the scale. Uses the agent's own gamma (a mismatched gamma is a known bug). Rewards
    are divided, never shifted: shifting would change which policy is optimal.
    """

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0):
        self.rms = RunningMeanStd(shape=())
        self.gamma, self.clip = gamma, clip
        self.returns = np.zeros(num_envs, dtype=np.float64)

    def __call__(self, rewards: np.ndarray, dones: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """``rewards, dones, valid``: ``(N,)``; returns scaled rewards ``(N,)`` (0 where not valid)."""
        self.returns[valid] = self.returns[valid] * self.gamma + rewards[valid]
        self.rms.update(self.returns[valid])
        scaled = np.clip(rewards / math.sqrt(self.rms.var + 1e-8), -self.clip, self.clip)
        self.returns[dones] = 0.0
        return np.where(valid, scaled, 0.0)


# --- networks --------------------------------------------------------------------------------


def mlp(in_dim: int, hidden_sizes: Sequence[int], out_dim: int, out_gain: float) -> nn.Sequential:
    """Tanh MLP with orthogonal init: gain sqrt(2) on hidden layers, ``out_gain`` on the last."""
    layers: list[nn.Module] = []
    sizes = [in_dim, *hidden_sizes]
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [_ortho(nn.Linear(a, b), math.sqrt(2.0)), nn.Tanh()]
    layers.append(_ortho(nn.Linear(sizes[-1], out_dim), out_gain))
    return nn.Sequential(*layers)


def _ortho(layer: nn.Linear, gain: float) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def gaussian_log_prob(actions: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """Log-density of a diagonal Gaussian, summed over action dims.

    ``actions, mean``: ``(B, A)``; ``log_std``: ``(A,)`` or ``(B, A)``. Returns ``(B,)``. Equal to
    ``torch.distributions.Normal(mean, log_std.exp()).log_prob(actions).sum(-1)``, without the
    distribution object's overhead.
    """
    z = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * z.pow(2) - log_std - LOG_SQRT_2PI).sum(-1)


class Actor(nn.Module):
    """Gaussian policy: an MLP gives the mean; the log-std is a learned, state-independent vector.

    The Gaussian is unbounded. Actions are clipped to the env's bounds only when sent to the env
    (TRAP 3): the log-prob used in the update is that of the unclipped sample. The log-std stays
    within ``log_std_bounds`` without losing its gradient (TRAP 6, see ``bounded_log_std``).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: Sequence[int] = (64, 64),
                 init_log_std: float = 0.0, log_std_bounds: tuple[float, float] = (-5.0, 2.0)):
        super().__init__()
        lo, hi = (float(b) for b in log_std_bounds)
        if not lo <= init_log_std <= hi:
            raise ValueError(f"Actor: init_log_std={init_log_std} is outside log_std_bounds=({lo}, {hi})")
        # Output gain 0.01: the initial mean is ~0 everywhere, so early actions are pure noise.
        self.mean_net = mlp(obs_dim, hidden_sizes, act_dim, out_gain=0.01)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(init_log_std)))
        self.log_std_bounds = (lo, hi)

    def bounded_log_std(self) -> torch.Tensor:
        """The log-std ``(A,)``, its value clamped to ``log_std_bounds``, its gradient passed straight through.

        TRAP 6: ``log_std.clamp(lo, hi)`` alone has zero gradient outside the bounds, from the
        log-prob and the entropy bonus alike: a std pushed below its floor would stay there
        whatever the loss asks. The straight-through clamp keeps the gradient; ``project_`` (after
        each optimiser step) keeps the parameter itself inside, so it never drifts away either.
        """
        lo, hi = self.log_std_bounds
        return self.log_std + (self.log_std.clamp(lo, hi) - self.log_std).detach()

    @torch.no_grad()
    def project_(self) -> None:
        """Put the log-std parameter back into its bounds (projected gradient descent)."""
        self.log_std.clamp_(*self.log_std_bounds)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs (B, O)`` -> ``mean (B, A)``, ``log_std (A,)`` (bounded)."""
        return self.mean_net(obs), self.bounded_log_std()

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``actions (B, A)`` (unclipped) and their ``log_prob (B,)``."""
        mean, log_std = self(obs)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        actions = mean + noise * log_std.exp()
        return actions, gaussian_log_prob(actions, mean, log_std)

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``log pi(actions | obs)``: ``(B, O), (B, A)`` -> ``(B,)``."""
        mean, log_std = self(obs)
        return gaussian_log_prob(actions, mean, log_std)

    def entropy(self) -> torch.Tensor:
        """Entropy of the Gaussian (the same in every state): scalar, summed over action dims."""
        return (0.5 + LOG_SQRT_2PI + self.bounded_log_std()).sum()

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Normal:
        """The policy at ``obs`` as a ``torch.distributions.Normal`` (for teaching and tests)."""
        mean, log_std = self(obs)
        return torch.distributions.Normal(mean, log_std.exp().expand_as(mean))


class Critic(nn.Module):
    """State-value MLP, separate from the actor: ``obs (B, O)`` -> ``V(obs) (B,)``."""

    def __init__(self, obs_dim: int, hidden_sizes: Sequence[int] = (64, 64)):
        super().__init__()
        self.net = mlp(obs_dim, hidden_sizes, 1, out_gain=1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)


# --- advantages ------------------------------------------------------------------------------


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


# --- one vector-env step, in every autoreset mode ----------------------------------------------


@dataclass
class VecStep:
    """One step of a vector env, as PPO and ``evaluate`` read it. Every array is ``(N, ...)``.

    ``obs`` is what the policy acts on next (a new episode's first observation where one ended
    and was reset); ``final_obs`` holds the last observation of the episodes that ended here
    (``obs`` elsewhere). ``valid`` is False on NEXT_STEP's reset-only step, whose rewards and
    ends are zeroed here. ``action_ignored``: the env reports (``info["action_ignored"]``) that
    it did not use this step's action, e.g. the budget env's last day spends what is left.
    """

    obs: np.ndarray
    rewards: np.ndarray  # float64
    terminations: np.ndarray  # bool
    truncations: np.ndarray  # bool
    valid: np.ndarray  # bool
    final_obs: np.ndarray
    action_ignored: np.ndarray  # bool

    @property
    def dones(self) -> np.ndarray:
        return self.terminations | self.truncations


def autoreset_mode(envs: gym.vector.VectorEnv) -> AutoresetMode:
    mode = envs.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    return mode if isinstance(mode, AutoresetMode) else AutoresetMode(mode)


class AutoresetStepper:
    """Steps a vector env and returns a :class:`VecStep`, whatever its autoreset mode (TRAP 2).

    The one place that knows the three modes; used by the rollout and by ``evaluate``.
    """

    def __init__(self, envs: gym.vector.VectorEnv):
        self.envs, self.mode = envs, autoreset_mode(envs)
        self.pending = np.zeros(envs.num_envs, dtype=bool)  # NEXT_STEP: these sub-envs reset next step

    def reset(self, seed: int | None = None) -> np.ndarray:
        obs, _ = self.envs.reset(seed=seed)
        self.pending[:] = False
        return obs

    def step(self, actions: np.ndarray) -> VecStep:
        obs, rewards, terms, truncs, infos = self.envs.step(actions)
        rewards = np.asarray(rewards, dtype=np.float64)
        terms, truncs = np.array(terms, dtype=bool), np.array(truncs, dtype=bool)
        valid = np.ones(len(rewards), dtype=bool)
        final_obs = obs
        if self.mode == AutoresetMode.NEXT_STEP:
            # Sub-envs whose episode ended on the previous step were only reset now: the action
            # was ignored, reward/term/trunc are dummies. The obs returned with an end *is* final.
            valid = ~self.pending
            terms &= valid
            truncs &= valid
            self.pending = terms | truncs
        elif self.mode == AutoresetMode.SAME_STEP:
            # Every step is real; ended sub-envs were reset within the step: `obs` already holds
            # the next episode's first observation, the ended one's last is in infos.
            ended = np.flatnonzero(terms | truncs)
            if len(ended):
                final_obs = np.array(obs, copy=True)
                final_obs[ended] = np.stack([np.asarray(infos["final_obs"][i]) for i in ended])
        else:  # DISABLED: we reset ended sub-envs ourselves, keeping their final obs first.
            ended = terms | truncs
            if ended.any():
                final_obs = np.array(obs, copy=True)
                obs, _ = self.envs.reset(options={"reset_mask": ended})
        ignored = np.asarray(infos.get("action_ignored", False), dtype=bool) & valid
        return VecStep(obs, np.where(valid, rewards, 0.0), terms, truncs, valid, final_obs,
                       np.broadcast_to(ignored, valid.shape))


# --- the agent -------------------------------------------------------------------------------

#: Columns of the DataFrame returned by ``PPO.learn`` (one row per update).
DIAGNOSTIC_COLUMNS = [
    "update", "global_step", "wall_time_s", "train_time_s", "episodes", "episode_return_mean",
    "episode_length_mean", "policy_loss", "value_loss", "entropy", "action_std", "approx_kl",
    "clip_frac", "explained_variance", "first_ratio_dev", "epochs", "sps", "lr",
]


class PPO:
    """PPO-clip on a Gymnasium vector env with a 1-D ``Box`` observation and a ``Box`` action.

    >>> envs = make_vec_env("Pendulum-v1", num_envs=8)
    >>> agent = PPO(envs, PPOConfig(gamma=0.9, lr=1e-3))
    >>> history = agent.learn(100_000)           # DataFrame, one row per update
    >>> actions = agent.predict(observations)    # (n, O) -> (n, A), deterministic, clipped

    ``learn`` can be called again to continue (warm start); normalisers, optimiser and counters
    carry over. ``save``/``load`` round-trip all of it; ``learn(..., resume=True)`` continues an
    interrupted call's learning-rate schedule.

    Methods in reading order: construction; ``learn`` and its three parts, the rollout
    (``_collect_rollout``), the advantages (``_compute_advantages``) and the update (``_update``);
    acting (``predict``); persistence (``save``, ``load``).

    Settings that worked (see ``benchmarks/bench_ppo.py`` and notebook 04):

    * ``Pendulum-v1``, 16 envs: ``num_steps=256, num_minibatches=8, gamma=0.9, lr=1e-3``
      (about -150 to -200 after 200k steps);
    * the budget env (128 months, ~30-step episodes that end by termination, the total reward
      is what counts): ``helpers.training.BUDGET_PPO``, with the measurements behind each field
      -- ``gamma=1`` (no discounting of a month's later days), a large learning rate, and less
      exploration noise than the default std of 1 (a concave reward punishes noisy actions).
    """

    def __init__(self, envs: gym.vector.VectorEnv, config: PPOConfig | None = None):
        config = config if config is not None else PPOConfig()
        obs_space, act_space = _check_spaces(envs)
        self._build(config, obs_space, act_space)
        self._attach(envs)

    # -- construction --------------------------------------------------------------------------

    def _build(self, config: PPOConfig, obs_space: gym.spaces.Box, act_space: gym.spaces.Box) -> None:
        self.config = config
        set_torch_threads(config.torch_threads)  # TRAP 7: process-wide, so once, not per call
        self.device = torch.device(config.device)
        self.observation_space, self.action_space = obs_space, act_space
        self.obs_dim = int(obs_space.shape[0])
        self.act_dim = int(np.prod(act_space.shape))
        self.action_low = np.broadcast_to(act_space.low, act_space.shape).reshape(-1).astype(np.float64)
        self.action_high = np.broadcast_to(act_space.high, act_space.shape).reshape(-1).astype(np.float64)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)  # network init from the seed, global RNG left untouched
            self.actor = Actor(self.obs_dim, self.act_dim, config.hidden_sizes,
                               config.init_log_std, config.log_std_bounds).to(self.device)
            self.critic = Critic(self.obs_dim, config.hidden_sizes).to(self.device)
        # One Adam over both networks. fused=True: one kernel for all parameters on CPU, several
        # times faster than the per-tensor loop for these small networks (same maths).
        self.params = [*self.actor.parameters(), *self.critic.parameters()]
        self.optimizer = torch.optim.Adam(self.params, lr=config.lr, eps=config.adam_eps,
                                          fused=self.device.type == "cpu" or None)
        # Two generators of our own, independent of torch's global one: training (action noise in
        # rollouts, minibatch order) and acting (predict's samples), so that evaluating or
        # plotting a stochastic policy never changes the training run that follows.
        self.generator = torch.Generator(device="cpu").manual_seed(config.seed)
        self.act_generator = torch.Generator(device="cpu").manual_seed(_child_seed(config.seed, 1))
        self.obs_rms = RunningMeanStd(shape=(self.obs_dim,))
        self.return_rms = RunningMeanStd(shape=())  # shared with the RewardScaler
        self.global_step = 0
        self.num_updates = 0
        self.schedule = [0, 0]  # learning-rate schedule: [updates done, updates planned]
        self.history: list[dict[str, Any]] = []
        self.envs: gym.vector.VectorEnv | None = None

    def _attach(self, envs: gym.vector.VectorEnv) -> None:
        obs_space, act_space = _check_spaces(envs)
        if obs_space.shape != self.observation_space.shape or act_space.shape != self.action_space.shape:
            raise ValueError(
                f"PPO: env spaces {obs_space.shape}/{act_space.shape} do not match the agent's "
                f"{self.observation_space.shape}/{self.action_space.shape}")
        self.envs = envs
        self.num_envs = int(envs.num_envs)
        self.stepper = AutoresetStepper(envs)
        self.reward_scaler = RewardScaler(self.num_envs, self.config.gamma, self.config.clip_reward)
        self.reward_scaler.rms = self.return_rms
        self._buffers: dict[str, torch.Tensor] | None = None
        self.restart_episodes()

    def restart_episodes(self) -> None:
        """Drop the episodes in flight: the next rollout resets the envs with ``episode_seed``.

        Happens when envs are attached (a new or loaded agent) and after ``evaluate`` has used
        the agent's own training envs (it reset and stepped them under the agent's feet).
        """
        self._next_obs: np.ndarray | None = None  # raw observation the next action responds to

    def _start_episodes(self) -> None:
        # A fresh agent uses cfg.seed; a loaded one a new stream, never a replay (episode_seed).
        self._next_obs = self.stepper.reset(seed=episode_seed(self.config.seed, self.global_step))
        self.reward_scaler.returns[:] = 0.0  # the discounted returns of episodes that no longer exist
        self._ep_return = np.zeros(self.num_envs, dtype=np.float64)
        self._ep_length = np.zeros(self.num_envs, dtype=np.int64)

    # -- the training loop ---------------------------------------------------------------------

    def learn(self, total_steps: int, callback: Callable[[dict[str, Any]], bool | None] | None = None,
              progress: bool = True, *, resume: bool = False) -> pd.DataFrame:
        """Train for about ``total_steps`` env steps (rounded up to whole rollouts).

        ``callback(record)`` runs after every update with that update's diagnostics (a dict, one
        DataFrame row); returning ``False`` stops training. Returns this call's records
        (``DIAGNOSTIC_COLUMNS``); ``self.history`` keeps the records of every call.
        ``episode_return_mean`` is the mean raw (unscaled) return of the episodes that finished
        during the rollout (NaN if none did). ``train_time_s`` and ``sps`` count rollouts and
        updates only; ``wall_time_s`` includes the callbacks (evaluations, plots).

        Learning rate (``anneal_lr``): linear from ``lr`` to 0 over the updates this call plans,
        so each call starts a fresh schedule (a warm start fine-tunes with one). ``resume=True``
        continues the last call's schedule instead, after a callback stopped it or after
        ``save``/``load``: a plan of N + M steps stopped after N, then ``learn(M, resume=True)``,
        is N + M steps in one go.
        """
        if self.envs is None:
            raise RuntimeError("PPO.learn: no env attached; use PPO.load(path, envs=...) to train")
        cfg = self.config
        batch = cfg.num_steps * self.num_envs
        n_updates = max(1, math.ceil(int(total_steps) / batch))
        self._plan(n_updates, batch, resume)
        records: list[dict[str, Any]] = []
        start, start_step, train_s = time.perf_counter(), self.global_step, 0.0
        # Pass `disable` only to switch the bar off: left unset, tqdm honours TQDM_DISABLE=1.
        bar_kw = {} if progress else {"disable": True}
        with tqdm(total=n_updates * batch, unit="step", desc="PPO", **bar_kw) as bar:
            for _ in range(n_updates):
                t0 = time.perf_counter()
                self._set_learning_rate()
                episodes = self._collect_rollout()
                diag = self._update()
                self.num_updates += 1
                self.schedule[0] += 1
                train_s += time.perf_counter() - t0
                record = self._record(episodes, diag, start, start_step, train_s)
                records.append(record)
                self.history.append(record)
                bar.update(batch)
                if np.isfinite(record["episode_return_mean"]):
                    bar.set_postfix(ret=f"{record['episode_return_mean']:.1f}", refresh=False)
                if callback is not None and callback(record) is False:
                    break
        return pd.DataFrame(records, columns=DIAGNOSTIC_COLUMNS)

    def _plan(self, n_updates: int, batch: int, resume: bool) -> None:
        done, planned = self.schedule
        if not resume:
            self.schedule = [0, n_updates]
        elif planned - done < n_updates:
            raise ValueError(
                f"PPO.learn(resume=True): {planned - done} of the last call's {planned} updates are left "
                f"({(planned - done) * batch:,} env steps), {n_updates} asked for; learn() without resume "
                "starts a new schedule")

    def _set_learning_rate(self) -> None:
        done, planned = self.schedule
        lr = self.config.lr * (1.0 - done / planned) if self.config.anneal_lr else self.config.lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _record(self, episodes: tuple[list[float], list[int]], diag: dict[str, float], start: float,
                start_step: int, train_s: float) -> dict[str, Any]:
        returns, lengths = episodes
        return {
            "update": self.num_updates,
            "global_step": self.global_step,
            "wall_time_s": time.perf_counter() - start,
            "train_time_s": train_s,
            "episodes": len(returns),
            "episode_return_mean": float(np.mean(returns)) if returns else float("nan"),
            "episode_length_mean": float(np.mean(lengths)) if lengths else float("nan"),
            **diag,
            "sps": (self.global_step - start_step) / max(train_s, 1e-9),
            "lr": self.optimizer.param_groups[0]["lr"],
        }

    # -- the rollout ---------------------------------------------------------------------------

    def _allocate(self) -> dict[str, torch.Tensor]:
        T, N, O, A = self.config.num_steps, self.num_envs, self.obs_dim, self.act_dim
        f32 = dict(dtype=torch.float32, device=self.device)
        flag = dict(dtype=torch.bool, device=self.device)
        return {
            "obs": torch.zeros((T, N, O), **f32),  # normalised, exactly what the networks saw
            "actions": torch.zeros((T, N, A), **f32),  # TRAP 3: unclipped samples
            "log_probs": torch.zeros((T, N), **f32),
            "values": torch.zeros((T, N), **f32),
            "rewards": torch.zeros((T, N), **f32),  # scaled if norm_reward
            "terminations": torch.zeros((T, N), **f32),
            "truncations": torch.zeros((T, N), **f32),
            "valid": torch.zeros((T, N), **flag),  # a real transition (TRAP 2)
            "policy_mask": torch.zeros((T, N), **flag),  # valid, and the env used the action
            "final_obs": torch.zeros((T, N, O), **f32),  # normalised final obs of truncated steps
        }

    def _collect_rollout(self) -> tuple[list[float], list[int]]:
        """Run ``num_steps`` vector steps with the current policy into the buffers, then compute
        the advantages. Returns the raw returns and lengths of the episodes that finished."""
        if self._buffers is None:
            self._buffers = self._allocate()
        if self._next_obs is None:
            self._start_episodes()
        finished: tuple[list[float], list[int]] = ([], [])
        with torch.inference_mode():
            for t in range(self.config.num_steps):
                step = self._rollout_step(t)
                self._track_episodes(step, finished)
            self._compute_advantages()
        self.global_step += self.config.num_steps * self.num_envs
        return finished

    def _rollout_step(self, t: int) -> VecStep:
        """Act on the current observations, step the envs, store transition ``t`` of the rollout."""
        cfg, buf = self.config, self._buffers
        # TRAP 4: each observation enters the statistics once, when the policy acts on it.
        x = torch.from_numpy(self._normalize_obs(self._next_obs, update=True)).to(self.device)
        actions, log_probs = self.actor.sample(x, self.generator)
        buf["obs"][t], buf["actions"][t], buf["log_probs"][t] = x, actions, log_probs
        buf["values"][t] = self.critic(x)
        # TRAP 3: clip only the copy sent to the env.
        env_actions = np.clip(actions.cpu().numpy().astype(np.float64), self.action_low, self.action_high)
        step = self.stepper.step(env_actions.reshape((self.num_envs, *self.action_space.shape))
                                 .astype(self.action_space.dtype))
        rewards = self.reward_scaler(step.rewards, step.dones, step.valid) if cfg.norm_reward else step.rewards
        buf["rewards"][t] = torch.from_numpy(rewards.astype(np.float32))
        buf["terminations"][t] = torch.from_numpy(step.terminations.astype(np.float32))
        buf["truncations"][t] = torch.from_numpy(step.truncations.astype(np.float32))
        buf["valid"][t] = torch.from_numpy(step.valid)
        # A step whose action the env ignored (the budget env's last day spends what is left,
        # whatever the action) puts a log-prob term with no effect on the reward into the policy
        # loss: zero-mean noise. mask_ignored_actions=True leaves such steps out of the policy
        # loss (never out of the value loss: the state's value is real). Decided by measurement,
        # and the default KEEPS them: on the budget env masking did not help (bench_budget.py,
        # 800k steps, seeds 0-5, test months; build/bench/item6_mask_*.json): final % of the
        # optimum median 99.71 kept vs 99.62 masked, paired difference +0.04 +- 0.03 (SE) for
        # keeping; steps to 99% median 164k kept vs 184k masked. No gain, so the simpler loss.
        used = step.valid & ~step.action_ignored if cfg.mask_ignored_actions else step.valid
        buf["policy_mask"][t] = torch.from_numpy(used)
        if step.truncations.any():
            # TRAP 1: keep the final observation of a truncated episode to bootstrap from.
            fo = self._normalize_obs(np.asarray(step.final_obs)[step.truncations], update=False)
            buf["final_obs"][t, torch.from_numpy(step.truncations)] = torch.from_numpy(fo).to(self.device)
        self._next_obs = step.obs
        return step

    def _track_episodes(self, step: VecStep, finished: tuple[list[float], list[int]]) -> None:
        """Episode bookkeeping on raw rewards (what a learner wants to see)."""
        self._ep_return += step.rewards  # 0 where the step was not valid
        self._ep_length += step.valid
        for i in np.flatnonzero(step.dones):
            finished[0].append(float(self._ep_return[i]))
            finished[1].append(int(self._ep_length[i]))
            self._ep_return[i], self._ep_length[i] = 0.0, 0

    # -- the advantages ------------------------------------------------------------------------

    def _compute_advantages(self) -> None:
        """GAE over the rollout just collected: fills ``advantages`` and ``returns`` ``(T, N)``."""
        cfg, buf = self.config, self._buffers
        # V(s_{t+1}): the next step's value, the last obs's value after the final step, and
        # the value of the final observation wherever an episode was truncated.
        next_values = torch.empty_like(buf["values"])
        next_values[:-1] = buf["values"][1:]
        last = torch.from_numpy(self._normalize_obs(self._next_obs, update=False)).to(self.device)
        next_values[-1] = self.critic(last)
        trunc_mask = buf["truncations"].bool()
        if trunc_mask.any():
            next_values[trunc_mask] = self.critic(buf["final_obs"][trunc_mask])
        # With NEXT_STEP, a step after an episode end is masked: it has term = trunc = 0, but
        # the chain is cut at the real last step (done = 1), so nothing leaks across episodes.
        buf["advantages"], buf["returns"] = compute_gae(
            buf["rewards"], buf["values"], buf["terminations"], buf["truncations"], next_values,
            cfg.gamma, cfg.gae_lambda)

    # -- the update ----------------------------------------------------------------------------

    def _update(self) -> dict[str, float]:
        """``num_epochs`` passes of minibatch gradient steps over the rollout's real transitions."""
        cfg, buf = self.config, self._buffers
        valid = buf["valid"].reshape(-1)
        # Flatten (T, N, ...) -> (T*N, ...), keeping only real transitions.
        n = valid.numel()
        data = {"obs": buf["obs"].reshape(n, self.obs_dim)[valid], "actions": buf["actions"].reshape(n, self.act_dim)[valid],
                **{k: buf[k].reshape(n)[valid] for k in ("log_probs", "values", "advantages", "returns", "policy_mask")}}
        stats: dict[str, list[torch.Tensor]] = {k: [] for k in ("policy_loss", "value_loss", "approx_kl", "clip_frac")}
        first_ratio_dev, epochs_run = float("nan"), 0
        for epoch in range(cfg.num_epochs):
            perm = torch.randperm(len(data["values"]), generator=self.generator)
            epoch_kls = []
            for mb in perm.tensor_split(cfg.num_minibatches):
                if mb.numel() == 0:
                    continue
                mb_stats, ratio = self._minibatch_step({k: v[mb] for k, v in data.items()})
                if epoch == 0 and not epoch_kls and ratio.numel():
                    # TRAP 5: the networks have not moved yet, so this must be 0 (debug check).
                    first_ratio_dev = float((ratio - 1.0).abs().max())
                epoch_kls.append(mb_stats["approx_kl"])
                for k, v in mb_stats.items():
                    stats[k].append(v)
            epochs_run += 1
            # One synchronisation per epoch, only when early stopping is on.
            if cfg.target_kl is not None and float(torch.stack(epoch_kls).mean()) > cfg.target_kl:
                break
        out = dict(zip(stats, torch.stack([torch.stack(v).mean() for v in stats.values()]).tolist()))
        with torch.no_grad():
            out["entropy"] = float(self.actor.entropy())
            out["action_std"] = float(self.actor.bounded_log_std().exp().mean())
            out["explained_variance"] = explained_variance(data["values"], data["returns"])
        out["first_ratio_dev"] = first_ratio_dev
        out["epochs"] = epochs_run
        return out

    def _minibatch_step(self, mb: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One gradient step on a minibatch (``B`` rows of each tensor); returns its statistics
        (detached scalars) and the importance ratios of its policy samples."""
        cfg = self.config
        act = mb["policy_mask"]  # the steps whose action mattered (item 6 in _rollout_step)
        new_log_probs = self.actor.log_prob(mb["obs"][act], mb["actions"][act])
        log_ratio = new_log_probs - mb["log_probs"][act]
        ratio = log_ratio.exp()
        adv = mb["advantages"][act]
        if cfg.norm_adv and adv.numel() > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        pg_loss = clipped_surrogate_loss(ratio, adv, cfg.clip_eps) if ratio.numel() else ratio.sum()
        v_loss = value_loss(self.critic(mb["obs"]), mb["returns"], mb["values"],
                            cfg.clip_eps if cfg.clip_vloss else None)
        loss = pg_loss + cfg.vf_coef * v_loss
        if cfg.ent_coef:
            loss = loss - cfg.ent_coef * self.actor.entropy()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
        self.optimizer.step()
        self.actor.project_()  # TRAP 6: the log-std parameter back into its bounds
        with torch.no_grad():
            ratio = ratio.detach()
            stats = {"policy_loss": pg_loss.detach(), "value_loss": v_loss.detach(),
                     "approx_kl": approx_kl(log_ratio.detach()) if ratio.numel() else ratio.sum(),
                     "clip_frac": clip_fraction(ratio, cfg.clip_eps) if ratio.numel() else ratio.sum()}
        return stats, ratio

    # -- acting --------------------------------------------------------------------------------

    def _normalize_obs(self, obs: np.ndarray, update: bool) -> np.ndarray:
        """Raw ``(n, O)`` -> float32 network input; ``update`` folds ``obs`` into the statistics."""
        obs = np.asarray(obs, dtype=np.float64).reshape(-1, self.obs_dim)
        if not self.config.norm_obs:
            return obs.astype(np.float32)
        if update:
            self.obs_rms.update(obs)
        return self.obs_rms.normalize(obs, clip=self.config.clip_obs).astype(np.float32)

    def predict(self, obs: np.ndarray, deterministic: bool = True,
                generator: torch.Generator | None = None) -> np.ndarray:
        """Actions for raw observations: ``(n, O)`` -> ``(n, A)`` (or ``(O,)`` -> ``(A,)``).

        Uses the saved observation statistics without updating them, returns the Gaussian mean
        (or a sample if not ``deterministic``: from ``generator``, by default the agent's acting
        generator, never the training one), clipped to the action bounds.
        """
        obs = np.asarray(obs)
        single = obs.ndim == 1
        if obs.shape[-1] != self.obs_dim:
            raise ValueError(f"PPO.predict: observations of size {obs.shape[-1]}, expected {self.obs_dim}")
        x = torch.from_numpy(self._normalize_obs(obs, update=False)).to(self.device)
        with torch.inference_mode():
            if deterministic:
                actions = self.actor(x)[0]
            else:
                actions = self.actor.sample(x, self.act_generator if generator is None else generator)[0]
        actions = np.clip(actions.cpu().numpy().astype(np.float64), self.action_low, self.action_high)
        actions = actions.astype(self.action_space.dtype, copy=False)
        return actions[0] if single else actions

    # -- persistence ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything the next update depends on, as tensors and plain Python (not the envs'
        own state: a loaded agent starts new episodes, see ``episode_seed``)."""
        return {
            "format_version": SAVE_FORMAT_VERSION,
            "config": self.config.to_dict(),
            "observation_space": _space_dict(self.observation_space),
            "action_space": _space_dict(self.action_space),
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            # TRAP 4: the normalisers are part of the policy.
            "obs_rms": self.obs_rms.state_dict(),
            "return_rms": self.return_rms.state_dict(),
            "generator": self.generator.get_state(),
            "act_generator": self.act_generator.get_state(),
            "global_step": self.global_step,
            "num_updates": self.num_updates,
            "schedule": list(self.schedule),
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the agent to ``path`` atomically (temporary file, then ``os.replace``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(self.state_dict(), f)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, envs: gym.vector.VectorEnv | None = None) -> PPO:
        """Load an agent saved by ``save`` (safe: ``torch.load(weights_only=True)``).

        With ``envs`` the agent can continue training on them (their spaces must match): it starts
        new episodes from ``episode_seed(seed, global_step)``, a stream it has not seen, and
        ``learn(..., resume=True)`` continues the saved learning-rate schedule. Without, it can
        ``predict``, ``save`` and be evaluated.
        """
        path = Path(path)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # corrupt, truncated or not ours
            raise ValueError(f"PPO.load: cannot read {path}: {exc}") from exc
        if not isinstance(state, dict) or state.get("format_version") != SAVE_FORMAT_VERSION:
            raise ValueError(f"PPO.load: {path} is not a PPO save of format {SAVE_FORMAT_VERSION}")
        agent = cls.__new__(cls)
        agent._build(PPOConfig.from_dict(state["config"]), _space_from_dict(state["observation_space"]),
                     _space_from_dict(state["action_space"]))
        agent.actor.load_state_dict(state["actor"])
        agent.critic.load_state_dict(state["critic"])
        agent.optimizer.load_state_dict(state["optimizer"])
        agent.obs_rms.load_state_dict(state["obs_rms"])
        agent.return_rms.load_state_dict(state["return_rms"])
        agent.generator.set_state(state["generator"])
        agent.act_generator.set_state(state["act_generator"])
        agent.global_step = int(state["global_step"])
        agent.num_updates = int(state["num_updates"])
        agent.schedule = [int(n) for n in state["schedule"]]
        if envs is not None:
            agent._attach(envs)
        return agent


# --- evaluation ------------------------------------------------------------------------------


def evaluate(policy: PPO | Callable[[np.ndarray], np.ndarray], envs: gym.vector.VectorEnv,
             n_episodes: int = 20, seed: int | None = None, deterministic: bool = True,
             max_steps: int = 100_000) -> np.ndarray:
    """Raw returns of ``n_episodes`` episodes, spread evenly over the vector env's sub-envs.

    ``policy`` is a ``PPO`` (its ``predict`` is used, with the agent's acting generator when not
    ``deterministic``) or any function ``(n, O) -> (n, A)``. Each sub-env contributes its first
    ``ceil(n_episodes / num_envs)`` episodes (so short episodes are not over-represented); every
    autoreset mode is handled (``AutoresetStepper``). Returns ``(n_episodes,)`` float64.

    Evaluate on envs of your own. Handed a ``PPO``'s own training envs, it plays on them and then
    makes the agent start new episodes (``PPO.restart_episodes``), since they were reset and
    stepped under its feet. Raises ``RuntimeError`` naming ``max_steps`` if that many vector steps
    pass before every sub-env has finished its episodes (an env that never ends one).
    """
    agent = policy if isinstance(policy, PPO) else None
    act = policy if agent is None else (lambda o: agent.predict(o, deterministic=deterministic))
    num_envs = envs.num_envs
    per_env = math.ceil(n_episodes / num_envs)
    returns: list[list[float]] = [[] for _ in range(num_envs)]
    running = np.zeros(num_envs)
    stepper = AutoresetStepper(envs)
    try:
        obs = stepper.reset(seed=seed)
        for steps in range(max_steps + 1):
            if min(len(r) for r in returns) >= per_env:
                break
            if steps == max_steps:
                have = min(len(r) for r in returns)
                raise RuntimeError(
                    f"evaluate: after max_steps={max_steps} vector steps a sub-env has finished only {have} of "
                    f"its {per_env} episodes; does the env end its episodes? (raise max_steps for longer ones)")
            step = stepper.step(act(np.asarray(obs)))
            running += step.rewards  # 0 on NEXT_STEP's reset-only steps
            for i in np.flatnonzero(step.dones):
                returns[i].append(running[i])
                running[i] = 0.0
            obs = step.obs
    finally:
        if agent is not None and envs is agent.envs:
            agent.restart_episodes()
    out = [r for k in range(per_env) for r in (env_returns[k] for env_returns in returns)]
    return np.asarray(out[:n_episodes], dtype=np.float64)


# --- seeds, processes, threads -----------------------------------------------------------------


def _child_seed(seed: int, *key: int) -> int:
    """An independent stream's seed, derived from ``seed`` and a ``key`` (numpy's SeedSequence)."""
    return int(np.random.SeedSequence(int(seed) % 2**64, spawn_key=key).generate_state(1)[0])


def episode_seed(seed: int, global_step: int) -> int:
    """The seed an agent resets its envs with when it (re)starts its episodes.

    ``seed`` itself for a fresh agent (``global_step == 0``). Later (a loaded agent, or one whose
    envs ``evaluate`` used) a seed derived from both, so a resumed run meets new episodes instead
    of replaying the ones it started with; the same file resumed twice meets the same ones.
    """
    return int(seed) if global_step == 0 else _child_seed(seed, 2, int(global_step))


#: How the course starts processes (TRAP 7): never "fork" (a child forked after torch or BLAS
#: started their OpenMP threads can wait forever on a lock whose owner does not exist in it).
START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def make_vec_env(env_id: str, num_envs: int, asynchronous: bool = False, **kwargs: Any) -> gym.vector.VectorEnv:
    """``gym.make_vec(env_id, num_envs)``: all sub-envs in this process (the fastest for cheap envs
    such as Pendulum), or with ``asynchronous`` one process each, started with :data:`START_METHOD`.
    ``kwargs`` go to ``gym.make`` of each sub-env."""
    if not asynchronous:
        return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync", **kwargs)
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="async",
                        vector_kwargs={"context": START_METHOD}, **kwargs)


def set_torch_threads(n: int | None) -> None:
    """Set torch's intra-op thread count to ``n`` unless it already is (``None``: leave it).

    TRAP 7: the count is process-wide. Toggling it around every call costs time and races with
    anything else using torch; building an agent sets it once, from ``PPOConfig.torch_threads``.
    """
    if n is not None and torch.get_num_threads() != int(n):
        torch.set_num_threads(int(n))


# --- small utilities -------------------------------------------------------------------------


def _check_spaces(envs: gym.vector.VectorEnv) -> tuple[gym.spaces.Box, gym.spaces.Box]:
    obs_space = getattr(envs, "single_observation_space", None)
    act_space = getattr(envs, "single_action_space", None)
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise TypeError(f"PPO needs a vector env with a 1-D Box observation space, got {obs_space!r}")
    if not isinstance(act_space, gym.spaces.Box):
        raise TypeError(f"PPO needs a vector env with a Box action space, got {act_space!r}")
    return obs_space, act_space


def _space_dict(space: gym.spaces.Box) -> dict[str, Any]:
    return {"low": torch.from_numpy(np.asarray(space.low, dtype=np.float64)),
            "high": torch.from_numpy(np.asarray(space.high, dtype=np.float64)),
            "dtype": str(np.dtype(space.dtype))}


def _space_from_dict(d: dict[str, Any]) -> gym.spaces.Box:
    dtype = np.dtype(d["dtype"])
    return gym.spaces.Box(d["low"].numpy().astype(dtype), d["high"].numpy().astype(dtype), dtype=dtype)
