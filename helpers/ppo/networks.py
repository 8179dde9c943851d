"""The actor and the critic: a Gaussian policy with a state-independent log-std, and a value MLP (notebook 04).

Separate 64-64 tanh MLPs with orthogonal init (gain sqrt(2) hidden, 0.01 policy out, 1 value
out), as CleanRL and SB3 do. Shapes: ``B`` samples, ``O`` the observation size, ``A`` the action size.

The traps handled here:

* TRAP 3, *store the unclipped action*: :meth:`Actor.sample` returns the unbounded Gaussian
  sample and its log-prob; only the copy sent to the env is clipped (``PPO``'s rollout).
* TRAP 6, *a bound must keep its gradient*: a hard clamp of the log-std has zero gradient beyond
  the bound, so a std pushed onto its floor could never rise again (:meth:`Actor.bounded_log_std`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

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

