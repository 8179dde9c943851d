"""The write-it exercise of notebook 07 (helpers/exercises/nb07.py, ``07.simulate_clicks``): the learner's
posterior-predictive simulation of the held-out days. The right answer passes, plausible wrong ones fail
with what is wrong and a hint, and no reference figure appears in what the check prints.

The right answer here is written independently of helpers.plan (numpy's own negative binomial, not the
Gamma-Poisson mixture); the notebook's solution is run by the notebook tests (strict mode). The value
exercises of 07 are tested in tests/test_plan.py. No fit: the grader builds its own posteriors.
"""

from __future__ import annotations

import numpy as np

from helpers.exercises import check, nb07
from helpers.plan import simulate_clicks as reference

from exercise_checks import assert_fails_with_hint, learner_kernel  # noqa: F401  (learner_kernel: autouse)

ID = "07.simulate_clicks"


def by_hand(noise="nb", one_point=False, weekend_term=True, clicks_from_spend=False, transposed=False):
    """A learner's simulate_clicks with one of the plausible mistakes switched on."""
    def simulate_clicks(draws, spend, holiday, weekend, rng):
        d = draws.mean() if one_point else draws
        n = draws.n_draws

        def nb(mu, alpha):
            mu = np.broadcast_to(mu, (n, len(spend)))
            if noise == "poisson":
                return rng.poisson(mu)
            alpha = np.broadcast_to(alpha, mu.shape)
            return rng.negative_binomial(alpha, alpha / (alpha + mu))

        c = {k: np.asarray(getattr(d, k))[:, None] for k in ("imp_intercept", "imp_slope", "imp_holiday", "imp_alpha", "clk_intercept",
                                                             "clk_slope", "clk_holiday", "clk_weekend", "clk_alpha")}
        imp = nb(np.exp(c["imp_intercept"] + c["imp_slope"] * np.log(spend) + c["imp_holiday"] * holiday), c["imp_alpha"])
        x = np.log(spend)[None, :] if clicks_from_spend else np.log(np.maximum(imp, 1))
        log_mu = c["clk_intercept"] + c["clk_slope"] * x + c["clk_holiday"] * holiday + (c["clk_weekend"] * weekend if weekend_term else 0)
        clicks = np.minimum(nb(np.exp(log_mu), c["clk_alpha"]), imp)
        return clicks.T if transposed else clicks
    return simulate_clicks


def reference_figures() -> list[float]:
    """What a leaky message could show: the reference's mean and variance of every checked day."""
    spend, holiday, weekend = (np.array(c) for c in zip(*nb07.SIM_DAYS))
    out = []
    for draws in nb07._posteriors():
        sim = reference(draws, spend, holiday, weekend, np.random.default_rng(0)).astype(float)
        out += list(sim.mean(axis=0)) + list(sim.var(axis=0))
    return out


def test_the_right_simulation_passes_and_wrong_ones_say_what_is_wrong(capsys):
    check(ID, by_hand())
    assert capsys.readouterr().out.strip() == f"{ID}: correct."
    leaks = reference_figures()
    assert_fails_with_hint(capsys, ID, by_hand(noise="poisson"), expected=leaks, says="a Poisson alone")
    text = assert_fails_with_hint(capsys, ID, by_hand(one_point=True), expected=leaks, says="posterior draw j's parameters")
    assert "hint 2" in text  # the second wrong try shows the stronger hint too
    assert_fails_with_hint(capsys, ID, by_hand(weekend_term=False), expected=leaks, says="on a weekend day is too low")
    assert_fails_with_hint(capsys, ID, by_hand(clicks_from_spend=True), expected=leaks, says="far too low")
    assert_fails_with_hint(capsys, ID, by_hand(transposed=True), says="one row per posterior draw")
    check(ID, lambda draws, spend, holiday, weekend, rng: None)  # the student copy's stub
    assert "not answered yet" in capsys.readouterr().out


def test_the_reference_is_the_held_out_checks_simulation_and_passes_its_own_grader():
    """plan.check_fit's band comes from plan.simulate_clicks (one campaign), and the grader's tolerance
    takes the reference with other random numbers (20 seeds x both posteriors)."""
    import inspect

    from helpers import plan

    assert "simulate_clicks(" in inspect.getsource(plan.predictive_clicks)
    for seed in range(20):
        for draws in nb07._posteriors():
            assert nb07._compare(reference, draws, 1000 + seed) is None
