"""The course's data: reproducible generation, plausible content, validating loaders, atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import holidays
import numpy as np
import pandas as pd
import pytest

from helpers import data
from helpers.data import (
    COLUMNS,
    DATA_PATH,
    EXTERNAL_COLUMNS,
    EXTERNAL_PATH,
    TRUE_PACING,
    TRUE_PARAMS,
    TRUTH_PATH,
    DataValidationError,
    atomic_write_text,
    load_daily,
    load_external,
    load_ground_truth,
    weekend_flags,
    write_dataset,
)


@pytest.fixture(scope="module")
def daily() -> pd.DataFrame:
    return load_daily()


# --- Reproducibility ----------------------------------------------------------------------


def test_regeneration_reproduces_committed_files_byte_for_byte(tmp_path):
    csv_path, truth_path = tmp_path / "marketing_daily.csv", tmp_path / "ground_truth.json"
    write_dataset(csv_path, truth_path)  # default seed
    # Exact on any CPU: spends and budgets are written rounded to the cent and counts are integers,
    # so the last-bit differences of other CPUs' SIMD maths never reach the file (tests/test_cross_cpu.py).
    assert csv_path.read_bytes() == DATA_PATH.read_bytes(), "regenerated CSV differs from data/marketing_daily.csv"
    assert truth_path.read_bytes() == TRUTH_PATH.read_bytes(), "regenerated JSON differs from data/ground_truth.json"


def test_a_different_seed_gives_different_data_with_the_same_shape():
    df, truth = data.generate(seed=1)
    committed = pd.read_csv(DATA_PATH)
    assert list(df.columns) == COLUMNS and len(df) == len(committed)
    assert truth["seed"] == 1
    assert not np.array_equal(df["impressions"].to_numpy(), committed["impressions"].to_numpy())


# --- Content: plausible against the ground truth ------------------------------------------------


def test_ground_truth_file_matches_the_constants():
    truth = load_ground_truth()
    assert truth["params"] == TRUE_PARAMS
    assert truth["pacing"] == TRUE_PACING
    assert truth["seed"] == data.SEED and truth["country"] == "ID"


def test_two_full_calendar_years_of_daily_rows(daily):
    assert len(daily) == 731  # 2024 is a leap year
    assert daily["date"].iloc[0] == pd.Timestamp("2023-01-01")
    assert daily["date"].iloc[-1] == pd.Timestamp("2024-12-31")


def test_each_month_spends_exactly_its_budget(daily):
    budgets = load_ground_truth()["monthly_budgets"]
    monthly = daily.groupby(daily["date"].dt.strftime("%Y-%m"))["spend"].sum()
    assert list(monthly.index) == sorted(budgets)
    for month, spent in monthly.items():
        assert spent == pytest.approx(budgets[month], abs=0.005), month
    # budgets ~ 30k a month, growing: 2024 spends more than 2023
    yearly = daily.groupby(daily["date"].dt.year)["spend"].sum()
    assert 300_000 < yearly[2023] < yearly[2024] < 500_000


def test_holiday_flag_matches_the_holidays_package(daily):
    calendar = holidays.country_holidays("ID", years=[2023, 2024])
    expected = [int(d.date() in calendar) for d in daily["date"]]
    assert daily["holiday"].tolist() == expected
    assert daily.loc[daily["date"] == "2023-08-17", "holiday"].item() == 1  # Independence Day
    assert daily.loc[daily["date"] == "2023-01-01", "holiday"].item() == 1  # New Year
    assert 20 <= daily["holiday"].sum() <= 50


def test_funnel_counts_are_ordered(daily):
    assert (daily["spend"] > 0).all()
    assert (daily["clicks"] <= daily["impressions"]).all()
    assert (daily["acquisitions"] <= daily["clicks"]).all()


def test_log_log_slopes_match_the_true_elasticities(daily):
    """OLS on the logs is a rough estimator of the NB log-link slopes; it must land near the truth."""
    X = np.column_stack([np.ones(len(daily)), np.log(daily["spend"]), daily["holiday"]])
    imp = np.linalg.lstsq(X, np.log(daily["impressions"]), rcond=None)[0]
    assert imp[1] == pytest.approx(TRUE_PARAMS["imp_slope"], abs=0.08)
    assert imp[1] < 1.0  # diminishing returns
    weekend = weekend_flags(daily["date"])
    X = np.column_stack([np.ones(len(daily)), np.log(daily["impressions"]), daily["holiday"], weekend])
    clk = np.linalg.lstsq(X, np.log(daily["clicks"]), rcond=None)[0]
    assert clk[1] == pytest.approx(TRUE_PARAMS["clk_slope"], abs=0.08)
    assert clk[2] == pytest.approx(TRUE_PARAMS["clk_holiday"], abs=0.08)
    assert clk[3] == pytest.approx(TRUE_PARAMS["clk_weekend"], abs=0.05)


def test_weekend_flags_by_hand():
    dates = pd.date_range("2024-04-01", periods=8)  # Monday 1 .. Monday 8 April 2024
    assert weekend_flags(dates).tolist() == [0, 0, 0, 0, 0, 1, 1, 0]
    assert weekend_flags(pd.Series(dates)).dtype == np.int64


def test_weekend_click_through_rate_is_higher(daily):
    """The generator's weekend effect is real: weekend CTR > weekday CTR, by about exp(clk_weekend)."""
    weekend = weekend_flags(daily["date"]) == 1
    ordinary = daily["holiday"] == 0
    ctr = daily["clicks"] / daily["impressions"]
    weekday_ctr, weekend_ctr = ctr[ordinary & ~weekend], ctr[ordinary & weekend]
    assert weekend_ctr.mean() > weekday_ctr.mean()
    # CTR ~ impressions**(clk_slope - 1): compare at equal impressions by the ratio of
    # clicks / impressions**clk_slope, whose mean is exp(clk_intercept + clk_weekend * weekend)
    adj = daily["clicks"] / daily["impressions"].astype(float) ** TRUE_PARAMS["clk_slope"]
    ratio = adj[ordinary & weekend].mean() / adj[ordinary & ~weekend].mean()
    assert ratio == pytest.approx(np.exp(TRUE_PARAMS["clk_weekend"]), rel=0.05)  # NB cv ~0.22 over ~190 days: se ~2%
    # and the marketers ignore the weekday: their weekend spend is no different
    month = daily["date"].dt.to_period("M")
    relative = daily["spend"] / daily.groupby(month)["spend"].transform("mean")
    assert relative[ordinary & weekend].mean() == pytest.approx(relative[ordinary & ~weekend].mean(), abs=0.05)


def test_rates_are_realistic_and_match_the_truth(daily):
    cpc = daily["spend"].sum() / daily["clicks"].sum()
    assert 0.3 < cpc < 0.8  # cost per click
    acq = daily["acquisitions"].sum() / daily["clicks"].sum()
    assert acq == pytest.approx(TRUE_PARAMS["acq_rate"], abs=0.002)  # binomial sd ~ 0.0004
    # mean impressions at the mean log spend, from the true curve (NB mean is unbiased)
    mu = np.exp(TRUE_PARAMS["imp_intercept"] + TRUE_PARAMS["imp_slope"] * np.log(daily["spend"]) + TRUE_PARAMS["imp_holiday"] * daily["holiday"])
    assert daily["impressions"].sum() / mu.sum() == pytest.approx(1.0, abs=0.02)


def test_marketers_spend_more_on_holidays(daily):
    month = daily["date"].dt.to_period("M")
    relative = daily["spend"] / daily.groupby(month)["spend"].transform("mean")
    ratio = relative[daily["holiday"] == 1].mean() / relative[daily["holiday"] == 0].mean()
    assert ratio == pytest.approx(1 + TRUE_PACING["holiday_uplift"], abs=0.15)


# --- load_daily: each validation error names file, column and row -------------------------------

GOOD_ROWS = [
    "2023-01-01,100.00,20000,150,4,1",
    "2023-01-02,120.50,24000,180,6,0",
    "2023-01-03,90.25,18000,140,3,0",
    "2023-01-04,110.00,22000,160,5,0",
]
HEADER = ",".join(COLUMNS)


def write_csv(tmp_path: Path, lines: list[str], name: str = "daily.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def with_cell(row: int, column: str, value: str) -> list[str]:
    """GOOD_ROWS (as CSV lines, with header) with one cell replaced; ``row`` is 1-based."""
    rows = [r.split(",") for r in GOOD_ROWS]
    rows[row - 1][COLUMNS.index(column)] = value
    return [HEADER] + [",".join(r) for r in rows]


def assert_names(err: DataValidationError, path: Path, column: str | None, row: int | None, *words: str):
    msg = str(err)
    assert str(path) in msg
    assert err.path == str(path)
    if column is not None:
        assert f"column '{column}'" in msg and err.column == column
    if row is not None:
        assert f"data row {row} (CSV line {row + 1})" in msg
        assert (err.row, err.line) == (row, row + 1)
    for w in words:
        assert w in msg, f"{w!r} not in {msg!r}"


def test_load_daily_accepts_a_good_file_and_types_it(tmp_path):
    df = load_daily(write_csv(tmp_path, [HEADER] + GOOD_ROWS))
    assert list(df.columns) == COLUMNS
    assert str(df["date"].dtype) == "datetime64[ns]"
    assert df["spend"].dtype == np.float64 and df["spend"].iloc[1] == 120.5
    for c in ("impressions", "clicks", "acquisitions", "holiday"):
        assert df[c].dtype == np.int64, c
    assert df["holiday"].tolist() == [1, 0, 0, 0]


def test_load_daily_reads_the_committed_file_with_its_values(daily):
    raw = pd.read_csv(DATA_PATH)
    assert daily["spend"].tolist() == raw["spend"].tolist()
    assert daily["clicks"].tolist() == raw["clicks"].tolist()


def test_load_daily_tolerates_columns_in_another_order_blank_lines_and_a_bom(tmp_path):
    order = [5, 0, 2, 1, 3, 4]
    lines = [",".join(HEADER.split(",")[i] for i in order)]
    lines += [",".join(r.split(",")[i] for i in order) for r in GOOD_ROWS]
    path = tmp_path / "odd.csv"
    path.write_text("\ufeff" + "\n".join(lines[:3] + [""] + lines[3:]) + "\n\n")
    df = load_daily(path)
    assert list(df.columns) == COLUMNS and len(df) == 4 and df["spend"].iloc[3] == 110.0


def test_empty_file(tmp_path):
    path = write_csv(tmp_path, [""])
    with pytest.raises(DataValidationError, match="empty") as e:
        load_daily(path)
    assert_names(e.value, path, None, None)


def test_header_but_no_rows(tmp_path):
    path = write_csv(tmp_path, [HEADER])
    with pytest.raises(DataValidationError, match="no data rows") as e:
        load_daily(path)
    assert_names(e.value, path, None, None)


def test_missing_column(tmp_path):
    lines = [",".join(c for c in COLUMNS if c != "clicks")]
    lines += [",".join(v for c, v in zip(COLUMNS, r.split(",")) if c != "clicks") for r in GOOD_ROWS]
    path = write_csv(tmp_path, lines)
    with pytest.raises(DataValidationError) as e:
        load_daily(path)
    assert_names(e.value, path, "clicks", None, "missing", "CSV line 1")


def test_extra_column(tmp_path):
    lines = [HEADER + ",weather"] + [r + ",sunny" for r in GOOD_ROWS]
    path = write_csv(tmp_path, lines)
    with pytest.raises(DataValidationError) as e:
        load_daily(path)
    assert_names(e.value, path, "weather", None, "extra", "CSV line 1")


def test_row_with_wrong_number_of_fields(tmp_path):
    lines = [HEADER] + GOOD_ROWS[:2] + [GOOD_ROWS[2] + ",7"] + GOOD_ROWS[3:]
    path = write_csv(tmp_path, lines)
    with pytest.raises(DataValidationError) as e:
        load_daily(path)
    assert_names(e.value, path, None, 3, "expected 6", "found 7")


@pytest.mark.parametrize("bad", ["2023-13-01", "yesterday", "", "01/03/2023"])
def test_unparsable_date(tmp_path, bad):
    path = write_csv(tmp_path, with_cell(3, "date", bad))
    with pytest.raises(DataValidationError) as e:
        load_daily(path)
    assert_names(e.value, path, "date", 3, "cannot parse", repr(bad))


def test_duplicated_date(tmp_path):
    path = write_csv(tmp_path, with_cell(3, "date", "2023-01-02"))
    with pytest.raises(DataValidationError) as e:
        load_daily(path)
    assert_names(e.value, path, "date", 3, "duplicated date 2023-01-02", "first at data row 2")


def test_non_consecutive_dates(tmp_path):
    path = write_csv(tmp_path, with_cell(4, "date", "2023-01-06"))
    with pytest.raises(DataValidationError) as e:
        load_daily(path)
    assert_names(e.value, path, "date", 4, "consecutive", "expected 2023-01-04", "found 2023-01-06")


def test_dates_out_of_order(tmp_path):
    lines = [HEADER, GOOD_ROWS[0], GOOD_ROWS[2], GOOD_ROWS[1], GOOD_ROWS[3]]
    path = write_csv(tmp_path, lines)
    with pytest.raises(DataValidationError) as e:
        load_daily(path)
    assert_names(e.value, path, "date", 2, "expected 2023-01-02", "found 2023-01-03")


@pytest.mark.parametrize("column", ["spend", "impressions", "clicks", "acquisitions"])
def test_negative_number(tmp_path, column):
    path = write_csv(tmp_path, with_cell(2, column, "-5"))
    with pytest.raises(DataValidationError) as e:
        load_daily(path)
    assert_names(e.value, path, column, 2, "negative", "'-5'")


@pytest.mark.parametrize("column,bad", [("spend", "12.5abc"), ("spend", ""), ("impressions", "lots"), ("clicks", "inf"), ("acquisitions", "NaN")])
def test_non_numeric_number(tmp_path, column, bad):
    path = write_csv(tmp_path, with_cell(4, column, bad))
    with pytest.raises(DataValidationError) as e:
        load_daily(path)
    assert_names(e.value, path, column, 4, "expected", repr(bad))


def test_fractional_count(tmp_path):
    path = write_csv(tmp_path, with_cell(1, "clicks", "150.5"))
    with pytest.raises(DataValidationError) as e:
        load_daily(path)
    assert_names(e.value, path, "clicks", 1, "whole number", "'150.5'")


def test_clicks_greater_than_impressions(tmp_path):
    path = write_csv(tmp_path, with_cell(2, "clicks", "24001"))
    with pytest.raises(DataValidationError) as e:
        load_daily(path)
    assert_names(e.value, path, "clicks", 2, "clicks (24001) is greater than impressions (24000)")


def test_acquisitions_greater_than_clicks(tmp_path):
    path = write_csv(tmp_path, with_cell(3, "acquisitions", "141"))
    with pytest.raises(DataValidationError) as e:
        load_daily(path)
    assert_names(e.value, path, "acquisitions", 3, "greater than clicks (140)")


@pytest.mark.parametrize("bad", ["2", "yes", "True", "-1", "0.5", ""])
def test_holiday_flag_not_0_or_1(tmp_path, bad):
    path = write_csv(tmp_path, with_cell(4, "holiday", bad))
    with pytest.raises(DataValidationError) as e:
        load_daily(path)
    assert_names(e.value, path, "holiday", 4, "0 or 1", repr(bad))


def test_missing_file_is_a_plain_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_daily(tmp_path / "nope.csv")


def test_validation_error_is_a_value_error():
    assert issubclass(DataValidationError, ValueError)


# --- load_external -----------------------------------------------------------------------------


def test_external_loader_reads_the_shipped_file():
    ext = load_external()
    assert list(ext.columns) == EXTERNAL_COLUMNS
    assert len(ext) == 840  # 7 campaigns x 120 days (data/external/README.md)
    assert ext["campaign"].nunique() == 7
    assert str(ext["date"].dtype) == "datetime64[ns]" and ext["active"].dtype == bool
    active_days = ext.groupby("campaign")["active"].sum().to_dict()
    assert active_days == {  # the README's table of active windows
        "brand_always_on": 120,
        "spring_promo": 66,
        "lookalike_conversions": 120,
        "video_product_launch": 71,
        "flash_sale_burst": 15,
        "niche_interest": 120,
        "broad_prospecting": 30,
    }
    flash = ext[(ext["campaign"] == "flash_sale_burst") & ext["active"]]
    assert flash["date"].min() == pd.Timestamp("2025-02-15") and flash["date"].max() == pd.Timestamp("2025-03-01")
    assert (ext.loc[~ext["active"], ["spend", "impressions", "reach", "clicks"]] == 0).all().all()
    assert (ext.loc[ext["active"], "impressions"] > 0).all()


def test_external_data_is_copied_with_its_provenance():
    readme = (EXTERNAL_PATH.parent / "README.md").read_text()
    assert "Apache License 2.0" in readme and "pymc-marketing" in readme
    assert EXTERNAL_PATH.stat().st_size == 42_622  # as documented in the provenance note


EXT_HEADER = ",".join(EXTERNAL_COLUMNS)
EXT_ROWS = [
    "2025-01-01,alpha,True,10.50,1000,800,20",
    "2025-01-01,beta,False,0.0,0,0,0",
    "2025-01-02,alpha,True,11.00,1100,900,25",
    "2025-01-02,beta,True,5.00,400,350,8",
]


def ext_with_cell(row: int, column: str, value: str) -> list[str]:
    rows = [r.split(",") for r in EXT_ROWS]
    rows[row - 1][EXTERNAL_COLUMNS.index(column)] = value
    return [EXT_HEADER] + [",".join(r) for r in rows]


def test_external_loader_accepts_a_good_file(tmp_path):
    ext = load_external(write_csv(tmp_path, [EXT_HEADER] + EXT_ROWS))
    assert ext["active"].tolist() == [True, False, True, True]
    assert ext["clicks"].tolist() == [20, 0, 25, 8]


@pytest.mark.parametrize(
    "row,column,value,words",
    [
        (2, "date", "2025-01-0x", ["cannot parse"]),
        (3, "date", "2025-01-01", ["duplicated date 2025-01-01 for campaign 'alpha'", "first at data row 1"]),
        (4, "date", "2025-01-03", ["consecutive days for campaign 'beta'", "expected 2025-01-02"]),
        (1, "campaign", "", ["empty campaign name"]),
        (3, "active", "maybe", ["expected a flag", "'maybe'"]),
        (4, "spend", "-1", ["negative"]),
        (4, "reach", "many", ["expected a whole number"]),
        (3, "reach", "1200", ["reach (1200) is greater than impressions (1100)"]),
        (1, "clicks", "1001", ["clicks (1001) is greater than impressions (1000)"]),
        (2, "impressions", "5", ["inactive", "impressions is '5'"]),
    ],
)
def test_external_loader_errors_name_file_column_and_row(tmp_path, row, column, value, words):
    path = write_csv(tmp_path, ext_with_cell(row, column, value), name="ext.csv")
    with pytest.raises(DataValidationError) as e:
        load_external(path)
    assert_names(e.value, path, column, row, *words)


def test_external_loader_missing_column(tmp_path):
    lines = [EXT_HEADER.replace(",reach", "")] + [",".join(v for c, v in zip(EXTERNAL_COLUMNS, r.split(",")) if c != "reach") for r in EXT_ROWS]
    path = write_csv(tmp_path, lines, name="ext.csv")
    with pytest.raises(DataValidationError) as e:
        load_external(path)
    assert_names(e.value, path, "reach", None, "missing")


def test_external_loader_empty_file(tmp_path):
    path = write_csv(tmp_path, [""], name="ext.csv")
    with pytest.raises(DataValidationError, match="empty"):
        load_external(path)


# --- Atomic writes --------------------------------------------------------------------------------


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_replaces_content(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    atomic_write_text(target, "first\n")
    atomic_write_text(target, "second\n")
    assert target.read_text() == "second\n"
    assert leftovers(target.parent) == []


def test_failure_mid_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "out.csv"
    target.write_text("old content\n")
    real_open = open

    class HalfWriter:
        """Writes the first half of the text, then the 'disk fills up'."""

        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, text):
            self.fh.write(text[: len(text) // 2])
            self.fh.flush()
            raise OSError(28, "No space left on device")

    # atomic_write_text opens its temporary file with the built-in open(): shadow it in the module.
    monkeypatch.setattr(data, "open", lambda *a, **k: HalfWriter(real_open(*a, **k)), raising=False)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_text(target, "new content that is long enough to be cut in half\n")
    assert target.read_text() == "old content\n"
    assert leftovers(tmp_path) == []


def test_failed_rename_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    target.write_text('{"old": true}\n')

    def boom(src, dst):
        raise PermissionError("rename refused")

    monkeypatch.setattr(data.os, "replace", boom)
    with pytest.raises(PermissionError):
        atomic_write_text(target, '{"new": true}\n')
    assert json.loads(target.read_text()) == {"old": True}
    assert leftovers(tmp_path) == []


def test_write_dataset_interrupted_leaves_committed_style_files_intact(tmp_path, monkeypatch):
    csv_path, truth_path = tmp_path / "d.csv", tmp_path / "t.json"
    write_dataset(csv_path, truth_path)
    before = csv_path.read_bytes(), truth_path.read_bytes()
    monkeypatch.setattr(data.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError("I/O error")))
    with pytest.raises(OSError, match="I/O error"):
        write_dataset(csv_path, truth_path, seed=7)
    assert (csv_path.read_bytes(), truth_path.read_bytes()) == before
    assert leftovers(tmp_path) == []


def test_atomic_write_gives_ordinary_permissions(tmp_path):
    """mkstemp makes 0600 files; the renamed result must be readable like any other file."""
    target = tmp_path / "out.txt"
    old = os.umask(0o022)
    try:
        atomic_write_text(target, "x\n")
    finally:
        os.umask(old)
    assert (target.stat().st_mode & 0o777) == 0o644
