"""Interactive widgets of the course (ipywidgets + matplotlib, no extra front-end extension).

Each widget is a small class that owns its controls, its matplotlib figure and a ``state`` dict
describing what was last drawn, so tests can drive it from Python (set ``slider.value``) and check
what was redrawn, without a browser. In a notebook, put the object last in a cell (or
``display(obj)``) to show it.

Sections follow the notebooks.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython import get_ipython
from IPython.display import display


def _in_ipython() -> bool:
    return get_ipython() is not None


def _show_in(output, fig) -> None:
    """Replace what ``output`` (an ``ipywidgets.Output``) shows by ``fig``; a no-op outside IPython."""
    if _in_ipython():
        output.clear_output(wait=True)
        with output:
            display(fig)


# --- 04: the clip-epsilon explorer -----------------------------------------------------------

from helpers.ppo import clipped_surrogate_objective  # noqa: E402  (section-local import)


def clip_gradient(ratio: np.ndarray, advantage: float, clip_eps: float) -> tuple[np.ndarray, np.ndarray]:
    """``L^CLIP`` and its derivative with respect to the ratio, by autograd through
    ``helpers.ppo.clipped_surrogate_objective`` (the very function the agent trains with).

    ``ratio``: ``(n,)``; returns ``(objective (n,), d objective / d ratio (n,))`` as float64 arrays.
    """
    r = torch.tensor(np.asarray(ratio, dtype=np.float64), requires_grad=True)
    adv = torch.full_like(r, float(advantage))
    objective = clipped_surrogate_objective(r, adv, clip_eps)
    objective.sum().backward()
    return objective.detach().numpy(), r.grad.numpy()


def zero_gradient_regions(ratio: np.ndarray, grad: np.ndarray) -> list[tuple[float, float]]:
    """Contiguous runs of ``ratio`` where ``grad == 0``, as ``[(first, last), ...]`` grid values."""
    zero = np.asarray(grad) == 0.0
    regions, start = [], None
    for i, z in enumerate(zero):
        if z and start is None:
            start = i
        if start is not None and (not z or i == len(zero) - 1):
            end = i if z else i - 1
            regions.append((float(ratio[start]), float(ratio[end])))
            start = None
    return regions


def clip_cases(clip_eps: float = 0.2, ratios: tuple[float, float, float] = (0.5, 1.0, 1.5)) -> pd.DataFrame:
    """The six ratio x advantage-sign cases of the clipped objective, computed (not typed in).

    One row per case: ratio region, sign of A, the ratio probed, ``L^CLIP``, its gradient with
    respect to the ratio, and whether the clip is active (gradient zero). ``ratios`` must be one
    below ``1 - eps``, one inside, one above ``1 + eps``.
    """
    lo, mid, hi = ratios
    if not (lo < 1 - clip_eps <= mid <= 1 + clip_eps < hi):
        raise ValueError(f"clip_cases: ratios {ratios} must straddle [1 - eps, 1 + eps] for eps={clip_eps}")
    rows = []
    for sign in (1.0, -1.0):
        obj, grad = clip_gradient(np.array(ratios), sign, clip_eps)
        for region, r, o, g in zip(("r < 1 - eps", "inside", "r > 1 + eps"), ratios, obj, grad):
            rows.append({"ratio region": region, "advantage": "A > 0" if sign > 0 else "A < 0",
                         "ratio": r, "L_clip": o, "gradient": g, "clipped (no gradient)": g == 0.0})
    return pd.DataFrame(rows)


class ClipExplorer:
    """Slider for clip epsilon (0.05-0.5) and the sign of the advantage; redraws ``L^CLIP`` vs the
    ratio (A = +-1), the unclipped ``r A`` for comparison, the clip range ``[1 - eps, 1 + eps]``
    shaded, and the ratios where the gradient vanishes hatched in red.

    The band is the *clip range*, not a trust region: ratios can and do end up outside it (the
    clip only removes the incentive to push them further); TRPO's KL constraint is a trust region.

    After every redraw ``state`` holds ``eps``, ``sign``, ``clip_range``, ``zero_gradient``
    (list of ``(first, last)`` ratio intervals, from autograd on a grid), ``cases`` (the three
    cases for this sign) and ``n_redraws``. ``fig``/``ax`` are the figure drawn on.
    """

    def __init__(self, eps: float = 0.2, sign: int = 1, ratio_range: tuple[float, float] = (0.0, 2.0),
                 n_points: int = 801):
        self.ratio = np.linspace(*ratio_range, n_points)
        self.eps_slider = widgets.FloatSlider(value=eps, min=0.05, max=0.5, step=0.01,
                                              description="clip ε", readout_format=".2f",
                                              continuous_update=True)
        self.sign_toggle = widgets.ToggleButtons(options=[("advantage > 0", 1), ("advantage < 0", -1)],
                                                 value=sign, description="sign")
        self.output = widgets.Output()
        self.fig, self.ax = plt.subplots(figsize=(8, 4.2))
        plt.close(self.fig)  # shown through self.output only, never twice by the inline backend
        self.state: dict[str, Any] = {"n_redraws": 0}
        self.eps_slider.observe(self._on_change, names="value")
        self.sign_toggle.observe(self._on_change, names="value")
        self.widget = widgets.VBox([widgets.HBox([self.eps_slider, self.sign_toggle]), self.output])
        self.redraw()

    def _on_change(self, _change: dict) -> None:
        self.redraw()

    def redraw(self) -> None:
        eps, sign = float(self.eps_slider.value), int(self.sign_toggle.value)
        r = self.ratio
        obj, grad = clip_gradient(r, sign, eps)
        zero = zero_gradient_regions(r, grad)
        ax = self.ax
        ax.clear()
        ax.axvspan(1 - eps, 1 + eps, color="tab:green", alpha=0.15, label="clip range [1-ε, 1+ε]",
                   gid="clip_range")
        for k, (a, b) in enumerate(zero):
            ax.axvspan(a, b, facecolor="none", edgecolor="tab:red", hatch="//", lw=0,
                       label="gradient = 0 (clip active)" if k == 0 else None, gid=f"zero_grad_{k}")
        ax.plot(r, r * sign, ls="--", color="grey", lw=1.2, label="unclipped  r·A", gid="unclipped")
        ax.plot(r, obj, color="tab:blue", lw=2.5, label="L^CLIP = min(r·A, clip(r)·A)", gid="l_clip")
        flat = np.where(grad == 0.0, obj, np.nan)
        ax.plot(r, flat, color="tab:red", lw=4, alpha=0.8, gid="l_clip_flat")
        ax.axvline(1.0, color="black", lw=0.8)
        ax.axhline(0.0, color="black", lw=0.5)
        ax.set(xlabel="probability ratio r = π_new(a|s) / π_old(a|s)", ylabel="objective (A = ±1)",
               xlim=(r[0], r[-1]), ylim=(-2.2, 2.2))
        side = "above 1+ε" if sign > 0 else "below 1-ε"
        ax.set_title(f"ε = {eps:.2f}, advantage {'> 0' if sign > 0 else '< 0'}: "
                     f"no gradient once r is {side}")
        ax.legend(loc="upper left" if sign > 0 else "lower left", fontsize=9, framealpha=0.9)
        cases = clip_cases(eps, (max(r[0], (1 - eps) / 2), 1.0, min(r[-1], 1 + eps + (r[-1] - 1 - eps) / 2)))
        cases = cases[cases["advantage"] == ("A > 0" if sign > 0 else "A < 0")].reset_index(drop=True)
        self.state = {
            "eps": eps,
            "sign": sign,
            "clip_range": (1 - eps, 1 + eps),
            "zero_gradient": zero,
            "cases": cases,
            "n_redraws": self.state["n_redraws"] + 1,
        }
        _show_in(self.output, self.fig)

    def _ipython_display_(self) -> None:
        display(self.widget)


# --- 05: the epsilon lab ---------------------------------------------------------------------

from helpers import training as _training  # noqa: E402  (section-local import; training sits on top too)


class EpsilonLab:
    """The epsilon lab: pick clip ε (and the learning rate), press **Train**, see the new learning
    curve (% of the optimum against env steps) overlaid on every previous run.

    Each press trains ``seeds`` fresh agents (seeds ``first seed`` .. ``first seed + seeds - 1``)
    with ``helpers.training.train_budget_agent`` for ``steps`` env steps each, starting from
    ``base_config`` with the chosen ``clip_eps`` and ``lr``, and draws their mean curve with the
    seeds' band (min to max) around it: one seed's curve cannot tell an effect of ε from luck.
    The status line says whether the new run's final band overlaps the previous run's (within
    the seeds' noise) or not (a real difference). **Clear** forgets the runs.

    Args:
        draws: posterior draws (``helpers.bayes.FunnelDraws``) for the env and the optimum.
        steps: default step budget of a run (the slider starts there).
        seeds: default number of seeds per press.
        base_config: the ``PPOConfig`` the runs start from (default: the tuned one).
        env_config: the environment (default ``EnvConfig()``).
        evaluator: where % of the optimum is measured (built once, shared by every run; notebook
            05 passes its *validation* evaluator: the lab is a tuning tool).
        levels: reference lines (name -> % of optimum), e.g. the baselines.
        eval_every: measure every this many updates.
        num_envs: parallel months per run.

    ``runs`` holds one dict per press (``label, clip_eps, lr, seeds, steps, final_pct`` (mean
    over seeds), ``final_min, final_max, finals, wall_s`` (all seeds), ``curve`` (the mean
    curve), ``curves`` (one per seed)); ``state`` says what was last drawn: ``n_runs``,
    ``labels`` (legend order), ``n_redraws``, ``status``.
    """

    def __init__(self, draws, steps: int = 40_000, base_config=None, env_config=None, evaluator=None,
                 levels: dict[str, float] | None = None, eval_every: int = 2, eps: float = 0.2, lr: float | None = None,
                 num_envs: int | None = None, seeds: int = 3):
        from helpers.baselines import Evaluator

        self.draws = draws
        self.base_config = base_config or _training.BUDGET_PPO
        self.env_config = env_config
        self.evaluator = evaluator or Evaluator(draws, env_config, n_months=_training.N_EVAL_MONTHS)
        self.levels = dict(levels or {})
        self.eval_every = eval_every
        self.num_envs = int(num_envs or _training.NUM_ENVS)
        lr = self.base_config.lr if lr is None else lr
        self.eps_slider = widgets.FloatSlider(value=eps, min=0.05, max=0.5, step=0.01, description="clip ε",
                                              readout_format=".2f", continuous_update=False)
        self.lr_slider = widgets.FloatLogSlider(value=lr, base=10, min=-4.5, max=-2, step=0.25, description="learning rate",
                                                readout_format=".1e", continuous_update=False,
                                                style={"description_width": "initial"})
        batch = self.base_config.num_steps * self.num_envs
        self.steps_slider = widgets.IntSlider(value=int(steps), min=batch, max=max(int(steps) * 4, batch * 10), step=batch,
                                              description="env steps", continuous_update=False)
        self.seeds_box = widgets.BoundedIntText(value=int(seeds), min=1, max=5, description="seeds",
                                                layout=widgets.Layout(width="130px"))
        self.seed_box = widgets.BoundedIntText(value=0, min=0, max=10_000, description="first seed",
                                               style={"description_width": "initial"}, layout=widgets.Layout(width="150px"))
        self.train_button = widgets.Button(description="Train", button_style="primary", icon="play")
        self.clear_button = widgets.Button(description="Clear", icon="trash")
        self.status = widgets.HTML(value="Pick ε (and the learning rate), then press Train.")
        self.output = widgets.Output()
        self.train_button.on_click(self._on_train)
        self.clear_button.on_click(self._on_clear)
        self.fig, self.ax = plt.subplots(figsize=(9, 4.4))
        plt.close(self.fig)  # shown through self.output only
        self.runs: list[dict[str, Any]] = []
        self.state: dict[str, Any] = {"n_runs": 0, "labels": [], "n_redraws": 0, "status": self.status.value}
        self.widget = widgets.VBox([
            widgets.HBox([self.eps_slider, self.lr_slider]),
            widgets.HBox([self.steps_slider, self.seeds_box, self.seed_box, self.train_button, self.clear_button]),
            self.status,
            self.output,
        ])
        self.redraw()

    # -- actions --

    def train(self) -> dict[str, Any]:
        """Train one run (``seeds`` agents) with the current widget values; add it to ``runs`` and redraw."""
        import dataclasses

        eps, lr = float(self.eps_slider.value), float(self.lr_slider.value)
        first, n_seeds, steps = int(self.seed_box.value), int(self.seeds_box.value), int(self.steps_slider.value)
        seeds = list(range(first, first + n_seeds))
        self.train_button.disabled = True
        results = []
        try:
            for k, seed in enumerate(seeds):
                self._set_status(f"Training ε = {eps:.2f}, lr = {lr:.1e}: seed {seed} ({k + 1} of {n_seeds}), {steps:,} steps ...")
                config = dataclasses.replace(self.base_config, clip_eps=eps, lr=lr, seed=seed)
                results.append(_training.train_budget_agent(self.draws, steps, config, self.env_config, num_envs=self.num_envs,
                                                            evaluator=self.evaluator, eval_every=self.eval_every))
        except Exception as e:  # show it in the panel, then re-raise for the notebook / tests
            self._set_status(f"<b>Training failed:</b> {type(e).__name__}: {e}")
            raise
        finally:
            self.train_button.disabled = False
        finals = [r.final_pct for r in results]
        who = f"seed {first}" if n_seeds == 1 else f"seeds {first}-{seeds[-1]}"
        entry = {
            "label": f"ε={eps:.2f}, lr={lr:.1e}, {who}",
            "clip_eps": eps, "lr": lr, "seeds": seeds, "steps": results[0].steps,
            "final_pct": float(np.mean(finals)), "final_min": float(np.min(finals)), "final_max": float(np.max(finals)),
            "finals": finals, "wall_s": float(sum(r.wall_s for r in results)),
            "curves": [r.curve for r in results],
        }
        summary = _training.mean_curve(entry["curves"])  # mean, min, max over the seeds at each step
        entry["curve"] = pd.DataFrame({"step": summary.index.to_numpy(), "pct_of_optimum": summary["mean"].to_numpy(),
                                       "pct_min": summary["min"].to_numpy(), "pct_max": summary["max"].to_numpy()})
        self.runs.append(entry)
        band = "" if n_seeds == 1 else f" (seeds from {entry['final_min']:.2f} to {entry['final_max']:.2f})"
        self._set_status(f"Run {len(self.runs)}: {entry['label']}: {entry['final_pct']:.2f}% of the optimum{band} "
                         f"after {entry['steps']:,} steps each ({entry['wall_s']:.1f} s of training).{self._verdict()}")
        self.redraw()
        return entry

    def _verdict(self) -> str:
        """Does the latest run differ from the one before by more than the seeds' noise?"""
        if len(self.runs) < 2 or min(len(self.runs[-1]["seeds"]), len(self.runs[-2]["seeds"])) < 2:
            return ""
        new, old = self.runs[-1], self.runs[-2]
        overlap = new["final_min"] <= old["final_max"] and old["final_min"] <= new["final_max"]
        if overlap:
            return f" Its band overlaps run {len(self.runs) - 1}'s: within the seeds' noise."
        word = "above" if new["final_min"] > old["final_max"] else "below"
        return f" Its whole band is {word} run {len(self.runs) - 1}'s: a real difference."

    def clear(self) -> None:
        self.runs = []
        self._set_status("Cleared. Pick ε, then press Train.")
        self.redraw()

    def _on_train(self, _button) -> None:
        self.train()

    def _on_clear(self, _button) -> None:
        self.clear()

    def _set_status(self, text: str) -> None:
        self.status.value = text
        self.state["status"] = text

    # -- drawing --

    def redraw(self) -> None:
        ax = self.ax
        ax.clear()
        cmap = plt.get_cmap("viridis")
        values = []
        for k, run in enumerate(self.runs):
            c = run["curve"]
            latest = k == len(self.runs) - 1
            color = cmap(np.clip((run["clip_eps"] - 0.05) / 0.45, 0, 1) * 0.9)
            if len(run["curves"]) > 1:  # the seeds' band: min to max at each measurement
                ax.fill_between(c["step"], c["pct_min"], c["pct_max"], color=color, alpha=0.25 if latest else 0.12, lw=0,
                                gid=f"band_{k}")
                values.extend(c["pct_min"].tolist())
            band = f" [{run['final_min']:.2f}, {run['final_max']:.2f}]" if len(run["curves"]) > 1 else ""
            ax.plot(c["step"], c["pct_of_optimum"], color=color, lw=2.6 if latest else 1.4, alpha=1.0 if latest else 0.75,
                    marker="." if latest else None, label=f"{k + 1}: {run['label']} -> {run['final_pct']:.2f}%{band}", gid=f"run_{k}")
            values.extend(c["pct_of_optimum"].tolist())
        for k, (name, value) in enumerate(self.levels.items()):
            ax.axhline(value, color="0.35", lw=1.1, ls=["--", ":", "-."][k % 3], label=f"{name} ({value:.2f}%)", gid=f"level_{name}")
        finite = [v for v in values if np.isfinite(v)] + list(self.levels.values())
        low = min(finite) if finite else 95.0
        ax.set_ylim(low - 0.15 * (100.25 - low) - 0.05, 100.25)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("% of the open-loop optimum")
        # whole step counts (20,480, not 2.048 and a x10^4 offset text that the legend would hide)
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}" if float(v).is_integer() else f"{v:g}"))
        ax.set_title("The epsilon lab: every run overlaid (latest bold; shaded: the seeds' band)")
        if self.runs or self.levels:
            ax.legend(fontsize=7, loc="lower right")
        self.fig.tight_layout()
        self.state.update(n_runs=len(self.runs), labels=[r["label"] for r in self.runs], n_redraws=self.state["n_redraws"] + 1)
        _show_in(self.output, self.fig)

    def _ipython_display_(self) -> None:
        display(self.widget)
