"""Widgets and PPO plots, driven from Python: set widget values, check what was redrawn."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import torch

from helpers.plots import PPO_PANELS, LiveTrainingPlot, plot_ppo_diagnostics
from helpers import ppo
from helpers.widgets import ClipExplorer, bandit_update, clip_cases, clip_gradient, zero_gradient_regions

# --- 04: the clip-epsilon explorer -------------------------------------------------------------


def _patch(ax, gid):
    (patch,) = [p for p in ax.patches if p.get_gid() == gid]
    return patch


def _line(ax, gid):
    (line,) = [ln for ln in ax.lines if ln.get_gid() == gid]
    return line


def l_clip_by_hand(r, sign, eps):
    return np.minimum(r * sign, np.clip(r, 1 - eps, 1 + eps) * sign)


def test_explorer_slider_range_and_initial_drawing():
    ex = ClipExplorer()
    assert (ex.eps_slider.min, ex.eps_slider.max) == (0.05, 0.5)
    assert ex.state["n_redraws"] == 1 and ex.state["eps"] == pytest.approx(0.2)
    span = _patch(ex.ax, "clip_range")
    assert span.get_x() == pytest.approx(0.8) and span.get_width() == pytest.approx(0.4)
    # The band is PPO's clip range; a trust region is TRPO's KL constraint, another thing.
    labels = [t.get_text() for t in ex.ax.get_legend().get_texts()]
    assert "clip range [1-ε, 1+ε]" in labels and not any("trust" in s.lower() for s in labels)
    line = _line(ex.ax, "l_clip")
    np.testing.assert_allclose(line.get_ydata(), l_clip_by_hand(ex.ratio, 1, 0.2))


@pytest.mark.parametrize("eps", [0.05, 0.13, 0.3, 0.5])
def test_moving_the_slider_moves_the_shaded_span_and_the_curve(eps):
    ex = ClipExplorer()
    ex.eps_slider.value = eps  # what a learner's drag does
    assert ex.state["n_redraws"] == 2
    assert ex.state["clip_range"] == pytest.approx((1 - eps, 1 + eps))
    span = _patch(ex.ax, "clip_range")
    assert span.get_x() == pytest.approx(1 - eps)
    assert span.get_x() + span.get_width() == pytest.approx(1 + eps)
    np.testing.assert_allclose(_line(ex.ax, "l_clip").get_ydata(), l_clip_by_hand(ex.ratio, 1, eps))
    # A > 0: the gradient vanishes exactly above 1 + eps (to the grid's resolution).
    step = ex.ratio[1] - ex.ratio[0]
    ((start, end),) = ex.state["zero_gradient"]
    assert 1 + eps < start <= 1 + eps + step + 1e-12 and end == pytest.approx(ex.ratio[-1])
    assert f"{eps:.2f}" in ex.ax.get_title()


def test_flipping_the_advantage_sign_moves_the_zero_gradient_region_below():
    ex = ClipExplorer(eps=0.25)
    ex.sign_toggle.value = -1
    assert ex.state["sign"] == -1 and ex.state["n_redraws"] == 2
    step = ex.ratio[1] - ex.ratio[0]
    ((start, end),) = ex.state["zero_gradient"]
    assert start == pytest.approx(ex.ratio[0]) and 0.75 - step - 1e-12 <= end < 0.75
    hatched = _patch(ex.ax, "zero_grad_0")
    assert hatched.get_x() == pytest.approx(start) and hatched.get_hatch() == "//"
    np.testing.assert_allclose(_line(ex.ax, "l_clip").get_ydata(), l_clip_by_hand(ex.ratio, -1, 0.25))
    # The flat (red) part of the curve is drawn only where the clip is active.
    flat = _line(ex.ax, "l_clip_flat").get_ydata()
    assert np.all(np.isnan(flat[ex.ratio > 0.75])) and np.all(np.isfinite(flat[ex.ratio < 0.74]))
    cases = ex.state["cases"]
    assert list(cases["clipped (no gradient)"]) == [True, False, False]
    # Back to A > 0 and the region flips back above.
    ex.sign_toggle.value = 1
    assert ex.state["zero_gradient"][0][0] > 1.25


def test_six_cases_table_is_computed_from_the_agent_objective():
    t = clip_cases(0.2)
    assert len(t) == 6
    np.testing.assert_allclose(t["L_clip"], [0.5, 1.0, 1.2, -0.8, -1.0, -1.5])
    np.testing.assert_allclose(t["gradient"], [1, 1, 0, 0, -1, -1])
    assert t["clipped (no gradient)"].sum() == 2
    with pytest.raises(ValueError, match="straddle"):
        clip_cases(0.2, (0.9, 1.0, 1.5))


def test_zero_gradient_regions_from_a_gradient_array():
    r = np.arange(6.0)
    assert zero_gradient_regions(r, np.array([0, 0, 1, 1, 0, 0])) == [(0.0, 1.0), (4.0, 5.0)]
    assert zero_gradient_regions(r, np.ones(6)) == []
    obj, grad = clip_gradient(np.array([0.5, 1.5]), 1.0, 0.2)
    np.testing.assert_allclose(obj, [0.5, 1.2])
    np.testing.assert_allclose(grad, [1.0, 0.0])


# --- 04: the explorer's second panel: what epsilon does to one update ---------------------------


def _bars(ax, gid):
    return [p for p in ax.patches if p.get_gid() == gid]


def test_one_update_panel_shows_where_the_ratios_end_for_the_chosen_eps():
    ex = ClipExplorer()
    u = ex.state["update"]
    assert (u["clip_eps"], u["epochs"]) == (pytest.approx(0.2), 10) and ex.state["epochs"] == 10
    full = bandit_update(0.2, 10)
    # every sample of the batch is in one of the two histograms (A > 0, A < 0), each bar at its ratio
    pos, neg = _bars(ex.ax_update, "ratios_pos"), _bars(ex.ax_update, "ratios_neg")
    assert sum(b.get_height() for b in pos) == (full["advantages"] > 0).sum()
    assert sum(b.get_height() for b in pos + neg) == full["n_samples"]
    # the dashed clip edges are at 1 -/+ eps
    edges = sorted(ln.get_xdata()[0] for ln in ex.ax_update.lines if str(ln.get_gid()).startswith("clip_edge_"))
    assert edges == pytest.approx([0.8, 1.2])
    # the figures printed are those of the ratios drawn
    log_ratio = torch.log(torch.tensor(np.array(full["ratios"])))
    assert u["approx_kl"] == pytest.approx(float(ppo.approx_kl(log_ratio)), rel=1e-5)
    assert u["outside"] == pytest.approx(float(np.mean(np.abs(full["ratios"] - 1) > 0.2)))
    assert f"KL {u['approx_kl']:.3f}" in ex.ax_update.get_title()


def test_a_larger_eps_lets_one_update_move_the_policy_further_and_no_eps_keeps_the_ratios_inside():
    ex = ClipExplorer()
    seen = {}
    for eps in (0.05, 0.2, 0.5):
        ex.eps_slider.value = eps
        seen[eps] = ex.state["update"]
    kls = [seen[e]["approx_kl"] for e in (0.05, 0.2, 0.5)]
    assert kls[0] < kls[1] < kls[2] and kls[2] > 3 * kls[0]
    assert seen[0.5]["mean_after"] > seen[0.05]["mean_after"] > 0  # towards the best action 1.5
    # not a trust region: after 10 epochs most ratios lie outside the clip range, whatever eps
    assert all(u["outside"] > 0.5 for u in seen.values())
    # after a single epoch almost none does: the ratios leave the range over the later epochs
    ex.epochs_slider.value = 1
    assert ex.state["epochs"] == 1 and ex.state["update"]["outside"] < 0.1
    assert ex.state["n_redraws"] == 5


def test_bandit_update_is_deterministic_cached_read_only_and_checks_its_arguments():
    a, b = bandit_update(0.3, 3), bandit_update(0.3, 3)
    np.testing.assert_array_equal(a["ratios"], b["ratios"])
    assert not a["ratios"].flags.writeable
    assert a["approx_kl"] != bandit_update(0.3, 3, seed=1)["approx_kl"]
    for bad in ({"clip_eps": 0.0}, {"clip_eps": 0.2, "epochs": 0}, {"clip_eps": 0.2, "minibatches": 0}):
        with pytest.raises(ValueError, match="bandit_update"):
            bandit_update(**bad)


# --- 04: PPO plots -------------------------------------------------------------------------------


def _fake_history(n=12, shift=0.0):
    steps = np.arange(1, n + 1) * 2048
    return pd.DataFrame({
        "global_step": steps,
        "episode_return_mean": np.linspace(-1200, -200, n) + shift,
        "value_loss": np.geomspace(1.0, 0.01, n),
        "approx_kl": np.full(n, 0.01),
        "clip_frac": np.full(n, 0.1),
        "explained_variance": np.linspace(0, 0.95, n),
        "action_std": np.linspace(1, 0.5, n),
    })


def test_plot_ppo_diagnostics_draws_every_panel_and_overlays_runs():
    fig = plot_ppo_diagnostics({"eps=0.1": _fake_history(), "eps=0.3": _fake_history(shift=50)})
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == len(PPO_PANELS)
    ret_ax = visible[0]
    assert len(ret_ax.lines) == 2
    np.testing.assert_allclose(ret_ax.lines[1].get_ydata(), _fake_history(shift=50)["episode_return_mean"])
    assert [t.get_text() for t in ret_ax.get_legend().get_texts()] == ["eps=0.1", "eps=0.3"]
    assert visible[1].get_yscale() == "log"


def test_live_plot_callback_redraws_every_k_updates_and_once_at_the_end():
    live = LiveTrainingPlot(every=5)
    hist = _fake_history(12)
    for rec in hist.to_dict("records"):
        assert live(rec) is True  # never stops training
    assert live.n_draws == 2  # after updates 5 and 10
    live.finish()
    assert live.n_draws == 3
    ret_ax = live.fig.axes[0]
    np.testing.assert_allclose(ret_ax.lines[0].get_ydata(), hist["episode_return_mean"])
    live.finish()  # nothing new: no extra draw
    assert live.n_draws == 3
