"""Gymnasium vector envs, read the same way in every autoreset mode; seeds, processes, threads (notebook 04).

* TRAP 2, *Gymnasium 1.x autoreset*: in the default NEXT_STEP mode the step *after* an episode
  ends only resets that sub-env (action ignored, reward 0): not a real transition, masked out
  (``VecStep.valid``). In SAME_STEP mode the step that ends an episode already returns the next
  episode's first observation; the final one is in ``info["final_obs"]``. :class:`AutoresetStepper`
  is the one place that knows the three modes.
* TRAP 7, *never fork after torch started its threads*: a forked child inherits OpenMP locks held
  by threads that do not exist in it and can wait forever: :func:`make_vec_env` starts processes
  with ``forkserver`` or ``spawn``. torch's thread count is process-wide: :func:`set_torch_threads`
  sets it once, when an agent gets envs to train on; loading one to act leaves it alone.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

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
    anything else using torch; an agent given envs to train on sets it once, from
    ``PPOConfig.torch_threads``. Loading one to act (``PPO.load(path)`` without envs) leaves it alone.
    """
    if n is not None and torch.get_num_threads() != int(n):
        torch.set_num_threads(int(n))

