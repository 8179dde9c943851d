"""Every hyperparameter of the course's PPO in one frozen dataclass, one line of doc each (notebook 04).

In the spirit of CleanRL's ``ppo_continuous_action.py``: the defaults are CleanRL's and SB3's
(gamma 0.99, GAE lambda 0.95, clip 0.2, Adam eps 1e-5, grad-norm 0.5, 64-64 tanh networks);
``helpers.training.BUDGET_PPO`` is the setting tuned for the budget env. Validated on creation:
a bad value fails here, naming the field, not deep inside an update.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

@dataclass(frozen=True)
class PPOConfig:
    """Every hyperparameter of the agent. The number of parallel envs is that of the vector env.

    A rollout holds ``num_steps * num_envs`` transitions; each update runs ``num_epochs`` passes
    over it in ``num_minibatches`` minibatches. Frozen: an agent keeps its config by reference,
    so a change is a validated copy, ``dataclasses.replace(config, ent_coef=0.01)``.
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
    device: str = "cpu"  #: torch device: "cpu" only (the random generators are CPU ones; small networks are fastest there)
    torch_threads: int | None = 1  #: torch's (process-wide) thread count, set when envs to train on are attached; None: leave it

    def __post_init__(self) -> None:
        # Normalised in place once, before anyone sees the object (frozen: object.__setattr__).
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in self.hidden_sizes))
        object.__setattr__(self, "log_std_bounds", tuple(float(b) for b in self.log_std_bounds))
        try:
            device_type = torch.device(self.device).type
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"PPOConfig: device={self.device!r} is not a torch device ({exc})") from None
        if device_type != "cpu":
            raise ValueError(f"PPOConfig: device={self.device!r}: the course's PPO runs on the CPU only (its random "
                             "generators are CPU generators, and networks this small are fastest there); use device='cpu'")
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

