"""The course's data: a simulated marketing funnel with a documented ground truth.

One marketing channel of an online travel company in Indonesia, two calendar years of
daily rows::

    date, spend, impressions, clicks, acquisitions, holiday

The generating process (everything below is the *ground truth* saved to
``data/ground_truth.json``; the Bayesian model of notebook 02 must recover it):

1. **Budgets and human pacing.** Each month has a budget (seasonal, slowly growing).
   The marketers pace it roughly evenly: each day's planned share is
   ``(1 + holiday_uplift * holiday) * LogNormal(0, pacing_noise)``, normalised so the
   month spends exactly its budget (rounded to cents).
2. **Impressions** ~ NegativeBinomial(mu, alpha) with
   ``log mu = imp_intercept + imp_slope * log(spend) + imp_holiday * holiday``.
3. **Clicks** ~ NegativeBinomial(mu, alpha) with
   ``log mu = clk_intercept + clk_slope * log(impressions) + clk_holiday * holiday``.
4. **Acquisitions** ~ Binomial(clicks, acq_rate).

``NegativeBinomial(mu, alpha)`` is PyMC's parameterisation: mean ``mu``, variance
``mu + mu**2 / alpha``. Slopes below one are diminishing returns: doubling spend less than
doubles impressions. The intercepts are on the natural (uncentred) log scale; the model
centres its predictors for sampling efficiency and converts back (see ``helpers.bayes``).

Regenerate the committed files with ``python -m helpers.data`` (same seed, same bytes).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import holidays
import numpy as np
import pandas as pd

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DATA_PATH = DATA_DIR / "marketing_daily.csv"
TRUTH_PATH = DATA_DIR / "ground_truth.json"
EXTERNAL_PATH = DATA_DIR / "external" / "credibility_campaign_daily_metrics.csv"

SEED = 20180923  # PyCon APAC 2018 week; any fixed seed would do.
START, END = "2023-01-01", "2024-12-31"
COLUMNS = ["date", "spend", "impressions", "clicks", "acquisitions", "holiday"]
COUNT_COLUMNS = ["impressions", "clicks", "acquisitions"]
COUNTRY = "ID"  # Indonesia: the talk's company sold flights and hotels there.

#: The ground truth of the funnel (natural log scale; see the module docstring).
TRUE_PARAMS: dict[str, float] = {
    "imp_intercept": 6.2,  # ~250k impressions at 1,000 spend: CPM ~ 4
    "imp_slope": 0.90,  # elasticity of impressions to spend
    "imp_holiday": 0.05,  # holidays: ~5% more impressions for the same spend
    "imp_alpha": 30.0,  # NB dispersion: coefficient of variation ~ 0.18
    "clk_intercept": -3.95,  # CTR ~ 0.8%: ~2,000 clicks at 1,000 spend -> CPC ~ 0.5
    "clk_slope": 0.93,  # elasticity of clicks to impressions
    "clk_holiday": 0.15,  # travellers click more on holidays
    "clk_alpha": 20.0,
    "acq_rate": 0.03,  # acquisitions per click
}

#: How the human marketers set and paced budgets (part of the ground truth too).
TRUE_PACING: dict[str, float] = {
    "monthly_budget_mean": 30_000.0,  # currency units per month (USD-like)
    "monthly_budget_growth": 0.10,  # per year
    "monthly_budget_seasonal_amplitude": 0.15,  # yearly sine
    "monthly_budget_noise": 0.10,  # log-normal sd month to month
    "holiday_uplift": 0.30,  # rule of thumb: +30% planned spend on holidays
    "pacing_noise": 0.25,  # log-normal sd of the daily plan
}


def holiday_flags(dates: pd.DatetimeIndex | pd.Series, country: str = COUNTRY) -> np.ndarray:
    """0/1 public-holiday flag for each date, from the ``holidays`` package."""
    dates = pd.DatetimeIndex(dates)
    calendar = holidays.country_holidays(country, years=sorted(set(dates.year)))
    return np.array([d.date() in calendar for d in dates], dtype=np.int64)


def nb_sample(rng: np.random.Generator, mu: np.ndarray, alpha: float | np.ndarray) -> np.ndarray:
    """Draw NegativeBinomial(mu, alpha) counts (PyMC parameterisation) as a gamma-Poisson mixture."""
    mu = np.asarray(mu, dtype=float)
    rate = rng.gamma(shape=alpha, scale=mu / alpha)
    return rng.poisson(rate)


def generate(seed: int = SEED) -> tuple[pd.DataFrame, dict]:
    """Simulate the daily data set; return it with its ground truth (JSON-ready dict)."""
    rng = np.random.default_rng(seed)
    p, pace = TRUE_PARAMS, TRUE_PACING
    dates = pd.date_range(START, END, freq="D")
    holiday = holiday_flags(dates)
    months = dates.to_period("M")

    spend = np.empty(len(dates))
    budgets = {}
    for i, month in enumerate(months.unique()):
        idx = np.flatnonzero(months == month)
        years_in = i / 12.0
        budget = (
            pace["monthly_budget_mean"]
            * (1 + pace["monthly_budget_growth"]) ** years_in
            * (1 + pace["monthly_budget_seasonal_amplitude"] * np.sin(2 * np.pi * (month.month - 4) / 12))
            * rng.lognormal(0.0, pace["monthly_budget_noise"])
        )
        budget = round(budget, 2)
        plan = (1 + pace["holiday_uplift"] * holiday[idx]) * rng.lognormal(0.0, pace["pacing_noise"], len(idx))
        daily = np.round(budget * plan / plan.sum(), 2)
        daily[-1] = round(budget - daily[:-1].sum(), 2)  # the month spends exactly its budget
        spend[idx] = daily
        budgets[str(month)] = budget

    mu_imp = np.exp(p["imp_intercept"] + p["imp_slope"] * np.log(spend) + p["imp_holiday"] * holiday)
    impressions = nb_sample(rng, mu_imp, p["imp_alpha"])
    mu_clk = np.exp(p["clk_intercept"] + p["clk_slope"] * np.log(np.maximum(impressions, 1)) + p["clk_holiday"] * holiday)
    clicks = np.minimum(nb_sample(rng, mu_clk, p["clk_alpha"]), impressions)
    acquisitions = rng.binomial(clicks, p["acq_rate"])

    df = pd.DataFrame(
        {
            "date": dates.strftime("%Y-%m-%d"),
            "spend": spend,
            "impressions": impressions.astype(np.int64),
            "clicks": clicks.astype(np.int64),
            "acquisitions": acquisitions.astype(np.int64),
            "holiday": holiday,
        }
    )
    truth = {
        "seed": seed,
        "country": COUNTRY,
        "start": START,
        "end": END,
        "params": dict(p),
        "pacing": dict(pace),
        "monthly_budgets": budgets,
        "notes": (
            "NegativeBinomial(mu, alpha): mean mu, variance mu + mu^2/alpha (PyMC). "
            "log mu_impressions = imp_intercept + imp_slope*log(spend) + imp_holiday*holiday; "
            "log mu_clicks = clk_intercept + clk_slope*log(impressions) + clk_holiday*holiday; "
            "acquisitions ~ Binomial(clicks, acq_rate). Clicks are capped at impressions."
        ),
    }
    return df, truth


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename: never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def to_csv_text(df: pd.DataFrame) -> str:
    """The committed CSV format: fixed column order, spend with two decimals, LF line endings."""
    return df[COLUMNS].to_csv(index=False, float_format="%.2f", lineterminator="\n")


def write_dataset(data_path: str | os.PathLike = DATA_PATH, truth_path: str | os.PathLike = TRUTH_PATH, seed: int = SEED) -> None:
    """Regenerate ``data/marketing_daily.csv`` and ``data/ground_truth.json`` atomically."""
    df, truth = generate(seed)
    atomic_write_text(data_path, to_csv_text(df))
    atomic_write_text(truth_path, json.dumps(truth, indent=2, sort_keys=True) + "\n")


def load_ground_truth(path: str | os.PathLike = TRUTH_PATH) -> dict:
    """The generator's ground truth (see ``TRUE_PARAMS``)."""
    with open(path) as fh:
        return json.load(fh)


if __name__ == "__main__":
    write_dataset()
    print(f"wrote {DATA_PATH} and {TRUTH_PATH}")
