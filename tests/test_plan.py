"""The planner (helpers.plan): its command line (``--help``, and the example it prints, run exactly as
written on the shipped sample export in quick mode), the checks that refuse to plan, and the several-
campaign simulator starting from the carryover the export's last days left.

Only the command-line run samples and trains (quick sizes, one fit and 10 PPO updates); the other
tests build their posteriors by hand.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import bayes, plan
from helpers.accounts import read_account
from helpers.bayes import ChannelDraws, FunnelDraws
from helpers.data import TRUE_PARAMS

ROOT = Path(__file__).resolve().parent.parent


def run_cli(args, cwd, env_extra=None, timeout=600):
    env = {**os.environ, "TQDM_DISABLE": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "helpers.plan", *args], cwd=cwd, env={**env, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=timeout)


def test_help_explains_every_option_and_shows_the_example():
    res = run_cli(["--help"], ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    out = " ".join(res.stdout.split())
    for action in plan.build_parser()._actions:
        for opt in action.option_strings:
            assert opt in out, f"--help does not show {opt}"
        assert action.help and " ".join(action.help.replace("%%", "%").split())[:40] in out, f"{action.dest}: no explanation in --help"
    assert plan.EXAMPLE in res.stdout


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    """The example of ``--help`` (and notebook 07), exactly as written, in quick mode (COURSE_QUICK=1)."""
    cwd = tmp_path_factory.mktemp("plan")
    (cwd / "data").symlink_to(ROOT / "data")
    argv = shlex.split(plan.EXAMPLE)
    assert argv[:3] == ["python", "-m", "helpers.plan"]
    res = run_cli(argv[3:], cwd, {"COURSE_QUICK": "1"})
    return cwd, res


def test_the_example_plans_the_sample_export(sample_run):
    cwd, res = sample_run
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    daily = pd.read_csv(cwd / "plan.csv")
    dates = pd.date_range("2025-01-01", "2025-01-31")
    assert list(daily["date"]) == list(dates.strftime("%Y-%m-%d"))
    assert daily["spend"].sum() == pytest.approx(30_000, abs=0.01 * 31)  # the budget, spent exactly in every simulated month
    for what in ("spend", "clicks", "acquisitions"):
        assert (daily[f"{what}_p05"] <= daily[f"{what}_p95"]).all()
        assert ((daily[what] >= daily[f"{what}_p05"] * 0.9) & (daily[what] <= daily[f"{what}_p95"] * 1.1)).all()
    assert (daily["clicks_p95"] > daily["clicks_p05"]).all()  # real bands, not points
    comparison = pd.read_csv(cwd / "plan_comparison.csv", index_col="policy")
    assert {"PPO plan", "even pacing", "open-loop optimum (clicks)", "oracle"} <= set(comparison.index)
    assert comparison.loc["open-loop optimum (clicks)", "pct_of_optimum"] == pytest.approx(100)
    assert comparison.loc["oracle", "pct_of_oracle"] == pytest.approx(100)
    se = comparison["pct_of_optimum_se"].max()
    assert comparison.loc["oracle", "pct_of_optimum"] >= 100 - 3 * se  # nothing beats the oracle
    assert np.allclose(comparison["budget_used"], 1.0)
    assert (cwd / "plan.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in cwd.iterdir()) == ["data", "plan.csv", "plan.png", "plan_comparison.csv"]  # no temporary files left
    for text in ("Meta Ads Manager daily export", "held-out days outside the 90% band", "timings:"):
        assert text in res.stdout


def test_every_planning_command_in_the_readme_is_the_one_run_here():
    """The README's ``python -m helpers.plan`` lines, taken from its text: each must be the example
    the fixture above runs (so the README never shows a command no test ran)."""
    lines = [ln.strip() for ln in (ROOT / "README.md").read_text().splitlines() if ln.strip().startswith("python -m helpers.plan")]
    assert lines, "README.md shows no planning command (its 'Plan your own account' section has one)"
    for line in lines:
        assert line == plan.EXAMPLE, f"README.md shows {line!r}, which no test runs (tests run {plan.EXAMPLE!r})"


def test_bad_input_exits_2_with_the_readers_message(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("date,spend,impressions,clicks\n2024-01-01,-5,10,1\n")
    assert plan.main([str(bad), "--budget", "1000"]) == 2
    err = capsys.readouterr().err
    assert "column 'spend', data row 1 (CSV line 2)" in err and "negative" in err
    assert plan.main([str(ROOT / "data" / "sample_meta_export.csv"), "--budget", "1000", "--month", "2025-01"]) == 2
    assert "never seen spend that low" in capsys.readouterr().err and not (tmp_path / "plan.csv").exists()
    assert plan.main([str(bad), "--budget", "1000", "--column", "nonsense"]) == 2
    assert "HEADER=NAME" in capsys.readouterr().err


# --- the checks that refuse to plan (hand-made posteriors: no sampling) -----------------------------


def fake_fit(account, draws, *, diverging=0):
    """A Fit whose posterior is well-mixed noise (r_hat ~ 1, plenty of ESS) unless told otherwise."""
    import xarray as xr

    rng = np.random.default_rng(0)
    names = ["a", "b"]
    post = xr.Dataset({n: (("chain", "draw"), rng.normal(size=(4, 500))) for n in names})
    div = np.zeros((4, 500), dtype=bool)
    div.flat[:diverging] = True
    idata = xr.DataTree.from_dict({"posterior": post, "sample_stats": xr.Dataset({"diverging": (("chain", "draw"), div)})})
    cutoff = account.dates[-1] - pd.Timedelta(days=13)
    return plan.Fit(account, idata, draws, bayes.FitSettings.quick(), cutoff, names)


@pytest.fixture(scope="module")
def sample_account():
    return read_account(ROOT / "data" / "sample_meta_export.csv", verbose=False)


def truth_draws(**shift) -> FunnelDraws:
    return FunnelDraws(**{k: np.full(200, v + shift.get(k, 0.0)) for k, v in TRUE_PARAMS.items()})


def test_a_calibrated_fit_passes_and_a_miscalibrated_one_is_refused(sample_account):
    table = plan.check_fit(fake_fit(sample_account, truth_draws()))  # the data's own truth: calibrated
    assert table["passed"].all(), table
    with pytest.raises(plan.FitCheckError) as e:
        plan.check_fit(fake_fit(sample_account, truth_draws(clk_intercept=0.5)))  # 65% more clicks than the data
    msg = str(e.value)
    assert "refusing to plan" in msg and "held-out days outside the 90% band" in msg and "What to try" in msg
    assert not e.value.checks.set_index("check").filter(like="held-out", axis=0)["passed"].iloc[0]


def test_divergences_refuse_to_plan_and_say_what_to_try(sample_account):
    with pytest.raises(plan.FitCheckError) as e:
        plan.check_fit(fake_fit(sample_account, truth_draws(), diverging=3))
    msg = str(e.value)
    assert "divergent transitions = 3" in msg and "target_accept" in msg and "--target-accept" in msg
    assert plan.check_fit(fake_fit(sample_account, truth_draws(), diverging=3), strict=False)["passed"].sum() == 4


def fake_fits(monkeypatch, account, *diverging, shift=None):
    """plan.fit_account replaced: the k-th call returns a fit with ``diverging[k]`` divergent transitions
    (and the clicks intercept shifted by ``shift``: a miscalibrated fit), at the target_accept it was asked
    for; returns the list of the overrides each call got."""
    calls = []

    def fit_account(acc, *, overrides=None, **_):
        calls.append(dict(overrides or {}))
        fit = fake_fit(account, truth_draws(**({"clk_intercept": shift} if shift else {})), diverging=diverging[len(calls) - 1])
        fit.settings = replace(fit.settings, **{k: v for k, v in (overrides or {}).items() if k == "target_accept"})
        return fit

    monkeypatch.setattr(plan, "fit_account", fit_account)
    return calls


def test_a_fit_refused_for_divergences_alone_is_refitted_once_at_a_higher_target_accept(sample_account, monkeypatch):
    said = []
    calls = fake_fits(monkeypatch, sample_account, 3, 0)
    fit, checks = plan.fit_and_check(sample_account, say=said.append, overrides={"tune": 500})
    assert calls == [{"tune": 500}, {"tune": 500, "target_accept": plan.RETRY_TARGET_ACCEPT}]
    assert checks["passed"].all() and fit.settings.target_accept == plan.RETRY_TARGET_ACCEPT
    assert len(said) == 1 and "3 divergent transition(s) at target_accept 0.8: refitting once at 0.95" in said[0]

    said.clear()
    calls = fake_fits(monkeypatch, sample_account, 3, 2)  # still diverges: refused, saying it refitted, suggesting more than 0.95
    with pytest.raises(plan.FitCheckError) as e:
        plan.fit_and_check(sample_account, say=said.append)
    msg = str(e.value)
    assert len(calls) == 2 and len(said) == 1
    assert "divergent transitions = 2" in msg and "refitted once at 0.95" in msg and "the first, at target_accept 0.8, had 3" in msg
    assert "--target-accept 0.99" in msg and "e.g. 0.99" in msg and "--target-accept 0.95" not in msg


@pytest.mark.parametrize("why", ["the user set target_accept", "a data check fails too"])
def test_no_refit_when_the_user_chose_target_accept_or_the_data_check_fails(sample_account, monkeypatch, why):
    said = []
    calls = fake_fits(monkeypatch, sample_account, 3, 0, shift=0.5 if why == "a data check fails too" else None)
    with pytest.raises(plan.FitCheckError) as e:
        plan.fit_and_check(sample_account, retry=why != "the user set target_accept", say=said.append)
    assert len(calls) == 1 and said == [] and "refitted" not in str(e.value)
    assert "--target-accept 0.95" in str(e.value)


def test_the_command_refits_unless_target_accept_is_given(sample_account, monkeypatch, capsys, tmp_path):
    """The command's wiring (no sampling: both fits diverge, so it stops at the checks, exit 3)."""
    monkeypatch.chdir(tmp_path)
    argv = [str(ROOT / "data" / "sample_meta_export.csv"), "--budget", "30000", "--month", "2025-01"]
    calls = fake_fits(monkeypatch, sample_account, 3, 3)
    assert plan.main(argv) == 3
    out, err = capsys.readouterr()
    assert len(calls) == 2 and "refitting once at 0.95" in out and "refitted once at 0.95" in err
    calls = fake_fits(monkeypatch, sample_account, 3, 3)
    assert plan.main(argv + ["--target-accept", "0.8"]) == 3
    out, err = capsys.readouterr()
    assert calls == [{"target_accept": 0.8}] and "refitting" not in out + err
    assert not (tmp_path / "plan.csv").exists()


def test_a_posterior_with_increasing_returns_is_refused_and_a_few_such_draws_left_out(sample_account):
    with pytest.raises(plan.FitCheckError, match="increasing returns"):
        plan.check_fit(fake_fit(sample_account, truth_draws(imp_slope=0.3)))  # elasticity 1.06 in every draw
    mixed = FunnelDraws(**{k: np.where(np.arange(200) == 0, v + (0.3 if k == "imp_slope" else 0.0), v)
                           for k, v in truth_draws().to_dict().items()})  # one draw of 200 (0.5%)
    fit = fake_fit(sample_account, mixed)
    assert plan.check_fit(fit, strict=False).iloc[4]["passed"]
    _, draws, notes = plan.planning_config(fit, 30_000, "2025-01")
    assert draws.n_draws == 199 and np.all(draws.elasticity < 1) and "left out 1 of 200 draws" in notes[0]


# --- several campaigns: the month starts from the carryover the export left --------------------------


@pytest.fixture(scope="module")
def three_campaigns(tmp_path_factory):
    rng = np.random.default_rng(3)
    rows = []
    for name, scale in (("a", 300.0), ("b", 100.0), ("c", 50.0)):
        for d in pd.date_range("2026-10-01", "2026-12-31"):
            s = round(scale * rng.lognormal(0, 0.3), 2)
            imp = int(rng.poisson(s * 60))
            rows.append((d.strftime("%Y-%m-%d"), name, s, imp, int(rng.binomial(imp, 0.02))))
    path = tmp_path_factory.mktemp("three") / "three.csv"
    pd.DataFrame(rows, columns=["date", "campaign", "spend", "impressions", "clicks"]).to_csv(path, index=False)
    account = read_account(path, verbose=False)
    K = 3
    draws = ChannelDraws(channels=account.campaigns, imp_intercept=np.full((2, K), np.log(60.0)), imp_slope=np.array([[0.9, 0.6, 0.7], [0.6, 0.9, 0.8]]),
                         imp_alpha=np.full((2, K), 30.0), clk_intercept=np.array([[np.log(0.02)] * K, [np.log(0.025)] * K]),
                         clk_slope=np.full((2, K), 0.9), clk_alpha=np.full((2, K), 20.0), adstock=np.array([[0.5] * K, [0.4] * K]))
    return account, fake_fit(account, draws)


def test_the_planning_month_starts_from_the_exports_carryover(three_campaigns):
    from helpers.env import PacingCore

    account, fit = three_campaigns
    config, draws, notes = plan.planning_config(fit, 9000.0, "2027-01")
    hist = config.channels
    h = hist.months.index("2027-01")
    ch = account.channel_data()
    np.testing.assert_array_equal(hist.carry_in[h], ch.spend[::-1][: bayes.ADSTOCK_LAGS - 1])  # the export's last days, newest first
    np.testing.assert_allclose(draws.adstock, [[0.45] * 3] * 2)  # each campaign's posterior mean, shared by the draws
    assert hist.active[h, :31].all() and config.budget == 9000.0
    core = PacingCore(draws, config, n_envs=1)
    core.start([0], month_idx=0, draw_idx=0)
    carry = core.observe()[0, [core.obs_names.index(f"carryover:{c}") for c in account.campaigns]]
    assert np.all(carry > 0.3)  # not from zero
    later, _, notes = plan.planning_config(fit, 9000.0, "2027-03")  # two months after the export: assumed spend fills the gap
    assert any("59 day(s) between the export and 2027-03" in n for n in notes)
    with pytest.raises(ValueError, match="must start after"):
        plan.planning_config(fit, 9000.0, "2026-12")


def test_the_carryover_oracle_plans_each_draw_and_beats_the_open_loop_plan(three_campaigns):
    from helpers.baselines import Evaluator, optimal_channel_allocation

    account, fit = three_campaigns
    config, draws, _ = plan.planning_config(fit, 9000.0, "2027-01")
    oracle = plan.CarryoverOracle(draws, config, "2027-01")
    for j in range(2):
        np.testing.assert_allclose(oracle.policies[j].plan("2027-01", None, None), optimal_channel_allocation(draws.subset([j]), config, "2027-01"))
    ev = Evaluator(draws, config, n_months=200, months=("2027-01",))
    res = ev.evaluate(oracle)
    assert res["budget_used"] == pytest.approx(1.0)
    assert res["pct_of_optimum"] > 100 + 3 * res["pct_of_optimum_se"]  # the draws favour different campaigns: knowing the draw pays


# --- notebook 07's graders (helpers/exercises/nb07.py): right passes, plausible wrongs fail, nothing given away ---


def test_notebook_07_graders(sample_account):
    from helpers import exercises as ex
    from helpers.baselines import optimal_allocation
    from helpers.env import month_calendar

    draws, month, budget = truth_draws(), "2025-01", 30_000.0
    cal = month_calendar((month,))
    h, w = cal.flags(month), cal.weekend_flags(month)
    double, single = optimal_allocation(h, w, 2 * budget, draws), optimal_allocation(h, w, budget, draws)
    point = draws.mean()
    weekend = float(point.weekend_boost[0] ** (1 / (1 - point.elasticity[0])))
    per_day = sample_account.totals()["spend"]
    least = float(per_day.min() * 31)
    cases = {
        "07.shape_at_double_budget": (dict(draws=draws, month=month, budget=budget), double.max() / double.min(),
                                      [double.max() / double.mean(), double.max() - double.min()]),
        "07.weekend_multiplier": (dict(draws=draws), weekend, [float(point.weekend_boost[0]), weekend ** 2]),
        "07.least_budget": (dict(account=sample_account, month=month), least, [float(per_day.mean() * 31), float(per_day.min())]),
    }
    assert np.isclose(single.max() / single.min(), double.max() / double.min())  # the lesson of exercise 1: the shape ignores the budget
    for exercise_id, (context, right, wrongs) in cases.items():
        assert ex.grade(exercise_id, right, **context).status == "correct", exercise_id
        for wrong in wrongs:
            verdict = ex.grade(exercise_id, wrong, **context)
            assert verdict.status == "wrong", (exercise_id, wrong)
            assert f"{right:.3g}" not in verdict.message and f"{right:.2f}" not in verdict.message
        assert ex.grade(exercise_id, None, **context).status == "unanswered"
