"""Reading a learner's own ad account (helpers.accounts): every named export format reads to the same
numbers, and every named bad input is refused with a message naming the file, the column and the row.

Each test writes its file in tmp_path, by hand, in the layout of the platform's export (not with the
reader's own code), from one small made-up account.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.accounts import MIN_DAYS, ONE_CAMPAIGN, read_account
from helpers.data import DataValidationError

ROOT = Path(__file__).resolve().parent.parent
DAYS = 60
START = "2026-09-01"


@pytest.fixture(scope="module")
def truth() -> pd.DataFrame:
    """60 days x 2 campaigns: date, campaign, spend (cents), impressions, clicks, conversions."""
    rng = np.random.default_rng(7)
    rows = []
    for name, scale in (("Brand search", 1500.0), ("Prospecting", 400.0)):
        spend = np.round(scale * rng.lognormal(0, 0.2, DAYS), 2)
        imp = rng.poisson(spend * 300).astype(int)
        clk = rng.binomial(imp, 0.01)
        conv = rng.binomial(clk, 0.05)
        for d, s, i, c, v in zip(pd.date_range(START, periods=DAYS), spend, imp, clk, conv):
            rows.append((d, name, s, i, c, v))
    return pd.DataFrame(rows, columns=["date", "campaign", "spend", "impressions", "clicks", "conversions"])


def write_rows(path: Path, rows, delimiter=",", encoding="utf-8") -> Path:
    with open(path, "w", newline="", encoding=encoding) as fh:
        csv.writer(fh, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return path


def assert_same(account, truth, campaigns=True, conversions=True):
    got = account.daily.sort_values(["campaign", "date"]).reset_index(drop=True)
    want = truth.sort_values(["campaign", "date"]).reset_index(drop=True)
    if not campaigns:
        want = want.assign(campaign=ONE_CAMPAIGN)
    assert list(got["date"]) == list(want["date"])
    assert list(got["campaign"]) == list(want["campaign"])
    np.testing.assert_allclose(got["spend"], want["spend"], rtol=0, atol=1e-9)
    for c in ("impressions", "clicks") + (("conversions",) if conversions else ()):
        np.testing.assert_array_equal(got[c].to_numpy(), want[c].to_numpy())


# --- each format reads ------------------------------------------------------------------------------


def test_plain_daily_csv_one_campaign(tmp_path, truth, capsys):
    one = truth[truth["campaign"] == "Brand search"]
    path = write_rows(tmp_path / "plain.csv", [["date", "spend", "impressions", "clicks", "conversions"]]
                      + [[f"{r.date:%Y-%m-%d}", f"{r.spend:.2f}", r.impressions, r.clicks, r.conversions] for r in one.itertuples()])
    account = read_account(path)
    assert_same(account, one.assign(campaign=ONE_CAMPAIGN), campaigns=True)
    assert account.kind == "plain daily CSV" and account.campaigns == (ONE_CAMPAIGN,)
    frame = account.funnel_frame()
    assert list(frame.columns) == ["date", "spend", "impressions", "clicks", "acquisitions", "holiday"]
    out = capsys.readouterr().out  # the one printed table: what was found and how it was read
    for text in ("plain daily CSV", "found in the file", "'spend'", "decimal '.'", "1 campaign(s)"):
        assert text in out


def test_meta_ads_manager_daily_export(tmp_path, truth, capsys):
    header = ["Reporting starts", "Reporting ends", "Campaign name", "Ad set name", "Amount spent (EUR)", "Impressions", "Reach",
              "Clicks (all)", "Link clicks", "Results", "Result indicator"]
    rows = [header]
    for r in truth.itertuples():  # two ad sets per campaign: the reader sums them per day and campaign
        day = f"{r.date:%Y-%m-%d}"
        half = round(r.spend / 2, 2)
        for part, (s, i, c, v) in enumerate([(half, r.impressions // 2, r.clicks // 2, r.conversions // 2),
                                             (round(r.spend - half, 2), r.impressions - r.impressions // 2, r.clicks - r.clicks // 2,
                                              r.conversions - r.conversions // 2)]):
            rows.append([day, day, r.campaign, f"set {part}", f"{s:,.2f}", f"{i:,d}", f"{i // 2:,d}", f"{c + 5:,d}", f"{c:,d}",
                         str(v) if v else "", "actions:offsite_conversion"])
    path = write_rows(tmp_path / "meta.csv", rows)
    assert '"1,' in path.read_text()  # amounts quoted with thousands separators, as Ads Manager writes them
    account = read_account(path)
    assert_same(account, truth)
    assert account.kind == "Meta Ads Manager daily export" and account.currency == "EUR"
    out = capsys.readouterr().out
    assert "'Link clicks'" in out and "'Results'" in out and "summed per day and campaign" in out and "'Clicks (all)'" in out


def test_meta_export_without_the_daily_breakdown_is_refused(tmp_path, truth):
    rows = [["Reporting starts", "Reporting ends", "Campaign name", "Amount spent (USD)", "Impressions", "Link clicks", "Results"]]
    for name, g in truth.groupby("campaign"):
        rows.append(["2026-09-01", "2026-10-30", name, f"{g.spend.sum():,.2f}", g.impressions.sum(), g.clicks.sum(), g.conversions.sum()])
    path = write_rows(tmp_path / "meta_total.csv", rows)
    with pytest.raises(DataValidationError) as e:
        read_account(path, verbose=False)
    msg = str(e.value)
    assert str(path) in msg and "'Reporting ends'" in msg and "data row 1 (CSV line 2)" in msg
    assert "Breakdown > By time > Day" in msg


def test_google_ads_report_with_title_rows_totals_us_dates_and_fractional_conversions(tmp_path, truth, capsys):
    rows = [["Campaign report"], ["September 1, 2026 - October 30, 2026"],
            ["Day", "Campaign", "Campaign status", "Currency code", "Impr.", "Clicks", "Cost", "Conversions", "Cost / conv."]]
    for r in truth.itertuples():
        rows.append([f"{r.date:%m/%d/%Y}", r.campaign, "Enabled", "USD", f"{r.impressions:,d}", f"{r.clicks:,d}", f"{r.spend:,.2f}",
                     f"{r.conversions + 0.4:.2f}", "1.00"])
    rows += [["Total: Account", "", "", "USD", "1", "1", "1.00", "1.00", "--"], ["Total: Search", "", "", "USD", "1", "1", "1.00", "1.00", "--"]]
    path = write_rows(tmp_path / "google.csv", rows)
    account = read_account(path)
    assert_same(account, truth)  # conversions + 0.4 rounded back to whole ones
    assert account.kind == "Google Ads report" and account.currency == "USD"
    out = capsys.readouterr().out
    assert "%m/%d/%Y" in out and "skipped 2 line(s)" in out and "dropped 2 summary row(s)" in out and "rounded" in out


def test_google_ads_utf16_tab_separated_excel_csv(tmp_path, truth):
    rows = [["Campaign report"], ["All time"], ["Day", "Campaign", "Impr.", "Clicks", "Cost", "Conversions"]]
    rows += [[f"{r.date:%Y-%m-%d}", r.campaign, r.impressions, r.clicks, f"{r.spend:.2f}", r.conversions] for r in truth.itertuples()]
    path = write_rows(tmp_path / "google_excel.csv", rows, delimiter="\t", encoding="utf-16")
    assert_same(read_account(path, verbose=False), truth)


def test_german_export_semicolons_decimal_commas(tmp_path, truth, capsys):
    def de(x, decimals):  # 1234.5 -> "1.234,50"
        return f"{x:,.{decimals}f}".replace(",", "_").replace(".", ",").replace("_", ".")

    rows = [["Tag", "Kampagnenname", "Ausgegebener Betrag (EUR)", "Impressionen", "Link-Klicks", "Ergebnisse"]]
    rows += [[f"{r.date:%d.%m.%Y}", r.campaign, de(r.spend, 2), de(r.impressions, 0), de(r.clicks, 0), r.conversions] for r in truth.itertuples()]
    path = write_rows(tmp_path / "de.csv", rows, delimiter=";")
    account = read_account(path)
    assert_same(account, truth)
    assert account.kind == "localised export (German)" and account.currency == "EUR"
    out = capsys.readouterr().out
    assert "decimal ','" in out and "thousands '.'" in out and "separator ';'" in out


def test_a_column_mapping_reads_anything_else_and_its_absence_names_what_to_map(tmp_path, truth):
    one = truth[truth["campaign"] == "Prospecting"]
    rows = [["Datum", "Verbrauchtes Budget", "Sichtkontakte", "Klicks"]]
    rows += [[f"{r.date:%Y-%m-%d}", f"{r.spend:.2f}", r.impressions, r.clicks] for r in one.itertuples()]
    path = write_rows(tmp_path / "custom.csv", rows)
    with pytest.raises(DataValidationError) as e:
        read_account(path, verbose=False)
    msg = str(e.value)
    assert "no column for spend, impressions" in msg and "columns={" in msg and "--column" in msg and "CSV line 1" in msg
    account = read_account(path, columns={"Verbrauchtes Budget": "spend", "Sichtkontakte": "impressions"}, verbose=False)
    assert_same(account, one.assign(campaign=ONE_CAMPAIGN), conversions=False)
    assert not account.has_conversions and account.kind == "export read with your column mapping"
    with pytest.raises(ValueError, match="unknown names"):
        read_account(path, columns={"Sichtkontakte": "views"}, verbose=False)


def test_ambiguous_numbers_are_refused_until_the_decimal_mark_is_given(tmp_path, truth):
    one = truth[truth["campaign"] == "Brand search"]
    rows = [["date", "spend", "impressions", "clicks"]]
    rows += [[f"{r.date:%Y-%m-%d}", f"{int(r.spend):,d}", r.impressions, r.clicks] for r in one.itertuples()]  # "1,234": 1234 or 1.234?
    path = write_rows(tmp_path / "ambiguous.csv", rows)
    with pytest.raises(DataValidationError) as e:
        read_account(path, verbose=False)
    msg = str(e.value)
    assert "column 'spend', data row 1" in msg and "decimal='.'" in msg and "--decimal" in msg
    account = read_account(path, decimal=".", verbose=False)
    np.testing.assert_allclose(account.daily["spend"], one["spend"].astype(int).to_numpy())


def test_day_first_or_month_first_dates_are_told_apart_by_consecutive_days(tmp_path, truth):
    one = truth[truth["campaign"] == "Brand search"]
    rows = [["date", "spend", "impressions", "clicks"]] + [[f"{r.date:%d/%m/%Y}", f"{r.spend:.2f}", r.impressions, r.clicks] for r in one.itertuples()]
    account = read_account(write_rows(tmp_path / "eu_dates.csv", rows), verbose=False)
    assert list(account.daily["date"]) == list(one["date"])


# --- each named bad input is refused, naming file, column and row ------------------------------------


def plain(tmp_path, truth, edit=None, name="bad.csv", campaigns=True):
    df = truth.copy() if campaigns else truth[truth["campaign"] == "Brand search"].copy()
    df = df.sort_values(["date", "campaign"]).reset_index(drop=True)
    if edit:
        df = edit(df)
    rows = [["date", "campaign", "spend", "impressions", "clicks", "conversions"]]
    rows += [[f"{r.date:%Y-%m-%d}", r.campaign, f"{r.spend:.2f}", r.impressions, r.clicks, r.conversions] for r in df.itertuples()]
    return write_rows(tmp_path / name, rows)


def refused(path, *parts, **kwargs):
    with pytest.raises(DataValidationError) as e:
        read_account(path, verbose=False, **kwargs)
    msg = str(e.value)
    assert msg.startswith(str(path)), msg
    for part in parts:
        assert part in msg, msg
    return msg


def test_negative_spend(tmp_path, truth):
    path = plain(tmp_path, truth, lambda d: d.assign(spend=np.where(d.index == 5, -3.5, d.spend)))
    refused(path, "column 'spend', data row 6 (CSV line 7)", "must not be negative", "'-3.50'")


def test_clicks_above_impressions(tmp_path, truth):
    path = plain(tmp_path, truth, lambda d: d.assign(clicks=np.where(d.index == 9, d.impressions + 1, d.clicks)))
    refused(path, "column 'clicks', data row 10 (CSV line 11)", "greater than impressions")


def test_conversions_above_clicks(tmp_path, truth):
    path = plain(tmp_path, truth, lambda d: d.assign(conversions=np.where(d.index == 3, d.clicks + 2, d.conversions)))
    refused(path, "column 'conversions', data row 4 (CSV line 5)", "greater than clicks")


def test_duplicated_days(tmp_path, truth):
    path = plain(tmp_path, truth, lambda d: pd.concat([d.iloc[:12], d.iloc[[10]], d.iloc[12:]], ignore_index=True))
    refused(path, "column 'date', data row 13 (CSV line 14)", "duplicated day 2026-09-06", "'Brand search'", "first at data row 11")


def test_missing_days_are_refused_or_filled_only_when_asked(tmp_path, truth):
    gap = pd.Timestamp("2026-09-20")
    path = plain(tmp_path, truth, lambda d: d[~((d.date == gap) & (d.campaign == "Prospecting"))])
    refused(path, "column 'date'", "day 2026-09-20 is missing for campaign 'Prospecting'", "fill_missing=True", "--fill-missing")
    account = read_account(path, fill_missing=True, verbose=False)
    row = account.daily[(account.daily.date == gap) & (account.daily.campaign == "Prospecting")]
    assert len(row) == 1 and row["spend"].iloc[0] == 0 and not row["active"].iloc[0]
    assert not account.channel_data().active[(account.dates == gap).argmax(), 1]


def test_mixed_currencies(tmp_path, truth):
    rows = [["Day", "Campaign", "Currency code", "Impr.", "Clicks", "Cost"]]
    rows += [[f"{r.date:%Y-%m-%d}", r.campaign, "EUR" if i == 30 else "USD", r.impressions, r.clicks, f"{r.spend:.2f}"]
             for i, r in enumerate(truth.itertuples())]
    refused(write_rows(tmp_path / "currencies.csv", rows), "column 'Currency code', data row 31 (CSV line 32)", "mixed currencies")
    rows = [["date", "Amount spent (USD)", "Amount spent (EUR)", "impressions", "clicks"], ["2026-09-01", "1", "1", "1", "1"]]
    refused(write_rows(tmp_path / "currencies2.csv", rows), "mixed currencies", "'Amount spent (USD)'")


def test_fewer_days_than_the_model_needs(tmp_path, truth):
    path = plain(tmp_path, truth, lambda d: d[d.date < pd.Timestamp(START) + pd.Timedelta(days=30)])
    refused(path, "column 'date'", "30 days with spend", f"needs at least {MIN_DAYS}", "14 held out")


def test_unreadable_cells(tmp_path, truth):
    path = plain(tmp_path, truth, lambda d: d.assign(impressions=np.where(d.index == 7, "n/a", d.impressions.astype(str))))
    refused(path, "column 'impressions', data row 8 (CSV line 9)", "cannot read 'n/a' as a number")
    path = plain(tmp_path, truth, name="dates.csv")
    path.write_text(path.read_text().replace("2026-09-03", "3rd Sept"))
    refused(path, "column 'date', data row 5 (CSV line 6)", "cannot read '3rd Sept' as a date", "date_format=")


def test_a_budget_below_what_the_account_ever_spent_in_a_day(tmp_path, truth):
    account = read_account(plain(tmp_path, truth), verbose=False)
    daily = truth.groupby("date")["spend"].sum()
    low = daily.min() * 31
    account.check_budget(low * 1.01, "2026-12")  # just above: fine
    with pytest.raises(DataValidationError) as e:
        account.check_budget(low * 0.99, "2026-12")
    msg = str(e.value)
    assert f"{daily.idxmin():%Y-%m-%d}" in msg and "column 'spend'" in msg and "never seen spend that low" in msg
    assert f"{np.ceil(low):,.0f}" in msg


# --- the shipped sample export ------------------------------------------------------------------------


def test_the_sample_export_is_what_its_maker_writes_and_reads_as_meta(tmp_path):
    out = tmp_path / "sample.csv"
    subprocess.run([sys.executable, str(ROOT / "tools" / "make-sample-export"), "--out", str(out)], check=True, capture_output=True)
    shipped = ROOT / "data" / "sample_meta_export.csv"
    assert out.read_bytes() == shipped.read_bytes(), "data/sample_meta_export.csv differs from what tools/make-sample-export writes"
    account = read_account(shipped, verbose=False)
    assert account.kind == "Meta Ads Manager daily export" and len(account.dates) == 120 and account.has_conversions
    from helpers.data import load_daily

    course = load_daily().tail(120).reset_index(drop=True)
    np.testing.assert_allclose(account.daily["spend"], course["spend"])
    np.testing.assert_array_equal(account.funnel_frame()["holiday"], course["holiday"])
