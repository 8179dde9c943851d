"""helpers.carryover, the one adstock unit: weights, effective spend, prior and plot."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from scipy import stats

from helpers import carryover


def test_the_weights_are_normalised_geometric_and_theta_zero_is_no_carryover():
    w = carryover.adstock_weights(np.array([0.0, 0.5, 0.9]), n_lags=5)
    assert w.shape == (3, 5)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(w[0], [1, 0, 0, 0, 0])
    np.testing.assert_allclose(w[1, 1:] / w[1, :-1], 0.5, rtol=1e-12)  # each day keeps theta of the one before
    np.testing.assert_allclose(w[2, 1:] / w[2, :-1], 0.9, rtol=1e-12)


def test_effective_spend_by_hand():
    """One channel, theta 0.5, 3 lags: weights (4, 2, 1) / 7; a single spend of 14 on day 0 is
    seen as 8, 4, 2 on days 0-2 and 0 after; a cap of 7 halves it all."""
    spend = np.array([[14.0], [0.0], [0.0], [0.0]])
    x = carryover.effective_spend(spend, [0.5], n_lags=3)
    np.testing.assert_allclose(x[:, 0], [8.0, 4.0, 2.0, 0.0], rtol=1e-12)
    capped = carryover.effective_spend(spend, [0.5], cap=[7.0], n_lags=3)
    np.testing.assert_allclose(capped[:, 0], [4.0, 2.0, 1.0, 0.0], rtol=1e-12)


def test_effective_spend_matches_a_plain_loop_and_keeps_a_constant_level():
    rng = np.random.default_rng(3)
    T, K, L = 40, 3, carryover.ADSTOCK_LAGS
    spend, theta, cap = rng.uniform(0, 100, size=(T, K)), np.array([0.0, 0.3, 0.7]), np.array([80.0, 60.0, np.inf])
    w = carryover.adstock_weights(theta, L)
    want = np.zeros((T, K))
    for t in range(T):
        for k in range(K):
            want[t, k] = sum(w[k, j] * min(spend[t - j, k], cap[k]) for j in range(min(L, t + 1)))
    np.testing.assert_allclose(carryover.effective_spend(spend, theta, cap), want, rtol=1e-12)
    # a constant spend is seen at its own level once the window is full (the intercept keeps its meaning)
    flat = carryover.effective_spend(np.full((L + 5, K), 50.0), theta)
    np.testing.assert_allclose(flat[L - 1 :], 50.0, rtol=1e-12)


def test_the_prior_is_beta_1_3_and_the_model_uses_it():
    import pymc as pm

    from helpers import bayes

    assert carryover.PRIOR == (bayes.PRIORS.adstock_a, bayes.PRIORS.adstock_b) == (1.0, 3.0)
    with pm.Model(coords={"channel": ["a", "b"]}) as model:
        carryover.prior("theta")
    logp = model.compile_logp(vars=[model["theta"]], jacobian=False)
    theta = np.array([0.1, 0.6])
    want = stats.beta(*carryover.PRIOR).logpdf(theta).sum()
    assert logp({"theta_logodds__": np.log(theta / (1 - theta))}) == pytest.approx(want, rel=1e-6)  # through the log-odds transform


def test_the_plot_shows_the_prior_against_the_posterior():
    fig = carryover.plot_posterior(["a", "b"], np.random.default_rng(0).beta(2, 5, size=(200, 2)))
    labels = [t.get_text().lower() for ax in fig.axes for t in (ax.get_legend().get_texts() if ax.get_legend() else [])]
    assert any("prior" in s for s in labels), labels


def test_the_saturation_cap_is_a_multiple_of_the_busiest_day_and_the_simulator_uses_it():
    from helpers.env import PacingCore, channel_config, channel_history

    np.testing.assert_array_equal(carryover.saturation_cap([100.0, 250.0], 3.0), [300.0, 750.0])
    assert carryover.saturation_cap([100.0, 250.0], None) is None
    spend = np.array([[50.0, 400.0], [500.0, 100.0]])  # day 2's first channel is above its cap
    np.testing.assert_array_equal(carryover.effective_spend(spend, [0.0, 0.0], carryover.saturation_cap([100.0, 250.0], 3.0)),
                                  [[50.0, 400.0], [300.0, 100.0]])
    from channel_fixtures import channel_posterior  # tests/ is on sys.path under pytest

    hist = channel_history()
    for multiple in (2.0, None):
        core = PacingCore(channel_posterior(), channel_config(cap_multiple=multiple))
        want = carryover.saturation_cap(hist.max_daily_spend, multiple)
        assert (core.cap is None) if want is None else np.array_equal(core.cap, want)
