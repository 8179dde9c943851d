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
RECOVERY_SETTINGS = bayes.FitSettings(chains=4, tune=700, draws=600, target_accept=bayes.channel_fit_settings().target_accept,
                                      min_ess_bulk=100, max_rhat=1.015, seed=7)
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

    def fake_fit(ch, settings, *, adstock, pool_impressions, priors, progressbar, strict=True):
        calls.append((adstock, settings))
        return idata

    monkeypatch.setattr(bayes.channels, "fit_channels", fake_fit)
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
    # no funnel left to tiptoe through: NUTS's default (benchmarks/bench_channel_fit.py: 0 divergences
    # in 32 cold fits at 0.8; the centred model of version 1 diverged in 7 of them even at 0.95)
    assert quick.target_accept == full.target_accept == bayes.FitSettings().target_accept == 0.8
    assert quick.tune == full.tune == 1000 and quick.draws == full.draws == 1000  # 500 draws: r_hat 1.016 once
    assert quick.min_ess_bulk < full.min_ess_bulk
    assert "adstock" in bayes.channel_var_names(adstock=True) and "adstock" not in bayes.channel_var_names()
    # the checks look at the sampler's coordinate and at the slopes the simulator reads
    assert {"clk_slope_z", "clk_slope"} <= set(bayes.channel_var_names())
    assert channel_posterior().channels == channel_history().channels


def _fake_channel_fit(ch, n_divergent: int):
    """What ``sample_model`` returns for the channel model, without fitting: well-mixed draws of
    every variable the checks look at, and ``n_divergent`` divergent transitions."""
    import arviz as az

    rng = np.random.default_rng(0)
    K = len(ch.channels)
    post = {name: rng.normal(0.5, 0.1, size=(4, 300) if name.endswith(("_mu", "_sigma")) else (4, 300, K))
            for name in bayes.channel_var_names()}
    post["imp_cv"] = post["clk_cv"] = np.abs(post["imp_cv"])
    diverging = np.zeros((4, 300), bool)
    diverging[1, :n_divergent] = True
    dims = {name: ["channel"] for name, v in post.items() if v.ndim == 3}
    return az.from_dict({"posterior": post, "sample_stats": {"diverging": diverging}}, dims=dims, coords={"channel": list(ch.channels)})


def test_a_divergent_fit_stops_tests_but_only_warns_a_learner(tmp_path, monkeypatch):
    """strict (tests, CI, the default): a divergent fit raises. strict=False (notebook 06 in
    JupyterLab): one warning saying how many, what they mean and what to try; the notebook goes on
    with the draws, which are not cached (the next run fits again). No real fit: the sampler is faked."""
    ch = bayes.channel_data(load_external())
    calls = []

    def fake_sample(model, settings, progressbar=None):
        calls.append(settings)
        return _fake_channel_fit(ch, n_divergent=2)

    monkeypatch.setattr(bayes.channels, "build_channel_model", lambda *a, **k: None)
    monkeypatch.setattr(bayes.channels, "sample_model", fake_sample)
    settings = bayes.channel_fit_settings(True)
    with pytest.raises(bayes.ConvergenceError, match="2 divergent transitions") as err:
        bayes.fit_channels(ch, settings)
    with pytest.warns(bayes.ConvergenceWarning) as caught:
        idata = bayes.fit_channels(ch, settings, strict=False)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith("the sampler did not converge: 2 divergent transitions (allowed 0).")
    for advice in ("target_accept", "tune=", "seed=", "not cached", "COURSE_STRICT=1"):
        assert advice in message, advice
    assert "not cached" not in str(err.value)  # the strict message has no "goes on" part
    assert idata.posterior.attrs["converged"] == 0 and bayes.to_channel_draws(idata, ch).n_draws == 4 * 300
    # the loader returns the draws but caches nothing: the next run fits again
    with pytest.warns(bayes.ConvergenceWarning):
        bayes.load_channel_idata(True, cache_dir=tmp_path, strict=False)
    assert not list(tmp_path.iterdir())
    with pytest.warns(bayes.ConvergenceWarning):
        bayes.load_channel_idata(True, cache_dir=tmp_path, strict=False)
    assert len(calls) == 4
    with pytest.raises(bayes.ConvergenceError):
        bayes.load_channel_idata(True, cache_dir=tmp_path)  # strict by default
    # a clean fit passes, is marked converged and is cached
    monkeypatch.setattr(bayes.channels, "sample_model", lambda model, settings, progressbar=None: _fake_channel_fit(ch, n_divergent=0))
    clean = bayes.load_channel_idata(True, cache_dir=tmp_path, strict=False)
    assert clean.posterior.attrs["converged"] == 1 and (tmp_path / "channels_posterior_quick.nc").exists()


def test_the_pooled_slopes_are_the_centred_model_reparameterised():
    """``clk_slope_z`` is only the sampler's coordinate: at any (mu, sigma, z), the density of z is
    the centred model's Normal(slope; mu, sigma) times the Jacobian d slope / d z = scale, for
    well-measured groups (centred), poorly measured ones (non-centred) and a group with no data."""
    import pymc as pm

    own_slope, own_se = np.array([0.9, 0.7, 0.3, 0.0]), np.array([0.02, 0.1, 0.4, 1e3])
    with pm.Model(coords={"g": range(4)}) as model:
        mu = pm.Normal("s_slope_mu", 1.0, 0.5)
        sigma = pm.Gamma("s_slope_sigma", 2.0, 10.0)
        bayes.pooled_slopes("s", mu, sigma, own_slope, own_se, dims="g")
    outs = [model.logp(vars=[model["s_slope_z"]], sum=False)[0], *model.replace_rvs_by_values([model["s_slope"]])]
    fn = model.compile_fn(outs, inputs=model.value_vars, point_fn=False)
    names = [v.name for v in model.value_vars]
    rng = np.random.default_rng(0)
    for _ in range(5):
        point = {"s_slope_mu": rng.normal(0.9, 0.2), "s_slope_sigma_log__": rng.normal(np.log(0.15), 1.0), "s_slope_z": rng.normal(size=4)}
        m, s = point["s_slope_mu"], np.exp(point["s_slope_sigma_log__"])
        w = s**2 / (s**2 + own_se**2)
        scale = s * np.sqrt(1 - w)
        logp_z, b = fn(*(point[n] for n in names))
        np.testing.assert_allclose(b, m + w * (own_slope - m) + scale * point["s_slope_z"], rtol=1e-9)
        np.testing.assert_allclose(logp_z, stats.norm.logpdf(b, m, s) + np.log(scale), rtol=1e-9, atol=1e-9)
    # the limits: a well-measured group is sampled centred (scale ~ its own se), a group with no
    # data non-centred (z = (slope - mu) / sigma)
    assert scale[0] < 0.021 and np.isclose(scale[3], s, rtol=1e-6) and w[0] > 0.9 and w[3] < 1e-6


def test_least_squares_slopes_per_group():
    rng = np.random.default_rng(1)
    x = rng.normal(size=300)
    codes = np.repeat([0, 1, 2], 100)
    y = np.array([0.5, 1.0, 2.0])[codes] * x + rng.normal(0, 0.1, size=300)
    codes[-2:] = 3  # group 3: two points only, no slope to speak of
    slope, se = bayes.least_squares_slopes(y, x, codes, 4)
    np.testing.assert_allclose(slope[:3], [0.5, 1.0, 2.0], atol=0.05)
    assert np.all(se[:3] < 0.02) and slope[3] == 0.0 and se[3] == 1e3
