"""The channel model (helpers.bayes, notebook 06): parameter recovery on data simulated from known
parameters on the real calendar, the draws' helpers, and the channel posterior's cache.

The recovery fit (one, shared by the module) is the slowest piece: ~30-60 s on 2 cores.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from helpers import bayes, training
from helpers.data import EXTERNAL_PATH, load_external
from helpers.env import channel_history

from channel_fixtures import channel_posterior  # tests/ is on sys.path under pytest

#: Small but sound: 4 short chains (r_hat up to 1.015 for so few draws), the channel model's target_accept.
RECOVERY_SETTINGS = bayes.FitSettings(chains=4, tune=700, draws=600, target_accept=0.95, min_ess_bulk=100, max_rhat=1.015, seed=7)
TRUE_ADSTOCK = np.array([0.3, 0.2, 0.4, 0.3, 0.2, 0.5, 0.3])
HDI_PROB = 0.94


@pytest.fixture(scope="module")
def recovery():
    """Data simulated from a known parameter point WITH carryover, on the data's own calendar and
    spends (``training.simulate_channel_data``), and the adstock model fitted to them."""
    truth = channel_posterior(n_draws=1, seed=3).replace(adstock=TRUE_ADSTOCK)
    ch = training.simulate_channel_data(truth, seed=11)
    idata = bayes.fit_channels(ch, RECOVERY_SETTINGS, adstock=True, progressbar=False)
    return truth, ch, idata


def test_the_channel_model_recovers_known_parameters_with_calibrated_intervals(recovery):
    truth, ch, idata = recovery
    draws = bayes.to_channel_draws(idata, ch)
    names = ("imp_slope", "clk_slope", "adstock", "imp_intercept", "clk_intercept")
    inside, total = 0, 0
    for name in names:
        post = getattr(draws, name)  # (n_draws, K)
        for k in range(len(ch.channels)):
            lo, hi = np.quantile(post[:, k], [(1 - HDI_PROB) / 2, (1 + HDI_PROB) / 2])
            true = getattr(truth, name)[0, k]
            inside += lo <= true <= hi
            total += 1
    misses = total - inside
    # a calibrated model misses each 94% interval 6% of the time: as many misses as it plausibly could have
    assert stats.binom(total, 1 - HDI_PROB).sf(misses - 1) > 0.01, f"{misses} of {total} true values outside their intervals"
    # the carryover is there and the model sees it: the adstock of every channel with 30 or more
    # days is clearly above 0 (the 15-day flash sale has too few to be sure) ...
    long_enough = ch.active.sum(axis=0) >= 30
    assert long_enough.sum() == 6 and np.all(np.quantile(draws.adstock[:, long_enough], 0.03, axis=0) > 0.05)
    # ... so the fitted posterior's ~0.01 on the real data (notebook 06) is a finding, not blindness
    assert np.allclose(draws.adstock.mean(axis=0), TRUE_ADSTOCK, atol=0.1)


def test_the_simulated_data_replay_the_real_calendar_and_spends(recovery):
    _, ch, _ = recovery
    real = bayes.channel_data(load_external())
    np.testing.assert_array_equal(ch.active, real.active)
    np.testing.assert_allclose(ch.spend, real.spend, rtol=1e-9, atol=1e-9)
    assert np.all(ch.impressions[~ch.active] == 0) and np.all(ch.impressions[ch.active] > 0)
    assert np.all(ch.clicks <= ch.impressions)


def test_channel_draws_mean_subset_and_replace():
    draws = channel_posterior(n_draws=10)
    assert draws.mean().n_draws == 1
    np.testing.assert_allclose(draws.mean().imp_slope[0], draws.imp_slope.mean(axis=0))
    assert draws.subset([1, 3, 5]).n_draws == 3
    what_if = draws.replace(adstock=0.5)
    assert what_if.adstock.shape == (10, draws.n_channels) and np.all(what_if.adstock == 0.5)
    np.testing.assert_array_equal(what_if.imp_slope, draws.imp_slope)
    with pytest.raises(ValueError, match="adstock"):
        draws.replace(adstock=1.0)


def test_the_channel_posterior_is_cached_under_its_own_key(tmp_path, monkeypatch, recovery):
    """load_channel_idata fits once, then reads the cache; adstock on/off are separate caches,
    and other settings make the cache stale (refitted, with a warning)."""
    _, _, idata = recovery
    calls = []

    def fake_fit(ch, settings, *, adstock, pool_impressions, priors, progressbar):
        calls.append((adstock, settings))
        return idata

    monkeypatch.setattr(bayes, "fit_channels", fake_fit)
    first = bayes.load_channel_idata(True, adstock=True, cache_dir=tmp_path)
    again = bayes.load_channel_idata(True, adstock=True, cache_dir=tmp_path)
    assert len(calls) == 1 and (tmp_path / "channels_adstock_posterior_quick.nc").exists()
    np.testing.assert_array_equal(again.posterior["adstock"].to_numpy(), first.posterior["adstock"].to_numpy())
    bayes.load_channel_idata(True, adstock=False, cache_dir=tmp_path)  # another model: another file, a (fake) fit
    assert len(calls) == 2 and calls[-1][0] is False and (tmp_path / "channels_posterior_quick.nc").exists()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bayes.load_channel_idata(True, adstock=True, cache_dir=tmp_path, settings=bayes.channel_fit_settings(True, seed=1))
    assert any(issubclass(w.category, bayes.StaleCacheWarning) and "fit_settings" in str(w.message) for w in caught)
    key = bayes.cache_key(EXTERNAL_PATH, bayes.channel_fit_settings(True), model_version=bayes.CHANNEL_MODEL_VERSION, adstock=True,
                          pool_impressions=False)
    assert key["cache_model_version"] == bayes.CHANNEL_MODEL_VERSION and key["cache_option_adstock"] == "true"


def test_the_fit_settings_of_the_channel_model():
    quick, full = bayes.channel_fit_settings(True), bayes.channel_fit_settings(False)
    assert quick.target_accept == full.target_accept == 0.95
    assert quick.tune == full.tune == 1000 and quick.draws == full.draws == 1000  # 500 draws: r_hat 1.016 once
    assert quick.min_ess_bulk < full.min_ess_bulk
    assert "adstock" in bayes.channel_var_names(adstock=True) and "adstock" not in bayes.channel_var_names()
    assert channel_posterior().channels == channel_history().channels
