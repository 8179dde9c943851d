"""The Bayesian funnel (helpers.bayes): recovery of the ground truth, the natural-scale
conversion, the convergence checks and the posterior cache (round trip, stale, damaged).

One real fit (nutpie, 4 chains x (500 tune + 500 draws)) is shared by the whole module; the
cache tests replace the fit by a recorder so that they check *when* a refit happens without
paying for one.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from helpers import bayes
from helpers.bayes import PARAM_NAMES, FitSettings, FunnelDraws
from helpers.data import DATA_PATH, TRUE_PARAMS, load_daily, load_ground_truth

TEST_SETTINGS = FitSettings.quick()


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One real fit through the course's entry point, cached in a private folder."""
    root = tmp_path_factory.mktemp("bayes")
    data_path = root / "marketing_daily.csv"
    shutil.copyfile(DATA_PATH, data_path)
    cache_dir = root / "cache"
    idata = bayes.load_idata(quick=True, data_path=data_path, cache_dir=cache_dir, settings=TEST_SETTINGS, progressbar=False)
    return {"idata": idata, "data_path": data_path, "cache_dir": cache_dir}


@pytest.fixture
def cache_copy(fitted, tmp_path):
    """A private copy of the data file and of the fitted cache, for tests that damage them."""
    data_path = tmp_path / "marketing_daily.csv"
    shutil.copyfile(fitted["data_path"], data_path)
    cache_dir = tmp_path / "cache"
    shutil.copytree(fitted["cache_dir"], cache_dir)
    return data_path, cache_dir, bayes.cache_path(True, cache_dir)


@pytest.fixture
def recorded_fit(monkeypatch, fitted):
    """Replace the real fit by a recorder returning the module's fitted posterior."""
    calls = []

    def fake_fit(df, settings, *, priors=bayes.PRIORS, progressbar=None, strict=True):
        calls.append({"n_rows": len(df), "settings": settings, "priors": priors})
        return fitted["idata"]

    monkeypatch.setattr(bayes.cache, "fit_funnel", fake_fit)
    return calls


def load(data_path, cache_dir, **kw):
    return bayes.load_idata(quick=True, data_path=data_path, cache_dir=cache_dir, settings=kw.pop("settings", TEST_SETTINGS), **kw)


# --- the fit ------------------------------------------------------------------------------


def test_the_true_parameters_are_recovered_as_often_as_a_calibrated_model_would(fitted):
    """Each 94% HDI misses its true value 6% of the time even for a perfect model and sampler,
    so "all ten inside" happens only about half the time (0.94**10 = 0.54). A calibrated fit has
    at most 2 misses with probability 0.98; 3 or more says the model or the sampler is off."""
    from scipy import stats

    truth = load_ground_truth()["params"]
    assert truth == TRUE_PARAMS  # the committed ground truth is the generator's
    hdi = az.hdi(fitted["idata"], prob=0.94, var_names=list(PARAM_NAMES))  # ci_bound: lower, upper
    outside = {k: (truth[k], tuple(np.round(hdi[k].values, 4))) for k in PARAM_NAMES if not hdi[k][0] <= truth[k] <= hdi[k][1]}
    assert stats.binom(len(PARAM_NAMES), 0.06).sf(2) < 0.025  # P(3+ misses | calibrated)
    assert len(outside) <= 2, f"true values outside the 94% HDI: {outside}"
    # and the HDIs are informative, not just wide: slopes pinned to +-0.1, dispersions to +-30%
    for k in ("imp_slope", "clk_slope"):
        assert float(hdi[k][1] - hdi[k][0]) < 0.2
    for k in ("imp_alpha", "clk_alpha"):
        assert float(hdi[k][1] / hdi[k][0]) < 1.6


def test_the_weekend_effect_earns_its_place(fitted):
    """The data ask for the weekend term: its posterior sits far from 0 (and near the truth)."""
    w = fitted["idata"].posterior["clk_weekend"]
    assert float((w <= 0.1).mean()) == 0.0  # every draw says weekends lift clicks by > 10%
    assert float(w.mean()) == pytest.approx(TRUE_PARAMS["clk_weekend"], abs=0.05)
    draws = bayes.to_funnel_draws(fitted["idata"])
    np.testing.assert_allclose(draws.day_boost(0, 1), np.exp(draws.clk_weekend))


def test_the_fit_converged_and_exports_every_draw(fitted):
    idata = fitted["idata"]
    diag = bayes.check_convergence(idata, var_names=list(PARAM_NAMES), min_ess_bulk=TEST_SETTINGS.min_ess_bulk)
    assert (diag["r_hat"] <= 1.01).all() and (diag["ess_bulk"] >= TEST_SETTINGS.min_ess_bulk).all()
    draws = bayes.to_funnel_draws(idata)
    assert draws.n_draws == TEST_SETTINGS.chains * TEST_SETTINGS.draws
    # chain-major flattening: draw 0 of chain 1 sits right after the last draw of chain 0
    assert draws.imp_slope[TEST_SETTINGS.draws] == float(idata.posterior["imp_slope"].sel(chain=1, draw=0))
    assert idata.posterior.attrs["sampler"] == bayes.DEFAULT_SAMPLER
    assert set(idata.children) >= {"posterior", "sample_stats", "observed_data", "constant_data"}


def test_natural_scale_means_are_the_centred_means(fitted):
    """log mu from the natural-scale draws equals log mu from the centred draws, day by day."""
    idata = fitted["idata"]
    post, const = idata.posterior.isel(chain=0, draw=slice(0, 5)), idata.constant_data
    log_spend = np.log(const["spend"])
    log_imp = np.log(idata.observed_data["impressions"].astype(float))
    hol, wk = const["holiday"], const["weekend"]
    assert int(wk.sum()) == 209  # Saturdays and Sundays of 2023-2024, stored with the data
    centred = post["imp_intercept_c"] + post["imp_slope"] * (log_spend - float(const["log_spend_centre"])) + post["imp_holiday"] * hol
    natural = post["imp_intercept"] + post["imp_slope"] * log_spend + post["imp_holiday"] * hol
    np.testing.assert_allclose(natural, centred, rtol=1e-12)
    centred = post["clk_intercept_c"] + post["clk_slope"] * (log_imp - float(const["log_imp_centre"])) + post["clk_holiday"] * hol + post["clk_weekend"] * wk
    natural = post["clk_intercept"] + post["clk_slope"] * log_imp + post["clk_holiday"] * hol + post["clk_weekend"] * wk
    np.testing.assert_allclose(natural, centred, rtol=1e-12)


def _call_callbacks(compiled, x, dim=None):
    """Call a compiled nutpie model's two Numba C callbacks from Python: (return code, log
    density, gradient) of the log-density callback and (return code, values) of the trace one."""
    import ctypes

    ptr = ctypes.POINTER(ctypes.c_double)
    x = np.ascontiguousarray(x, dtype=float)
    grad, logp, values = np.zeros(compiled.n_dim), np.zeros(()), np.zeros(compiled.n_expanded)
    user = compiled.user_data.ctypes.data
    n = compiled.n_dim if dim is None else dim
    rc = compiled.compiled_logp_func.ctypes(n, x.ctypes.data_as(ptr), grad.ctypes.data_as(ptr), logp.ctypes.data_as(ptr), user)
    rc_expand = compiled.compiled_expand_func.ctypes(n, compiled.n_expanded, x.ctypes.data_as(ptr), values.ctypes.data_as(ptr), user)
    return (rc, float(logp), grad), (rc_expand, values)


def test_the_lean_nutpie_callbacks_compute_what_nutpies_own_do():
    """``compile_nutpie`` (what ``fit_funnel`` samples with) replaces nutpie's two Numba callbacks
    by lean ones that compile ~2 CPU s faster (benchmarks/bench_bayes.py): on the funnel model they give
    the same log density, gradient, traced values and return codes as nutpie's own, bit for bit,
    and so the same posterior (means within Monte Carlo error of nutpie's own sampling)."""
    import nutpie
    import nutpie.compile_pymc as cp

    from helpers.bayes import fit

    assert fit.lean_callbacks_supported(), f"nutpie {nutpie.__version__}: check the lean callbacks, then add it to LEAN_CALLBACK_NUTPIE_VERSIONS"
    own_factories = cp._make_c_logp_func, cp._make_c_expand_func
    model = bayes.build_funnel_model(load_daily(DATA_PATH))
    keep = [rv.name for rv in model.free_RVs]
    own = nutpie.compile_pymc_model(model, var_names=keep)
    lean = fit.compile_nutpie(model, var_names=keep)
    assert (cp._make_c_logp_func, cp._make_c_expand_func) == own_factories  # nutpie is left as it was
    assert lean.compiled_logp_func._pyfunc.__qualname__.startswith("_lean_logp_callback")
    assert own.compiled_logp_func._pyfunc.__qualname__.startswith("_make_c_logp_func")
    assert (lean.n_dim, lean.n_expanded) == (own.n_dim, own.n_expanded) == (10, 13)

    rng = np.random.default_rng(0)
    centre = own.initial_point_func(0)
    points = [centre + rng.normal(0, s, own.n_dim) for s in (0.0, 0.01, 0.1, 0.1, 1.0, 3.0)]
    points.append(np.where(np.arange(own.n_dim) == 3, 800.0, centre))  # cv = e^800: inf, the density is not finite
    codes = []
    for x in points:
        (rc, logp, grad), (rc_x, values) = _call_callbacks(lean, x)
        (rc_own, logp_own, grad_own), (rc_x_own, values_own) = _call_callbacks(own, x)
        assert (rc, rc_x) == (rc_own, rc_x_own)
        np.testing.assert_array_equal([logp, *grad], [logp_own, *grad_own])
        np.testing.assert_array_equal(values, values_own)
        codes.append(rc)
    assert codes[0] == 0 and codes[-1] in (3, 4), codes  # a finite point, and a non-finite one flagged
    assert _call_callbacks(lean, centre, dim=own.n_dim + 1)[0][0] == _call_callbacks(own, centre, dim=own.n_dim + 1)[0][0] == -1

    kw = {"draws": 300, "tune": 300, "chains": 4, "seed": 7, "progress_bar": False}
    post_lean, post_own = nutpie.sample(lean, **kw).posterior, nutpie.sample(own, **kw).posterior
    for name in bayes.CENTRED_NAMES:
        mcse = np.hypot(float(az.mcse(post_lean[name])), float(az.mcse(post_own[name])))
        assert abs(float(post_lean[name].mean() - post_own[name].mean())) <= 4 * mcse, name


def test_add_natural_scale_by_hand():
    post = {k: np.full((2, 3), v) for k, v in {"imp_intercept_c": 12.0, "imp_slope": 0.5, "imp_cv": 0.2, "clk_intercept_c": 7.0, "clk_slope": 0.9, "clk_cv": 0.25}.items()}
    idata = az.from_dict({"posterior": post})
    idata["constant_data"] = xr.Dataset({"log_spend_centre": 7.0, "log_imp_centre": 12.0})
    bayes.add_natural_scale(idata)
    p = idata.posterior
    assert float(p["imp_intercept"][0, 0]) == pytest.approx(12.0 - 0.5 * 7.0)  # 8.5
    assert float(p["clk_intercept"][0, 0]) == pytest.approx(7.0 - 0.9 * 12.0)  # -3.8
    assert float(p["imp_alpha"][0, 0]) == pytest.approx(25.0)  # 1 / 0.2^2
    assert float(p["clk_alpha"][0, 0]) == pytest.approx(16.0)  # 1 / 0.25^2


def test_the_model_is_pymc_negative_binomial_with_variance_mu_plus_mu2_over_alpha():
    """The model's log-likelihood of a tiny data set equals scipy's NB written by hand."""
    from scipy import stats

    df = pd.DataFrame(
        {
            "date": pd.date_range("2024-01-05", periods=4),  # Fri, Sat, Sun, Mon
            "spend": [500.0, 1000.0, 1500.0, 800.0],
            "impressions": [150_000, 260_000, 420_000, 240_000],
            "clicks": [1200, 2100, 3300, 2500],
            "acquisitions": [30, 70, 95, 80],
            "holiday": [0, 0, 1, 1],
        }
    )
    model = bayes.build_funnel_model(df)
    point = {"imp_intercept_c": 12.3, "imp_slope": 0.9, "imp_holiday": 0.05, "imp_cv": 0.2, "clk_intercept_c": 7.6, "clk_slope": 0.95, "clk_holiday": 0.15, "clk_weekend": 0.3, "clk_cv": 0.25, "acq_rate": 0.03}
    # FAST_COMPILE: pure-Python ops, no C compiler (this is about numbers, not speed)
    logp = model.compile_logp(vars=[model["impressions"], model["clicks"], model["acquisitions"]], sum=False, mode="FAST_COMPILE")
    ip = model.initial_point()
    for k, v in point.items():
        vv = model.rvs_to_values[model[k]]
        tr = model.rvs_to_transforms[model[k]]
        ip[vv.name] = tr.forward(np.array(v)).eval() if tr is not None else np.array(v)
    got = [np.asarray(x) for x in logp(ip)]
    x = bayes.funnel_predictors(df)
    np.testing.assert_array_equal(x["weekend"], [0.0, 1.0, 1.0, 0.0])

    def nb(y, mu, cv):  # scipy's nbinom(n, p): mean n(1-p)/p; with n = alpha, p = alpha/(alpha+mu)
        alpha = 1 / cv**2
        return stats.nbinom.logpmf(y, alpha, alpha / (alpha + mu))

    mu_imp = np.exp(12.3 + 0.9 * x["log_spend_c"] + 0.05 * x["holiday"])
    mu_clk = np.exp(7.6 + 0.95 * x["log_imp_c"] + 0.15 * x["holiday"] + 0.3 * np.array([0, 1, 1, 0]))
    np.testing.assert_allclose(got[0], nb(df["impressions"], mu_imp, 0.2), rtol=1e-9)
    np.testing.assert_allclose(got[1], nb(df["clicks"], mu_clk, 0.25), rtol=1e-9)
    np.testing.assert_allclose(got[2], stats.binom.logpmf(df["acquisitions"], df["clicks"], 0.03), rtol=1e-9)
    # and the variance really is mu + mu^2/alpha: scipy's moments at these parameters
    alpha, mu = 25.0, 1000.0
    assert stats.nbinom.var(alpha, alpha / (alpha + mu)) == pytest.approx(mu + mu**2 / alpha)


def test_the_poisson_strawman_has_no_dispersion_and_bad_options_fail():
    df = load_daily(DATA_PATH).head(30)
    po = bayes.build_funnel_model(df, likelihood="poisson")
    nb = bayes.build_funnel_model(df)
    assert {v.name for v in nb.free_RVs} - {v.name for v in po.free_RVs} == {"imp_cv", "clk_cv"}
    assert type(po["impressions"].owner.op).__name__.lower().startswith("poisson")
    with pytest.raises(ValueError, match="likelihood"):
        bayes.build_funnel_model(df, likelihood="gaussian")
    with pytest.raises(ValueError, match="sampler"):
        FitSettings(sampler="metropolis")
    with pytest.raises(ValueError, match="chains"):
        FitSettings(chains=1)
    with pytest.raises(ValueError, match="nutpie_backend"):
        FitSettings(nutpie_backend="c")


def test_the_campaign_model_has_one_parameter_per_campaign():
    ext = pd.DataFrame({"campaign": ["a", "b", "a", "b", "c"], "spend": [10.0, 20.0, 30.0, 40.0, 5.0], "impressions": [100, 300, 280, 500, 60]})
    model = bayes.build_campaign_model(ext)
    assert list(model.coords["campaign"]) == ["a", "b", "c"]
    assert model.log_spend_centres["a"] == pytest.approx(np.log(10 * 30) / 2)
    assert model.log_spend_centres["c"] == pytest.approx(np.log(5.0))
    with pytest.raises(ValueError, match="active rows"):
        bayes.build_campaign_model(ext.assign(spend=[0.0, 1, 1, 1, 1]))


# --- convergence checks -------------------------------------------------------------------


def test_check_convergence_flags_stuck_chains_low_ess_and_divergences():
    rng = np.random.default_rng(0)
    good = rng.normal(size=(4, 1000))
    ok = az.from_dict({"posterior": {"x": good}, "sample_stats": {"diverging": np.zeros((4, 1000), bool)}})
    assert bayes.check_convergence(ok).loc["x", "r_hat"] <= 1.01
    stuck = good + np.array([0.0, 0.0, 0.0, 3.0])[:, None]  # one chain elsewhere
    with pytest.raises(bayes.ConvergenceError, match=r"r_hat > 1.01: x="):
        bayes.check_convergence(az.from_dict({"posterior": {"x": stuck}}))
    walk = np.cumsum(rng.normal(size=(4, 1000)), axis=1) * 0.01 + rng.normal(size=(4, 1000))  # sticky
    with pytest.raises(bayes.ConvergenceError, match=r"bulk ESS < 5000"):
        bayes.check_convergence(az.from_dict({"posterior": {"x": walk}}), min_ess_bulk=5000, max_rhat=2.0)
    div = np.zeros((4, 1000), bool)
    div[1, 5] = True
    with pytest.raises(bayes.ConvergenceError, match="1 divergent"):
        bayes.check_convergence(az.from_dict({"posterior": {"x": good}, "sample_stats": {"diverging": div}}))
    # the suggestion is above the target_accept that diverged, and names where to change it
    diverged = az.from_dict({"posterior": {"x": good}, "sample_stats": {"diverging": div}})
    with pytest.raises(bayes.ConvergenceError, match=r"FIT in the notebook.*e\.g\. 0\.95: smaller steps"):
        bayes.check_convergence(diverged, target_accept=0.8)
    with pytest.raises(bayes.ConvergenceError, match=r"e\.g\. 0\.99: smaller steps"):
        bayes.check_convergence(diverged, target_accept=0.95)
    assert "FIT_OVERRIDES" in bayes.convergence_message(["x"], divergences=True, strict=True, where="FIT_OVERRIDES")


# --- the cache ----------------------------------------------------------------------------


def test_round_trip_loads_without_refitting(fitted, cache_copy, monkeypatch):
    data_path, cache_dir, path = cache_copy
    monkeypatch.setattr(bayes.cache, "fit_funnel", lambda *a, **k: pytest.fail("a sound cache must not be refitted"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", bayes.StaleCacheWarning)
        again = load(data_path, cache_dir)
    a, b = bayes.to_funnel_draws(fitted["idata"]), bayes.to_funnel_draws(again)
    np.testing.assert_array_equal(a.as_matrix(), b.as_matrix())
    xr.testing.assert_equal(again.observed_data, fitted["idata"].observed_data)
    assert float(again.constant_data["log_spend_centre"]) == float(fitted["idata"].constant_data["log_spend_centre"])
    assert again.posterior.attrs["cache_data_sha256"] == bayes.file_sha256(data_path)
    draws = bayes.load_posterior(quick=True, data_path=data_path, cache_dir=cache_dir, settings=TEST_SETTINGS)
    assert isinstance(draws, FunnelDraws) and draws.n_draws == a.n_draws
    assert [p.name for p in cache_dir.iterdir()] == [path.name]  # no temporary files left


def test_quick_and_full_caches_are_separate_files(cache_copy, recorded_fit):
    data_path, cache_dir, quick_path = cache_copy
    full_path = bayes.cache_path(False, cache_dir)
    assert full_path != quick_path and not full_path.exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error", bayes.StaleCacheWarning)  # missing is not stale: no warning
        bayes.load_idata(quick=False, data_path=data_path, cache_dir=cache_dir)
    assert len(recorded_fit) == 1 and recorded_fit[0]["settings"] == FitSettings.full()
    assert full_path.exists() and quick_path.exists()


def test_changed_data_is_detected_and_refitted(cache_copy, recorded_fit):
    data_path, cache_dir, path = cache_copy
    df = pd.read_csv(data_path)
    df.loc[10, "impressions"] += 1  # one count on one day
    df.to_csv(data_path, index=False, float_format="%.2f", lineterminator="\n")
    with pytest.warns(bayes.StaleCacheWarning, match="stale: data_sha256 changed"):
        load(data_path, cache_dir)
    assert len(recorded_fit) == 1 and recorded_fit[0]["n_rows"] == len(df)
    load(data_path, cache_dir)  # the refitted cache now matches: no second refit
    assert len(recorded_fit) == 1


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda mp: {"settings": FitSettings.quick(seed=1)}, "fit_settings"),
        (lambda mp: {"settings": FitSettings.quick(sampler="pymc")}, "fit_settings"),
        (lambda mp: {"priors": bayes.Priors(slope_sigma=1.0)}, "priors"),
        (lambda mp: mp.setattr(bayes.cache, "MODEL_VERSION", "funnel-nb-centred/999") or {}, "model_version"),
        (lambda mp: mp.setattr(bayes.cache, "CACHE_FORMAT", "999") or {}, "format"),
    ],
    ids=["seed", "sampler", "priors", "model-version", "cache-format"],
)
def test_changed_settings_priors_or_model_are_detected(cache_copy, recorded_fit, monkeypatch, change, reason):
    data_path, cache_dir, _ = cache_copy
    kw = change(monkeypatch)
    with pytest.warns(bayes.StaleCacheWarning, match=f"stale: {reason} changed"):
        load(data_path, cache_dir, **kw)
    assert len(recorded_fit) == 1


def _garbage(path):
    path.write_bytes(b"this is not a NetCDF file\n" * 100)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _empty(path):
    path.write_bytes(b"")


def _rewrite(path, edit):
    """A readable file whose numbers were changed after writing (checksum not updated)."""
    with xr.open_datatree(path, engine="h5netcdf") as tree:
        idata = tree.load().copy()
    edit(idata)
    tmp = path.with_suffix(".tmp.nc")
    idata.to_netcdf(tmp, engine="h5netcdf")
    tmp.replace(path)


def _tamper_posterior(path):
    _rewrite(path, lambda idata: idata.posterior["imp_slope"].__setitem__((0, 0), 0.5))


def _tamper_centre(path):
    def edit(idata):
        idata.constant_data["log_spend_centre"] = idata.constant_data["log_spend_centre"] + 1.0

    _rewrite(path, edit)


@pytest.mark.parametrize(
    "damage, reason",
    [
        (_garbage, "unreadable"),
        (_truncate, "unreadable"),
        (_empty, "unreadable"),
        (_tamper_posterior, "corrupted: the checksum"),
        (_tamper_centre, "corrupted: the checksum"),
    ],
    ids=["garbage", "truncated", "empty", "tampered-posterior", "tampered-centre"],
)
def test_damaged_cache_is_detected_and_refitted(cache_copy, recorded_fit, damage, reason):
    data_path, cache_dir, path = cache_copy
    damage(path)
    with pytest.warns(bayes.StaleCacheWarning, match=reason):
        idata = load(data_path, cache_dir)
    assert len(recorded_fit) == 1
    assert bayes.to_funnel_draws(idata).n_draws == TEST_SETTINGS.chains * TEST_SETTINGS.draws
    idata2, why = bayes.read_cache(path, bayes.cache_key(data_path, TEST_SETTINGS))
    assert why is None and idata2 is not None  # rewritten soundly


def test_a_failed_write_leaves_the_old_cache_and_no_temporary_file(cache_copy, fitted, monkeypatch):
    data_path, cache_dir, path = cache_copy
    before = path.read_bytes()

    def half_write(self, filename, **kw):
        with open(filename, "wb") as fh:
            fh.write(b"\x89HDF half")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(xr.DataTree, "to_netcdf", half_write)
    with pytest.raises(OSError, match="disk full"):
        bayes.write_cache(fitted["idata"], path, bayes.cache_key(data_path, TEST_SETTINGS))
    assert path.read_bytes() == before
    assert [p.name for p in cache_dir.iterdir()] == [path.name]


def test_importing_helpers_bayes_does_not_import_pymc():
    code = "import sys, helpers.bayes; sys.exit(int(any(m in sys.modules for m in ('pymc', 'nutpie', 'arviz', 'pytensor'))))"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
