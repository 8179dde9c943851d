"""The epsilon lab (helpers.widgets.EpsilonLab), driven from Python: set the sliders, click Train,
check that a new curve was overlaid, the previous ones kept, and the chosen values reached PPO.
Plus the notebook-05 plots of helpers.plots (what they drew)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from helpers import plots, training
from helpers.baselines import Evaluator
from helpers.widgets import VERDICTS, EpsilonLab, band_verdict, seed_runs

from funnel_fixtures import TRUTH, tiny_budget_ppo  # tests/ is on sys.path under pytest

TINY, ENVS, BATCH = tiny_budget_ppo()


@pytest.fixture(scope="module")
def evaluator():
    return Evaluator(TRUTH, n_months=60)


@pytest.fixture
def lab(evaluator):
    return EpsilonLab(TRUTH, steps=2 * BATCH, base_config=TINY, evaluator=evaluator, num_envs=ENVS, eval_every=1,
                      levels={"even pacing": 97.0, "historical (human)": 96.5}, seeds=1)


def run_lines(lab):
    return sorted((ln for ln in lab.ax.lines if str(ln.get_gid()).startswith("run_")), key=lambda ln: ln.get_gid())


def test_controls_and_first_drawing(lab):
    assert (lab.eps_slider.min, lab.eps_slider.max) == (0.05, 0.5)
    assert lab.eps_slider.value == pytest.approx(0.2)
    assert lab.lr_slider.value == pytest.approx(TINY.lr)
    assert lab.steps_slider.value == 2 * BATCH and lab.steps_slider.step == BATCH
    assert lab.state["n_runs"] == 0 and lab.state["n_redraws"] == 1
    assert run_lines(lab) == []
    assert {ln.get_gid() for ln in lab.ax.lines} == {"level_even pacing", "level_historical (human)"}
    # it starts empty and asks for a prediction first
    assert lab.runs == [] and lab.prediction.value is None and list(lab.prediction.options) == list(VERDICTS)
    assert lab.state["status"] == EpsilonLab.EMPTY_STATUS and "predict" in lab.state["status"]


def test_each_click_overlays_a_new_curve_and_keeps_the_previous_ones(lab):
    lab.eps_slider.value = 0.1
    lab.train_button.click()
    assert lab.state["n_runs"] == 1 and lab.state["n_redraws"] == 2
    (first,) = run_lines(lab)
    curve0 = lab.runs[0]["curve"]
    np.testing.assert_allclose(first.get_xdata(), curve0["step"])
    np.testing.assert_allclose(first.get_ydata(), curve0["pct_of_optimum"])
    assert curve0["step"].tolist() == [0, BATCH, 2 * BATCH]
    assert "ε=0.10" in lab.state["status"] and "ε=0.10" in first.get_label()
    y_before = np.array(first.get_ydata(), dtype=float)

    lab.eps_slider.value = 0.4
    lab.lr_slider.value = 1e-3
    lab.seed_box.value = 2
    lab.train_button.click()
    assert lab.state["n_runs"] == 2 and lab.state["labels"][1] == "ε=0.40, lr=1.0e-03, seed 2"
    old, new = run_lines(lab)
    np.testing.assert_array_equal(old.get_ydata(), y_before)  # the earlier run is still drawn, unchanged
    np.testing.assert_allclose(new.get_ydata(), lab.runs[1]["curve"]["pct_of_optimum"])
    assert new.get_linewidth() > old.get_linewidth()  # the latest run is drawn bold
    assert [r["clip_eps"] for r in lab.runs] == [0.1, 0.4] and lab.runs[1]["seeds"] == [2]
    # Both runs really trained: their final policies were measured after 2 updates.
    assert all(r["steps"] == 2 * BATCH for r in lab.runs)
    assert all(np.isfinite(r["final_pct"]) for r in lab.runs)
    assert lab.train_button.disabled is False


def test_the_widget_values_reach_ppo(lab, monkeypatch):
    seen = []
    real = training.train_budget_agent

    def spy(draws, total_steps, config, env_config=None, **kwargs):
        seen.append((total_steps, config, kwargs["num_envs"]))
        return real(draws, total_steps, config, env_config, **kwargs)

    monkeypatch.setattr(training, "train_budget_agent", spy)
    lab.eps_slider.value = 0.33
    lab.lr_slider.value = 10**-3.5
    lab.steps_slider.value = 3 * BATCH
    lab.train_button.click()
    ((steps, config, num_envs),) = seen
    assert steps == 3 * BATCH and num_envs == ENVS
    assert config.clip_eps == pytest.approx(0.33) and config.lr == pytest.approx(10**-3.5)
    # Everything else is the base configuration.
    assert (config.num_steps, config.num_epochs, config.gamma) == (TINY.num_steps, TINY.num_epochs, TINY.gamma)
    assert lab.runs[0]["steps"] == 3 * BATCH


def test_clear_forgets_the_runs(lab):
    lab.train_button.click()
    assert len(run_lines(lab)) == 1
    lab.clear_button.click()
    assert lab.runs == [] and run_lines(lab) == [] and lab.state["n_runs"] == 0
    lab.train_button.click()
    assert len(run_lines(lab)) == 1 and lab.state["labels"] == ["ε=0.20, lr=5.0e-03, seed 0"]


def test_a_failed_run_is_reported_and_the_lab_stays_usable(lab, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("planted failure")

    monkeypatch.setattr(training, "train_budget_agent", boom)
    with pytest.raises(RuntimeError, match="planted"):
        lab.train()
    assert "Training failed" in lab.state["status"] and "planted failure" in lab.state["status"]
    assert lab.train_button.disabled is False and lab.runs == []
    monkeypatch.undo()
    lab.train_button.click()
    assert lab.state["n_runs"] == 1


# --- notebook 05's plots ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(evaluator):
    return [training.train_budget_agent(TRUTH, 4 * BATCH, training.budget_ppo_config(num_steps=8, num_epochs=2, num_minibatches=2, seed=s),
                                        num_envs=ENVS, evaluator=evaluator, eval_every=2) for s in (0, 1)]


def test_budget_training_panels(runs):
    fig = plots.plot_budget_training({"seed 0": runs[0].history, "seed 1": runs[1].history}, levels={"even pacing": 97.0})
    axes = fig.axes
    assert len(axes) == 8
    pct_ax = axes[0]
    lines = [ln for ln in pct_ax.lines if ln.get_gid() is None or not str(ln.get_gid()).startswith("level_")]
    assert len(lines) == 2
    measured = runs[0].history.dropna(subset=["pct_of_optimum"])
    np.testing.assert_allclose(lines[0].get_ydata(), measured["pct_of_optimum"])  # NaNs (unmeasured updates) dropped
    assert any(ln.get_gid() == "level_even pacing" for ln in pct_ax.lines)
    assert axes[2].get_yscale() == "log"  # value loss
    assert axes[7].get_xlabel() == "training wall time (s)"


def test_live_budget_plot_redraws_every_k_updates(evaluator):
    live = plots.LiveBudgetPlot(every=2)
    training.train_budget_agent(TRUTH, 5 * BATCH, TINY, num_envs=ENVS, evaluator=evaluator, eval_every=1, callback=live)
    assert len(live.records) == 5 and live.n_draws == 2
    assert "pct_of_optimum" in live.history
    live.finish()
    assert live.n_draws == 3 and len(live.fig.axes) == 8


def test_seed_band_is_mean_and_min_max(runs):
    fig = plots.plot_seed_band({"PPO": [r.curve for r in runs]}, levels={"even pacing": 97.0})
    ax = fig.axes[0]
    (mean_line,) = [ln for ln in ax.lines if ln.get_gid() == "mean_PPO"]
    expected = training.mean_curve([r.curve for r in runs])
    np.testing.assert_allclose(mean_line.get_ydata(), expected["mean"])
    np.testing.assert_allclose(mean_line.get_xdata(), expected.index)
    (band,) = [c for c in ax.collections if c.get_gid() == "band_PPO"]
    ys = np.concatenate([p.vertices[:, 1] for p in band.get_paths()])
    assert ys.min() == pytest.approx(expected["min"].min()) and ys.max() == pytest.approx(expected["max"].max())
    by_time = plots.plot_seed_band({"PPO": [r.curve for r in runs]}, x="train_wall_s")
    assert by_time.axes[0].get_xlabel() == "training wall time (s)"


def test_epsilon_sweep_plot():
    rows = [{"clip_eps": e, "seed": s, "step": st, "train_wall_s": st / 1e4, "pct_of_optimum": 97 + e * 4 + s * 0.1 + st / 1e5}
            for e in (0.1, 0.3) for s in (0, 1) for st in (0, 10_000, 20_000)]
    sweep = pd.DataFrame(rows)
    fig = plots.plot_epsilon_sweep(sweep, levels={"even pacing": 97.0})
    ax1, ax2 = fig.axes
    (means,) = [ln for ln in ax1.lines if ln.get_gid() == "means"]
    np.testing.assert_allclose(means.get_ydata(), training.sweep_summary(sweep)["mean"])
    curves = [ln for ln in ax2.lines if str(ln.get_gid()).startswith("curve_")]
    assert [ln.get_gid() for ln in curves] == ["curve_0.1", "curve_0.3"]
    np.testing.assert_allclose(curves[1].get_ydata(), [97 + 1.2 + 0.05, 97 + 1.2 + 0.05 + 0.1, 97 + 1.2 + 0.05 + 0.2])


def test_settling_and_new_data_plots(runs):
    h = runs[0].history
    fig = plots.plot_settling(h, value_settled=float(h["step"].iloc[1]), pct_settled=float("nan"))
    ax = fig.axes[0]
    assert [ln.get_label() for ln in ax.lines if ln.get_label().startswith("value loss settles")]
    assert not [ln for ln in ax.lines if ln.get_label().startswith("reward saturates")]  # NaN: not drawn
    fig = plots.plot_new_data_costs({"fine-tune": runs[0].curve, "from scratch": runs[1].curve}, levels={"old policy": 98.0})
    assert len(fig.axes) == 2
    assert {ln.get_gid() for ln in fig.axes[1].lines} >= {"fine-tune_train_wall_s", "from scratch_train_wall_s"}


def test_several_seeds_draw_a_band_and_the_status_says_whether_two_runs_differ(evaluator, monkeypatch):
    lab = EpsilonLab(TRUTH, steps=2 * BATCH, base_config=TINY, evaluator=evaluator, num_envs=ENVS, eval_every=1)
    assert lab.seeds_box.value == 3  # the default: a mean and a band, not one lucky run
    lab.seeds_box.value = 2
    lab.seed_box.value = 5
    lab.train_button.click()
    run = lab.runs[0]
    assert run["seeds"] == [5, 6] and len(run["curves"]) == 2 and run["label"] == "ε=0.20, lr=5.0e-03, seeds 5-6"
    finals = [c["pct_of_optimum"].iloc[-1] for c in run["curves"]]
    assert run["final_pct"] == pytest.approx(np.mean(finals)) and (run["final_min"], run["final_max"]) == (min(finals), max(finals))
    np.testing.assert_allclose(run["curve"]["pct_of_optimum"], np.mean([c["pct_of_optimum"] for c in run["curves"]], axis=0))
    (band,) = [c for c in lab.ax.collections if c.get_gid() == "band_0"]
    lo, hi = band.get_paths()[0].vertices[:, 1].min(), band.get_paths()[0].vertices[:, 1].max()
    curves = np.array([c["pct_of_optimum"] for c in run["curves"]])
    assert lo == pytest.approx(curves.min()) and hi == pytest.approx(curves.max())
    assert "Run 1: ε=0.20" in lab.state["status"] and "seeds from" in lab.state["status"]
    lab.fig.canvas.draw()  # the step axis shows its scale: plain step counts, no hidden x10^n offset
    assert lab.ax.xaxis.get_offset_text().get_text() == ""

    # The verdict compares the final bands of the last two runs (faked here to known values).
    def fake(draws, total_steps, config, env_config=None, **kwargs):
        curve = pd.DataFrame({"update": [0, 1], "step": [0, total_steps], "train_wall_s": [0.0, 0.1],
                              "pct_of_optimum": [97.0, 90.0 + config.seed], "pct_of_optimum_se": [0.01, 0.01]})
        return training.TrainingRun(agent=None, history=pd.DataFrame(), curve=curve, wall_s=0.1, eval_s=0.0)

    monkeypatch.setattr(training, "train_budget_agent", fake)
    lab.seed_box.value = 0
    lab.train_button.click()  # finals 90, 91
    lab.seed_box.value = 1
    lab.train_button.click()  # finals 91, 92: overlaps
    assert "overlaps run 2's: no effect shown" in lab.state["status"] and lab.runs[-1]["verdict"] == "no effect shown"
    assert "No prediction made" in lab.state["status"]
    lab.seed_box.value = 5
    lab.prediction.value = "no effect shown"  # the learner's prediction before the press
    lab.train_button.click()  # finals 95, 96: above
    assert "whole band is above run 3's: a real difference" in lab.state["status"]
    assert "You predicted 'no effect shown': the bands say 'higher'" in lab.state["status"]
    assert lab.runs[-1]["prediction"] == "no effect shown" and lab.prediction.value is None  # asked again for the next run
    lab.prediction.value = "lower"
    lab.seed_box.value = 0
    lab.train_button.click()  # finals 90, 91: below
    assert "whole band is below run 4's" in lab.state["status"] and "You predicted 'lower': right." in lab.state["status"]
    # the y axis fits what is drawn: the runs' bands fill most of its height (a gap of a point is visible)
    lo, hi = lab.ax.get_ylim()
    drawn = np.concatenate([r["curve"][["pct_min", "pct_max", "pct_of_optimum"]].to_numpy().ravel() for r in lab.runs])
    assert lo < drawn.min() and hi > drawn.max() and hi - lo < 1.5 * np.ptp(drawn)


def test_a_scripted_run_uses_its_values_then_puts_every_control_back_to_its_default(lab):
    lab.eps_slider.value = 0.3  # what a learner set before the script ran
    entry = lab.train(clip_eps=0.1, lr=1e-3, first_seed=3, seeds=2)
    assert (entry["clip_eps"], entry["lr"], entry["seeds"]) == (pytest.approx(0.1), pytest.approx(1e-3), [3, 4])
    assert lab.runs[-1] is entry and len(entry["curves"]) == 2
    assert lab.eps_slider.value == pytest.approx(0.2) and lab.lr_slider.value == pytest.approx(TINY.lr)
    assert (lab.seed_box.value, lab.seeds_box.value, lab.steps_slider.value) == (0, 1, 2 * BATCH)
    assert lab.prediction.value is None
    # a press of Train keeps what the learner chose
    lab.eps_slider.value = 0.15
    lab.train_button.click()
    assert lab.runs[-1]["clip_eps"] == pytest.approx(0.15) and lab.eps_slider.value == pytest.approx(0.15)


def test_band_verdict_compares_whole_bands_not_means():
    assert band_verdict([97.2, 97.4], [96.9, 97.1]) == "higher"
    assert band_verdict([96.0, 96.5], [96.9, 97.1]) == "lower"
    # a higher mean with overlapping bands is no effect shown
    assert band_verdict([96.8, 97.9], [96.9, 97.1]) == "no effect shown"
    with pytest.raises(ValueError, match="at least two seeds"):
        band_verdict([97.0], [96.0, 96.5])


def test_seed_runs_trains_one_agent_per_seed_and_summarises_them(evaluator):
    entry = seed_runs(TRUTH, 0.3, 1e-3, [1, 2], 2 * BATCH, base_config=TINY, evaluator=evaluator, num_envs=ENVS,
                      eval_every=1, keep_runs=True)
    assert entry["seeds"] == [1, 2] and [r.agent.config.seed for r in entry["runs"]] == [1, 2]
    assert all(r.agent.config.clip_eps == pytest.approx(0.3) for r in entry["runs"])
    assert entry["finals"] == [r.final_pct for r in entry["runs"]] and entry["label"] == "ε=0.30, lr=1.0e-03, seeds 1-2"
    assert "runs" not in seed_runs(TRUTH, 0.3, 1e-3, [1], BATCH, base_config=TINY, evaluator=evaluator, num_envs=ENVS)
