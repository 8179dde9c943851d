"""Graders of notebook 02's exercises (writing the PyMC model, sampling it, reading the posterior).

``02.clicks_model`` gives the learner's function an impressions-only model (built like the
notebook's) and compares what it adds with :func:`helpers.bayes.build_funnel_model`, term by term:
the same unknowns, the same log-probability of every prior and likelihood at random points.
``02.sampling`` runs the learner's sampling call on a one-parameter model with small sizes.
The posterior questions read the cached posterior of the current mode (``COURSE_QUICK``).
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from helpers.exercises import as_number, call, grader, off_by

N_POINTS = 3  # random points at which the log-probabilities are compared


def _quick() -> bool:
    return os.environ.get("COURSE_QUICK") == "1"


@lru_cache(maxsize=1)
def _daily():
    from helpers.data import load_daily

    return load_daily()


@lru_cache(maxsize=2)
def _posterior(quick: bool):
    from helpers import bayes

    return bayes.load_posterior(quick=quick)


def _impressions_model(df):
    """The notebook's impressions regression, alone (what the learner's function is given)."""
    import pandas as pd
    import pymc as pm

    from helpers import bayes

    x = bayes.funnel_predictors(df)
    p = bayes.PRIORS
    with pm.Model(coords={"day": pd.DatetimeIndex(df["date"])}, check_bounds=False) as model:
        bayes.count_regression("imp", df["impressions"].to_numpy(), x["log_spend_c"], intercept_mu=p.imp_intercept_mu,
                               dims="day", priors=p, effects={"holiday": (x["holiday"], p.holiday_sigma)})
    return model, x


@grader("02.clicks_model", hints=(
    "Inside `with model:` add the priors of the table (clk_intercept_c, clk_slope, clk_holiday, clk_weekend, "
    "clk_cv, acq_rate), the log link mu_clk = exp(...) over x['log_imp_c'], x['holiday'] and x['weekend'], and two "
    "observed nodes: clicks and acquisitions, both with dims='day'.",
    "Copy the impressions block and change what differs: the predictor is x['log_imp_c'], the intercept's prior "
    "mean is PRIORS.clk_intercept_mu, there is a weekend term (Normal(0, PRIORS.weekend_sigma)); then "
    "pm.Binomial('acquisitions', n=clicks, p=acq_rate, observed=...). Return the model.",
))
def _clicks_model(answer) -> str | None:
    from helpers import bayes

    df = _daily()
    base, x = _impressions_model(df)
    model = call(answer, base, x, df)
    if not hasattr(model, "value_vars"):
        return f"add_clicks_regression should return the PyMC model, not a {type(model).__name__}"
    ref = bayes.build_funnel_model(df)
    names, ref_names = set(model.named_vars), set(ref.named_vars)
    if ref_names - names:
        return f"the model lacks {sorted(ref_names - names)} (names as in the prior table)"
    if names - ref_names:
        return f"the model has {sorted(names - ref_names)}, which the course's model does not"
    rng = np.random.default_rng(0)
    start = ref.initial_point()
    points = [{k: v + 0.1 * rng.normal(size=np.shape(v)) for k, v in start.items()} for _ in range(N_POINTS)]
    mine_vars = sorted(v.name for v in model.value_vars)
    if mine_vars != sorted(start):
        return "the model's unknowns are not sampled on the course's scales: check each prior's distribution (see the prior table)"
    terms = [rv.name for rv in ref.free_RVs + ref.observed_RVs]
    mine, theirs = term_logps(model, terms), term_logps(ref, terms)
    for point in points:
        try:
            a = [float(v) for v in mine(point)]
        except Exception as e:
            return f"the model's log-probability cannot be evaluated where the course's can ({type(e).__name__})"
        for name, x, y in zip(terms, a, theirs(point)):
            if not np.isclose(x, float(y), rtol=1e-9, atol=1e-9):
                if model[name] in model.observed_RVs:
                    return (f"the likelihood of {name} differs from the course's: check its mean (the log link and each "
                            f"term's data) and its dispersion")
                return f"the prior of {name} differs from the course's (see the prior table)"
    return None


def term_logps(model, names: list[str]):
    """One compiled function: a point (a dict with every value variable of ``model``) -> the
    log-probability of each term ``names`` (free or observed variables) of ``model``, in order."""
    return model.compile_fn([model.logp(vars=[model[n]]) for n in names], inputs=model.value_vars, on_unused_input="ignore")


@grader("02.sampling", hints=(
    "pm.sample draws from the model in the current context (or model=...); nuts_sampler='nutpie' picks nutpie.",
    "pm.sample(model=model, nuts_sampler='nutpie', chains=settings.chains, tune=settings.tune, "
    "draws=settings.draws, random_seed=settings.seed, progressbar=False)",
))
def _sampling(answer) -> str | None:
    import pymc as pm

    from helpers.bayes import FitSettings

    y = np.random.default_rng(1).normal(1.0, 1.0, size=50)
    with pm.Model() as model:
        pm.Normal("y", pm.Normal("mu", 0.0, 10.0), 1.0, observed=y)
    settings = FitSettings(chains=2, tune=200, draws=100, seed=7)
    idata = call(answer, model, settings)
    if not hasattr(idata, "children") or "posterior" not in idata.children:
        return f"sample_posterior should return what pm.sample returns (a DataTree with a posterior), not a {type(idata).__name__}"
    post = idata["posterior"]
    sizes = dict(post.sizes)
    if sizes.get("chain") != settings.chains or sizes.get("draw") != settings.draws:
        return (f"a test model sampled with chains={settings.chains}, draws={settings.draws} came back with "
                f"{sizes.get('chain')} chains x {sizes.get('draw')} draws: use the settings' sizes")
    if "sample_stats" not in idata.children or "diverging" not in idata["sample_stats"]:
        return "the result has no sampler statistics: sample with NUTS (pm.sample)"
    mu = post["mu"].to_numpy()
    exact_mean, exact_sd = y.sum() / (len(y) + 0.01), 1 / np.sqrt(len(y) + 0.01)  # conjugate normal posterior
    if abs(mu.mean() - exact_mean) > 6 * exact_sd / np.sqrt(mu.size / 10):
        return "on a test model the draws miss the exact posterior: is the model passed to the sampler?"
    return None


@grader("02.p_diminishing", hints=(
    "posterior.elasticity (= imp_slope * clk_slope) has one value per draw: compare it with 1.",
    "The share of draws below 1: np.mean(posterior.elasticity < 1).",
))
def _p_diminishing(answer) -> str | None:
    x = as_number(answer)
    if not 0 <= x <= 1:
        return "a probability lies between 0 and 1"
    p = float(np.mean(_posterior(_quick()).elasticity < 1))
    if np.isclose(x, p, rtol=1e-9, atol=1e-12):
        return None
    if np.isclose(x, 1 - p, rtol=1e-9, atol=1e-12):
        return "that is the probability of the opposite (elasticity of 1 or more)"
    return f"your probability is {off_by(x, p) if p else 'not the share of draws below 1'}"


@grader("02.conjugate_mean", hints=(
    "A = df.acquisitions.sum() and C = df.clicks.sum() over all days; the posterior is Beta(1 + A, 1 + C - A).",
    "stats.beta(1 + A, 1 + C - A).mean(), or (1 + A) / (2 + C).",
))
def _conjugate_mean(answer) -> str | None:
    df = _daily()
    x = as_number(answer)
    A, C = int(df["acquisitions"].sum()), int(df["clicks"].sum())
    expected = (1 + A) / (2 + C)
    if np.isclose(x, expected, rtol=1e-9):
        return None
    if np.isclose(x, A / C, rtol=1e-9):
        return "that is the maximum-likelihood rate A / C; the posterior mean adds the Beta(1, 1) prior's counts"
    if np.isclose(x, float(_posterior(_quick()).acq_rate.mean()), rtol=1e-9):
        return "that is the sampler's estimate; compute the exact posterior mean from the Beta distribution"
    return f"your mean is {off_by(x, expected)}"


@grader("02.nb_sd_ratio", hints=(
    "The negative binomial's variance is mu + mu**2 / alpha, the Poisson's mu; alpha = posterior.imp_alpha.mean().",
    "np.sqrt(mu + mu**2 / alpha) / np.sqrt(mu) with mu = 300_000.",
))
def _nb_sd_ratio(answer) -> str | None:
    x = as_number(answer)
    alpha = float(_posterior(_quick()).imp_alpha.mean())
    mu = 300_000
    expected = np.sqrt(1 + mu / alpha)
    if np.isclose(x, expected, rtol=1e-6):
        return None
    if np.isclose(x, expected**2, rtol=1e-6):
        return "that is the ratio of the variances; the question asks for standard deviations (square roots)"
    if np.isclose(x, 1 / expected, rtol=1e-6):
        return "that is the inverse ratio, Poisson sd / NB sd"
    return f"your ratio is {off_by(x, expected)}"


@grader("02.coverage_threshold", hints=(
    "The number of intervals (out of 100) that contain the truth is Binomial(100, HDI_PROB) for a calibrated model.",
    "Pick a count below which a calibrated model falls less than 5% of the time (stats.binom(100, HDI_PROB).cdf), "
    "but not so low that a badly overconfident model passes.",
))
def _coverage_threshold(answer, hdi_prob) -> str | None:
    from scipy import stats

    x = as_number(answer)
    if x != int(x):
        return "give a whole count out of 100"
    a = int(x)
    below = stats.binom(100, float(hdi_prob)).cdf(a - 1)  # P(a calibrated model counts fewer than a)
    if a > 100 or a < 0:
        return "a count out of 100 lies between 0 and 100"
    if below >= 0.05 or a > round(100 * float(hdi_prob)):
        return "too strict: a calibrated model would fall below that count too often"
    if below <= 1e-4:
        return "too lenient: a model whose intervals are too narrow would still pass"
    return None
