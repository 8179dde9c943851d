"""The returns of a policy (a trained ``PPO`` or any function of the observations) on a vector env (notebook 04).

Deterministic by default; every autoreset mode handled (``AutoresetStepper``); each sub-env
contributes the same number of episodes, so short episodes are not over-represented.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import gymnasium as gym
import numpy as np

from helpers.ppo.agent import PPO
from helpers.ppo.vecenv import AutoresetStepper

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
