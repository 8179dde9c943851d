"""Your own ad account: a daily export read, checked and explained (notebook 07, ``helpers.plan``).

    account = read_account("my_export.csv")      # prints one table: what it found, how it read it
    account.daily                                # one row per (day, campaign), canonical columns
    account.funnel_frame()                       # one campaign: what helpers.bayes.fit_funnel takes
    account.channel_data()                       # several: helpers.bayes.ChannelData (notebook 06's model)

:func:`read_account` reads a plain daily CSV, Meta Ads Manager and Google Ads daily exports and
localised ones (one small alias table per format, :data:`ALIASES`; anything else through a
``columns=`` mapping), infers the separator, number and date formats from the whole file (never
guessing when two read the same cells differently), and refuses bad input with
:class:`helpers.data.DataValidationError` naming the file, the column and the row.
:meth:`Account.check_budget` refuses a monthly budget below what the account ever spent in a day.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.data import DataValidationError, holiday_flags

#: The columns a reader maps a file onto.
CANONICAL = ("date", "campaign", "spend", "impressions", "clicks", "conversions")
REQUIRED = ("date", "spend", "impressions", "clicks")
#: Days with spend the model needs: 6 weeks to fit (weekends and weekdays several times over) and
#: the 2 held-out weeks on which the fit is checked before it may plan (``helpers.plan``).
HOLDOUT_DAYS = 14
MIN_DAYS = 42 + HOLDOUT_DAYS
#: The campaign name of an export without a campaign column.
ONE_CAMPAIGN = "all campaigns"

#: Header aliases (lower case, currency stripped) -> (canonical name, the format they belong to).
#: Within a canonical name the FIRST alias found wins (Meta's "Link clicks" over "Clicks (all)").
ALIASES: dict[str, list[tuple[str, str]]] = {
    "date": [("date", "plain"), ("day", "Meta/Google"), ("reporting starts", "Meta"), ("tag", "German"), ("datum", "German"),
             ("berichtsbeginn", "German"), ("fecha", "Spanish"), ("día", "Spanish"), ("inicio del informe", "Spanish"),
             ("jour", "French"), ("date de début", "French"), ("début des rapports", "French")],
    "reporting_ends": [("reporting ends", "Meta"), ("berichtsende", "German"), ("fin del informe", "Spanish"),
                       ("fin des rapports", "French"), ("date de fin", "French")],
    "campaign": [("campaign", "plain"), ("campaign name", "Meta"), ("kampagne", "German"), ("kampagnenname", "German"),
                 ("name der kampagne", "German"), ("campaña", "Spanish"), ("nombre de la campaña", "Spanish"),
                 ("campagne", "French"), ("nom de la campagne", "French")],
    "spend": [("spend", "plain"), ("amount spent", "Meta"), ("cost", "Google"), ("ausgegebener betrag", "German"),
              ("kosten", "German"), ("importe gastado", "Spanish"), ("coste", "Spanish"), ("costo", "Spanish"),
              ("montant dépensé", "French"), ("coût", "French")],
    "impressions": [("impressions", "plain"), ("impr.", "Google"), ("impressionen", "German"), ("impr", "Google"),
                    ("impresiones", "Spanish")],
    "clicks": [("link clicks", "Meta"), ("link-klicks", "German"), ("klicks auf link", "German"), ("clics en el enlace", "Spanish"),
               ("clics sur un lien", "French"), ("clicks", "plain"), ("klicks", "German"), ("clics", "Spanish")],
    "conversions": [("conversions", "plain"), ("acquisitions", "plain"), ("results", "Meta"), ("conv.", "Google"),
                    ("ergebnisse", "German"), ("konversionen", "German"), ("conversiones", "Spanish"), ("resultados", "Spanish"),
                    ("résultats", "French")],
    "currency": [("currency", "plain"), ("currency code", "Google"), ("währung", "German"), ("währungscode", "German"),
                 ("moneda", "Spanish"), ("devise", "French")],
}
#: Date headers that start a reporting range (checked against its end: one row must be one day).
RANGE_STARTS = ("reporting starts", "berichtsbeginn", "inicio del informe", "date de début", "début des rapports")
#: Columns below the campaign (ad sets, ads): their rows are summed per (day, campaign).
SUB_CAMPAIGN = ("ad set name", "ad name", "ad group", "ad set", "anzeigengruppe", "werbeanzeigengruppe", "anzeigenname",
                "conjunto de anuncios", "nombre del anuncio", "ensemble de publicités", "nom de la publicité")
#: First cells of summary rows (Google Ads' "Total: Account", ...): dropped.
TOTAL_PREFIXES = ("total", "gesamt", "totales", "totaux", "summe")
EMPTY = ("", "-", "--", "—")
SEPARATORS = (",", ";", "\t")
DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%Y/%m/%d", "%d-%m-%Y", "%b %d, %Y", "%Y%m%d")
NUMBER_FORMATS = {  # decimal mark -> (thousands separator, pattern of a cell once spaces are gone)
    ".": (",", re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$|^[+-]?\.\d+$")),
    ",": (".", re.compile(r"^[+-]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?$|^[+-]?,\d+$")),
}
_CURRENCY_IN_HEADER = re.compile(r"^(.*?)\s*[(\[]\s*([A-Za-z]{3})\s*[)\]]$")
_SYMBOLS = re.compile(r"[\s\u00a0\u202f$€£¥₹₩₱]|(?<![A-Za-z])[A-Z]{3}(?![A-Za-z])")


def _normalise(header: str) -> tuple[str, str | None]:
    """``"Amount spent (USD)"`` -> ``("amount spent", "USD")``; other headers -> (lower case, None)."""
    h = " ".join(header.strip().split())
    m = _CURRENCY_IN_HEADER.match(h)
    return (m.group(1).lower(), m.group(2).upper()) if m else (h.lower(), None)


@dataclass
class Account:
    """A daily export, read and checked. ``daily``: one row per (day, campaign), columns ``date,
    campaign, spend, impressions, clicks, conversions`` (NaN when the file has none), ``active``
    (spend > 0), ``row``/``line`` (where it came from; NaN for filled days)."""

    path: Path
    kind: str
    daily: pd.DataFrame
    currency: str | None
    report: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def campaigns(self) -> tuple[str, ...]:
        return tuple(pd.unique(self.daily["campaign"]))

    @property
    def dates(self) -> pd.DatetimeIndex:
        return pd.date_range(self.daily["date"].min(), self.daily["date"].max(), freq="D")

    @property
    def has_conversions(self) -> bool:
        return bool(self.daily["conversions"].notna().all())

    def __str__(self) -> str:
        head = (f"{self.path}: read as a {self.kind}; {len(self.dates)} days {self.dates[0]:%Y-%m-%d}..{self.dates[-1]:%Y-%m-%d}, "
                f"{len(self.campaigns)} campaign(s), currency {self.currency or 'not stated'}")
        return "\n".join([head, self.report.to_string(index=False), *self.notes])

    def totals(self) -> pd.DataFrame:
        """Per day, summed over campaigns: ``spend, impressions, clicks, conversions``."""
        return self.daily.groupby("date")[["spend", "impressions", "clicks", "conversions"]].sum(min_count=1)

    def funnel_frame(self, country: str = "ID") -> pd.DataFrame:
        """The days with spend as the funnel model's frame: ``date, spend, impressions, clicks,
        acquisitions, holiday`` (``country``'s public holidays; the course's simulator uses Indonesia's)."""
        if len(self.campaigns) != 1:
            raise ValueError(f"{self.path}: {len(self.campaigns)} campaigns; the funnel model takes one (use channel_data())")
        d = self.daily[self.daily["active"]]
        return pd.DataFrame({"date": d["date"].to_numpy(), "spend": d["spend"].to_numpy(), "impressions": d["impressions"].to_numpy(),
                             "clicks": d["clicks"].to_numpy(), "acquisitions": d["conversions"].fillna(0).to_numpy(np.int64),
                             "holiday": holiday_flags(d["date"], country)})

    def channel_data(self):
        """All days x campaigns as :class:`helpers.bayes.ChannelData` (days without spend inactive)."""
        from helpers.bayes import ChannelData

        wide = self.daily.pivot(index="date", columns="campaign").reindex(self.dates)
        names = list(self.campaigns)
        col = lambda name, fill, dtype: wide[name][names].fillna(fill).to_numpy(dtype=dtype)  # noqa: E731
        return ChannelData(self.dates, tuple(names), col("active", False, bool), col("spend", 0.0, float),
                           col("impressions", 0, np.int64), col("clicks", 0, np.int64))

    def check_budget(self, budget: float, month: str) -> None:
        """Refuse a monthly ``budget`` whose even daily pace is below the least the account ever spent
        in a day (summed over campaigns): the model has never seen spend that low."""
        days = pd.Period(month, "M").days_in_month
        per_day = self.totals()["spend"]
        per_day = per_day[per_day > 0]
        low_day = per_day.idxmin()
        if not (np.isfinite(budget) and budget > 0):
            raise ValueError(f"the budget must be a positive number, got {budget!r}")
        if budget / days < per_day.min():
            rows = self.daily.loc[(self.daily["date"] == low_day) & self.daily["active"], ["row", "line"]].iloc[0]
            raise DataValidationError(
                self.path,
                f"a budget of {budget:,.2f} for {month} is {budget / days:,.2f} a day, below the least this account ever spent in a day "
                f"({per_day.min():,.2f} on {low_day:%Y-%m-%d}): the model has never seen spend that low, so it cannot say what it "
                f"buys. Plan at least {np.ceil(per_day.min() * days):,.0f} for {month}.",
                column=self._column_of("spend"), row=int(rows["row"]), line=int(rows["line"]))

    def _column_of(self, canonical: str) -> str:
        hit = self.report.loc[self.report["column"] == canonical, "found in the file"]
        return str(hit.iloc[0]).strip("'") if len(hit) else canonical


class _Cells:
    """The raw cells of the export (strings) from its header on, with each data row's CSV line."""

    def __init__(self, path: Path, columns: dict[str, str] | None):
        self.path = path
        raw = path.read_bytes()
        encoding = "utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"  # Google's "Excel CSV" is UTF-16
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as e:
            raise DataValidationError(path, f"cannot read the file as text ({encoding}): {e}; save it as UTF-8 CSV") from None
        lines = text.splitlines()
        if not text.strip():
            raise DataValidationError(path, "the file is empty; expected a header line (date, spend, impressions, clicks, ...) and data rows")
        self.user = {k.strip(): v for k, v in (columns or {}).items()}
        bad = {k: v for k, v in self.user.items() if v not in CANONICAL}
        if bad:
            raise ValueError(f"columns=: {bad} map to unknown names; each value must be one of {', '.join(CANONICAL)}")
        best = (0, None, None)  # (matches, line index, separator)
        for i, line in enumerate(lines[:30]):
            for sep in SEPARATORS:
                fields = next(csv.reader([line], delimiter=sep), [])
                n = len({self.canonical(f)[0] for f in fields} - {None})
                if n > best[0]:
                    best = (n, i, sep)
            if best[0] >= 3:
                break
        if best[0] < 2:
            raise DataValidationError(path, "found no header line in the first 30 lines: expected columns such as date (or Day), "
                                            "spend (or Amount spent, Cost), impressions and clicks; map yours with columns={...}",
                                      line=1)
        _, self.header_index, self.sep = best
        self.skipped = [ln for ln in lines[: self.header_index] if ln.strip()]
        reader = csv.reader(io.StringIO("\n".join(lines[self.header_index:])), delimiter=self.sep)
        self.header = [h.strip() for h in next(reader)]
        records, self.lines, self.totals = [], [], []
        for record in reader:
            if not any(f.strip() for f in record):
                continue
            line = reader.line_num + self.header_index
            first = next((f.strip().lower() for f in record if f.strip()), "")
            if first.startswith(TOTAL_PREFIXES):
                self.totals.append(first)
                continue
            if len(record) != len(self.header):
                raise DataValidationError(path, f"expected {len(self.header)} fields separated by {self.sep!r}, found {len(record)}",
                                          row=len(records) + 1, line=line)
            records.append([f.strip() for f in record])
            self.lines.append(line)
        if not records:
            raise DataValidationError(path, "the file has a header but no data rows")
        self.cells = pd.DataFrame(records, columns=range(len(self.header)), dtype=object)

    def canonical(self, header: str) -> tuple[str | None, str | None, str | None]:
        """``(canonical name, format, currency)`` of one header, or ``(None, None, currency)``."""
        if header.strip() in self.user:
            return self.user[header.strip()], "your mapping", _normalise(header)[1]
        name, currency = _normalise(header)
        for canon, aliases in ALIASES.items():
            for alias, fmt in aliases:
                if name == alias:
                    return canon, fmt, currency
        return None, None, currency

    def fail(self, i: int, column: str, problem: str):
        raise DataValidationError(self.path, problem, column=column, row=i + 1, line=self.lines[i])


def _read_numbers(cells: _Cells, cols: dict[str, int], decimal: str | None) -> tuple[dict[str, pd.Series], str, int]:
    """The numeric columns as floats, the decimal mark used, and how many empty cells were read as 0."""
    raw = {c: cells.cells[j].map(lambda s: _SYMBOLS.sub("", s)) for c, j in cols.items()}
    empty = {c: s.isin(EMPTY) for c, s in raw.items()}
    counts = [c for c in ("impressions", "clicks") if c in raw]
    readings = {}
    for mark in ([decimal] if decimal else list(NUMBER_FORMATS)):
        thousands, pattern = NUMBER_FORMATS[mark]
        ok = all((empty[c] | s.str.match(pattern)).all() for c, s in raw.items())
        if not ok:
            continue
        values = {c: pd.to_numeric(s.where(~empty[c], "0").str.replace(thousands, "", regex=False).str.replace(mark, ".", regex=False))
                  for c, s in raw.items()}
        if all((values[c] == np.floor(values[c])).all() for c in counts):
            readings[mark] = values
    if not readings:  # name the first cell no format reads
        for c, s in raw.items():
            bad = ~empty[c] & ~s.str.match(NUMBER_FORMATS[decimal or "."][1]) & ~s.str.match(NUMBER_FORMATS[decimal or ","][1])
            if bad.any():
                cells.fail(int(np.flatnonzero(bad)[0]), cells.header[cols[c]], f"cannot read {cells.cells[cols[c]][bad].iloc[0]!r} as a number")
        c = counts[0]
        cells.fail(0, cells.header[cols[c]], f"{c} must be whole numbers (counts) whichever the decimal mark; check the column mapping")
    if len(readings) == 2:
        a, b = readings["."], readings[","]
        for c in raw:
            differ = ~np.isclose(a[c], b[c])
            if differ.any():
                i = int(np.flatnonzero(differ)[0])
                cells.fail(i, cells.header[cols[c]],
                           f"{cells.cells[cols[c]].iloc[i]!r} reads as {a[c].iloc[i]:,} with a decimal point and as {b[c].iloc[i]:,} with a "
                           "decimal comma: say which, decimal='.' or decimal=',' (command line: --decimal)")
    mark = "." if "." in readings else ","
    return readings[mark], mark, int(sum(e.sum() for e in empty.values()))


def _read_dates(cells: _Cells, j: int, campaign: pd.Series, date_format: str | None) -> tuple[pd.Series, str]:
    raw = cells.cells[j]
    tried = {}
    for fmt in ([date_format] if date_format else DATE_FORMATS):
        parsed = pd.to_datetime(raw, format=fmt, errors="coerce")
        tried[fmt] = parsed
    full = {f: p for f, p in tried.items() if p.notna().all()}
    if not full:
        fmt, best = max(tried.items(), key=lambda kv: kv[1].notna().sum())
        i = int(np.flatnonzero(best.isna())[0])
        cells.fail(i, cells.header[j], f"cannot read {raw.iloc[i]!r} as a date" + (f" in the format {fmt!r}" if date_format else
                   f" (tried {', '.join(DATE_FORMATS)}); pass date_format= (command line: --date-format)"))

    def spread(p):  # the largest gap between a campaign's consecutive dates: 1 day when the format is right
        return max(int(g.sort_values().diff().dt.days.max()) if len(g) > 1 else 1 for _, g in p.groupby(campaign.to_numpy()))

    distinct = {}
    for f, p in full.items():
        if not any(p.equals(q) for q in distinct.values()):
            distinct[f] = p
    if len(distinct) > 1:
        gaps = {f: spread(p) for f, p in distinct.items()}
        best = min(gaps.values())
        winners = [f for f, g in gaps.items() if g == best]
        if len(winners) > 1:
            a, b = (distinct[w] for w in winners[:2])
            i = int(np.flatnonzero((a != b).to_numpy())[0])
            cells.fail(i, cells.header[j], f"{raw.iloc[i]!r} reads as a date both as {winners[0]!r} and as {winners[1]!r}: "
                                           "pass date_format= (command line: --date-format)")
        distinct = {winners[0]: distinct[winners[0]]}
    fmt = next(iter(distinct))
    return distinct[fmt].astype("datetime64[ns]"), fmt


def read_account(path: str | os.PathLike, *, columns: dict[str, str] | None = None, decimal: str | None = None,
                 date_format: str | None = None, fill_missing: bool = False, min_days: int = MIN_DAYS,
                 verbose: bool = True) -> Account:
    """Read a daily ad-account export; print what was found (one table) unless ``verbose=False``.

    What it reads:

    * a plain daily CSV: ``date, spend, impressions, clicks`` and optional ``conversions``, ``campaign``;
    * Meta Ads Manager daily exports: ``Day`` or ``Reporting starts``/``Reporting ends``, ``Campaign
      name``, ``Amount spent (USD)`` (any ISO currency in the header), ``Impressions``, ``Link clicks``,
      ``Results``; amounts quoted with thousands separators (``"1,234.56"``). An export with one row
      per campaign for the whole range (no daily breakdown) is refused, saying how to export by day;
    * Google Ads reports: a title row and a date-range row before the header, ``Day``, ``Campaign``,
      ``Impr.``, ``Clicks``, ``Cost``, ``Conversions``; ``Total: ...`` rows at the end are dropped;
      US dates (MM/DD/YYYY); fractional conversions (data-driven attribution) are rounded;
    * localised exports (``;`` or tab separators, decimal commas, German, Spanish or French headers),
      read when unambiguous, otherwise one message naming what to pass;
    * anything else through ``columns={"Verbrauchtes Budget": "spend", ...}`` (the file's header ->
      one of :data:`CANONICAL`), and ``decimal=``/``date_format=`` when numbers or dates are ambiguous.

    The separator, the number format (decimal mark and thousands separator, one per file) and the
    date format are inferred from the whole file: a candidate is kept only if every cell reads under
    it (and the counts are whole numbers), and when two candidates read the same cells differently
    the reader stops and names the cell, never guesses. pandas converts the cells once the format is known.

    Every problem raises :class:`helpers.data.DataValidationError` naming the file, the column and
    the data row (and CSV line): a missing column, unreadable cells, negative spend, clicks above
    impressions, conversions above clicks, a (day, campaign) twice, mixed currencies, missing days
    (unless ``fill_missing``), fewer days than the model needs (``min_days``).

    Args:
        columns: the file's header -> a name of :data:`CANONICAL`, for headers the aliases miss.
        decimal: ``"."`` or ``","`` when the file's numbers are ambiguous (the error says so).
        date_format: a ``strftime`` format when the dates are ambiguous (e.g. ``"%d/%m/%Y"``).
        fill_missing: read days missing from the export as days without spend (default: refuse).
        min_days: refuse fewer days with spend than this (:data:`MIN_DAYS`, what the model needs).
    """
    path = Path(path)
    if decimal not in (None, ".", ","):
        raise ValueError(f"decimal must be '.' or ',', got {decimal!r}")
    cells = _Cells(path, columns)
    found: dict[str, tuple[int, str]] = {}  # canonical -> (column index, format)
    currencies: dict[str, str] = {}
    sub = [j for j, h in enumerate(cells.header) if _normalise(h)[0] in SUB_CAMPAIGN]
    for canon in (*CANONICAL, "reporting_ends", "currency"):
        hits = [(j, cells.canonical(h)) for j, h in enumerate(cells.header)]
        hits = [(j, fmt) for j, (c, fmt, _) in hits if c == canon]
        if canon in ALIASES and len(hits) > 1:  # the first alias in ALIASES order wins
            order = [a for a, _ in ALIASES[canon]]
            hits.sort(key=lambda h: order.index(_normalise(cells.header[h[0]])[0]) if _normalise(cells.header[h[0]])[0] in order else -1)
        if hits:
            found[canon] = hits[0]
        for j, _ in hits:
            cur = cells.canonical(cells.header[j])[2]
            if cur and canon == "spend":
                currencies[cells.header[j]] = cur
    missing = [c for c in REQUIRED if c not in found]
    if missing:
        raise DataValidationError(path, f"no column for {', '.join(missing)} among the headers {cells.header}; map yours, e.g. "
                                        f"columns={{{cells.header[-1]!r}: {missing[0]!r}}} (command line: --column "
                                        f"'{cells.header[-1]}={missing[0]}')", column=", ".join(missing), line=cells.header_index + 1)
    if len(set(currencies.values())) > 1:
        raise DataValidationError(path, f"mixed currencies in the spend columns {currencies}: export one currency", column=", ".join(currencies),
                                  line=cells.header_index + 1)
    currency = next(iter(currencies.values()), None)
    if "currency" in found:
        cur = cells.cells[found["currency"][0]].str.upper()
        if cur.nunique() > 1:
            i = int(np.flatnonzero((cur != cur.iloc[0]).to_numpy())[0])
            cells.fail(i, cells.header[found["currency"][0]], f"mixed currencies: {cur.iloc[i]} here, {cur.iloc[0]} on data row 1; export one currency")
        if currency and cur.iloc[0] != currency:
            cells.fail(0, cells.header[found["currency"][0]], f"currency {cur.iloc[0]} differs from the spend header's {currency}")
        currency = currency or cur.iloc[0]
    campaign = cells.cells[found["campaign"][0]] if "campaign" in found else pd.Series([ONE_CAMPAIGN] * len(cells.cells))
    for i in np.flatnonzero((campaign == "").to_numpy()):
        cells.fail(int(i), cells.header[found["campaign"][0]], "empty campaign name")
    dates, date_fmt = _read_dates(cells, found["date"][0], campaign, date_format)
    if "reporting_ends" in found and _normalise(cells.header[found["date"][0]])[0] in RANGE_STARTS:
        ends, _ = _read_dates(cells, found["reporting_ends"][0], campaign, date_fmt)
        for i in np.flatnonzero((ends != dates).to_numpy()):
            cells.fail(int(i), cells.header[found["reporting_ends"][0]],
                       f"this row covers {dates.iloc[i]:%Y-%m-%d}..{ends.iloc[i]:%Y-%m-%d}, not one day: the export has no daily breakdown. "
                       "In Ads Manager choose Breakdown > By time > Day, then export again")
    numeric = {c: found[c][0] for c in ("spend", "impressions", "clicks", "conversions") if c in found}
    values, mark, n_empty = _read_numbers(cells, numeric, decimal)
    head = lambda c: cells.header[numeric[c]]  # noqa: E731
    for c in numeric:
        for i in np.flatnonzero((values[c] < 0).to_numpy()):
            cells.fail(int(i), head(c), f"{c} must not be negative, found {cells.cells[numeric[c]].iloc[i]!r}")
    notes = []
    if "conversions" in values and (values["conversions"] != values["conversions"].round()).any():
        notes.append(f"fractional conversions in {head('conversions')!r} (data-driven attribution) rounded to whole ones")
        values["conversions"] = values["conversions"].round()
    frame = pd.DataFrame({"date": dates, "campaign": campaign.astype(str), **{c: v.to_numpy() for c, v in values.items()},
                          "row": np.arange(1, len(dates) + 1), "line": cells.lines})
    if "conversions" not in frame:
        frame["conversions"] = np.nan
    if sub:
        frame = frame.groupby(["date", "campaign"], sort=False, as_index=False).agg(
            {"spend": "sum", "impressions": "sum", "clicks": "sum", "conversions": "sum", "row": "first", "line": "first"})
        notes.append(f"rows of {', '.join(repr(cells.header[j]) for j in sub)} summed per day and campaign")
    dup = frame.duplicated(["date", "campaign"], keep="first").to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        first = frame[(frame["date"] == frame["date"].iloc[i]) & (frame["campaign"] == frame["campaign"].iloc[i])]["row"].iloc[0]
        cells.fail(i, cells.header[found["date"][0]], f"duplicated day {frame['date'].iloc[i]:%Y-%m-%d} for campaign "
                                                      f"{frame['campaign'].iloc[i]!r} (first at data row {first})")
    checks = [("clicks", "impressions")] + ([("conversions", "clicks")] if "conversions" in values else [])
    for small, big in checks:
        for i in np.flatnonzero((frame[small] > frame[big]).to_numpy()):
            r = frame.iloc[i]
            raise DataValidationError(path, f"{small} ({r[small]:,.0f}) greater than {big} ({r[big]:,.0f}) on the same row",
                                      column=head(small), row=int(r["row"]), line=int(r["line"]))
    for i in np.flatnonzero(((frame["spend"] == 0) & (frame["impressions"] > 0)).to_numpy()):
        r = frame.iloc[i]
        raise DataValidationError(path, f"impressions ({r['impressions']:,.0f}) on a day without spend: the model explains what spend buys",
                                  column=head("impressions"), row=int(r["row"]), line=int(r["line"]))
    frame = frame.sort_values(["campaign", "date"], kind="stable")
    n_filled = 0
    full_range = pd.date_range(frame["date"].min(), frame["date"].max(), freq="D")
    for name, g in frame.groupby("campaign", sort=False):
        want = full_range if name == ONE_CAMPAIGN else pd.date_range(g["date"].min(), g["date"].max(), freq="D")
        gaps = want.difference(pd.DatetimeIndex(g["date"]))
        if len(gaps) and not fill_missing:
            after = g[g["date"] > gaps[0]].iloc[0]
            raise DataValidationError(path, f"day {gaps[0]:%Y-%m-%d} is missing for campaign {name!r} ({len(gaps)} missing day(s) in all): "
                                            "export every day, or pass fill_missing=True (--fill-missing) to read missing days as days "
                                            "without spend", column=cells.header[found["date"][0]],
                                      row=int(after["row"]), line=int(after["line"]))
        n_filled += len(gaps)
    covered = pd.DatetimeIndex(frame["date"].unique())
    if fill_missing:
        filled = [pd.DataFrame({"date": pd.date_range(g["date"].min(), g["date"].max(), freq="D").difference(pd.DatetimeIndex(g["date"])),
                                "campaign": name}) for name, g in frame.groupby("campaign", sort=False)]
        filled.append(pd.DataFrame({"date": full_range.difference(covered), "campaign": frame["campaign"].iloc[0]}))
        filled = pd.concat(filled, ignore_index=True)
        if len(filled):
            notes.append(f"{len(filled)} missing (day, campaign) row(s) read as days without spend (fill_missing)")
            frame = pd.concat([frame, filled.assign(spend=0.0, impressions=0.0, clicks=0.0, conversions=0.0 if frame["conversions"].notna().all()
                                                    else np.nan, row=np.nan, line=np.nan)], ignore_index=True)
    elif len(full_range.difference(covered)):
        gap = full_range.difference(covered)[0]
        raise DataValidationError(path, f"day {gap:%Y-%m-%d} is missing (no campaign has a row for it): export every day, or pass "
                                        "fill_missing=True (--fill-missing)", column=cells.header[found["date"][0]])
    frame["active"] = frame["spend"] > 0
    for c in ("impressions", "clicks"):
        frame[c] = frame[c].astype(np.int64)
    frame = frame.sort_values(["date", "campaign"], kind="stable").reset_index(drop=True)
    spend_days = int(frame.groupby("date")["active"].any().sum())
    if spend_days < min_days:
        raise DataValidationError(path, f"{spend_days} days with spend; the model needs at least {min_days} ({min_days - HOLDOUT_DAYS} to fit "
                                        f"and {HOLDOUT_DAYS} held out to check the fit): export a longer date range",
                                  column=cells.header[found["date"][0]])
    formats = [fmt for c, (_, fmt) in found.items() if c in CANONICAL]
    kind = ("export read with your column mapping" if "your mapping" in formats else
            "Meta Ads Manager daily export" if "Meta" in formats else
            "Google Ads report" if "Google" in formats else
            f"localised export ({max(set(formats) - {'plain', 'Meta/Google'}, key=formats.count)})"
            if set(formats) - {"plain", "Meta/Google"} else "plain daily CSV")
    n_camp = frame["campaign"].nunique()
    how = {
        "date": f"dates, {date_fmt}",
        "campaign": f"{n_camp} campaign(s)",
        "spend": f"{currency or 'currency not stated'}, decimal {mark!r}, thousands {NUMBER_FORMATS[mark][0]!r}",
        "impressions": "whole numbers", "clicks": "whole numbers",
        "conversions": "whole numbers (acquisitions)",
    }
    rows = [(c, f"{cells.header[found[c][0]]!r}" if c in found else "-", how[c] if c in found else
             ("one campaign" if c == "campaign" else "none: plans clicks only")) for c in CANONICAL]
    report = pd.DataFrame(rows, columns=["column", "found in the file", "read as"])
    used = {found[c][0] for c in found} | set(sub)
    notes = [f"separator {cells.sep!r}; header on CSV line {cells.header_index + 1}"
             + (f" (skipped {len(cells.skipped)} line(s) above it: {', '.join(repr(s[:40]) for s in cells.skipped)})" if cells.skipped else ""),
             *([f"dropped {len(cells.totals)} summary row(s): {', '.join(repr(t[:30]) for t in cells.totals)}"] if cells.totals else []),
             *([f"{n_empty} empty cell(s) read as 0"] if n_empty else []),
             *notes,
             f"not used: {', '.join(repr(h) for j, h in enumerate(cells.header) if j not in used) or 'nothing'}"]
    account = Account(path, kind, frame[["date", "campaign", "spend", "impressions", "clicks", "conversions", "active", "row", "line"]],
                      currency, report, notes)
    if verbose:
        print(account)
    return account
