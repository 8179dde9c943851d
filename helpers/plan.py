"""Next month's daily plan for your own ad account: read, fit, check, train, plan (notebook 07).

    python -m helpers.plan EXPORT.csv --budget 30000 --month 2025-01 --out plan.csv

One function per step, in the order notebook 07 calls them: :func:`helpers.accounts.read_account`;
:func:`fit_account` (notebook 02's funnel for one campaign, notebook 06's pooled channel model with
carryover for several); :func:`check_fit`, which refuses to plan (:class:`FitCheckError`) and says
what to try; :func:`planning_config`, the planning month's simulator (starting from the carryover
the export left); :func:`train_planner`, the course's PPO; :func:`make_plan` and :func:`write_plan`,
the daily plan with 90% bands against even pacing, the open-loop optimum and the oracle.
:func:`simulate_clicks` is the posterior predictive behind the held-out check; the command fits
through :func:`fit_and_check`, which refits once when divergent transitions alone refuse the fit.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import bayes
from helpers.accounts import HOLDOUT_DAYS, Account, read_account
from helpers.data import DataValidationError, atomic_path, atomic_write_text, nb_sample

QUICK_STEPS = 40_960  # 10 updates of 128 months x 32 days: a smoke test, not a plan
N_EVAL_MONTHS = 1000
QUICK_EVAL_MONTHS = 200
#: Several campaigns with carryover: the oracle plans each posterior draw's own month (one dynamic
#: optimisation per draw), so the comparison plays this many draws (each several times).
ORACLE_DRAWS = 48
BAND = (5, 95)  # the 90% bands
MAX_INCREASING = 0.01  # at most this share of draws with elasticity >= 1 (left out of the plan), else refuse
COVERAGE_ALPHA = 0.01  # refuse when a calibrated model would miss this many held-out days with probability < 1%
#: The command refits once at this target_accept when divergent transitions alone refuse a fit (:func:`fit_and_check`).
RETRY_TARGET_ACCEPT = 0.95
PLAN_CAP_MULTIPLE = 3.0  # several campaigns: a day's spend above 3x a campaign's busiest day buys nothing (notebook 06)


class FitCheckError(RuntimeError):
    """The fit failed a check, so no plan is made. ``checks`` is the table; the message says what to try."""

    def __init__(self, message: str, checks: pd.DataFrame):
        super().__init__(message)
        self.checks = checks


def quick_default() -> bool:
    return os.environ.get("COURSE_QUICK") == "1"


@dataclass
class Fit:
    """A fitted account: ``idata`` (ArviZ DataTree), ``draws`` (Funnel- or ChannelDraws), what was held out."""

    account: Account
    idata: object
    draws: object
    settings: bayes.FitSettings
    cutoff: pd.Timestamp  # first held-out day
    var_names: list[str]
    warning: str | None = None  # the convergence message, when the fit failed its checks

    @property
    def several(self) -> bool:
        return isinstance(self.draws, bayes.ChannelDraws)


def fit_account(account: Account, *, quick: bool | None = None, holdout_days: int = HOLDOUT_DAYS, settings: bayes.FitSettings | None = None,
                progressbar: bool | None = None, overrides: dict | None = None) -> Fit:
    """Fit the account's funnel on all days but the last ``holdout_days`` (never raises on convergence: see :func:`check_fit`).

    ``settings``: the sampler's (default: the course's, quick or full); ``overrides``: fields of them to change
    (``target_accept``, ``tune``, ``draws``, ``seed``)."""
    quick = quick_default() if quick is None else quick
    several = len(account.campaigns) > 1
    settings = settings or (bayes.channel_fit_settings(quick) if several else bayes.FitSettings.quick() if quick else bayes.FitSettings.full())
    settings = replace(settings, **(overrides or {}))
    cutoff = account.dates[-1] - pd.Timedelta(days=holdout_days - 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", bayes.ConvergenceWarning)
        if not several:
            frame = account.funnel_frame()
            idata = bayes.fit_funnel(frame[frame["date"] < cutoff].reset_index(drop=True), settings, progressbar=progressbar, strict=False)
            draws, names = bayes.to_funnel_draws(idata), list(bayes.CENTRED_NAMES) + list(bayes.PARAM_NAMES)
        else:
            ch = account.channel_data()
            keep = ch.dates < cutoff
            fit_ch = bayes.ChannelData(ch.dates[keep], ch.channels, ch.active[keep], ch.spend[keep], ch.impressions[keep], ch.clicks[keep])
            few = {c: int(n) for c, n in zip(ch.channels, fit_ch.active.sum(axis=0)) if n < 7}
            if few:
                raise DataValidationError(account.path, f"campaign(s) {few} have fewer than 7 days with spend before the {holdout_days} held-out "
                                                        "days: too few to fit; leave them out of the export", column="campaign")
            idata = bayes.fit_channels(fit_ch, settings, adstock=True, progressbar=progressbar, strict=False)
            draws, names = bayes.to_channel_draws(idata, fit_ch), bayes.channel_var_names(adstock=True)
    message = next((str(w.message) for w in caught if issubclass(w.category, bayes.ConvergenceWarning)), None)
    return Fit(account, idata, draws, settings, cutoff, names, message)


def simulate_clicks(draws, spend, holiday, weekend, rng: np.random.Generator) -> np.ndarray:
    """One campaign's posterior predictive clicks: row ``j`` plays every day (``spend``, 0/1 ``holiday``
    and ``weekend``, one value per day) with posterior draw ``j`` of ``draws`` (``FunnelDraws``).

    Impressions ~ NB at the day's spend, then clicks ~ NB from them (at most the impressions), each NB a
    Gamma-mixed Poisson (notebook 03): the spread of a column holds the posterior's uncertainty and
    the market's day-to-day noise. Returns ``(draws.n_draws, days)`` counts (notebook 07's exercise).
    """
    p = {k: np.asarray(getattr(draws, k), dtype=float).reshape(-1, 1) for k in bayes.PARAM_NAMES}
    log_spend = np.log(np.asarray(spend, dtype=float)).reshape(1, -1)
    h, w = np.asarray(holiday, dtype=float).reshape(1, -1), np.asarray(weekend, dtype=float).reshape(1, -1)
    imp = nb_sample(rng, np.exp(p["imp_intercept"] + p["imp_slope"] * log_spend + p["imp_holiday"] * h), p["imp_alpha"])
    mu_clk = np.exp(p["clk_intercept"] + p["clk_slope"] * np.log(np.maximum(imp, 1)) + p["clk_holiday"] * h + p["clk_weekend"] * w)
    return np.minimum(nb_sample(rng, mu_clk, p["clk_alpha"]), imp)


def predictive_clicks(fit: Fit, n_draws: int = 1000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Posterior-predictive clicks of the held-out (day, campaign) rows at their observed spend.

    Returns the rows (date, campaign, spend, clicks) and the simulated clicks ``(n_draws, rows)``
    (one campaign: :func:`simulate_clicks`; several: notebook 06's model, carryover included).
    """
    rng = np.random.default_rng(seed)
    d = fit.draws
    j = rng.choice(d.n_draws, size=min(n_draws, d.n_draws), replace=False)
    if not fit.several:
        from helpers.data import weekend_flags

        frame = fit.account.funnel_frame()
        rows = frame[frame["date"] >= fit.cutoff]
        clicks = simulate_clicks(d.subset(j), rows["spend"].to_numpy(), rows["holiday"].to_numpy(), weekend_flags(rows["date"]), rng)
        out = pd.DataFrame({"date": rows["date"].to_numpy(), "campaign": fit.account.campaigns[0], "spend": rows["spend"].to_numpy(),
                            "clicks": rows["clicks"].to_numpy()})
        return out, clicks
    ch = fit.account.channel_data()
    p = d.subset(j)
    t_all = np.flatnonzero(ch.dates >= fit.cutoff)
    t, c = np.nonzero(ch.active[t_all])
    t = t_all[t]
    x = np.zeros((len(j), len(t)))
    w = bayes.adstock_weights(p.adstock[:, c])  # (J, rows, LAGS)
    for lag in range(bayes.ADSTOCK_LAGS):
        past = np.where(t - lag >= 0, ch.spend[np.maximum(t - lag, 0), c], 0.0)
        x += w[:, :, lag] * past[None]
    imp = nb_sample(rng, np.exp(p.imp_intercept[:, c] + p.imp_slope[:, c] * np.log(x)), p.imp_alpha[:, c])
    mu_clk = np.exp(p.clk_intercept[:, c] + p.clk_slope[:, c] * np.log(np.maximum(imp, 1)))
    clicks = np.minimum(nb_sample(rng, mu_clk, p.clk_alpha[:, c]), imp)
    out = pd.DataFrame({"date": ch.dates[t], "campaign": np.asarray(ch.channels)[c], "spend": ch.spend[t, c], "clicks": ch.clicks[t, c]})
    return out, clicks


def check_fit(fit: Fit, *, strict: bool = True) -> pd.DataFrame:
    """The checks a fit must pass before it may plan, as a table (check, value, threshold, passed).

    The sampler's r_hat, bulk ESS and divergences (:func:`helpers.bayes.check_convergence`, the
    course's thresholds); the held-out days' clicks against their 90% predictive band at their
    spend (:func:`predictive_clicks`), which must not miss more days than a calibrated model would
    by chance (binomial test at ``COVERAGE_ALPHA``); and, for one campaign, diminishing returns.
    ``strict`` (default): raise :class:`FitCheckError` naming each failed check and what to try.
    """
    from scipy import stats

    s = fit.settings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayes.ConvergenceWarning)
        diag = bayes.check_convergence(fit.idata, var_names=fit.var_names, max_rhat=s.max_rhat, min_ess_bulk=s.min_ess_bulk,
                                       max_divergences=s.max_divergences, strict=False)
    n_div = int(fit.idata.sample_stats["diverging"].sum())
    rows, predictive = predictive_clicks(fit)
    lo, hi = np.percentile(predictive, BAND, axis=0)
    outside = int(np.sum((rows["clicks"].to_numpy() < lo) | (rows["clicks"].to_numpy() > hi)))
    n = len(rows)
    p_value = float(stats.binom.sf(outside - 1, n, 1 - (BAND[1] - BAND[0]) / 100)) if outside else 1.0
    bad = ~diminishing(fit.draws)
    table = pd.DataFrame([
        ("worst r_hat", float(diag["r_hat"].max()), f"<= {s.max_rhat}", bool(diag["r_hat"].max() <= s.max_rhat)),
        ("lowest bulk ESS", float(diag["ess_bulk"].min()), f">= {s.min_ess_bulk}", bool(diag["ess_bulk"].min() >= s.min_ess_bulk)),
        ("divergent transitions", n_div, f"<= {s.max_divergences}", n_div <= s.max_divergences),
        (f"held-out days outside the 90% band (of {n})", outside, f"chance >= {COVERAGE_ALPHA:.0%} (here {p_value:.1%})",
         p_value >= COVERAGE_ALPHA),
        ("share of draws with increasing returns (elasticity >= 1)", float(bad.mean()), f"<= {MAX_INCREASING:.0%} (then left out)",
         bad.mean() <= MAX_INCREASING),
    ], columns=["check", "value", "threshold", "passed"])
    table.attrs["heldout"] = rows.assign(band_low=lo, band_high=hi)
    if strict and not table["passed"].all():
        failed = table[~table["passed"]]
        lines = [f"refusing to plan: the fit failed {len(failed)} check(s): "
                 + "; ".join(f"{r.check} = {r.value:.4g} (wanted {r.threshold})" for r in failed.itertuples()) + "."]
        sampler = failed.loc[failed.index.intersection([0, 1, 2])]  # r_hat, ESS, divergences
        if len(sampler):
            problems = [f"{r.check} {r.value:.4g} (wanted {r.threshold})" for r in sampler.itertuples()]
            lines += bayes.convergence_message(problems, divergences=n_div > s.max_divergences, strict=True, target_accept=s.target_accept,
                                               where="FIT_OVERRIDES in notebook 07's parameters cell").splitlines()[1:]
            higher = f"{bayes.higher_target_accept(s.target_accept):g}"
            lines.append(f"From the command line: --target-accept {higher}, --tune 2000, --draws 2000 or --sampler-seed 1 "
                         "(and a full run: --quick keeps fewer draws).")
        if not table["passed"].iloc[3]:
            lines.append(f"The model's 90% band of daily clicks missed {outside} of the {n} held-out days ({fit.cutoff:%Y-%m-%d} on); a "
                         f"calibrated model misses that many with probability {p_value:.2%}. The last weeks behave unlike the weeks "
                         "before (a change in the account, a promotion, a tracking problem?). What to try: export a range that starts "
                         "after the change, or plan each campaign apart.")
        if not table["passed"].iloc[4]:
            lines.append(f"In {bad.mean():.1%} of the posterior's draws more spend on one day buys more than proportionally more clicks: "
                         "the optimum would then pour the budget into a single day. The export does not pin down how clicks respond to "
                         "spend (its daily spends vary too little). What to try: a longer date range, or one in which the daily "
                         "spend varied more.")
        raise FitCheckError("\n".join(lines), table)
    return table


def fit_and_check(account: Account, *, retry: bool = True, say=print, **fit_options) -> tuple[Fit, pd.DataFrame]:
    """:func:`fit_account` (``fit_options``), then :func:`check_fit`: the fit and its checks, or :class:`FitCheckError`.

    With ``retry`` (the command's default; off when its user sets ``--target-accept``): when divergent
    transitions refuse the fit and no check of the data does (r_hat and ESS, which divergences often
    drag down, may fail with them; a missed held-out band is not a sampler's problem), it refits
    once at ``target_accept`` :data:`RETRY_TARGET_ACCEPT` (smaller steps, fewer divergences, slower),
    says so in one line through ``say``, and a refusal after that says it refitted."""
    fit = fit_account(account, **fit_options)
    checks = check_fit(fit, strict=False)
    failed = set(np.flatnonzero(~checks["passed"].to_numpy()))
    first = fit.settings.target_accept
    n_div = int(checks["value"].iloc[2])
    retried = retry and 2 in failed and failed <= {0, 1, 2} and first < RETRY_TARGET_ACCEPT
    if retried:
        say(f"the fit had {n_div} divergent transition(s) at target_accept {first:g}: refitting once at {RETRY_TARGET_ACCEPT:g} "
            "(smaller steps, slower)")
        overrides = {**(fit_options.pop("overrides", None) or {}), "target_accept": RETRY_TARGET_ACCEPT}
        fit = fit_account(account, overrides=overrides, **fit_options)
        checks = check_fit(fit, strict=False)
    if not checks["passed"].all():
        try:
            check_fit(fit)
        except FitCheckError as e:
            if not retried:
                raise
            raise FitCheckError(f"{e}\nThis was the second fit: the first, at target_accept {first:g}, had {n_div} divergent transition(s), "
                                f"and the command refitted once at {RETRY_TARGET_ACCEPT:g}.", e.checks) from None
    return fit, checks


def diminishing(draws) -> np.ndarray:
    """Per draw: the clicks-per-spend elasticity lies in (0, 1) (one campaign: the optimum's premise).

    Several campaigns: always True: the simulator's cap (``PLAN_CAP_MULTIPLE`` x a campaign's busiest
    day) bounds what a campaign with increasing returns can absorb, and the optimum and the oracle
    handle it (notebook 06)."""
    if isinstance(draws, bayes.ChannelDraws):
        return np.ones(draws.n_draws, dtype=bool)
    e = np.asarray(draws.elasticity)
    e = e[:, None] if e.ndim == 1 else e
    return np.all((e > 0) & (e < 1), axis=1)


# --- the simulator of the planning month --------------------------------------------------------


def plan_month_default(account: Account) -> str:
    """The first month that starts after the export's last day."""
    return str(account.dates[-1].to_period("M") + 1)


def planning_config(fit: Fit, budget: float, month: str):
    """``(EnvConfig, draws, notes)``: the simulator of the planning month under ``budget``.

    The calendar (holidays) is the course's simulator's, Indonesia's; weekends are everyone's. Draws
    with increasing returns are left out (:func:`diminishing`). Several campaigns: the month starts
    from the adstock the export's last days left (their spends are the carry-in; days between the
    export's end and the month are assumed spent at each campaign's mean of its last 28 days, and
    a note says so), each campaign's carryover at its posterior mean."""
    from helpers.env import ChannelHistory, EnvConfig

    account = fit.account
    keep_draws = np.flatnonzero(diminishing(fit.draws))
    if len(keep_draws) == 0:
        raise ValueError("no posterior draw has diminishing returns: see check_fit")
    posterior = fit.draws.subset(keep_draws)
    notes = [f"left out {fit.draws.n_draws - len(keep_draws)} of {fit.draws.n_draws} draws with increasing returns"] \
        if len(keep_draws) < fit.draws.n_draws else []
    start = pd.Period(month, "M").start_time
    if start <= account.dates[-1]:
        raise ValueError(f"the plan's month {month} must start after the export's last day ({account.dates[-1]:%Y-%m-%d})")
    account.check_budget(budget, month)
    active = account.daily[account.daily["active"]]
    if not fit.several:
        cfg = EnvConfig(budget=float(budget), months=(month,), reward_scale=float(active["clicks"].mean()),
                        reference_cpc=float((active["spend"] / active["clicks"].clip(lower=1)).median()))
        return cfg, posterior, notes
    ch = account.channel_data()
    K = len(ch.channels)
    recent = slice(max(0, len(ch.dates) - 28), None)
    running = ch.active[-HOLDOUT_DAYS:].any(axis=0)  # the campaigns that spent in the last two weeks are planned
    if not running.any():
        raise ValueError(f"{account.path}: no campaign spent in the export's last {HOLDOUT_DAYS} days: nothing to plan")
    on = ch.active[recent]
    pace = np.where(on.any(axis=0), (ch.spend[recent] * on).sum(axis=0) / np.maximum(on.sum(axis=0), 1), 0.0) * running
    cpc = np.array([np.median(ch.spend[ch.active[:, k], k] / np.maximum(ch.clicks[ch.active[:, k], k], 1)) for k in range(K)])
    ipc = np.array([np.median(ch.impressions[ch.active[:, k], k] / np.maximum(ch.clicks[ch.active[:, k], k], 1)) for k in range(K)])
    gap = pd.date_range(account.dates[-1] + pd.Timedelta(days=1), start - pd.Timedelta(days=1), freq="D")
    if len(gap):
        notes.append(f"{len(gap)} day(s) between the export and {month}: assumed spent at each campaign's mean of its last 28 days "
                     "(what carries over into the month)")
    future = gap.append(pd.date_range(start, pd.Period(month, "M").end_time.normalize(), freq="D"))
    dates = ch.dates.append(future)
    first = dates[dates.day == 1][0]  # whole months only (ChannelHistory); the month's carry-in comes from the days before it
    keep = dates >= first
    fill = lambda hist, new: np.concatenate([hist, np.broadcast_to(new, (len(future), K))])[keep]  # noqa: E731
    clicks_new = np.round(pace / cpc).astype(np.int64)
    hist = ChannelHistory(bayes.ChannelData(dates[keep], ch.channels, fill(ch.active, running), fill(ch.spend, pace),
                                            fill(ch.impressions, np.round(clicks_new * ipc).astype(np.int64)), fill(ch.clicks, clicks_new)))
    theta = posterior.adstock.mean(axis=0)
    notes.append("carryover per campaign (posterior mean theta, shared by every draw): "
                 + ", ".join(f"{c} {t:.3f}" for c, t in zip(ch.channels, theta)))
    draws = posterior.replace(adstock=theta)
    cfg = EnvConfig(channels=hist, months=(month,), budget=float(budget), reward_scale=float(ch.clicks.sum(axis=1).mean()),
                    cap_multiple=PLAN_CAP_MULTIPLE)
    return cfg, draws, notes


class CarryoverOracle:
    """The oracle with carryover: each posterior draw's own open-loop optimum of the month (one dynamic
    optimisation per draw, ``helpers.baselines.optimal_channel_allocation`` on that draw alone),
    followed as ``helpers.baselines.OpenLoopPolicy`` does. Reads the draw from the state."""

    needs_state = True

    def __init__(self, draws, config, month: str, progress: bool = False):
        from tqdm.auto import tqdm

        from helpers.baselines import ORACLE_NAME, OpenLoopPolicy, optimal_channel_allocation

        self.name = ORACLE_NAME
        self.policies = []
        for j in tqdm(range(draws.n_draws), desc="oracle plans", disable=not progress or None, leave=False):
            plan = optimal_channel_allocation(draws.subset([j]), config, month)
            self.policies.append(OpenLoopPolicy(lambda m, h, w, plan=plan: plan, config, name=f"oracle draw {j}"))

    def __call__(self, obs, state):
        out = np.zeros((len(obs), len(self.policies[0].config.channels.channels) + 1))
        for j in np.unique(state.draw_idx):
            rows = state.draw_idx == j
            out[rows] = self.policies[j](obs, state)[rows]
        return out


def train_planner(draws, config, *, steps: int, seed: int = 0, n_eval_months: int = N_EVAL_MONTHS, progress: bool = False):
    """The course's PPO (``helpers.training.BUDGET_PPO``) trained on the planning month: a ``TrainingRun``."""
    from helpers import training
    from helpers.baselines import Evaluator

    val = Evaluator(draws, config, n_months=n_eval_months, seed=training.VALIDATION_SEED, months=config.months)
    return training.train_budget_agent(draws, steps, training.budget_ppo_config(seed=seed), config, evaluator=val,
                                       eval_every=training.EVAL_EVERY, progress=progress)


@dataclass
class Plan:
    month: str
    budget: float
    daily: pd.DataFrame  # the plan CSV
    comparison: pd.DataFrame
    checks: pd.DataFrame
    notes: list[str]
    currency: str | None


def _record(policy, evaluator):
    """Play ``policy`` on the evaluator's months; per day ``(n_months, T)`` spend per campaign ``(.., K)`` and clicks per campaign."""
    core = evaluator.core
    snaps = []

    class Recorder:
        needs_state = True

        def __call__(self, obs, state):
            snaps.append((core.ep_channel_spend.T.copy(), core.ep_channel_clicks.T.copy(), core.ep_acquisitions.copy()))
            return policy(obs, state) if getattr(policy, "needs_state", False) else policy(obs)

    evaluator.run(Recorder())
    snaps.append((core.ep_channel_spend.T.copy(), core.ep_channel_clicks.T.copy(), core.ep_acquisitions.copy()))
    spend, clicks, acq = (np.diff(np.stack([s[i] for s in snaps]), axis=0) for i in range(3))  # (T, n, K) / (T, n)
    return spend.transpose(1, 0, 2), clicks.transpose(1, 0, 2), acq.T


def make_plan(fit: Fit, checks: pd.DataFrame, run, config, draws, *, n_eval_months: int = N_EVAL_MONTHS, notes=(), seed: int = 0,
              progress: bool = False) -> Plan:
    """The daily plan (the trained policy on ``n_eval_months`` simulated months: posterior draws and
    market noise; mean spend per campaign, expected clicks and acquisitions with 90% bands) and the
    comparison with even pacing, the open-loop optimum and the oracle under that budget.

    Acquisitions: one campaign, the funnel's own ``acq_rate``; several, each campaign's conversions
    per click (a Beta(1, 1) posterior from the export), since the channel model explains clicks only."""
    from helpers.baselines import Evaluator, even_pacing, proportional_policy

    month, budget = config.months[0], float(config.budget)
    policy = run.policy()
    rng = np.random.default_rng(seed)
    if fit.several:
        sub = rng.choice(draws.n_draws, size=min(ORACLE_DRAWS, draws.n_draws), replace=False)
        evaluator = Evaluator(draws.subset(sub), config, n_months=n_eval_months, months=(month,))
        even = proportional_policy(len(draws.channels))
        oracle = CarryoverOracle(evaluator.draws, evaluator.config, month, progress=progress)
    else:
        evaluator = Evaluator(draws, config, n_months=n_eval_months, months=(month,))
        even, oracle = even_pacing, evaluator.oracle()
    table = evaluator.table({"PPO plan": policy, "even pacing": even, "oracle": oracle}, include_optimum=True)
    table = table.rename(index={"optimum (clicks)": "open-loop optimum (clicks)", "optimum (acquisitions)": "open-loop optimum (acquisitions)"})
    table["pct_of_oracle"] = 100 * table["mean_clicks"] / table.loc["oracle", "mean_clicks"]
    spend, clicks, acq = _record(policy, evaluator)  # (n, T, K), (n, T, K), (n, T)
    campaigns = list(fit.account.campaigns)
    if fit.several:  # acquisitions per campaign: its conversions per click, a Beta(1, 1) posterior
        totals = fit.account.daily.groupby("campaign")[["clicks", "conversions"]].sum().loc[campaigns]
        if fit.account.has_conversions:
            rate = rng.beta(1 + totals["conversions"].to_numpy(), 1 + (totals["clicks"] - totals["conversions"]).to_numpy(), size=(len(spend), len(campaigns)))
            acq = rng.binomial(clicks.astype(np.int64), rate[:, None, :]).sum(axis=2).astype(float)
        else:
            acq = np.full(clicks.shape[:2], np.nan)
    dates = pd.date_range(pd.Period(month, "M").start_time, periods=pd.Period(month, "M").days_in_month, freq="D")
    T = len(dates)
    spend, clicks, acq = spend[:, :T], clicks[:, :T].sum(axis=2), acq[:, :T]
    daily = pd.DataFrame({"date": dates.strftime("%Y-%m-%d")})
    if len(campaigns) > 1:
        for k, name in enumerate(campaigns):
            daily[f"spend {name}"] = spend[:, :, k].mean(axis=0)
    total = spend.sum(axis=2)
    daily["spend"] = total.mean(axis=0)
    daily["spend_p05"], daily["spend_p95"] = np.percentile(total, BAND, axis=0)
    daily["clicks"] = clicks.mean(axis=0)
    daily["clicks_p05"], daily["clicks_p95"] = np.percentile(clicks, BAND, axis=0)
    if fit.account.has_conversions:
        daily["acquisitions"] = acq.mean(axis=0)
        daily["acquisitions_p05"], daily["acquisitions_p95"] = np.percentile(acq, BAND, axis=0)
    cols = ["mean_clicks", "pct_of_optimum", "pct_of_optimum_se", "pct_of_oracle", "mean_acquisitions", "mean_cpc", "cvar5_clicks", "budget_used"]
    comparison = table[[c for c in cols if c in table]]
    if fit.several or not fit.account.has_conversions:
        comparison = comparison.drop(columns="mean_acquisitions")
    return Plan(month, budget, daily, comparison, checks, list(notes), fit.account.currency)


def plot_plan(plan: Plan):
    """The plan as a figure: spend per day (per campaign, stacked) against even pacing, clicks and
    acquisitions with their 90% bands. A ``matplotlib.figure.Figure`` (no pyplot state)."""
    from matplotlib.dates import DateFormatter
    from matplotlib.figure import Figure

    d = plan.daily
    x = pd.to_datetime(d["date"])
    has_acq = "acquisitions" in d
    fig = Figure(figsize=(10, 7.5 if has_acq else 5.5), layout="constrained")
    axes = fig.subplots(3 if has_acq else 2, 1, sharex=True)
    spend_cols = [c for c in d if c.startswith("spend ")] or ["spend"]
    bottom = np.zeros(len(d))
    for c in spend_cols:
        axes[0].bar(x, d[c], bottom=bottom, label=c.removeprefix("spend ") if c != "spend" else "planned spend (mean)", width=0.8)
        bottom += d[c].to_numpy()
    axes[0].errorbar(x, d["spend"], yerr=[(d["spend"] - d["spend_p05"]).clip(lower=0), (d["spend_p95"] - d["spend"]).clip(lower=0)],
                     fmt="none", ecolor="0.3", lw=0.8,
                     label="90% band (the policy adapts)")
    axes[0].axhline(plan.budget / len(d), color="k", ls="--", lw=1, label="even pacing")
    axes[0].set_ylabel(f"spend per day ({plan.currency or 'currency'})")
    axes[0].legend(fontsize=8, ncols=2)
    axes[0].set_title(f"Plan for {plan.month}: budget {plan.budget:,.0f} {plan.currency or ''}".rstrip())
    for ax, what in zip(axes[1:], ["clicks", "acquisitions"] if has_acq else ["clicks"]):
        ax.fill_between(x, d[f"{what}_p05"], d[f"{what}_p95"], alpha=0.3, label="90% band")
        ax.plot(x, d[what], marker="o", ms=3, label=f"expected {what}")
        ax.set_ylabel(f"{what} per day")
        ax.legend(fontsize=8)
    axes[-1].set_xlabel("day")
    axes[-1].xaxis.set_major_formatter(DateFormatter("%d %b"))
    return fig


def write_plan(plan: Plan, out: str | os.PathLike, plot: str | os.PathLike | None = None, comparison: str | os.PathLike | None = None) -> dict[str, Path]:
    """Write the plan CSV, the comparison CSV and the PNG, each atomically; return their paths."""
    out = Path(out)
    plot = Path(plot) if plot else out.with_suffix(".png")
    comparison = Path(comparison) if comparison else out.with_name(out.stem + "_comparison.csv")
    atomic_write_text(out, plan.daily.to_csv(index=False, float_format="%.2f", lineterminator="\n"))
    atomic_write_text(comparison, plan.comparison.to_csv(float_format="%.4f", lineterminator="\n"))
    with atomic_path(plot) as tmp:
        plot_plan(plan).savefig(tmp, format="png", dpi=110)
    return {"plan": out, "comparison": comparison, "plot": plot}


# --- the command line ---------------------------------------------------------------------------

EXAMPLE = "python -m helpers.plan data/sample_meta_export.csv --budget 30000 --month 2025-01 --out plan.csv"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.plan",
        description="Next month's daily budget plan for your own ad account: reads a daily export, fits the course's Bayesian funnel, "
                    "checks the fit (refusing to plan when it fails), trains the course's PPO agent on the fitted simulator and "
                    "writes the plan with 90% bands, a plot and the comparison with even pacing, the open-loop optimum and the oracle.",
        epilog=f"example (the course's sample export):\n  {EXAMPLE}\n\nCOURSE_QUICK=1 in the environment is the same as --quick. "
               "Exit status: 0 planned, 2 bad input, 3 the fit failed its checks (no plan).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export", type=Path, help="the daily export: a plain CSV (date, spend, impressions, clicks[, conversions, campaign]), "
                                                  "a Meta Ads Manager export by day, a Google Ads report by day, or a localised one")
    parser.add_argument("--budget", type=float, required=True, help="the month's budget, in the export's currency")
    parser.add_argument("--month", help="the month to plan, YYYY-MM (default: the month after the export's last day)")
    parser.add_argument("--out", type=Path, default=Path("plan.csv"), help="the plan CSV to write (default plan.csv)")
    parser.add_argument("--plot", type=Path, help="the plot to write (default: OUT with .png)")
    parser.add_argument("--comparison", type=Path, help="the comparison table to write (default: OUT's name + _comparison.csv)")
    parser.add_argument("--steps", type=int, help=f"PPO training steps (default: the course's, helpers.training.DEFAULT_STEPS; --quick: {QUICK_STEPS:,})")
    parser.add_argument("--seed", type=int, default=0, help="PPO's seed (default 0); the sampler's is the course's")
    parser.add_argument("--holdout-days", type=int, default=HOLDOUT_DAYS, help=f"last days held out to check the fit (default {HOLDOUT_DAYS})")
    parser.add_argument("--eval-months", type=int, help=f"simulated months behind the plan and its bands (default {N_EVAL_MONTHS:,}; "
                                                        f"--quick: {QUICK_EVAL_MONTHS})")
    parser.add_argument("--column", action="append", default=[], metavar="HEADER=NAME",
                        help="map a column of the export to date, campaign, spend, impressions, clicks or conversions (repeatable), "
                             "e.g. --column 'Verbrauchtes Budget=spend'")
    parser.add_argument("--decimal", choices=[".", ","], help="the decimal mark, when the export's numbers are ambiguous")
    parser.add_argument("--date-format", help="the dates' strftime format when ambiguous, e.g. '%%d/%%m/%%Y'")
    parser.add_argument("--fill-missing", action="store_true", help="read days missing from the export as days without spend (default: refuse)")
    parser.add_argument("--target-accept", type=float, help="the sampler's target acceptance rate (default 0.8; higher: smaller steps, "
                                                             f"fewer divergences, slower). Unset, a fit refused for divergent transitions "
                                                             f"alone is refitted once at {RETRY_TARGET_ACCEPT:g}; set, never")
    parser.add_argument("--tune", type=int, help="the sampler's tuning steps per chain (default: the course's, 1,000)")
    parser.add_argument("--draws", type=int, help="the sampler's kept draws per chain (default: the course's, 1,000)")
    parser.add_argument("--sampler-seed", type=int, help="the sampler's seed (default: the course's)")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test: fewer draws and steps), as COURSE_QUICK=1")
    return parser


def main(argv: list[str] | None = None) -> int:
    from tqdm.auto import tqdm

    args = build_parser().parse_args(argv)
    quick = args.quick or quick_default()
    progress = os.environ.get("TQDM_DISABLE", "") in ("", "0")
    columns = {}
    for item in args.column:
        header, sep, name = item.rpartition("=")
        if not sep or not header:
            print(f"--column {item!r}: expected HEADER=NAME", file=sys.stderr)
            return 2
        columns[header] = name
    stages = tqdm(total=4, desc="plan", unit="stage", disable=not progress or None)
    clock = [("start", time.perf_counter())]
    tick = lambda name: clock.append((name, time.perf_counter()))  # noqa: E731
    try:
        account = read_account(args.export, columns=columns, decimal=args.decimal, date_format=args.date_format, fill_missing=args.fill_missing)
        month = args.month or plan_month_default(account)
        account.check_budget(args.budget, month)
        tick("read")
        stages.set_postfix_str("fit and check"), stages.update()
        overrides = {k: v for k, v in (("target_accept", args.target_accept), ("tune", args.tune), ("draws", args.draws),
                                       ("seed", args.sampler_seed)) if v is not None}
        fit, checks = fit_and_check(account, retry=args.target_accept is None, say=tqdm.write, quick=quick, holdout_days=args.holdout_days,
                                    progressbar=progress, overrides=overrides)
        tick("fit")  # the checks (and a refit, if any) included
        from helpers.training import DEFAULT_STEPS  # torch: imported only once there is something to train

        print(checks.to_string(index=False))
        config, draws, notes = planning_config(fit, args.budget, month)
        stages.set_postfix_str("train"), stages.update()
        run = train_planner(draws, config, steps=args.steps or (QUICK_STEPS if quick else DEFAULT_STEPS), seed=args.seed,
                            n_eval_months=args.eval_months or (QUICK_EVAL_MONTHS if quick else N_EVAL_MONTHS), progress=progress)
        tick("train")
        stages.set_postfix_str("plan"), stages.update()
        plan = make_plan(fit, checks, run, config, draws, n_eval_months=args.eval_months or (QUICK_EVAL_MONTHS if quick else N_EVAL_MONTHS),
                         notes=notes, progress=progress)
        paths = write_plan(plan, args.out, args.plot, args.comparison)
        tick("plan")
        stages.update()
    except (DataValidationError, ValueError, FileNotFoundError) as e:
        stages.close()
        print(f"error: {e}", file=sys.stderr)
        return 2
    except FitCheckError as e:
        stages.close()
        print(e.checks.to_string(index=False), file=sys.stderr)
        print(str(e), file=sys.stderr)
        return 3
    stages.close()
    for n in plan.notes:
        print(n)
    print(plan.comparison.round(2).to_string())
    print("timings: " + ", ".join(f"{name} {t - before:.1f} s" for (_, before), (name, t) in zip(clock, clock[1:]))
          + f", total {clock[-1][1] - clock[0][1]:.1f} s")
    print(f"wrote {paths['plan']}, {paths['comparison']} and {paths['plot']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
