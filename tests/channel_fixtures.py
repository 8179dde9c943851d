"""A stand-in posterior for the several-channel simulator tests (no fit needed).

Per channel, the impressions and clicks regressions go through the data's medians at the
channel's typical spend with the slopes below (about the fitted ones), plus independent jitter
per draw: close enough to the fitted posterior for the invariants the tests check.
"""

import numpy as np

from helpers.bayes import ChannelDraws
from helpers.env import channel_history

#: Elasticity-ish slopes per channel, in the data's channel order.
IMP_SLOPE = np.array([0.99, 0.82, 0.99, 0.88, 0.75, 0.99, 0.97])
CLK_SLOPE = np.array([0.92, 0.68, 0.95, 0.73, 0.58, 0.92, 0.97])


def channel_posterior(n_draws: int = 40, seed: int = 0, adstock: float = 0.0) -> ChannelDraws:
    """Stand-in :class:`ChannelDraws` on the external data's channels (``adstock`` for every draw)."""
    hist = channel_history()
    rng = np.random.default_rng(seed)
    K = hist.n_channels
    on = hist.active[:, :, :].reshape(-1, K)
    spend = hist.spend.reshape(-1, K)
    # medians over active days: impressions per spend and clicks per spend from the reference CPC
    typical = hist.typical_spend
    clicks_typical = typical / hist.reference_cpc
    imp_typical = clicks_typical * 40.0  # ~2.5% click-through
    assert on.any(axis=0).all() and spend.shape[1] == K
    jitter = lambda sd: sd * rng.standard_normal((n_draws, K))  # noqa: E731
    imp_slope = IMP_SLOPE + jitter(0.01)
    clk_slope = CLK_SLOPE + jitter(0.01)
    return ChannelDraws(
        channels=hist.channels,
        imp_intercept=np.log(imp_typical) - imp_slope * np.log(typical) + jitter(0.03),
        imp_slope=imp_slope,
        imp_alpha=np.full((n_draws, K), 100.0) * np.exp(jitter(0.1)),
        clk_intercept=np.log(clicks_typical) - clk_slope * np.log(imp_typical) + jitter(0.03),
        clk_slope=clk_slope,
        clk_alpha=np.full((n_draws, K), 50.0) * np.exp(jitter(0.1)),
        adstock=np.full((n_draws, K), adstock),
    )
