"""Notebook 01's plots (helpers/plots/data.py) draw what they claim to draw."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from helpers import plots  # noqa: E402
from helpers.data import load_daily, load_ground_truth  # noqa: E402


@pytest.fixture(scope="module")
def daily():
    return load_daily()


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_funnel_rates_by_hand():
    df = pd.DataFrame(
        {
            "date": pd.to_datetime(["2023-01-31", "2023-02-01"]),
            "spend": [100.0, 50.0],
            "impressions": [40_000, 10_000],
            "clicks": [200, 100],
            "acquisitions": [5, 0],
            "holiday": [0, 1],
        }
    )
    r = plots.funnel_rates(df)
    assert r["cpc"].tolist() == [0.5, 0.5]
    assert r["ctr"].tolist() == [0.005, 0.01]
    assert r["cpm"].tolist() == [2.5, 5.0]
    assert r["cpa"].iloc[0] == 20.0 and np.isnan(r["cpa"].iloc[1])  # no acquisitions: no CPA, not inf
    assert [str(m) for m in r["month"]] == ["2023-01", "2023-02"]
    assert "cpc" not in df.columns  # the input is not modified


def test_loglog_slope_recovers_a_power_law():
    x = np.geomspace(10, 1000, 25)
    slope, intercept = plots.loglog_slope(x, 3.0 * x**0.7)
    assert slope == pytest.approx(0.7) and intercept == pytest.approx(np.log(3.0))


def test_funnel_bars_are_the_totals(daily):
    fig = plots.plot_funnel(daily)
    widths = {p.get_y(): p.get_width() for p in fig.axes[0].patches}
    assert sorted(widths.values()) == sorted(daily[["impressions", "clicks", "acquisitions"]].sum().astype(float).tolist())
    assert f"{daily['spend'].sum():,.0f}" in fig.axes[0].get_title()


def test_daily_spend_marks_every_holiday(daily):
    fig = plots.plot_daily_spend(daily, window=7)
    ax = fig.axes[0]
    (holidays,) = ax.collections
    assert len(holidays.get_offsets()) == daily["holiday"].sum()
    daily_line, rolling = ax.lines[:2]
    assert np.allclose(daily_line.get_ydata(), daily["spend"])
    assert np.allclose(rolling.get_ydata(), daily["spend"].rolling(7, center=True, min_periods=1).mean())


def test_impressions_and_clicks_panels(daily):
    fig = plots.plot_impressions_clicks(daily)
    assert [ax.get_ylabel() for ax in fig.axes] == ["impressions", "clicks"]
    assert np.allclose(fig.axes[1].lines[0].get_ydata(), daily["clicks"])


def test_cpc_plot_shows_the_overall_cost_per_click(daily):
    fig = plots.plot_cpc(daily)
    overall = daily["spend"].sum() / daily["clicks"].sum()
    hlines = [line for line in fig.axes[0].lines if len(set(np.atleast_1d(line.get_ydata()))) == 1]
    assert any(np.isclose(line.get_ydata()[0], overall) for line in hlines)


def test_diminishing_returns_plot(daily):
    fig = plots.plot_diminishing_returns(daily, n_bins=5)
    left, right = fig.axes
    assert left.get_xscale() == left.get_yscale() == "log"
    slope, _ = plots.loglog_slope(daily["spend"], daily["impressions"])
    labels = [t.get_text() for t in left.get_legend().get_texts()]
    assert f"fitted: slope {slope:.2f}" in labels and slope < 1
    cpm_means = right.lines[0].get_ydata()
    assert len(cpm_means) == 5 and cpm_means[-1] > cpm_means[0]  # dearer impressions at high spend


def test_holiday_comparison_titles_carry_the_means(daily):
    fig = plots.plot_holiday_comparison(daily)
    assert len(fig.axes) == 3
    ctr = plots.funnel_rates(daily)["ctr"] * 100
    title = fig.axes[1].get_title()
    assert f"{ctr[daily['holiday'] == 0].mean():.3g}" in title and f"{ctr[daily['holiday'] == 1].mean():.3g}" in title


def test_budget_pacing_every_month_ends_on_budget(daily):
    budgets = load_ground_truth()["monthly_budgets"]
    fig = plots.plot_budget_pacing(daily, budgets, highlight="2024-05")
    race, month, monthly = fig.axes
    month_lines = [line for line in race.lines if line.get_linestyle() == "-"]
    assert len(month_lines) == len(budgets) == 24
    for line in month_lines:  # starts and ends on plan: the month spends exactly its budget
        x, y = line.get_xdata(), line.get_ydata()
        assert (x[0], x[-1]) == (0.0, 1.0) and y[0] == 0.0 and y[-1] == pytest.approx(0.0, abs=1e-6)
    (highlighted,) = [line for line in month_lines if line.get_label() == "2024-05"]
    assert highlighted.get_linewidth() > month_lines[0].get_linewidth()
    may = daily[daily["date"].dt.strftime("%Y-%m") == "2024-05"]
    assert [p.get_height() for p in month.patches] == pytest.approx(may["spend"].tolist())
    holiday_bars = [p for p in month.patches if p.get_facecolor()[:3] == pytest.approx(plots.HOLIDAY_COLOR)]
    assert len(holiday_bars) == may["holiday"].sum() == 3
    (even,) = month.lines
    assert even.get_ydata()[0] == pytest.approx(budgets["2024-05"] / 31)
    assert [p.get_height() for p in monthly.patches] == [budgets[m] for m in sorted(budgets)]


def test_weekday_ctr_by_hand_and_its_plot():
    # Two weeks from Monday 1 April 2024; CTR 1% on weekdays and 2% on weekends; one holiday
    # Wednesday with a 5% CTR that must be left out.
    dates = pd.date_range("2024-04-01", periods=14)
    weekend = dates.day_of_week >= 5
    clicks = np.where(weekend, 200, 100)
    clicks[2] = 500
    df = pd.DataFrame({"date": dates, "spend": 100.0, "impressions": 10_000, "clicks": clicks, "acquisitions": 1, "holiday": (np.arange(14) == 2).astype(int)})
    t = plots.weekday_ctr(df)
    assert list(t.index) == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    assert t["days"].tolist() == [2, 2, 1, 2, 2, 2, 2]  # the holiday Wednesday is left out
    np.testing.assert_allclose(t["ctr"], [0.01] * 5 + [0.02] * 2)
    np.testing.assert_allclose(t["ctr_pooled"], t["ctr"])
    assert t["weekend"].tolist() == [False] * 5 + [True] * 2
    fig = plots.plot_weekday_ctr(df)
    left, right = fig.axes[:2]
    assert [tick.get_text() for tick in left.get_xticklabels()] == list(t.index)
    assert "1.00% vs weekends 2.00%" in left.get_title()
    assert right.get_xscale() == right.get_yscale() == "log"
    assert sorted(c.get_label() for c in right.collections) == ["Mon-Fri", "Sat-Sun"]


def test_weekends_have_a_higher_ctr_in_the_data(daily):
    t = plots.weekday_ctr(daily)
    assert t.loc[t["weekend"], "ctr"].min() > t.loc[~t["weekend"], "ctr"].max()
