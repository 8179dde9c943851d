"""The Gymnasium faces of the core: one month as a ``gymnasium.Env``, N months as a ``VectorEnv`` (notebooks 03, 04, 06).

*Termination, not truncation*: the month's end is a true end (the budget is gone, nothing more can
be earned), so the last step returns ``terminated=True, truncated=False``: an agent must not
bootstrap from the final observation. The vector env uses ``AutoresetMode.SAME_STEP``: in the step
where a month ends, the returned observation is already the next month's first; the ended month's
last one is in ``info["final_obs"][i]`` and its totals in ``info["episode"]`` (``r``, ``l``,
``clicks``, ``acquisitions``, ``spend``). Every step's info holds ``spend``, ``impressions``,
``clicks``, ``acquisitions`` and ``action_ignored`` (True on exactly the steps whose action changed
nothing: the last day's pace, and every action once the budget is gone; ``helpers.ppo`` can leave
them out with ``PPOConfig(mask_ignored_actions=True)``, its default keeps them).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from helpers.bayes import ChannelDraws, FunnelDraws
from helpers.env.config import EnvConfig
from helpers.env.core import EnvState, PacingCore

class BudgetPacingEnv(gym.Env):
    """One month at a time, as a ``gymnasium.Env`` (a :class:`PacingCore` with one slot).

    ``reset(seed=..., options={"month": "2024-04", "draw": 3})`` pins the month (one of
    ``config.months``) and/or the posterior draw; without options both are random.
    ``step`` returns ``info`` with ``date``, ``spend``, ``impressions``, ``clicks``,
    ``acquisitions``, ``budget_left``, ``holiday``, ``weekend`` and ``action_ignored`` (True when
    the action changed nothing: the last day, and every day once the budget is gone) of the day
    just played; with several channels also ``channel_spend``, ``channel_clicks`` (``(K,)``
    arrays), and ``action_ignored`` is False on the last day (its split still decides where the
    rest goes) unless the budget is already gone. Stepping after the month ended raises
    ``RuntimeError`` (call ``reset``).
    """

    metadata = {"render_modes": []}

    def __init__(self, draws: FunnelDraws | ChannelDraws, config: EnvConfig | None = None):
        super().__init__()
        self.core = PacingCore(draws, config, n_envs=1)
        self.config = self.core.config
        self.observation_space = self.core.observation_space()
        self.action_space = self.core.action_space()
        self._seeded = False
        self._done = True

    @property
    def state(self) -> EnvState:
        return self.core.state()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.core.seed(seed)
            self._seeded = True
        elif not self._seeded:  # fresh entropy, through Gymnasium's generator
            self.core.seed(int(self.np_random.integers(2**63)))
            self._seeded = True
        options = options or {}
        unknown = set(options) - {"month", "draw"}
        if unknown:
            raise ValueError(f"BudgetPacingEnv.reset: unknown options {sorted(unknown)} (known: 'month', 'draw')")
        month = options.get("month")
        if isinstance(month, str):
            month = self.core.calendar.index(month)
        self.core.start([0], month_idx=month, draw_idx=options.get("draw"))
        self._done = False
        return self.core.observe()[0], self._info()

    def _info(self) -> dict[str, Any]:
        c = self.core
        return {"month": c.calendar.months[c.month_idx[0]], "draw": int(c.draw_idx[0]), "day": int(c.day[0]), "budget_left": float(c.budget_left[0])}

    def step(self, action):
        if self._done:
            raise RuntimeError("BudgetPacingEnv.step: the month is over (or never started); call reset() first")
        c = self.core
        day = int(c.day[0])
        month = c.calendar.months[c.month_idx[0]]
        holiday = int(c.calendar.holiday[c.month_idx[0], day])
        weekend = int(c.calendar.weekend[c.month_idx[0], day])
        reward, term, spend, imp, clk, acq = c.step(np.asarray(action, dtype=np.float64).reshape(1, -1))
        self._done = bool(term[0])
        info = {
            "date": str((pd.Period(month, "M").start_time + pd.Timedelta(days=day)).date()),
            "day": day,
            "holiday": holiday,
            "weekend": weekend,
            "spend": float(spend[0]),
            "impressions": int(imp[0]),
            "clicks": int(clk[0]),
            "acquisitions": int(acq[0]),
            "budget_left": float(c.budget_left[0]),
            # the last day spends what is left, whatever the pace action (with channels, its split still
            # counts); once the budget is gone, every action spends 0
            "action_ignored": bool(c.last_action_ignored[0]),
        }
        if c.multichannel:
            info["channel_spend"] = c.last_channel_spend[:, 0].copy()
            info["channel_clicks"] = c.last_channel_clicks[:, 0].copy()
        return c.observe()[0], float(reward[0]), self._done, False, info


# --- the vector environment ---------------------------------------------------------------


class BudgetPacingVectorEnv(VectorEnv):
    """``num_envs`` months in parallel as a Gymnasium 1.x ``VectorEnv`` (SAME_STEP autoreset).

    Observations ``(num_envs, 9)`` float32, actions ``(num_envs, 1)`` (several channels:
    ``(num_envs, len(core.obs_names))`` and ``(num_envs, 1 + K)``), rewards ``(num_envs,)``
    float64, terminations/truncations ``(num_envs,)`` bool (truncations are always False). See
    this module's docstring for the autoreset and info conventions.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, draws: FunnelDraws | ChannelDraws, num_envs: int = 64, config: EnvConfig | None = None):
        self.core = PacingCore(draws, config, n_envs=num_envs)
        self.config = self.core.config
        self.num_envs = self.core.n_envs
        self.single_observation_space = self.core.observation_space()
        self.single_action_space = self.core.action_space()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._started = False

    @property
    def state(self) -> EnvState:
        return self.core.state()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start a new month in every slot. ``seed`` re-seeds (identical seeds, identical runs)."""
        super().reset(seed=seed)
        if options:
            raise ValueError(f"BudgetPacingVectorEnv.reset: options are not supported, got {sorted(options)}")
        if seed is not None:
            self.core.seed(seed)
        elif not self._started:
            self.core.seed(int(self.np_random.integers(2**63)))
        self.core.start(np.arange(self.num_envs))
        self._started = True
        return self.core.observe(), {}

    def step(self, actions):
        if not self._started:
            raise RuntimeError("BudgetPacingVectorEnv.step: call reset() first")
        core = self.core
        reward, term, spend, imp, clk, acq = core.step(actions)
        obs = core.observe()
        # Actions that changed nothing (PacingCore.last_action_ignored): the last day's (one channel:
        # the rest is spent whatever it says) and every one once the budget is gone.
        ignored = core.last_action_ignored.copy()
        info: dict[str, Any] = {"spend": spend, "impressions": imp, "clicks": clk, "acquisitions": acq, "action_ignored": ignored}
        if core.multichannel:
            info["channel_spend"], info["channel_clicks"] = core.last_channel_spend.T.copy(), core.last_channel_clicks.T.copy()
        if term.any():
            done = np.flatnonzero(term)
            final_obs = np.full(self.num_envs, None, dtype=object)
            for i in done:
                final_obs[i] = obs[i].copy()
            r, s, c, q = np.where(term, core._totals, 0.0)
            episode = {"r": r, "l": np.where(term, core.n_days, 0), "clicks": c.astype(np.int64), "acquisitions": q.astype(np.int64), "spend": s}
            info.update(final_obs=final_obs, _final_obs=term, episode=episode, _episode=term)
            info.update(final_info={"episode": episode, "_episode": term}, _final_info=term)
            core.start(done)
            obs[done] = core.observe(done)  # SAME_STEP: the next month's first observation
        return obs, reward, term, np.zeros(self.num_envs, dtype=bool), info
