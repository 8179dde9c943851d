"""Parameter sets shared by the simulator tests (imported by tests/test_*.py)."""

import numpy as np

from helpers import data
from helpers.bayes import FunnelDraws

#: The generator's ground truth as a one-draw "posterior".
TRUTH = FunnelDraws.from_dict(data.TRUE_PARAMS)


def jittered_posterior(n_draws: int = 200, seed: int = 0, day_spread: float = 1.0) -> FunnelDraws:
    """A stand-in for the fitted posterior: the ground truth plus independent jitter.

    ``day_spread`` scales the jitter of the holiday and weekend effects (what makes one month's
    best plan differ from one draw to the next); 1 is about the fitted posterior's spread.
    """
    rng = np.random.default_rng(seed)
    sd = {"imp_intercept": 0.05, "imp_slope": 0.01, "imp_holiday": 0.02 * day_spread, "clk_intercept": 0.05, "clk_slope": 0.01,
          "clk_holiday": 0.02 * day_spread, "clk_weekend": 0.02 * day_spread}
    d = {k: v + sd.get(k, 0.0) * rng.standard_normal(n_draws) for k, v in data.TRUE_PARAMS.items()}
    d["imp_alpha"] = data.TRUE_PARAMS["imp_alpha"] * np.exp(0.1 * rng.standard_normal(n_draws))
    d["clk_alpha"] = data.TRUE_PARAMS["clk_alpha"] * np.exp(0.1 * rng.standard_normal(n_draws))
    d["acq_rate"] = data.TRUE_PARAMS["acq_rate"] + 0.001 * rng.standard_normal(n_draws)
    return FunnelDraws.from_dict(d)


def tiny_budget_ppo(num_envs: int = 16):
    """A tiny, fast PPO set-up for the budget env: ``(config, num_envs, transitions per update)``.

    16 months x 8 days = 128 transitions per update.
    """
    from helpers import training

    config = training.budget_ppo_config(num_steps=8, num_epochs=2, num_minibatches=2)
    return config, num_envs, config.num_steps * num_envs
