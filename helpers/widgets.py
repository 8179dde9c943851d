"""Interactive widgets of the course (ipywidgets + matplotlib, no extra front-end extension).

Each widget is a small class that owns its controls, its matplotlib figure and a ``state`` dict
describing what was last drawn, so tests can drive it from Python (set ``slider.value``, click a
button) and check what was redrawn, without a browser. In a notebook, put the object last in a
cell (or ``display(obj)``) to show it; the notebooks never drive a widget the learner sees.

Sections follow the notebooks.
"""

from __future__ import annotations

import dataclasses
import functools
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

from helpers import ppo  # noqa: E402  (section-local import)
from helpers.ppo import clipped_surrogate_objective  # noqa: E402


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


#: Notebook 04's one-step "bandit": one state, reward ``-(a - 1.5)^2``; the best action is 1.5.
BANDIT_BEST_ACTION = 1.5


def bandit_update(clip_eps: float, epochs: int = 10, minibatches: int = 4, n_samples: int = 512,
                  lr: float = 0.01, seed: int = 0) -> dict[str, Any]:
    """What ε does to ONE PPO update, on notebook 04's bandit (section 3's experiment, made small).

    A fresh Gaussian policy (``helpers.ppo.Actor``, one hidden layer of 16) samples ``n_samples``
    actions; their rewards ``-(a - 1.5)^2``, normalised, are the advantages. Then one PPO update:
    ``epochs`` passes over that one batch in ``minibatches`` shuffled minibatches, an Adam step on
    ``-mean L^CLIP`` (``helpers.ppo.clipped_surrogate_objective``) each. Deterministic in ``seed``.

    Returns ``ratios`` (n,) and ``advantages`` (n,) after the update (read-only float64 arrays),
    ``approx_kl`` (k3, old -> new), ``outside`` (share of ratios outside ``[1-eps, 1+eps]``,
    ``helpers.ppo.clip_fraction``), ``mean_before``/``mean_after`` and ``std_after`` of the policy,
    and the arguments. Cached: moving a slider back to a value seen before costs nothing.
    """
    if not 0 < clip_eps < 1 or epochs < 1 or minibatches < 1 or n_samples < minibatches:
        raise ValueError(f"bandit_update: need 0 < clip_eps < 1, epochs >= 1, 1 <= minibatches <= n_samples; got "
                         f"clip_eps={clip_eps}, epochs={epochs}, minibatches={minibatches}, n_samples={n_samples}")
    return dict(_bandit_update(round(float(clip_eps), 6), int(epochs), int(minibatches), int(n_samples), float(lr), int(seed)))


@functools.lru_cache(maxsize=256)
def _bandit_update(clip_eps: float, epochs: int, minibatches: int, n_samples: int, lr: float, seed: int) -> tuple:
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # the weights come from the seed; the global RNG is left alone
        torch.manual_seed(seed)
        actor = ppo.Actor(obs_dim=1, act_dim=1, hidden_sizes=(16,))
    obs = torch.zeros(n_samples, 1)  # a bandit: one state
    with torch.no_grad():
        mean, log_std = actor(obs)
        actions = mean + torch.randn(mean.shape, generator=generator) * log_std.exp()
        old_log_probs = actor.log_prob(obs, actions)
        rewards = -((actions - BANDIT_BEST_ACTION) ** 2).sum(-1)
        advantages = (rewards - rewards.mean()) / rewards.std()
        mean_before = float(mean[0, 0])
    optimizer = torch.optim.Adam(actor.parameters(), lr=lr)
    for _ in range(epochs):
        for rows in torch.randperm(n_samples, generator=generator).tensor_split(minibatches):
            ratio = ppo.importance_ratio(actor.log_prob(obs[rows], actions[rows]), old_log_probs[rows])
            loss = -clipped_surrogate_objective(ratio, advantages[rows], clip_eps).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        log_ratio = actor.log_prob(obs, actions) - old_log_probs
        ratios = log_ratio.exp()
        mean, log_std = actor(obs[:1])
        out = {"ratios": ratios.double().numpy(), "advantages": advantages.double().numpy(),
               "approx_kl": float(ppo.approx_kl(log_ratio)), "outside": float(ppo.clip_fraction(ratios, clip_eps)),
               "mean_before": mean_before, "mean_after": float(mean[0, 0]), "std_after": float(log_std.exp()[0]),
               "clip_eps": clip_eps, "epochs": epochs, "minibatches": minibatches, "n_samples": n_samples, "lr": lr, "seed": seed}
    for key in ("ratios", "advantages"):
        out[key].setflags(write=False)
    return tuple(out.items())


class ClipExplorer:
    """Sliders for clip ε (0.05-0.5) and the epochs K of one update, and the sign of the advantage.

    Top panel: ``L^CLIP`` against the ratio (A = +-1), the unclipped ``r A`` for comparison, the
    clip range ``[1 - eps, 1 + eps]`` shaded, and the ratios where the gradient vanishes hatched
    in red. Bottom panel: what ε does to one update, on notebook 04's bandit
    (:func:`bandit_update`): where the batch's ratios are after K epochs, split by the sign of
    their advantage, with the approximate KL and the share outside the clip range.

    The band is the *clip range*, not a trust region: ratios can and do end up outside it (the
    clip only removes the incentive to push them further; the bottom panel shows it); TRPO's KL
    constraint is a trust region.

    After every redraw ``state`` holds ``eps``, ``sign``, ``epochs``, ``clip_range``,
    ``zero_gradient`` (list of ``(first, last)`` ratio intervals, from autograd on a grid),
    ``cases`` (the three cases for this sign), ``update`` (:func:`bandit_update`'s result for ε
    and K, without the arrays) and ``n_redraws``. ``fig``, ``ax`` (top) and ``ax_update`` (bottom)
    are the figure drawn on.
    """

    def __init__(self, eps: float = 0.2, sign: int = 1, epochs: int = 10, ratio_range: tuple[float, float] = (0.0, 2.0),
                 n_points: int = 801):
        self.ratio = np.linspace(*ratio_range, n_points)
        self.eps_slider = widgets.FloatSlider(value=eps, min=0.05, max=0.5, step=0.01,
                                              description="clip ε", readout_format=".2f",
                                              continuous_update=True)
        self.sign_toggle = widgets.ToggleButtons(options=[("advantage > 0", 1), ("advantage < 0", -1)],
                                                 value=sign, description="sign")
        self.epochs_slider = widgets.IntSlider(value=epochs, min=1, max=20, step=1, description="epochs K",
                                               continuous_update=False)
        self.output = widgets.Output()
        self.fig, (self.ax, self.ax_update) = plt.subplots(2, 1, figsize=(8, 7.4), sharex=True,
                                                           gridspec_kw={"height_ratios": [1.15, 1.0]})
        plt.close(self.fig)  # shown through self.output only, never twice by the inline backend
        self.state: dict[str, Any] = {"n_redraws": 0}
        for control in (self.eps_slider, self.sign_toggle, self.epochs_slider):
            control.observe(self._on_change, names="value")
        self.widget = widgets.VBox([widgets.HBox([self.eps_slider, self.sign_toggle]), self.epochs_slider, self.output])
        self.redraw()

    def _on_change(self, _change: dict) -> None:
        self.redraw()

    def redraw(self) -> None:
        eps, sign, epochs = float(self.eps_slider.value), int(self.sign_toggle.value), int(self.epochs_slider.value)
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
        ax.set(ylabel="objective (A = ±1)", xlim=(r[0], r[-1]), ylim=(-2.2, 2.2))
        side = "above 1+ε" if sign > 0 else "below 1-ε"
        ax.set_title(f"ε = {eps:.2f}, advantage {'> 0' if sign > 0 else '< 0'}: "
                     f"no gradient once r is {side}", fontsize=10)
        ax.legend(loc="upper left" if sign > 0 else "lower left", fontsize=8, framealpha=0.9)
        update = self._draw_update(eps, sign, epochs)
        cases = clip_cases(eps, (max(r[0], (1 - eps) / 2), 1.0, min(r[-1], 1 + eps + (r[-1] - 1 - eps) / 2)))
        cases = cases[cases["advantage"] == ("A > 0" if sign > 0 else "A < 0")].reset_index(drop=True)
        self.state = {
            "eps": eps,
            "sign": sign,
            "epochs": epochs,
            "clip_range": (1 - eps, 1 + eps),
            "zero_gradient": zero,
            "cases": cases,
            "update": {k: v for k, v in update.items() if k not in ("ratios", "advantages")},
            "n_redraws": self.state["n_redraws"] + 1,
        }
        self.fig.tight_layout()
        _show_in(self.output, self.fig)

    def _draw_update(self, eps: float, sign: int, epochs: int) -> dict[str, Any]:
        """Bottom panel: the bandit batch's ratios after one update of ``epochs`` epochs at ``eps``."""
        u = bandit_update(eps, epochs)
        ax = self.ax_update
        ax.clear()
        lo, hi = self.ratio[0], self.ratio[-1]
        bins = np.linspace(lo, hi, 51)
        shown = np.clip(u["ratios"], lo, hi)  # a ratio beyond the axis is counted in the edge bin
        for s, color, name in ((1, "tab:blue", "A > 0"), (-1, "tab:orange", "A < 0")):
            chosen = s == sign
            ax.hist(shown[np.sign(u["advantages"]) == s], bins=bins, color=color, alpha=0.85 if chosen else 0.35,
                    label=f"samples with {name}", gid=f"ratios_{'pos' if s > 0 else 'neg'}")
        for edge in (1 - eps, 1 + eps):
            ax.axvline(edge, color="tab:green", ls="--", lw=1.5, gid=f"clip_edge_{edge:.2f}")
        ax.axvline(1.0, color="black", lw=0.8)
        ax.set(xlabel="probability ratio r = π_new(a|s) / π_old(a|s)", ylabel="samples")
        ax.set_title(f"one update of 04's bandit (K = {epochs} epochs): KL {u['approx_kl']:.3f}, "
                     f"{u['outside']:.0%} of the ratios outside [1-ε, 1+ε] (dashed)\n"
                     f"the policy mean moved from {u['mean_before']:+.2f} to {u['mean_after']:+.2f} "
                     f"(best action {BANDIT_BEST_ACTION})", fontsize=10)
        ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
        return u

    def _ipython_display_(self) -> None:
        display(self.widget)


# --- 05: the epsilon lab ---------------------------------------------------------------------

from helpers import training as _training  # noqa: E402  (section-local import; training sits on top too)

#: What two runs' final bands say, the later against the earlier (:func:`band_verdict`).
VERDICTS = ("higher", "lower", "no effect shown")


def band_verdict(new_finals, old_finals) -> str:
    """``"higher"`` when every seed of the new run ends above every seed of the old one, ``"lower"``
    the other way round, and ``"no effect shown"`` when the two bands (min to max over the seeds)
    overlap: the difference of the means is then within the seeds' noise, whichever mean is higher.

    One seed per run cannot tell an effect from luck: each side needs at least two.
    """
    new, old = np.asarray(new_finals, dtype=float), np.asarray(old_finals, dtype=float)
    if new.size < 2 or old.size < 2:
        raise ValueError(f"band_verdict: a band needs at least two seeds per run (got {new.size} and {old.size})")
    if new.min() > old.max():
        return "higher"
    if new.max() < old.min():
        return "lower"
    return "no effect shown"


def seed_runs(draws, clip_eps: float, lr: float, seeds, steps: int, *, base_config=None, env_config=None, evaluator=None,
              eval_every: int = 2, num_envs: int | None = None, on_seed=None, keep_runs: bool = False) -> dict[str, Any]:
    """Train one budget agent per seed (``helpers.training.train_budget_agent``) from ``base_config``
    (default: the tuned ``BUDGET_PPO``) with ``clip_eps`` and ``lr``; what one press of the lab's
    **Train** does, callable without the widget (notebook 05 and its exercise 4 use it).

    ``on_seed(k, seed)`` is called before each seed's run (the lab's status line). Returns
    ``label, clip_eps, lr, seeds, steps, final_pct`` (mean over seeds), ``final_min, final_max,
    finals, wall_s`` (all seeds), ``curves`` (one per seed) and ``curve`` (step, mean, min, max);
    with ``keep_runs`` also ``runs``, the ``TrainingRun`` of each seed (its agent included).
    """
    base_config = base_config or _training.BUDGET_PPO
    evaluator = evaluator or _training.validation_evaluator(draws, env_config)  # choices on validation months
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seed_runs: no seeds given")
    results = []
    for k, seed in enumerate(seeds):
        if on_seed is not None:
            on_seed(k, seed)
        config = dataclasses.replace(base_config, clip_eps=float(clip_eps), lr=float(lr), seed=seed)
        results.append(_training.train_budget_agent(draws, int(steps), config, env_config, num_envs=int(num_envs or _training.NUM_ENVS),
                                                    evaluator=evaluator, eval_every=eval_every))
    finals = [r.final_pct for r in results]
    who = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}-{seeds[-1]}"
    entry = {
        "label": f"ε={float(clip_eps):.2f}, lr={float(lr):.1e}, {who}",
        "clip_eps": float(clip_eps), "lr": float(lr), "seeds": seeds, "steps": results[0].steps,
        "final_pct": float(np.mean(finals)), "final_min": float(np.min(finals)), "final_max": float(np.max(finals)),
        "finals": finals, "wall_s": float(sum(r.wall_s for r in results)),
        "curves": [r.curve for r in results],
    }
    summary = _training.mean_curve(entry["curves"])  # mean, min, max over the seeds at each step
    entry["curve"] = pd.DataFrame({"step": summary.index.to_numpy(), "pct_of_optimum": summary["mean"].to_numpy(),
                                   "pct_min": summary["min"].to_numpy(), "pct_max": summary["max"].to_numpy()})
    if keep_runs:
        entry["runs"] = results
    return entry


class EpsilonLab:
    """The epsilon lab: predict, pick clip ε (and the learning rate), press **Train**, see the new
    learning curve (% of the optimum against env steps) overlaid on every previous run.

    It starts empty. Each press trains ``seeds`` fresh agents (seeds ``first seed`` .. ``first
    seed + seeds - 1``, :func:`seed_runs`) for ``steps`` env steps each, starting from
    ``base_config`` with the chosen ``clip_eps`` and ``lr``, and draws their mean curve with the
    seeds' band (min to max) around it: one seed's curve cannot tell an effect of ε from luck.
    Before a press the learner can say how the new run will end against the last one (the
    **predict** buttons: higher, lower, or no effect shown); the status line then gives the
    bands' verdict (:func:`band_verdict`) next to that prediction, and the buttons are cleared for
    the next one. **Clear** forgets the runs.

    Driven from code, ``train(clip_eps=..., lr=..., ...)`` runs with those values and then puts
    every control back to its default (:meth:`reset_controls`), so a scripted run never leaves
    the panel in a state the learner did not choose. The **Train** button keeps what the learner set.

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

    ``runs`` holds one dict per press (:func:`seed_runs`' entry, plus ``prediction`` and
    ``verdict`` against the run before, ``None`` where there was none); ``state`` says what was
    last drawn: ``n_runs``, ``labels`` (legend order), ``n_redraws``, ``status``.
    """

    EMPTY_STATUS = ("No run yet. Press <b>Train</b> for a first run at the defaults. Then change ε, <b>predict</b> how the "
                    "next run will end against it (higher, lower, or no effect shown: the seeds' bands overlap), and press Train again.")

    def __init__(self, draws, steps: int = 40_000, base_config=None, env_config=None, evaluator=None,
                 levels: dict[str, float] | None = None, eval_every: int = 2, eps: float = 0.2, lr: float | None = None,
                 num_envs: int | None = None, seeds: int = 3):
        self.draws = draws
        self.base_config = base_config or _training.BUDGET_PPO
        self.env_config = env_config
        self.evaluator = evaluator or _training.validation_evaluator(draws, env_config)  # a tuning tool: validation months
        self.levels = dict(levels or {})
        self.eval_every = eval_every
        self.num_envs = int(num_envs or _training.NUM_ENVS)
        lr = self.base_config.lr if lr is None else lr
        self.defaults = {"clip_eps": float(eps), "lr": float(lr), "steps": int(steps), "seeds": int(seeds), "first_seed": 0}
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
        self.prediction = widgets.ToggleButtons(options=list(VERDICTS), value=None, description="predict",
                                                tooltips=["every seed of the next run ends above every seed of the last one",
                                                          "every seed of the next run ends below every seed of the last one",
                                                          "the two bands overlap: the difference is within the seeds' noise"])
        self.train_button = widgets.Button(description="Train", button_style="primary", icon="play")
        self.clear_button = widgets.Button(description="Clear", icon="trash")
        self.status = widgets.HTML(value=self.EMPTY_STATUS)
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
            widgets.HBox([self.prediction, widgets.Label("the next run against the last one, before you press Train")]),
            self.status,
            self.output,
        ])
        self.redraw()

    # -- actions --

    def train(self, clip_eps: float | None = None, lr: float | None = None, steps: int | None = None, seeds: int | None = None,
              first_seed: int | None = None, prediction: str | None = None) -> dict[str, Any]:
        """A scripted run: the given values (the controls' current ones where ``None``), then every
        control back to its default. Returns the run's entry (see :func:`seed_runs`)."""
        values = {"clip_eps": clip_eps, "lr": lr, "steps": steps, "seeds": seeds, "first_seed": first_seed}
        try:
            self._set_controls({k: v for k, v in values.items() if v is not None})
            if prediction is not None:
                self.prediction.value = prediction
            return self._run()
        finally:
            self.reset_controls()

    def reset_controls(self) -> None:
        """Every slider and box back to the value the lab started with; no prediction."""
        self._set_controls(self.defaults)
        self.prediction.value = None

    def _set_controls(self, values: dict[str, Any]) -> None:
        controls = {"clip_eps": self.eps_slider, "lr": self.lr_slider, "steps": self.steps_slider, "seeds": self.seeds_box,
                    "first_seed": self.seed_box}
        for key, value in values.items():
            controls[key].value = value

    def _run(self) -> dict[str, Any]:
        """Train one run (``seeds`` agents) with the current widget values; add it to ``runs`` and redraw."""
        eps, lr = float(self.eps_slider.value), float(self.lr_slider.value)
        first, n_seeds, steps = int(self.seed_box.value), int(self.seeds_box.value), int(self.steps_slider.value)
        seeds = list(range(first, first + n_seeds))
        predicted = self.prediction.value
        self.train_button.disabled = True

        def say(k, seed):
            self._set_status(f"Training ε = {eps:.2f}, lr = {lr:.1e}: seed {seed} ({k + 1} of {n_seeds}), {steps:,} steps ...")

        try:
            entry = seed_runs(self.draws, eps, lr, seeds, steps, base_config=self.base_config, env_config=self.env_config,
                              evaluator=self.evaluator, eval_every=self.eval_every, num_envs=self.num_envs, on_seed=say)
        except Exception as e:  # show it in the panel, then re-raise for the notebook / tests
            self._set_status(f"<b>Training failed:</b> {type(e).__name__}: {e}")
            raise
        finally:
            self.train_button.disabled = False
        previous = self.runs[-1] if self.runs else None
        entry["verdict"] = (band_verdict(entry["finals"], previous["finals"])
                            if previous is not None and min(len(entry["seeds"]), len(previous["seeds"])) >= 2 else None)
        entry["prediction"] = predicted if previous is not None else None
        self.runs.append(entry)
        band = "" if n_seeds == 1 else f" (seeds from {entry['final_min']:.2f} to {entry['final_max']:.2f})"
        self._set_status(f"Run {len(self.runs)}: {entry['label']}: {entry['final_pct']:.2f}% of the optimum{band} "
                         f"after {entry['steps']:,} steps each ({entry['wall_s']:.1f} s of training).{self._verdict()}")
        self.prediction.value = None  # a fresh prediction for the next run
        self.redraw()
        return entry

    def _verdict(self) -> str:
        """The latest run against the one before: the bands' verdict, and the learner's prediction."""
        if len(self.runs) < 2:
            return ""
        new, k = self.runs[-1], len(self.runs) - 1
        if new["verdict"] is None:
            return f" One seed per run cannot tell an effect from luck: use two or more to compare with run {k}."
        text = {"higher": f" Its whole band is above run {k}'s: a real difference.",
                "lower": f" Its whole band is below run {k}'s: a real difference.",
                "no effect shown": f" Its band overlaps run {k}'s: no effect shown (within the seeds' noise)."}[new["verdict"]]
        if new["prediction"] is None:
            return text + " (No prediction made: predict before the next press.)"
        agree = "right" if new["prediction"] == new["verdict"] else f"the bands say {new['verdict']!r}"
        return text + f" You predicted {new['prediction']!r}: {agree}."

    def clear(self) -> None:
        self.runs = []
        self._set_status("Cleared. " + self.EMPTY_STATUS.removeprefix("No run yet. "))
        self.redraw()

    def _on_train(self, _button) -> None:
        self._run()

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
                values.extend(c["pct_min"].tolist() + c["pct_max"].tolist())
            band = f" [{run['final_min']:.2f}, {run['final_max']:.2f}]" if len(run["curves"]) > 1 else ""
            ax.plot(c["step"], c["pct_of_optimum"], color=color, lw=2.6 if latest else 1.4, alpha=1.0 if latest else 0.75,
                    marker="." if latest else None, label=f"{k + 1}: {run['label']} -> {run['final_pct']:.2f}%{band}", gid=f"run_{k}")
            values.extend(c["pct_of_optimum"].tolist())
        for k, (name, value) in enumerate(self.levels.items()):
            ax.axhline(value, color="0.35", lw=1.1, ls=["--", ":", "-."][k % 3], label=f"{name} ({value:.2f}%)", gid=f"level_{name}")
        ax.set_ylim(*self.y_limits(values + list(self.levels.values())))
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

    @staticmethod
    def y_limits(values) -> tuple[float, float]:
        """The y range that fits what is drawn (curves, bands, levels) with a margin, so that a gap of
        a few tenths of a point between two runs is visible, not squeezed against a fixed 100%."""
        finite = [float(v) for v in values if np.isfinite(v)]
        if not finite:
            return 95.0, 100.25
        low, high = min(finite), max(finite)
        pad = max(0.1, 0.12 * (high - low))
        return low - 2.5 * pad, high + pad  # room below for the legend

    def _ipython_display_(self) -> None:
        display(self.widget)
