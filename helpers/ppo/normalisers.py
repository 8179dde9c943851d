"""Running statistics for observation and reward normalisation (notebook 04).

:class:`RunningMeanStd` keeps the mean and variance of a stream of batches; :class:`RewardScaler`
divides rewards by the running std of the discounted return (never shifts them). TRAP 4: both
are part of the agent, saved with its weights (``PPO.save``): acting on raw observations with a
network trained on normalised ones is a silent bug. Each observation the policy acts on is folded
into the statistics exactly once.
"""

from __future__ import annotations

import math

import numpy as np
import torch

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

