"""Proximal Policy Optimisation (clipped objective) for continuous actions, by hand in PyTorch (notebook 04).

No RL library inside; imports nothing from ``helpers``; works on any Gymnasium vector env with a
1-D ``Box`` observation and a ``Box`` action. One concept per module, in reading order:

* :mod:`~helpers.ppo.config`: ``PPOConfig``, every hyperparameter, one line of doc each;
* :mod:`~helpers.ppo.networks`: ``Actor`` (Gaussian, state-independent log-std) and ``Critic``;
* :mod:`~helpers.ppo.losses`: ``compute_gae`` and the losses (clipped surrogate, value, k3 KL);
* :mod:`~helpers.ppo.normalisers`: ``RunningMeanStd`` and ``RewardScaler``;
* :mod:`~helpers.ppo.vecenv`: ``AutoresetStepper`` (every autoreset mode), ``make_vec_env``, threads;
* :mod:`~helpers.ppo.buffer`: ``RolloutBuffer``, one rollout and its advantages;
* :mod:`~helpers.ppo.agent`: ``PPO``, learn / predict / save / load; :mod:`~helpers.ppo.evaluation`: ``evaluate``.

The seven traps (truncation, autoreset, unclipped actions, ...) are told in the modules that handle
them and flagged ``TRAP n`` in the code. Every name is importable as ``helpers.ppo.<name>``.
"""

from helpers.ppo.agent import DIAGNOSTIC_COLUMNS, DIAGNOSTIC_GROUPS, PPO, SAVE_FORMAT_VERSION
from helpers.ppo.buffer import RolloutBuffer
from helpers.ppo.config import PPOConfig
from helpers.ppo.evaluation import evaluate
from helpers.ppo.losses import (approx_kl, clip_fraction, clipped_surrogate_loss, clipped_surrogate_objective, compute_gae,
                                explained_variance, importance_ratio, value_loss)
from helpers.ppo.networks import LOG_SQRT_2PI, Actor, Critic, gaussian_log_prob, mlp
from helpers.ppo.normalisers import RewardScaler, RunningMeanStd
from helpers.ppo.vecenv import START_METHOD, AutoresetStepper, VecStep, autoreset_mode, episode_seed, make_vec_env, set_torch_threads

__all__ = [
    "PPOConfig", "RunningMeanStd", "RewardScaler", "Actor", "Critic", "mlp", "gaussian_log_prob", "compute_gae",
    "importance_ratio", "clipped_surrogate_objective", "clipped_surrogate_loss", "value_loss", "approx_kl",
    "clip_fraction", "explained_variance", "VecStep", "AutoresetStepper", "RolloutBuffer", "PPO", "evaluate",
    "episode_seed", "make_vec_env", "set_torch_threads", "DIAGNOSTIC_COLUMNS", "DIAGNOSTIC_GROUPS",
    "LOG_SQRT_2PI", "SAVE_FORMAT_VERSION", "START_METHOD", "autoreset_mode",
]
