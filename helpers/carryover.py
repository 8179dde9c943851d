"""Carryover (adstock): today's spend keeps working on the next days. One small unit used by the
channel model (notebook 06, ``helpers.bayes``), the simulator (``helpers.env``) and the baselines:
the geometric weights (:func:`adstock_weights`), the lagged spends they multiply
(:func:`adstock_lags`), the prior on the carryover share (:data:`PRIOR`) and the effective spend
the response sees (:func:`effective_spend`). Numpy only (the weights also take PyTensor variables).
"""

from __future__ import annotations

import numpy as np

#: The prior on a channel's carryover share theta: Beta(1, 3), most mass on little carryover (mean
#: 0.25), none ruled out; theta = 0.5 means half of today's effect comes from earlier days.
PRIOR = (1.0, 3.0)

#: Days of carryover the adstock keeps (weights theta**k, k < ADSTOCK_LAGS; theta**ADSTOCK_LAGS
#: is below 1e-4 for theta <= 0.75, so truncating there changes nothing that matters).
ADSTOCK_LAGS = 28


def adstock_lags(spend: np.ndarray, n_lags: int = ADSTOCK_LAGS) -> np.ndarray:
    """``lags[t, k, j] = spend[t - j, k]`` (0 before the first day): shape ``(T, K, n_lags)``."""
    T, K = spend.shape
    lags = np.zeros((T, K, n_lags))
    for j in range(n_lags):
        lags[j:, :, j] = spend[: T - j]
    return lags


def adstock_weights(theta, n_lags: int = ADSTOCK_LAGS):
    """Normalised geometric weights ``(1 - theta) theta**j / (1 - theta**n_lags)``, ``j < n_lags``.

    ``theta`` of shape ``(...,)`` gives weights of shape ``(..., n_lags)`` summing to 1: a
    constant spend keeps its level (so the intercept keeps its meaning) and ``theta = 0`` is no
    carryover. Works on numpy arrays and on PyTensor variables alike.
    """
    j = np.arange(n_lags)
    t = theta[..., None]
    return (1 - t) * t**j / (1 - t**n_lags)


def effective_spend(spend: np.ndarray, theta, cap=None, n_lags: int = ADSTOCK_LAGS) -> np.ndarray:
    """What the response sees on each day: the spend capped (a day's spend above ``cap`` buys
    nothing), then carried over, ``x[t, k] = sum_{j < n_lags} w_j(theta[k]) * min(spend[t - j, k], cap[k])``.

    Args:
        spend: ``(T, K)`` daily spends (the days before the first row count as 0).
        theta: ``(K,)`` carryover shares (0: none, ``x`` is the capped spend itself).
        cap: ``(K,)`` caps, or None for none.
    Returns:
        ``(T, K)``. The reference the model (:func:`helpers.bayes.build_channel_model`) and the
        simulator (``helpers.env``, which keeps a rolling window instead) are tested against.
    """
    spend = np.asarray(spend, dtype=float)
    x = spend if cap is None else np.minimum(spend, np.asarray(cap, dtype=float))
    return np.einsum("tkj,kj->tk", adstock_lags(x, n_lags), adstock_weights(np.asarray(theta, dtype=float), n_lags))


def prior(name: str = "adstock", *, dims: str | None = "channel", a: float = PRIOR[0], b: float = PRIOR[1]):
    """The carryover shares' prior as a PyMC variable, ``theta ~ Beta(a, b)`` (inside a model context)."""
    import pymc as pm

    return pm.Beta(name, a, b, dims=dims)


def plot_posterior(channels, theta: np.ndarray, **kwargs):
    """The carryover share per channel, posterior against the prior (``helpers.plots.plot_adstock_posterior``)."""
    from helpers.plots import plot_adstock_posterior

    return plot_adstock_posterior(channels, theta, **{"prior": PRIOR, **kwargs})


def saturation_cap(max_daily_spend, cap_multiple: float | None) -> np.ndarray | None:
    """Each channel's cap, ``cap_multiple`` x its highest observed daily spend (a day's spend above
    it buys nothing; ``EnvConfig.cap_multiple``), or None for no cap. The simulator and the plans
    (``helpers.env``, ``helpers.baselines``) take it from here, and pass it to :func:`effective_spend`."""
    return None if cap_multiple is None else cap_multiple * np.asarray(max_daily_spend, dtype=float)
