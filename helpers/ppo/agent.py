"""The PPO agent: ``learn`` (rollout + advantages, then K epochs of minibatch updates), ``predict``, save/load.

Pseudocode of :meth:`PPO.learn` (Spinning Up's algorithm 1, with CleanRL's details)::

    for each update:
        anneal the learning rate
        rollout: T steps of the N envs with the current policy into the RolloutBuffer; GAE(lambda)
        for each of K epochs, for each minibatch:
            ratio = pi_new(a) / pi_old(a);  loss = -min(ratio A, clip(ratio) A) + c_v 1/2 (V - R)^2
            one Adam step (gradient norm clipped)

The pieces it puts together are in the other modules of :mod:`helpers.ppo`; the traps they
handle are flagged with ``TRAP`` comments where they are handled (3 to 6 in the rollout and the
update here). Diagnostics come grouped as SB3 groups them (:data:`DIAGNOSTIC_GROUPS`).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from helpers.ppo.buffer import RolloutBuffer
from helpers.ppo.config import PPOConfig
from helpers.ppo.losses import approx_kl, clip_fraction, clipped_surrogate_loss, explained_variance, value_loss
from helpers.ppo.networks import Actor, Critic
from helpers.ppo.normalisers import RewardScaler, RunningMeanStd
from helpers.ppo.vecenv import AutoresetStepper, VecStep, _child_seed, episode_seed, set_torch_threads

SAVE_FORMAT_VERSION = 2

#: The per-update diagnostics ``PPO.learn`` returns, grouped as Stable-Baselines3 groups them:
#: ``rollout`` (the episodes that finished), ``train`` (the update), ``time`` (speed, schedule).
DIAGNOSTIC_GROUPS = {
    "rollout": ["episodes", "episode_return_mean", "episode_length_mean"],
    "train": ["policy_loss", "value_loss", "entropy", "action_std", "approx_kl", "clip_frac", "explained_variance",
              "first_ratio_dev", "epochs", "skipped", "lr"],
    "time": ["wall_time_s", "train_time_s", "sps"],
}
#: Columns of the DataFrame returned by ``PPO.learn`` (one row per update): the counters, then
#: every group's (flat names; :data:`DIAGNOSTIC_GROUPS` says which group each belongs to).
DIAGNOSTIC_COLUMNS = ["update", "global_step", *(c for cols in DIAGNOSTIC_GROUPS.values() for c in cols)]


class PPO:
    """PPO-clip on a Gymnasium vector env with a 1-D ``Box`` observation and a ``Box`` action.

    >>> envs = make_vec_env("Pendulum-v1", num_envs=8)
    >>> agent = PPO(envs, PPOConfig(gamma=0.9, lr=1e-3))
    >>> history = agent.learn(100_000)           # DataFrame, one row per update
    >>> actions = agent.predict(observations)    # (n, O) -> (n, A), deterministic, clipped

    ``learn`` can be called again to continue (warm start); normalisers, optimiser and counters
    carry over. ``save``/``load`` round-trip all of it; ``learn(..., resume=True)`` continues an
    interrupted call's learning-rate schedule.

    Methods in reading order: construction; ``learn`` and its two parts, the rollout with its
    advantages (``_collect_rollout``, into a :class:`RolloutBuffer`) and the update (``_update``,
    minibatch by minibatch in ``_minibatch_step``); acting (``predict``); persistence (``save``,
    ``load``).

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
        # TRAP 7: process-wide, so set once, by an agent built to train (here, or PPO.load with
        # envs), before the networks are initialised (their init depends on it); never by an agent
        # only loaded to act (PPO.load without envs).
        set_torch_threads(config.torch_threads)
        self._build(config, obs_space, act_space)
        self._attach(envs)

    # -- construction --------------------------------------------------------------------------

    def _build(self, config: PPOConfig, obs_space: gym.spaces.Box, act_space: gym.spaces.Box) -> None:
        self.config = config
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
        self.buffer: RolloutBuffer | None = None  # allocated at the first rollout
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
        updates only; ``wall_time_s`` includes the callbacks (evaluations, plots). ``skipped``
        is True for an update whose rollout held no real transition (NEXT_STEP autoreset,
        ``num_steps=1``, every env just reset): no gradient step, ``epochs`` 0, losses NaN.

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
        """One row of diagnostics, group by group (:data:`DIAGNOSTIC_GROUPS`)."""
        returns, lengths = episodes
        rollout = {"episodes": len(returns),
                   "episode_return_mean": float(np.mean(returns)) if returns else float("nan"),
                   "episode_length_mean": float(np.mean(lengths)) if lengths else float("nan")}
        train = {**diag, "lr": self.optimizer.param_groups[0]["lr"]}
        timing = {"wall_time_s": time.perf_counter() - start, "train_time_s": train_s,
                  "sps": (self.global_step - start_step) / max(train_s, 1e-9)}
        return {"update": self.num_updates, "global_step": self.global_step, **rollout, **train, **timing}

    # -- the rollout and its advantages ----------------------------------------------------------

    def _collect_rollout(self) -> tuple[list[float], list[int]]:
        """``num_steps`` vector steps with the current policy into the :class:`RolloutBuffer`, then
        GAE over them. Returns the raw returns and lengths of the episodes that finished."""
        cfg, T = self.config, self.config.num_steps
        if self.buffer is None:
            self.buffer = RolloutBuffer(T, self.num_envs, self.obs_dim, self.act_dim, self.device)
        if self._next_obs is None:
            self._start_episodes()
        buf, finished = self.buffer, ([], [])
        with torch.inference_mode():
            for t in range(T):
                # TRAP 4: each observation enters the statistics once, when the policy acts on it.
                x = torch.from_numpy(self._normalize_obs(self._next_obs, update=True)).to(self.device)
                actions, log_probs = self.actor.sample(x, self.generator)
                # TRAP 3: clip only the copy sent to the env.
                env_actions = np.clip(actions.cpu().numpy().astype(np.float64), self.action_low, self.action_high)
                step = self.stepper.step(env_actions.reshape((self.num_envs, *self.action_space.shape))
                                         .astype(self.action_space.dtype))
                rewards = self.reward_scaler(step.rewards, step.dones, step.valid) if cfg.norm_reward else step.rewards
                # A step whose action the env ignored (the budget env's last day spends what is
                # left; once the budget is gone every day spends 0) puts a log-prob term with no
                # effect on the reward into the policy loss: zero-mean noise. mask_ignored_actions
                # leaves such steps out of the policy loss (never out of the value loss: the
                # state's value is real). The default KEEPS them, decided by measurement: on the
                # budget env masking did not help (bench_budget.py, 800k steps, seeds 0-5, test
                # months; build/bench/item6_mask_*.json): final % of the optimum median 99.71
                # kept vs 99.62 masked, paired difference +0.04 +- 0.03 (SE) for keeping; steps to
                # 99% median 164k kept vs 184k masked. No gain, so the simpler loss.
                used = step.valid & ~step.action_ignored if cfg.mask_ignored_actions else step.valid
                buf.store(t, obs=x, actions=actions, log_probs=log_probs, values=self.critic(x), rewards=rewards,
                          terminations=step.terminations, truncations=step.truncations, valid=step.valid,
                          policy_mask=used)
                if step.truncations.any():
                    # TRAP 1: keep the final observation of a truncated episode to bootstrap from.
                    fo = self._normalize_obs(np.asarray(step.final_obs)[step.truncations], update=False)
                    buf.final_obs[t, torch.from_numpy(step.truncations)] = torch.from_numpy(fo).to(self.device)
                self._next_obs = step.obs
                self._track_episodes(step, finished)
            # The advantages: V of the observation after the last step closes the rollout.
            last = torch.from_numpy(self._normalize_obs(self._next_obs, update=False)).to(self.device)
            buf.compute_advantages(self.critic, self.critic(last), cfg.gamma, cfg.gae_lambda)
        self.global_step += T * self.num_envs
        return finished

    def _track_episodes(self, step: VecStep, finished: tuple[list[float], list[int]]) -> None:
        """Episode bookkeeping on raw rewards (what a learner wants to see)."""
        self._ep_return += step.rewards  # 0 where the step was not valid
        self._ep_length += step.valid
        for i in np.flatnonzero(step.dones):
            finished[0].append(float(self._ep_return[i]))
            finished[1].append(int(self._ep_length[i]))
            self._ep_return[i], self._ep_length[i] = 0.0, 0

    # -- the update ----------------------------------------------------------------------------

    def _update(self) -> dict[str, float]:
        """``num_epochs`` passes of minibatch gradient steps over the rollout's real transitions."""
        cfg = self.config
        data = self.buffer.real_transitions()
        if len(data["values"]) == 0:
            # NEXT_STEP with num_steps=1 and every env just reset: only reset-only steps, nothing
            # real to learn from. Skip the update (no gradient step, no RNG drawn) and say so.
            return self._skipped_update()
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
        out["skipped"] = False
        return out

    def _skipped_update(self) -> dict[str, float]:
        """The diagnostics of an update skipped for want of a real transition: ``skipped`` True,
        ``epochs`` 0, losses NaN; the policy's entropy and std as they are."""
        nan = float("nan")
        with torch.no_grad():
            entropy, std = float(self.actor.entropy()), float(self.actor.bounded_log_std().exp().mean())
        return {"policy_loss": nan, "value_loss": nan, "approx_kl": nan, "clip_frac": nan, "entropy": entropy,
                "action_std": std, "explained_variance": nan, "first_ratio_dev": nan, "epochs": 0, "skipped": True}

    def _minibatch_step(self, mb: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One gradient step on a minibatch (``B`` rows of each tensor); returns its statistics
        (detached scalars) and the importance ratios of its policy samples."""
        cfg = self.config
        act = mb["policy_mask"]  # the steps whose action mattered (see _collect_rollout)
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
        config = PPOConfig.from_dict(state["config"])
        if envs is not None:  # to train: the config's thread count, as a new agent (TRAP 7)
            set_torch_threads(config.torch_threads)
        agent._build(config, _space_from_dict(state["observation_space"]),
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
