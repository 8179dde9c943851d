"""The oracle: knows each month's posterior draw and spends that draw's own optimum, the real upper bound (notebooks 03, 05).

Given the draw, a day's market noise says nothing about the next day, so nothing observed
within a month can beat the draw's own best plan in expectation: every policy, closed-loop
agents included, is bounded by it (the open-loop optimum is not).
"""

from __future__ import annotations

import numpy as np

from helpers import carryover
from helpers.baselines.channels import _channel_plan_actions, _waterfill_power
from helpers.baselines.optimum import _shares_of_remaining, response_terms
from helpers.bayes import ChannelDraws, FunnelDraws
from helpers.env import _PAD, EnvConfig, EnvState, action_for_share

#: Row name of the oracle in every comparison table.
ORACLE_NAME = "oracle (knows each month's draw)"


class OraclePolicy:
    """The oracle: knows which posterior draw each month got and spends that draw's optimum.

    For one parameter point the optimum has a closed form (:func:`closed_form_allocation`: spend
    proportional to ``day_boost ** (1 / (1 - e))``, the same for clicks and acquisitions), so the
    oracle plans every (month, draw) exactly and cheaply, all slots at once. It reads the draw
    from the environment's state (``needs_state = True``), which no real policy can.

    Why it bounds every policy, closed-loop agents included: given the draw, a day's market
    noise (gamma and Poisson, independent from day to day) says nothing about the next day, so
    nothing observed within the month can beat the draw's own best plan in expectation. The
    open-loop optimum is no such bound: it plans for the posterior as a whole, and an agent
    that infers the draw from the costs per click it observes can, in principle, beat it.

    ``draws`` must be the environment's (``config.params == "mean"``: their mean, one draw, and
    then the oracle *is* the open-loop optimum).

    Several channels (``ChannelDraws``, without carryover): each (month, draw) gets its own
    channel allocation (the water-filling of :func:`optimal_channel_allocation` for that one
    draw), all new slots at once. With carryover the oracle would need one dynamic optimisation
    per month and draw: not provided (``NotImplementedError``).
    """

    needs_state = True
    name = ORACLE_NAME

    def __init__(self, draws: FunnelDraws | ChannelDraws, config: EnvConfig | None = None):
        self.config = (config or EnvConfig()).resolved()
        self.draws = draws.mean() if self.config.params == "mean" else draws
        self._key = np.zeros((0, 2), dtype=np.int64)  # (month, draw) each slot's plan was made for
        self._months: tuple[str, ...] = ()
        self._shares = np.zeros((0, _PAD))
        if isinstance(self.draws, ChannelDraws):
            if np.any(self.draws.adstock > 0):
                raise NotImplementedError("the oracle with carryover needs one dynamic optimisation per month and draw; "
                                          "it is provided without carryover only")
            hist = self.config.channels
            self._cap = carryover.saturation_cap(hist.max_daily_spend, self.config.cap_multiple)
            self._logits = np.zeros((0, _PAD, hist.n_channels))
            return
        _, e, self._log_hb, self._log_wb = response_terms(self.draws)
        if np.any(e >= 1) or np.any(e <= 0):
            raise ValueError("OraclePolicy assumes diminishing returns: every elasticity must be in (0, 1)")
        self._power = 1.0 / (1.0 - e)

    def __call__(self, obs: np.ndarray, state: EnvState) -> np.ndarray:
        cal, n = state.calendar, len(state.day)
        if np.any(state.draw_idx >= self.draws.n_draws):
            raise ValueError(f"OraclePolicy: the env has posterior draw {int(state.draw_idx.max())} but the oracle "
                             f"knows {self.draws.n_draws} draws; build it with the env's draws")
        key = np.stack([state.month_idx, state.draw_idx], axis=1)
        channels = state.active is not None
        if len(self._key) != n or self._months != cal.months:  # another env: forget all plans
            self._months, self._key, self._shares = cal.months, np.full((n, 2), -1), np.zeros((n, _PAD))
            if channels:
                self._logits = np.zeros((n, _PAD, state.active.shape[2]))
        new = np.flatnonzero((self._key != key).any(axis=1))
        if len(new) and channels:  # each new slot's own water-filling, all at once (one draw each)
            m, j = state.month_idx[new], state.draw_idx[new]
            active, prior = state.active[m], state.prior_spend[m]  # (b, _PAD, K), (b, K)
            log_k, e, _, _ = response_terms(self.draws.subset(j))  # (b, K): each slot's own draw
            spend = _waterfill_power(log_k, e, active.sum(axis=1).astype(np.float64), state.month_budget[m], self._cap)
            self._shares[new], self._logits[new] = _channel_plan_actions(active * spend[:, None, :], prior, active, self.config)
            self._key[new] = key[new]
        elif len(new):  # plan the slots whose (month, draw) changed, all at once
            m, j = state.month_idx[new], state.draw_idx[new]
            in_month = np.arange(_PAD)[None, :] < cal.n_days[m][:, None]
            log_boost = self._log_hb[j, None] * cal.holiday[m] + self._log_wb[j, None] * cal.weekend[m]
            weights = np.where(in_month, np.exp(self._power[j, None] * log_boost), 0.0)
            self._shares[new] = _shares_of_remaining(weights)
            self._key[new] = key[new]
        share = self._shares[np.arange(n), state.day]
        pace = action_for_share(share, state.days_left, self.config)
        if not channels:
            return pace
        return np.concatenate([pace, self._logits[np.arange(n), state.day]], axis=1)

    def __repr__(self):
        return f"OraclePolicy({self.draws.n_draws} draws)"


def oracle_policy(draws: FunnelDraws, config: EnvConfig | None = None) -> OraclePolicy:
    """The oracle (:class:`OraclePolicy`) for the environment of ``draws`` and ``config``."""
    return OraclePolicy(draws, config)
