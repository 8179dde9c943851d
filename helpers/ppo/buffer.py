"""One rollout's transitions as ``(T, N, ...)`` tensors, its advantages, and the real ones flattened (notebook 04).

Stable-Baselines3's ``RolloutBuffer``, for the course's PPO: ``store`` fills step ``t``,
``compute_advantages`` runs GAE (bootstrapping from the final observation of a truncated step,
TRAP 1), ``real_transitions`` leaves out NEXT_STEP's reset-only steps (TRAP 2) and flattens the
rest for the minibatches. ``T`` steps per rollout, ``N`` parallel envs, ``O``/``A`` the
observation/action sizes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from helpers.ppo.losses import compute_gae

class RolloutBuffer:
    """One rollout: ``T`` steps of ``N`` envs, each field a ``(T, N, ...)`` tensor, then its advantages.

    ``store(t, ...)`` fills step ``t``; :meth:`compute_advantages` adds ``advantages`` and
    ``returns`` (GAE); :meth:`real_transitions` flattens the real transitions for the update.
    Fields: ``obs`` (normalised: exactly what the networks saw), ``actions`` (TRAP 3: the
    unclipped samples), ``log_probs``, ``values``, ``rewards`` (scaled if ``norm_reward``),
    ``terminations``, ``truncations``, ``valid`` (a real transition, TRAP 2), ``policy_mask``
    (valid, and the env used the action) and ``final_obs`` (normalised final observation of a
    truncated step, TRAP 1). ``buffer["obs"]`` reads a field by name too.
    """

    FIELDS = ("obs", "actions", "log_probs", "values", "rewards", "terminations", "truncations", "valid",
              "policy_mask", "final_obs")

    def __init__(self, num_steps: int, num_envs: int, obs_dim: int, act_dim: int, device: torch.device | str = "cpu"):
        T, N, O, A = num_steps, num_envs, obs_dim, act_dim
        self.obs_dim, self.act_dim = O, A
        f32, flag = dict(dtype=torch.float32, device=device), dict(dtype=torch.bool, device=device)
        self.obs, self.final_obs = torch.zeros((T, N, O), **f32), torch.zeros((T, N, O), **f32)
        self.actions = torch.zeros((T, N, A), **f32)
        for name in ("log_probs", "values", "rewards", "terminations", "truncations"):
            setattr(self, name, torch.zeros((T, N), **f32))
        self.valid, self.policy_mask = torch.zeros((T, N), **flag), torch.zeros((T, N), **flag)
        self.advantages = self.returns = None

    def __getitem__(self, name: str) -> torch.Tensor:
        return getattr(self, name)

    def store(self, t: int, **fields: Any) -> None:
        """Write step ``t`` of the given fields (tensors, or numpy arrays converted here)."""
        for name, value in fields.items():
            target = getattr(self, name)
            target[t] = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.asarray(value)).to(target.dtype)

    def compute_advantages(self, critic: nn.Module, last_values: torch.Tensor, gamma: float, gae_lambda: float) -> None:
        """GAE over the rollout: fills ``advantages`` and ``returns`` ``(T, N)``.

        ``next_values`` is V(s_{t+1}): the next step's value, ``last_values`` (V of the observation
        after the last step) for the last one, and the value of the final observation wherever an
        episode was truncated (TRAP 1). With NEXT_STEP, a reset-only step has term = trunc = 0, but
        the chain is cut at the real last step (done = 1), so nothing leaks across episodes.
        """
        next_values = torch.empty_like(self.values)
        next_values[:-1] = self.values[1:]
        next_values[-1] = last_values
        trunc_mask = self.truncations.bool()
        if trunc_mask.any():
            next_values[trunc_mask] = critic(self.final_obs[trunc_mask])
        self.advantages, self.returns = compute_gae(self.rewards, self.values, self.terminations, self.truncations,
                                                    next_values, gamma, gae_lambda)

    def real_transitions(self) -> dict[str, torch.Tensor]:
        """The real (``valid``) transitions, flattened ``(T, N, ...) -> (B, ...)``: ``obs``,
        ``actions``, ``log_probs``, ``values``, ``advantages``, ``returns``, ``policy_mask``."""
        valid = self.valid.reshape(-1)
        n = valid.numel()
        return {"obs": self.obs.reshape(n, self.obs_dim)[valid], "actions": self.actions.reshape(n, self.act_dim)[valid],
                **{k: getattr(self, k).reshape(n)[valid] for k in ("log_probs", "values", "advantages", "returns", "policy_mask")}}

