"""The course's data (notebook 01): a simulated marketing funnel with a documented ground truth.

One channel of an online travel company in Indonesia, two years of daily rows
(``date, spend, impressions, clicks, acquisitions, holiday``; ``weekend`` follows from the date,
:func:`weekend_flags`). :func:`generate` simulates them (its docstring has the generating process;
data/README.md explains every number); the truth is saved to ``data/ground_truth.json`` and
notebook 02's model must recover it. ``NegativeBinomial(mu, alpha)`` is PyMC's parameterisation:
mean ``mu``, variance ``mu + mu**2 / alpha`` (:func:`nb_sample` draws it as a Gamma-Poisson mix).

Regenerate the committed files with ``python -m helpers.data`` (same seed, same bytes). Read them
back with :func:`load_daily` (and the external PyMC-Marketing campaigns with :func:`load_external`):
both validate what they read and raise :class:`DataValidationError` naming file, column and row.
Writing goes through :func:`atomic_path` (a temporary file, then a rename).
"""

from __future__ import annotations

import contextlib
import csv
import io
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
EXTERNAL_COLUMNS = ["date", "campaign", "active", "spend", "impressions", "reach", "clicks"]
EXTERNAL_COUNT_COLUMNS = ["impressions", "reach", "clicks"]
COUNTRY = "ID"  # Indonesia: the talk's company sold flights and hotels there.

#: The ground truth of the funnel (natural log scale; see the module docstring).
TRUE_PARAMS: dict[str, float] = {
    "imp_intercept": 6.55,  # ~248k impressions at 1,000 spend: CPM ~ 4
    "imp_slope": 0.85,  # elasticity of impressions to spend
    "imp_holiday": 0.05,  # holidays: ~5% more impressions for the same spend
    "imp_alpha": 30.0,  # NB dispersion: coefficient of variation ~ 0.18
    "clk_intercept": -3.83,  # CTR ~ 0.8%: ~2,000 weekday clicks at 1,000 spend -> CPC ~ 0.5
    "clk_slope": 0.92,  # elasticity of clicks to impressions (spend elasticity 0.85*0.92 ~ 0.78)
    "clk_holiday": 0.20,  # travellers click more on holidays
    "clk_weekend": 0.25,  # ... and on weekends (Sat/Sun): ~28% more clicks at equal impressions
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


def weekend_flags(dates: pd.DatetimeIndex | pd.Series) -> np.ndarray:
    """0/1 weekend flag (Saturday or Sunday) for each date."""
    return (pd.DatetimeIndex(dates).day_of_week >= 5).astype(np.int64)


def nb_sample(rng: np.random.Generator, mu: np.ndarray, alpha: float | np.ndarray) -> np.ndarray:
    """Draw NegativeBinomial(mu, alpha) counts (PyMC parameterisation) as a gamma-Poisson mixture."""
    mu = np.asarray(mu, dtype=float)
    rate = rng.gamma(shape=alpha, scale=mu / alpha)
    return rng.poisson(rate)


def generate(seed: int = SEED) -> tuple[pd.DataFrame, dict]:
    """Simulate the daily data set; return it with its ground truth (JSON-ready dict).

    The generating process (every number is in :data:`TRUE_PARAMS` / :data:`TRUE_PACING`):

    1. **Budgets and human pacing.** Each month has a budget (seasonal, slowly growing). The
       marketers pace it roughly evenly: each day's planned share is
       ``(1 + holiday_uplift * holiday) * LogNormal(0, pacing_noise)``, normalised so the month
       spends exactly its budget (rounded to cents).
    2. **Impressions** ~ NegativeBinomial(mu, alpha), ``log mu = imp_intercept + imp_slope *
       log(spend) + imp_holiday * holiday``.
    3. **Clicks** ~ NegativeBinomial(mu, alpha), ``log mu = clk_intercept + clk_slope *
       log(impressions) + clk_holiday * holiday + clk_weekend * weekend``: travellers plan trips
       on weekends (about +28% clicks with ``clk_weekend = 0.25``). The humans do not pace by
       weekday: that is the opportunity a learned policy can find.
    4. **Acquisitions** ~ Binomial(clicks, acq_rate).

    Slopes below one are diminishing returns. The intercepts are on the natural (uncentred) log
    scale; the model centres its predictors for sampling and converts back (``helpers.bayes``).
    """
    rng = np.random.default_rng(seed)
    p, pace = TRUE_PARAMS, TRUE_PACING
    dates = pd.date_range(START, END, freq="D")
    holiday = holiday_flags(dates)
    weekend = weekend_flags(dates)
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
    log_imp = np.log(np.maximum(impressions, 1))
    mu_clk = np.exp(p["clk_intercept"] + p["clk_slope"] * log_imp + p["clk_holiday"] * holiday + p["clk_weekend"] * weekend)
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
            "log mu_clicks = clk_intercept + clk_slope*log(impressions) + clk_holiday*holiday + clk_weekend*weekend "
            "(weekend = Saturday or Sunday, from the date); "
            "acquisitions ~ Binomial(clicks, acq_rate). Clicks are capped at impressions."
        ),
    }
    return df, truth


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; when the block succeeds, rename it over ``path``.

    For writers that want a file name (``to_netcdf``, ``torch.save``, ...): readers see the
    old file or the complete new one, never a half-written one; on error the temporary file
    is removed and the old file is left as it was. The new file gets the usual permissions
    (0666 minus the umask), not ``mkstemp``'s private 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename: never half-written."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())


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


# --- Loading and validating ------------------------------------------------------------


class DataValidationError(ValueError):
    """A data file is malformed. The message names the file, the column and the row.

    Rows are reported two ways: ``row`` is the 1-based *data row* (the header is not a
    row, blank lines are skipped) and ``line`` the 1-based *CSV line* as an editor shows it
    (the header is line 1). Both are ``None`` when the problem concerns the whole file.
    """

    def __init__(self, path, problem: str, *, column: str | None = None, row: int | None = None, line: int | None = None):
        self.path, self.problem, self.column, self.row, self.line = str(path), problem, column, row, line
        where = []
        if column is not None:
            where.append(f"column {column!r}")
        if row is not None:
            where.append(f"data row {row} (CSV line {line})")
        elif line is not None:
            where.append("the header (CSV line 1)" if line == 1 else f"CSV line {line}")
        super().__init__(f"{path}: " + (", ".join(where) + ": " if where else "") + problem)


class _Table:
    """The raw cells of a CSV file (all strings) plus where each data row came from."""

    def __init__(self, path: str | os.PathLike, expected: list[str]):
        self.path = Path(path)
        text = self.path.read_text(encoding="utf-8-sig")  # tolerate a spreadsheet's BOM
        if not text.strip():
            raise DataValidationError(self.path, f"the file is empty; expected a header line ({','.join(expected)}) and data rows")
        reader = csv.reader(io.StringIO(text))
        header = [h.strip() for h in next(reader)]
        dupes = sorted({h for h in header if header.count(h) > 1})
        missing = [c for c in expected if c not in header]
        extra = [h for h in header if h not in expected]
        for problem, names in (("duplicated", dupes), ("missing", missing), ("unexpected extra", extra)):
            if names:
                raise DataValidationError(
                    self.path,
                    f"{problem} column(s) {', '.join(map(repr, names))} in the header; expected exactly {', '.join(expected)}",
                    column=", ".join(names),
                    line=1,
                )
        records, lines = [], []
        for record in reader:
            if not record:  # a blank line
                continue
            if len(record) != len(header):
                raise DataValidationError(
                    self.path,
                    f"expected {len(header)} comma-separated fields, found {len(record)}",
                    row=len(records) + 1,
                    line=reader.line_num,
                )
            records.append([field.strip() for field in record])
            lines.append(reader.line_num)
        if not records:
            raise DataValidationError(self.path, "the file has a header but no data rows (empty data set)")
        self.cells = pd.DataFrame(records, columns=header, dtype=object)[expected]
        self.lines = lines

    def fail(self, i: int, column: str, problem: str):
        """Raise for 0-based data row ``i``."""
        raise DataValidationError(self.path, problem, column=column, row=i + 1, line=self.lines[i])

    def dates(self, column: str = "date") -> pd.Series:
        raw = self.cells[column]
        parsed = pd.to_datetime(raw, format="%Y-%m-%d", errors="coerce")
        bad = np.flatnonzero(parsed.isna().to_numpy())
        if len(bad):
            self.fail(bad[0], column, f"cannot parse {raw.iloc[bad[0]]!r} as a date (expected YYYY-MM-DD)")
        return parsed.astype("datetime64[ns]")

    def consecutive_days(self, dates: pd.Series, column: str = "date", positions=None, what: str = "") -> None:
        """Check ``dates`` (at data-row ``positions``, default all) are unique, consecutive days."""
        positions = np.arange(len(dates)) if positions is None else np.asarray(positions)
        values = pd.DatetimeIndex(dates)
        first_seen: dict = {}
        for k, d in enumerate(values):
            if d in first_seen:
                self.fail(positions[k], column, f"duplicated date {d:%Y-%m-%d}{what} (first at data row {positions[first_seen[d]] + 1})")
            first_seen[d] = k
        one_day = pd.Timedelta(days=1)
        for k in range(1, len(values)):
            if values[k] - values[k - 1] != one_day:
                self.fail(
                    positions[k],
                    column,
                    f"dates must be consecutive days{what}: expected {values[k - 1] + one_day:%Y-%m-%d} "
                    f"after {values[k - 1]:%Y-%m-%d} (data row {positions[k - 1] + 1}), found {values[k]:%Y-%m-%d}",
                )

    def numbers(self, column: str, *, integer: bool) -> pd.Series:
        """Finite, non-negative numbers; whole numbers when ``integer``."""
        raw = self.cells[column]
        values = pd.to_numeric(raw, errors="coerce").astype(np.float64).to_numpy()
        kind = "a whole number (a count)" if integer else "a number"
        for i in np.flatnonzero(~np.isfinite(values)):
            self.fail(i, column, f"expected {kind}, found {raw.iloc[i]!r}")
        for i in np.flatnonzero(values < 0):
            self.fail(i, column, f"must not be negative, found {raw.iloc[i]!r}")
        if integer:
            for i in np.flatnonzero(values != np.floor(values)):
                self.fail(i, column, f"expected {kind}, found {raw.iloc[i]!r}")
            return pd.Series(values.astype(np.int64), name=column)
        return pd.Series(values, name=column)

    def flags(self, column: str, true: set[str], false: set[str]) -> pd.Series:
        raw = self.cells[column]
        lowered = raw.str.lower()
        ok = lowered.isin(true | false).to_numpy()
        for i in np.flatnonzero(~ok):
            allowed = " or ".join(sorted(true | false))
            self.fail(i, column, f"expected a flag ({allowed}), found {raw.iloc[i]!r}")
        return pd.Series(lowered.isin(true).to_numpy(), name=column)

    def not_more_than(self, small: str, big: str, values: dict) -> None:
        for i in np.flatnonzero(values[small].to_numpy() > values[big].to_numpy()):
            self.fail(i, small, f"{small} ({values[small].iloc[i]}) is greater than {big} ({values[big].iloc[i]}) on the same row")


def load_daily(path: str | os.PathLike = DATA_PATH) -> pd.DataFrame:
    """Read and validate the daily funnel data (``data/marketing_daily.csv`` by default).

    Returns a DataFrame with the columns of :data:`COLUMNS` in that order: ``date`` as
    ``datetime64[ns]``, ``spend`` float64, the counts int64 and ``holiday`` int64 (0/1),
    indexed 0..n-1. Raises :class:`DataValidationError`, naming the file, the column and the
    data row (and CSV line), for: an empty file, missing/extra/duplicated columns, a row
    with the wrong number of fields, unparsable, duplicated or non-consecutive dates,
    negative or non-numeric spend or counts, fractional counts, clicks greater than
    impressions, acquisitions greater than clicks, and a holiday flag other than 0/1.
    """
    table = _Table(path, COLUMNS)
    dates = table.dates("date")
    table.consecutive_days(dates, "date")
    values = {"spend": table.numbers("spend", integer=False)}
    for column in COUNT_COLUMNS:
        values[column] = table.numbers(column, integer=True)
    table.not_more_than("clicks", "impressions", values)
    table.not_more_than("acquisitions", "clicks", values)
    holiday = table.flags("holiday", true={"1"}, false={"0"}).astype(np.int64)
    return pd.DataFrame({"date": dates.to_numpy(), **{k: v.to_numpy() for k, v in values.items()}, "holiday": holiday.to_numpy()})[COLUMNS]


def load_external(path: str | os.PathLike = EXTERNAL_PATH) -> pd.DataFrame:
    """Read and validate the external campaign data (PyMC-Marketing; see data/external/README.md).

    One row per (date, campaign). Returns the columns of :data:`EXTERNAL_COLUMNS` in file
    order: ``date`` datetime64[ns], ``campaign`` str, ``active`` bool, ``spend`` float64 and
    the counts int64. Raises :class:`DataValidationError` (file, column, row) for: an empty
    file, missing/extra columns, unparsable dates, an empty campaign name, a (date, campaign)
    pair twice or a campaign whose days are not consecutive, negative or non-numeric spend or
    counts, an ``active`` flag other than True/False (or 1/0), reach or clicks greater than
    impressions, and an inactive row with non-zero spend or counts.
    """
    table = _Table(path, EXTERNAL_COLUMNS)
    dates = table.dates("date")
    campaign = table.cells["campaign"]
    for i in np.flatnonzero((campaign == "").to_numpy()):
        table.fail(i, "campaign", "empty campaign name")
    for name, positions in pd.Series(np.arange(len(campaign))).groupby(campaign.to_numpy(), sort=False):
        pos = positions.to_numpy()
        table.consecutive_days(dates.iloc[pos], "date", positions=pos, what=f" for campaign {name!r}")
    active = table.flags("active", true={"true", "1"}, false={"false", "0"})
    values = {"spend": table.numbers("spend", integer=False)}
    for column in EXTERNAL_COUNT_COLUMNS:
        values[column] = table.numbers(column, integer=True)
    table.not_more_than("reach", "impressions", values)
    table.not_more_than("clicks", "impressions", values)
    for column, series in values.items():
        for i in np.flatnonzero(~active.to_numpy() & (series.to_numpy() != 0)):
            table.fail(i, column, f"the campaign is inactive on this row (active=False) but {column} is {table.cells[column].iloc[i]!r}, not 0")
    return pd.DataFrame(
        {
            "date": dates.to_numpy(),
            "campaign": campaign.astype(str).to_numpy(),
            "active": active.to_numpy(),
            **{k: v.to_numpy() for k, v in values.items()},
        }
    )[EXTERNAL_COLUMNS]


if __name__ == "__main__":
    write_dataset()
    print(f"wrote {DATA_PATH} and {TRUTH_PATH}")
