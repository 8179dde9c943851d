"""Pictures of learning (notebooks 04 and 05): PPO's diagnostics (static and live while training),
the budget agent's % of the optimum, seed bands, the epsilon sweep, settling and new-data costs.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers.plots.style import COURSE_PALETTE, _x_column, _draw_levels, _pct_ylim


#: Diagnostics drawn by ``plot_ppo_diagnostics`` / ``LiveTrainingPlot``: (column, title, y-scale).
PPO_PANELS: list[tuple[str, str, str]] = [
    ("episode_return_mean", "episode return (raw)", "linear"),
    ("value_loss", "value loss", "log"),
    ("approx_kl", "approx. KL (k3)", "linear"),
    ("clip_frac", "clip fraction", "linear"),
    ("explained_variance", "explained variance", "linear"),
    ("action_std", "policy std", "linear"),
]


def plot_ppo_diagnostics(histories: pd.DataFrame | dict[str, pd.DataFrame], fig: plt.Figure | None = None,
                         smooth: int = 1, panels: list[tuple[str, str, str]] | None = None) -> plt.Figure:
    """Convergence panels of ``PPO.learn`` histories against environment steps.

    ``histories``: one DataFrame (columns of ``helpers.ppo.DIAGNOSTIC_COLUMNS``) or a dict
    ``label -> DataFrame`` to overlay runs (seeds, epsilons). ``smooth`` > 1 applies a centred
    rolling mean. Draws on ``fig`` if given (cleared first), else on a new 2 x 3 figure.
    """
    if isinstance(histories, pd.DataFrame):
        histories = {"": histories}
    panels = panels or PPO_PANELS
    ncols = 3
    nrows = -(-len(panels) // ncols)
    if fig is None:
        fig = plt.figure(figsize=(12, 3.2 * nrows))
    fig.clear()
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (col, title, scale) in zip(axes, panels):
        for k, (label, df) in enumerate(histories.items()):
            if col not in df or df.empty:
                continue
            y = df[col].astype(float)
            if smooth > 1:
                y = y.rolling(smooth, min_periods=1, center=True).mean()
            ax.plot(df["global_step"], y, color=COURSE_PALETTE[k % len(COURSE_PALETTE)],
                    label=str(label) or None, lw=1.6)
        ax.set_title(title, fontsize=10)
        ax.set_yscale(scale)
        ax.set_xlabel("environment steps")
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    if len(histories) > 1 or any(str(label) for label in histories):
        axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


class LiveTrainingPlot:
    """A ``PPO.learn`` callback that redraws the convergence panels while training runs.

    ``every``: redraw after every ``every``-th update (the figure is drawn once more by
    ``finish()``; in quick mode use a large ``every`` so only the final picture costs anything).
    Shown through an IPython display handle (updated in place); outside IPython it only draws.
    Returns ``True`` from ``__call__`` (never stops training); ``records`` keeps what it saw.
    """

    def __init__(self, every: int = 5, smooth: int = 1, title: str | None = None):
        self.every, self.smooth, self.title = max(1, int(every)), smooth, title
        self.records: list[dict] = []
        self.n_draws = 0
        self._drawn_at = -1  # number of records at the last draw
        self.fig = plt.figure(figsize=(12, 6.4))
        plt.close(self.fig)  # displayed through the handle only
        self._handle = None

    @property
    def history(self) -> pd.DataFrame:
        return pd.DataFrame(self.records)

    def _plot(self) -> None:
        """Draw the panels onto ``self.fig`` (subclasses draw other panels)."""
        plot_ppo_diagnostics(self.history, fig=self.fig, smooth=self.smooth)

    def draw(self) -> plt.Figure:
        self._plot()
        if self.title:
            self.fig.suptitle(self.title, fontweight="bold")
            self.fig.tight_layout()
        self.n_draws += 1
        self._drawn_at = len(self.records)
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            if self._handle is None:
                self._handle = display(self.fig, display_id=True)
            else:
                self._handle.update(self.fig)
        return self.fig

    def __call__(self, record: dict) -> bool:
        self.records.append(dict(record))
        if len(self.records) % self.every == 0:
            self.draw()
        return True

    def finish(self) -> plt.Figure:
        """Final redraw (if the last update was not drawn yet); returns the figure."""
        if self.records and self._drawn_at != len(self.records):
            self.draw()
        return self.fig


#: Panels of ``plot_budget_training``: (column, title, y-scale); ``pct_of_optimum`` is measured
#: every few updates only (NaN elsewhere), the rest every update.
BUDGET_PANELS: list[tuple[str, str, str]] = [
    ("pct_of_optimum", "% of the optimum (deterministic policy)", "linear"),
    ("episode_return_mean", "episode return (clicks / mean daily clicks)", "linear"),
    ("value_loss", "value loss", "log"),
    ("approx_kl", "approx. KL (k3)", "linear"),
    ("clip_frac", "clip fraction", "linear"),
    ("explained_variance", "explained variance", "linear"),
    ("action_std", "policy std (action units)", "linear"),
]


def plot_budget_training(histories: pd.DataFrame | dict[str, pd.DataFrame], fig: plt.Figure | None = None, smooth: int = 1,
                         levels: dict[str, float] | None = None) -> plt.Figure:
    """Convergence of PPO on the budget env: the :data:`BUDGET_PANELS` against env steps, plus
    % of the optimum against training wall time (last panel).

    ``histories``: ``TrainingRun.history`` (one row per update) or a dict label -> history to
    overlay runs. ``levels``: name -> % of optimum lines (baselines) on the two % panels.
    """
    if isinstance(histories, pd.DataFrame):
        histories = {"": histories}
    if fig is None:
        fig = plt.figure(figsize=(15, 6.4))
    fig.clear()
    axes = fig.subplots(2, 4).ravel()
    panels = BUDGET_PANELS + [("pct_of_optimum", "% of the optimum vs training time", "linear")]
    pct_values = []
    for i, (ax, (col, title, scale)) in enumerate(zip(axes, panels)):
        wall = i == len(panels) - 1
        for k, (label, df) in enumerate(histories.items()):
            if col not in df or df.empty:
                continue
            d = df[[_x_column(df), "train_wall_s" if "train_wall_s" in df else _x_column(df), col]].dropna()
            x = d["train_wall_s" if wall else _x_column(df)]
            y = d[col].astype(float)
            if smooth > 1 and col != "pct_of_optimum":
                y = y.rolling(smooth, min_periods=1, center=True).mean()
            if col == "pct_of_optimum":
                pct_values.extend(y.tolist())
            ax.plot(x, y, color=COURSE_PALETTE[k % len(COURSE_PALETTE)], lw=1.6, label=str(label) or None,
                    marker="." if col == "pct_of_optimum" else None, ms=4)
        if col == "pct_of_optimum":
            _draw_levels(ax, levels)
            _pct_ylim(ax, pct_values, levels)
        ax.set_title(title, fontsize=10)
        ax.set_yscale(scale)
        ax.set_xlabel("training wall time (s)" if wall else "environment steps")
        if not wall:
            ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


class LiveBudgetPlot(LiveTrainingPlot):
    """``LiveTrainingPlot`` drawing :func:`plot_budget_training` (with % of the optimum panels).

    Chain it after ``helpers.training.OptimumTracker`` (``train_budget_agent(..., callback=live)``)
    so the records it sees carry ``pct_of_optimum``.
    """

    def __init__(self, every: int = 5, smooth: int = 1, title: str | None = None, levels: dict[str, float] | None = None):
        super().__init__(every=every, smooth=smooth, title=title)
        self.levels = levels
        self.fig.set_size_inches(15, 6.4)

    def _plot(self) -> None:
        plot_budget_training(self.history, fig=self.fig, smooth=self.smooth, levels=self.levels)


def plot_seed_band(curves: dict[str, list[pd.DataFrame]], x: str = "step", levels: dict[str, float] | None = None,
                   ax=None, title: str | None = None) -> plt.Figure:
    """Mean learning curve and min-max band across seeds, one per label.

    ``curves``: label -> list of ``TrainingRun.curve`` (columns ``x`` and ``pct_of_optimum``);
    runs are aligned on the ``x`` values they share (``x="step"``) or interpolated on a common
    grid (``x="train_wall_s"``, whose values differ between runs). ``levels``: baselines.
    """
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(9, 4.2))
    values = []
    for k, (label, runs) in enumerate(curves.items()):
        color = COURSE_PALETTE[[0, 3, 2, 4, 5, 6][k % 6]]
        if x == "step":
            wide = pd.concat([c.set_index(x)["pct_of_optimum"].rename(i) for i, c in enumerate(runs)], axis=1, join="inner")
        else:
            grid = np.linspace(0, min(float(c[x].max()) for c in runs), 60)
            wide = pd.DataFrame({i: np.interp(grid, c[x], c["pct_of_optimum"]) for i, c in enumerate(runs)}, index=grid)
        mean = wide.mean(axis=1)
        values.extend(mean.tolist())
        ax.fill_between(wide.index, wide.min(axis=1), wide.max(axis=1), color=color, alpha=0.2, lw=0, gid=f"band_{label}")
        ax.plot(wide.index, mean, color=color, lw=2, label=f"{label} (mean of {wide.shape[1]}, band min-max)", gid=f"mean_{label}")
    _draw_levels(ax, levels)
    _pct_ylim(ax, values, levels)
    ax.set_xlabel("environment steps" if x == "step" else "training wall time (s)")
    if x == "step":
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
    ax.set_ylabel("% of the open-loop optimum")
    ax.set_title(title or "Learning curves across seeds")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_epsilon_sweep(sweep: pd.DataFrame, levels: dict[str, float] | None = None) -> plt.Figure:
    """The clip-epsilon sweep (``helpers.training.epsilon_sweep``): final % of the optimum per
    epsilon (one dot per seed, line through the means) and the mean learning curve per epsilon."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.4), gridspec_kw={"width_ratios": [1, 1.5]})
    last = sweep.sort_values("step").groupby(["clip_eps", "seed"]).tail(1)
    means = last.groupby("clip_eps")["pct_of_optimum"].mean()
    ax1.scatter(last["clip_eps"], last["pct_of_optimum"], color=COURSE_PALETTE[0], alpha=0.6, s=25, label="one seed", gid="seeds")
    ax1.plot(means.index, means.values, color=COURSE_PALETTE[0], lw=2, marker="o", label="mean over seeds", gid="means")
    _draw_levels(ax1, levels)
    _pct_ylim(ax1, last["pct_of_optimum"], levels)
    ax1.set_xlabel("clip ε")
    ax1.set_ylabel("final % of the optimum")
    ax1.set_title(f"After {int(last['step'].max()):,} steps")
    ax1.legend(fontsize=7, loc="lower right")
    cmap = plt.get_cmap("viridis")
    epsilons = sorted(sweep["clip_eps"].unique())
    values = []
    for k, eps in enumerate(epsilons):
        mean = sweep[sweep["clip_eps"] == eps].groupby("step")["pct_of_optimum"].mean()
        values.extend(mean.tolist())
        ax2.plot(mean.index, mean.values, color=cmap(k / max(1, len(epsilons) - 1)), lw=1.8, label=f"ε = {eps:g}", gid=f"curve_{eps:g}")
    _draw_levels(ax2, levels)
    _pct_ylim(ax2, values, levels)
    ax2.set_xlabel("environment steps")
    ax2.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
    ax2.set_ylabel("% of the optimum (mean over seeds)")
    ax2.set_title("Learning curves by clip ε")
    ax2.legend(fontsize=7, loc="lower right", ncols=2)
    fig.tight_layout()
    return fig


def plot_settling(history: pd.DataFrame, value_settled: float, pct_settled: float) -> plt.Figure:
    """Value loss (log scale, left) and % of the optimum (right) against env steps, with the
    steps where each settled (``helpers.training.settle_step``) marked."""
    fig, ax = plt.subplots(figsize=(9, 3.8))
    x = _x_column(history)
    ax.plot(history[x], history["value_loss"], color=COURSE_PALETTE[3], lw=1.4, label="value loss", gid="value_loss")
    ax.set_yscale("log")
    ax.set_ylabel("value loss (log)")
    ax.set_xlabel("environment steps")
    right = ax.twinx()
    pct = history[[x, "pct_of_optimum"]].dropna()
    right.plot(pct[x], pct["pct_of_optimum"], color=COURSE_PALETTE[0], lw=2, marker=".", label="% of optimum", gid="pct")
    right.set_ylabel("% of the optimum")
    right.grid(False)
    for value, color, name in ((value_settled, COURSE_PALETTE[3], "value loss settles"), (pct_settled, COURSE_PALETTE[0], "reward saturates")):
        if np.isfinite(value):
            ax.axvline(value, color=color, ls="--", lw=1.2, label=f"{name} ({value:,.0f} steps)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = right.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="center right")
    ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
    ax.set_title("Does the value loss settle before the reward saturates?")
    fig.tight_layout()
    return fig


def plot_new_data_costs(curves: dict[str, pd.DataFrame], levels: dict[str, float] | None = None) -> plt.Figure:
    """After a posterior update: % of the new optimum against env steps and against training
    wall time, one line per way of updating the policy (label -> ``TrainingRun.curve``)."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), sharey=True)
    values = []
    for k, (label, c) in enumerate(curves.items()):
        color = COURSE_PALETTE[[2, 0, 3, 4][k % 4]]
        values.extend(c["pct_of_optimum"].tolist())
        for ax, x in zip(axes, ("step", "train_wall_s")):
            ax.plot(c[x], c["pct_of_optimum"], color=color, lw=2, marker=".", label=label, gid=f"{label}_{x}")
    for ax, xlabel in zip(axes, ("environment steps", "training wall time (s)")):
        _draw_levels(ax, levels)
        ax.set_xlabel(xlabel)
    _pct_ylim(axes[0], values, levels)
    axes[0].ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
    axes[0].set_ylabel("% of the new optimum")
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("One more month of data: warm start vs from scratch", fontweight="bold")
    fig.tight_layout()
    return fig
