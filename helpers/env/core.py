"""The dynamics, the only copy of them: :class:`PacingCore` steps a batch of months at once (notebooks 03, 06).

Each day: ``log mu_imp = imp_intercept + imp_slope * log(spend) + imp_holiday * holiday``,
``impressions ~ NB(mu_imp, imp_alpha)``; ``log mu_clk = clk_intercept + clk_slope * log(impressions)
+ clk_holiday * holiday + clk_weekend * weekend``, ``clicks ~ NB(mu_clk, clk_alpha)`` capped at
impressions; ``acquisitions ~ Binomial(clicks, acq_rate)``. NB is PyMC's (mu, alpha), drawn as a
gamma-Poisson mixture. Each episode draws one posterior draw: how the posterior's uncertainty
reaches the agent. Several channels run the same funnel per channel (no holiday, weekend or
acquisition terms), on a capped, adstocked effective spend (:mod:`helpers.carryover`).
Random numbers: three streams from one ``SeedSequence(seed)``: episodes, gamma noise, Poisson
counts. Two policies from one seed share months, draws and gamma noise (common random numbers),
not the counts once their spends differ (numpy's Poisson sampler uses a rate-dependent number of
uniforms): measured (``tests/test_env.py``), about 0.4% of a month's clicks, so about 0.02 points
of % of the optimum on a 1,000-month comparison, which the evaluator's paired SE includes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from helpers.bayes import CHANNEL_PARAM_NAMES, PARAM_NAMES, ChannelDraws, FunnelDraws
from helpers.carryover import ADSTOCK_LAGS, adstock_weights
from helpers.env.calendar import _PAD, Calendar, month_calendar
from helpers.env.config import EnvConfig
from helpers.env.market import channel_market, funnel_market
from helpers.env.spaces import (_TINY, CARRY_CLIP, CPC_CLIP, _checked_index, action_space, observation_space, spend_from_action,
                                split_weights)

@dataclass(frozen=True)
class EnvState:
    """What an open-loop policy may read besides the observation (views; valid until the next step).

    All arrays have shape ``(n_envs,)``: ``month_idx`` indexes ``calendar.months``, ``day``
    is the 0-based day about to be played (``== n_days`` once the month is over),
    ``episode_id`` numbers episodes in the order they started (from 0 after each seeding).
    ``budget`` is the monthly budget (None with channels, whose months each have their own:
    ``month_budget``, ``(n_months,)``). With channels, ``active`` ``(n_months, MAX_DAYS + 2, K)``
    and ``prior_spend`` ``(n_months, K)`` are the core's tables, indexed like ``calendar``.
    """

    calendar: Calendar
    budget: float | None
    month_idx: np.ndarray
    day: np.ndarray
    n_days: np.ndarray
    budget_left: np.ndarray
    draw_idx: np.ndarray
    episode_id: np.ndarray
    month_budget: np.ndarray | None = None
    active: np.ndarray | None = None
    prior_spend: np.ndarray | None = None

    @property
    def days_left(self) -> np.ndarray:
        return self.n_days - self.day


#: The per-channel parameters the core simulates, in its table's order: the funnel's
#: ``PARAM_NAMES`` (holiday, weekend and acquisitions are 0 for the channel data) and ``adstock``.
CORE_PARAM_NAMES = PARAM_NAMES + ("adstock",)


def _param_table(draws: FunnelDraws | ChannelDraws) -> np.ndarray:
    """``(len(CORE_PARAM_NAMES), K, n_draws)``: every draw's parameters, channel by channel."""
    if isinstance(draws, FunnelDraws):
        P = draws.as_matrix().T[:, None, :]  # (10, 1, J)
        return np.concatenate([P, np.zeros((1, 1, draws.n_draws))])
    zeros = np.zeros((draws.n_channels, draws.n_draws))
    rows = {k: getattr(draws, k).T for k in CHANNEL_PARAM_NAMES}  # (K, J) each
    return np.stack([rows.get(k, zeros) for k in CORE_PARAM_NAMES])


class PacingCore:
    """The dynamics of ``n_envs`` months side by side (the only copy of them), for one channel
    or several.

    Args:
        draws: posterior draws, ``FunnelDraws`` (one channel) or ``ChannelDraws`` (several;
            ``config.channels`` must then describe the same channels, see :func:`channel_config`);
            with ``config.params == "mean"`` their mean.
        config: an :class:`EnvConfig` (resolved here).
        n_envs: how many months are simulated in parallel.

    Use: ``seed(s)``, ``start(idx)`` new months in slots ``idx``, then alternate
    ``observe()`` -> ``(n_envs, obs_dim)`` and ``step(actions (n_envs, action_dim))``. A slot
    whose month is over stays inert (spends and earns nothing) until it is started again.

    One channel is the case ``K = 1`` of the same arrays: per-channel state has shape
    ``(K, n_envs)``, and with one channel every random number is drawn in the same order as
    before the code knew of channels (tests/test_channel_env.py replays recorded trajectories).
    What tells one channel from several is the :class:`~helpers.env.market.Market` chosen at
    construction (its tables, its observation layout, whether the action splits the spend); the
    step itself has no branch on it.

    Speed: every step is a few dozen numpy operations on ``(K, n_envs)`` arrays and three calls
    to numpy's samplers, whatever ``n_envs``; the calendar part of the observation is a table
    lookup. No Python loop runs over slots or channels.
    """

    def __init__(self, draws: FunnelDraws | ChannelDraws, config: EnvConfig | None = None, n_envs: int = 1):
        if not isinstance(draws, (FunnelDraws, ChannelDraws)):
            raise TypeError(f"draws must be a helpers.bayes.FunnelDraws or ChannelDraws, got {type(draws).__name__}")
        if int(n_envs) < 1:
            raise ValueError(f"n_envs must be >= 1, got {n_envs}")
        self.config = cfg = (config or EnvConfig()).resolved()
        several = isinstance(draws, ChannelDraws)
        if several and cfg.channels is None:
            raise ValueError("ChannelDraws need a config with channels: build it with helpers.env.channel_config()")
        if not several and cfg.channels is not None:
            raise ValueError("this config describes several channels: pass ChannelDraws, not FunnelDraws")
        if several and tuple(draws.channels) != cfg.channels.channels:
            raise ValueError(f"the draws' channels {tuple(draws.channels)} differ from the config's {cfg.channels.channels}")
        self.draws = draws.mean() if cfg.params == "mean" else draws
        self.calendar = cal = month_calendar(cfg.months)
        self.n_envs = n = int(n_envs)
        self.history = cfg.channels
        # (15, K, n_draws): the 11 parameters, then imp_alpha and clk_alpha again (one gamma call
        # serves both funnel stages), then acq_rate and 1 - acq_rate (one Poisson call splits
        # the clicks; the channel data's acq_rate is 0), so that one fancy assignment starts a month.
        P = _param_table(self.draws)
        ia, ca, ar = (CORE_PARAM_NAMES.index(k) for k in ("imp_alpha", "clk_alpha", "acq_rate"))
        self._param_table = np.ascontiguousarray(np.concatenate([P, P[[ia, ca]], P[[ar]], 1.0 - P[[ar]]]))
        self.adstock_on = bool(np.any(P[CORE_PARAM_NAMES.index("adstock")] > 0))
        # The one place that tells one channel from several: the tables of the market simulated.
        self.market = mk = channel_market(cfg, cal, self.adstock_on) if several else funnel_market(cfg, cal)
        self.multichannel = mk.split  #: several channels (the action splits the spend across them)
        self.channels: tuple[str, ...] = mk.channels
        self.n_channels = K = len(mk.channels)
        self._split_channels = K if mk.split else None  # the action: the pace, then one split logit per channel
        self.action_dim = 1 + K if mk.split else 1
        self.obs_names = mk.obs_names
        self.active, self.prior_spend, self.month_budget, self.budget = mk.active, mk.prior_spend, mk.month_budget, mk.budget
        self.cap, self._carry_in, self._log_ref_cpc = mk.cap, mk.carry_in, mk.log_ref_cpc
        for arr in (self.active, self.month_budget):
            arr.setflags(write=False)
        self._obs_table, self._cpc_cols, self._carry_cols = mk.obs_table, mk.cpc_cols, mk.carry_cols
        L = cal.n_days[:, None] - np.arange(_PAD)[None, :]  # days left, (M, _PAD)
        self._pace_factor = np.where(L > 0, cal.n_days[:, None] / (self.month_budget[:, None] * np.maximum(L, 1)), 0.0)
        self._action_floor = np.where(np.arange(_PAD) == 1, 1.0, -1.0)  # indexed by days left
        # The last day (1 day left) spends what is left whatever the pace says: an action that is the
        # pace only is ignored then; one that also splits the rest across channels still decides
        # where it goes (-1: no day on which it is ignored for the day alone).
        self._ignored_days_left = -1 if mk.split else 1
        self._channel_spend = self._split_spend if mk.split else self._one_channel_spend
        self._split_tables = (self.active, self.prior_spend) if mk.split else (None, None)  # for EnvState's policies
        self._sum_channels = _first_row if K == 1 else _row_sum  # totals over channels (K = 1: the row)
        # Per-slot state, shape (n,) or (K, n). day == n_days: month over (or not started).
        k = len(CORE_PARAM_NAMES)
        self._slot_params = np.ones((k + 4, K, n))  # (15, K, n): this month's draw, per slot
        self.slot_params = self._slot_params[:k]  # (11, K, n) view, rows in CORE_PARAM_NAMES order
        self._alpha = self._slot_params[k : k + 2].reshape(-1)  # (2Kn,) view: imp_alpha, clk_alpha
        self._acq_split = self._slot_params[k + 2 :]  # (2, K, n) view: acq_rate, 1 - acq_rate
        # params: one channel, (len(PARAM_NAMES), n) as FunnelDraws name them; several, all of slot_params
        self._params = self.slot_params if mk.split else self._slot_params[: len(PARAM_NAMES), 0]
        self.month_idx = np.zeros(n, dtype=np.int64)
        self.draw_idx = np.zeros(n, dtype=np.int64)
        self.episode_id = np.full(n, -1, dtype=np.int64)
        self.n_days = np.zeros(n, dtype=np.int64)
        self.day = np.zeros(n, dtype=np.int64)
        # Float state in one block so that starting a month is one assignment: rows are
        # return, spend, clicks, acquisitions (this month so far), budget left.
        self._floats = np.zeros((5, n))
        self._totals = self._floats[:4]
        self._float_init = np.zeros((5, len(cal.months)))
        self._float_init[4] = self.month_budget
        self._cpc = np.zeros((K, n))  # obs cpc_yesterday per channel (0 = no information)
        self.ep_channel_spend = np.zeros((K, n))  # this month's spend per channel
        self.ep_channel_clicks = np.zeros((K, n))
        # the last step's per-channel figures, (K, n)
        self.last_channel_spend = np.zeros((K, n))
        self.last_channel_impressions = np.zeros((K, n), dtype=np.int64)
        self.last_channel_clicks = np.zeros((K, n), dtype=np.int64)
        self.last_effective_spend = np.zeros((K, n))  # capped, adstocked: what the response saw
        self.last_action_ignored = np.zeros(n, dtype=bool)  # the last step's action changed nothing
        if self.adstock_on:
            # _past[j] = spend j + 1 days ago; _weights[j] = adstock weight of a spend j days old
            # (helpers.carryover.adstock_weights, per slot's draw); _carry = the part of today's
            # effective spend already paid for (sum over j >= 1).
            self._past = np.zeros((ADSTOCK_LAGS - 1, K, n))
            self._weights = np.zeros((ADSTOCK_LAGS, K, n))
            self._carry = np.zeros((K, n))
        self._next_episode = 0
        self.seed(None)

    @property
    def params(self) -> np.ndarray:
        """This month's parameters per slot: one channel ``(len(PARAM_NAMES), n_envs)`` (rows in
        ``PARAM_NAMES`` order); several ``(len(CORE_PARAM_NAMES), K, n_envs)``. A view."""
        return self._params

    def observation_space(self) -> gym.spaces.Box:
        return observation_space(self.obs_names)

    def action_space(self) -> gym.spaces.Box:
        return action_space(self._split_channels)

    # -- seeding and starting months --

    def seed(self, seed: int | None) -> None:
        """Re-seed the three streams (episodes, gamma noise, counts) and renumber episodes from 0."""
        e, g, c = np.random.SeedSequence(seed).spawn(3)
        self.rng_episode = np.random.default_rng(e)
        self.rng_noise = np.random.default_rng(g)
        self.rng_counts = np.random.default_rng(c)
        self._next_episode = 0

    def start(self, idx, month_idx=None, draw_idx=None) -> None:
        """Start new months in slots ``idx``; month and draw random unless given (arrays like ``idx``)."""
        idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))
        k = len(idx)
        M, J = len(self.calendar.months), self._param_table.shape[2]
        u = self.rng_episode.random((2, k))  # uniform month and draw: floor(u * count), one cheap call
        m = (u[0] * M).astype(np.int64) if month_idx is None else _checked_index(month_idx, k, M, "month")
        j = (u[1] * J).astype(np.int64) if draw_idx is None else _checked_index(draw_idx, k, J, "posterior draw")
        self.month_idx[idx] = m
        self.draw_idx[idx] = j
        self._slot_params[:, :, idx] = self._param_table[:, :, j]
        self.n_days[idx] = self.calendar.n_days[m]
        self.day[idx] = 0
        self._floats[:, idx] = self._float_init[:, m]
        self._cpc[:, idx] = 0.0
        self.ep_channel_spend[:, idx] = 0.0
        self.ep_channel_clicks[:, idx] = 0.0
        if self.adstock_on:
            theta = self.slot_params[CORE_PARAM_NAMES.index("adstock"), :, idx]  # (k, K)
            self._weights[:, :, idx] = adstock_weights(theta).transpose(2, 1, 0)  # (k, K, LAGS) -> (LAGS, K, k)
            self._past[:, :, idx] = self._carry_in[m].transpose(1, 2, 0)  # (k, LAGS - 1, K) -> (LAGS - 1, K, k)
            self._carry[:, idx] = np.einsum("jkn,jkn->kn", self._weights[1:, :, idx], self._past[:, :, idx])
        self.episode_id[idx] = self._next_episode + np.arange(k)
        self._next_episode += k

    # -- reading the state --

    def observe(self, rows: np.ndarray | None = None) -> np.ndarray:
        """The observation of every slot (or of slots ``rows``): ``(n, obs_dim)`` float32, a fresh array."""
        if rows is None:
            m, d, f, cpc = self.month_idx, self.day, self._floats, self._cpc
        else:
            m, d, f, cpc = self.month_idx[rows], self.day[rows], self._floats[:, rows], self._cpc[:, rows]
        obs = self._obs_table[m, d]  # fancy indexing copies
        obs[:, 1] += f[4] * self._pace_factor[m, d]
        obs[:, self._cpc_cols] = cpc.T
        if self._carry_cols is not None:
            carry = self._carry if rows is None else self._carry[:, rows]
            obs[:, self._carry_cols] = np.minimum(carry.T / self.history.typical_spend, CARRY_CLIP)
        return obs

    def state(self) -> EnvState:
        return EnvState(self.calendar, self.budget, self.month_idx, self.day, self.n_days, self.budget_left, self.draw_idx,
                        self.episode_id, self.month_budget, *self._split_tables)

    @property
    def budget_left(self) -> np.ndarray:
        """Budget left in each slot, ``(n_envs,)`` (a view)."""
        return self._floats[4]

    @property
    def ep_return(self) -> np.ndarray:
        return self._totals[0]

    @property
    def ep_spend(self) -> np.ndarray:
        return self._totals[1]

    @property
    def ep_clicks(self) -> np.ndarray:
        return self._totals[2]

    @property
    def ep_acquisitions(self) -> np.ndarray:
        return self._totals[3]

    @property
    def ep_budget(self) -> np.ndarray:
        """Each slot's monthly budget, ``(n_envs,)``."""
        return self.month_budget[self.month_idx]

    # -- stepping --

    def _effective_spend(self, spend: np.ndarray) -> np.ndarray:
        """Today's spend per channel ``(K, n)`` -> what the response sees, as
        :func:`helpers.carryover.effective_spend` defines it: capped (money above a channel's cap
        buys nothing), then adstocked (the unit's weights over this and the previous
        ``ADSTOCK_LAGS - 1`` days, kept as a rolling window per slot instead of the whole history)."""
        x = spend if self.cap is None else np.minimum(spend, self.cap[:, None])
        if self.adstock_on:
            capped = x
            x = self._weights[0] * capped + self._carry
            self._past[1:] = self._past[:-1]  # everything a day older; the oldest drops out
            self._past[0] = capped
            self._carry = np.einsum("jkn,jkn->kn", self._weights[1:], self._past)  # tomorrow's
        self.last_effective_spend = x
        return x

    def _one_channel_spend(self, a: np.ndarray, spend: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
        """One channel: it gets the whole spend, ``(1, n)``."""
        return spend[None, :]

    def _split_spend(self, a: np.ndarray, spend: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Several channels: the spend split across today's active ones by the logits ``a[:, 1:]``, ``(K, n)``."""
        logits = np.minimum(np.maximum(a[:, 1:], -1.0), 1.0)
        return (split_weights(logits, self.prior_spend[m], self.active[m, d], self.config.max_multiplier) * spend[:, None]).T

    def step(self, actions) -> tuple[np.ndarray, ...]:
        """Play one day in every slot.

        Args:
            actions: ``(n_envs, action_dim)`` finite numbers (one channel: also ``(n_envs,)``);
                clipped to [-1, 1].

        Returns:
            ``(reward, terminated, spend, impressions, clicks, acquisitions)``, each
            ``(n_envs,)`` (totals over the channels; per channel in ``last_channel_*``);
            ``terminated`` is True in the slots whose month just ended.
        """
        n, K, A = self.n_envs, self.n_channels, self.action_dim
        a = np.asarray(actions, dtype=np.float64)
        if a.size != n * A:
            raise ValueError(f"expected {n} actions of size {A} (shape ({n}, {A})), got an array of shape {a.shape}")
        a = a.reshape(n, A)
        if not math.isfinite(a.sum()):  # cheap test first; the sum of finite numbers may overflow
            bad = np.argwhere(~np.isfinite(a))
            if len(bad):
                raise ValueError(f"action of env {bad[0][0]} is {a[tuple(bad[0])]}: actions must be finite numbers (NaN/inf would corrupt the budget)")
        L = self.n_days - self.day
        # Clip to [-1, 1]; on the last day force +1, which spends everything left in both
        # transforms (min(R, R * max_multiplier) == R, and R * (1 + 1) / 2 == R).
        pace = np.minimum(np.maximum(a[:, 0], self._action_floor[L]), 1.0)

        # Spend. A finished month has budget_left == 0, so it spends 0 whatever the action.
        R = self.budget_left
        # TRAP (ignored actions): the action changes nothing once the budget is gone (0 is spent
        # whatever it says), nor on the last day unless it splits the rest across channels.
        self.last_action_ignored = (R <= 0.0) | (L == self._ignored_days_left)
        spend = spend_from_action(pace, R, L, self.config)
        R -= spend  # in place; >= 0 because spend <= R; exactly 0 after the last day
        m, d = self.month_idx, self.day
        ch_spend = self._channel_spend(a, spend, m, d)  # (K, n)

        # The funnel, channel by channel. Spend 0 -> impressions 0 -> clicks 0 (masks, so no
        # log(0) reaches a count); with adstock, a channel that does not spend today serves
        # nothing today, even though its past spend still lifts the days it does spend.
        h = self.calendar.holiday[m, d]
        wk = self.calendar.weekend[m, d]
        # this month's draw per slot, each (K, n) (0 for the terms the channel data lack)
        imp_intercept, imp_slope, imp_holiday, imp_alpha, clk_intercept, clk_slope, clk_holiday, clk_weekend, clk_alpha, _, _ = self.slot_params
        gamma = self.rng_noise.standard_gamma(self._alpha)  # (2Kn,): NB = Poisson(mu * Gamma(alpha) / alpha)
        Kn = K * n
        spent = ch_spend > 0
        log_spend = np.log(np.maximum(ch_spend, _TINY))
        x = self._effective_spend(ch_spend)
        log_x = log_spend if x is ch_spend else np.log(np.maximum(x, _TINY))
        mu_imp = np.exp(imp_intercept + imp_slope * log_x + imp_holiday * h) * spent
        impressions = self.rng_counts.poisson(mu_imp * gamma[:Kn].reshape(K, n) / imp_alpha)
        # (0 impressions: log(max(0, 1)) = 0 gives a small rate, and the cap below makes clicks 0.)
        mu_clk = np.exp(clk_intercept + clk_slope * np.log(np.maximum(impressions, 1)) + clk_holiday * h + clk_weekend * wk)
        lam = mu_clk * gamma[Kn:].reshape(K, n) / clk_alpha
        # Clicks ~ Poisson(lam) given the gamma-mixed rate lam, and acquisitions ~ Binomial(clicks,
        # acq_rate). By Poisson thinning the same joint law is acquisitions ~ Poisson(lam * acq_rate),
        # the other clicks ~ Poisson(lam * (1 - acq_rate)), independent: one sampler call instead of
        # two. (The channel data have no acquisitions: acq_rate 0, and a Poisson(0) draws no number.)
        split = self.rng_counts.poisson(lam * self._acq_split)  # (2, K, n): lam * [ar, 1 - ar]
        acquisitions = split[0]
        clicks = acquisitions + split[1]
        # Clicks are capped at impressions like the data generator's: it zeroes the clicks of a
        # day without impressions, and keeps acquisitions <= clicks <= impressions by construction.
        clicks = np.minimum(clicks, impressions)
        acquisitions = np.minimum(acquisitions, clicks)

        # Reward, and yesterday's cost per click for tomorrow's observation (0 = no information).
        log_cpc = log_spend - np.log(np.maximum(clicks, 1)) - self._log_ref_cpc  # (K, n)
        total_clicks, total_acq = self._sum_channels(clicks), self._sum_channels(acquisitions)
        cfg = self.config
        if cfg.reward == "clicks":
            reward = total_clicks / cfg.reward_scale
        elif cfg.reward == "acquisitions":
            reward = total_acq / cfg.reward_scale
        else:  # the talk's -log(spend / clicks), relative to the reference CPC; 0 without spend (one channel)
            reward = self._sum_channels(log_cpc * (spent / -cfg.reward_scale))
        self._cpc = np.minimum(np.maximum(log_cpc, -CPC_CLIP), CPC_CLIP) * spent

        totals = self._totals
        totals[0] += reward
        totals[1] += spend
        totals[2] += total_clicks
        totals[3] += total_acq
        self.ep_channel_spend += ch_spend
        self.ep_channel_clicks += clicks
        self.last_channel_spend, self.last_channel_impressions, self.last_channel_clicks = ch_spend, impressions, clicks
        self.day = self.day + (L > 0)
        return reward, L == 1, spend, self._sum_channels(impressions), total_clicks, total_acq


def _first_row(x: np.ndarray) -> np.ndarray:
    """The total over one channel: its row (a view; the sum would be the same numbers, slower)."""
    return x[0]


def _row_sum(x: np.ndarray) -> np.ndarray:
    """The total over several channels, ``(K, n) -> (n,)``."""
    return x.sum(axis=0)
