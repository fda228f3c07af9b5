"""The compliance report of a year: per city and unit, who met R1, what is short, what was
quarantined and why, per platform the D4 counts; one static HTML page plus the same figures as
CSV under `<output>/reports/<year>/`.

The page needs no server and no network: charts are SVG drawn here, styles and the one small
script (sortable tables) are inline. It names units, never people, so no ID number appears in
it at all (C6 asks only that they be masked).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.rules import REASON_WORDS
from pipelines.store import Store
from pipelines.store.ledger import YearCounts
from schemas.ledger import STATES
from schemas.platforms import PLATFORMS

HOURS_BINS = (0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 120, 150, np.inf)
BEHIND_UNITS = 15
CHART_UNITS = 30
_UNSAFE_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Figures:
    """Every table the page shows; each is also one CSV file of the same name."""

    cities: pd.DataFrame
    units: pd.DataFrame
    behind: pd.DataFrame
    quarantine: pd.DataFrame
    platforms: pd.DataFrame
    months: pd.DataFrame
    hours: pd.DataFrame


BANK_COLUMNS = (
    "city",
    "employer",
    "total_hours",
    "makeup_hours",
    "public_short",
    "professional_short",
    "compliant",
    "binding",
)
"""What the report reads of the year's hours bank: counts and sums per unit, never a person."""


def read_year(store: Store, year: int) -> tuple[pd.DataFrame, YearCounts]:
    """The year's hours-bank rows (`BANK_COLUMNS`) and its ledger rows counted (by credited
    year, else pull year, as D4)."""
    bank = store.read_table("hours_bank", columns=BANK_COLUMNS, where=(f"year = {int(year)}",))
    return bank, store.year_counts(year)


def _people(bank: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """People, compliance and shortfalls per group of hours-bank rows."""
    rows = bank.assign(
        public_behind=bank["public_short"] > 0,
        professional_behind=bank["professional_short"] > 0,
        not_binding=~bank["binding"],
    )
    table = rows.groupby(keys, sort=True).agg(
        people=("compliant", "size"),
        compliant=("compliant", "sum"),
        not_binding=("not_binding", "sum"),
        public_short_people=("public_behind", "sum"),
        public_short_hours=("public_short", "sum"),
        professional_short_people=("professional_behind", "sum"),
        professional_short_hours=("professional_short", "sum"),
        makeup_hours=("makeup_hours", "sum"),
    )
    table.insert(2, "compliant_share", (table["compliant"] / table["people"]).round(4))
    for column in ("public_short_hours", "professional_short_hours", "makeup_hours"):
        table[column] = table[column].round(1)
    return table


def figures(bank: pd.DataFrame, counts: YearCounts) -> Figures:
    """The report's tables from one year's hours bank and counted ledger rows."""
    quarantine = counts.quarantined.sort_values(
        ["city", "employer", "reason"], na_position="first", ignore_index=True
    )
    units = _people(bank, ["city", "employer"])
    per_unit_quarantine = quarantine.groupby(["city", "employer"])["records"].sum()
    units["quarantined"] = per_unit_quarantine.reindex(units.index, fill_value=0).astype("int64")
    cities = _people(bank, ["city"])
    cities["quarantined"] = (
        quarantine.groupby("city")["records"]
        .sum()
        .reindex(cities.index, fill_value=0)
        .astype("int64")
    )
    units["total_short_hours"] = units["public_short_hours"] + units["professional_short_hours"]
    behind = (
        units.sort_values(
            ["compliant_share", "total_short_hours", "people"], ascending=[True, False, False]
        )
        .head(BEHIND_UNITS)
        .reset_index()
    )
    platforms = (
        counts.states.pivot_table(
            index="platform", columns="state", values="records", aggfunc="sum", fill_value=0
        )
        .reindex(columns=list(STATES), fill_value=0)
        .astype("int64")
    )
    platforms.columns = list(STATES)
    platforms.insert(0, "raw", platforms.sum(axis=1))
    platforms.index.name = "platform"
    months = counts.months.sort_values(["platform", "month"], ignore_index=True)
    bins = pd.cut(bank["total_hours"], bins=list(HOURS_BINS), right=False)
    hours = bins.value_counts(sort=False).rename("people").reset_index()
    hours = pd.DataFrame(
        {
            "from_hours": [float(b.left) for b in hours["total_hours"]],
            "to_hours": [float(b.right) for b in hours["total_hours"]],
            "people": hours["people"].to_numpy(),
        }
    )
    return Figures(
        cities=cities.reset_index(),
        units=units.drop(columns="total_short_hours").reset_index(),
        behind=behind.drop(columns="total_short_hours"),
        quarantine=quarantine,
        platforms=platforms.reset_index(),
        months=months,
        hours=hours,
    )


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """C5: text cells that a spreadsheet would evaluate get a leading apostrophe."""
    safe = frame.copy()
    for column in safe.columns[safe.dtypes.map(pd.api.types.is_string_dtype)]:
        text = safe[column]
        safe[column] = text.where(~text.str.startswith(_UNSAFE_START, na=False), "'" + text)
    return safe


def write_report(year: int, found: Figures, out: Path) -> Path:
    """`reports/<year>/index.html` and one CSV per table (UTF-8 with BOM, C4), under `out`."""
    folder = out / "reports" / str(year)
    folder.mkdir(parents=True, exist_ok=True)
    for field in fields(found):
        table = spreadsheet_safe(getattr(found, field.name))
        table.to_csv(folder / f"{field.name}.csv", index=False, encoding="utf-8-sig")
    page = folder / "index.html"
    page.write_text(render_html(year, found), encoding="utf-8")
    return page


# --- the page ------------------------------------------------------------------------------

_CITY_NAMES = {"taian": "泰安 Tai'an", "yantai": "烟台 Yantai"}
_CITY_COLOURS = {"taian": "#2b6cb0", "yantai": "#c05621"}
_STYLE = """
body{font-family:system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2rem auto;
max-width:72rem;color:#1a202c;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #e2e8f0}
.headline{display:flex;gap:1rem;flex-wrap:wrap}.headline div{background:#f7fafc;
border:1px solid #e2e8f0;border-radius:.4rem;padding:.6rem 1rem}.headline b{display:block;
font-size:1.5rem}table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border-bottom:1px solid #e2e8f0;padding:.25rem .5rem;text-align:right;white-space:nowrap}
th{cursor:pointer;background:#f7fafc;position:sticky;top:0}td.t,th.t{text-align:left}
svg{max-width:100%;height:auto;font-size:11px}svg text{fill:#2d3748}.note{color:#4a5568;
font-size:.85rem}.wide{overflow-x:auto}
"""
_SCRIPT = """
document.querySelectorAll("table.sortable th").forEach(function (th, column) {
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0];
    var rows = Array.from(body.rows);
    var up = th.dataset.order !== "up";
    th.dataset.order = up ? "up" : "down";
    rows.sort(function (a, b) {
      var x = a.cells[column].dataset.v || a.cells[column].textContent;
      var y = b.cells[column].dataset.v || b.cells[column].textContent;
      var n = parseFloat(x) - parseFloat(y);
      var c = isNaN(n) ? x.localeCompare(y, "zh") : n;
      return up ? c : -c;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
document.documentElement.dataset.ready = "true";
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _cell(value: object) -> str:
    if isinstance(value, float | np.floating):
        return (
            f'<td data-v="{value}">{value:,.4g}</td>'
            if abs(value) < 1
            else (f'<td data-v="{value}">{value:,.1f}</td>')
        )
    if isinstance(value, int | np.integer):
        return f'<td data-v="{value}">{value:,}</td>'
    return f'<td class="t">{_e("" if pd.isna(value) else value)}</td>'


def _table(frame: pd.DataFrame, caption: str = "") -> str:
    head = "".join(
        f'<th class="t">{_e(c)}</th>'
        if not pd.api.types.is_numeric_dtype(frame[c])
        else f"<th>{_e(c)}</th>"
        for c in frame.columns
    )
    body = "".join(
        "<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in frame.itertuples(index=False)
    )
    title = f"<caption>{_e(caption)}</caption>" if caption else ""
    return (
        f'<div class="wide"><table class="sortable">{title}<thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _bars(
    labels: list[str],
    values: list[float],
    colours: list[str],
    *,
    unit: str,
    title: str,
    maximum: float | None = None,
) -> str:
    """A horizontal bar chart as SVG."""
    label_width, bar_width, row = 260, 420, 18
    top = max(maximum or 0.0, max(values, default=0.0)) or 1.0
    height = row * len(labels) + 10
    parts = [
        f'<svg role="img" aria-label="{_e(title)}" viewBox="0 0 {label_width + bar_width + 80} '
        f'{height}" width="{label_width + bar_width + 80}"><title>{_e(title)}</title>'
    ]
    for i, (label, value, colour) in enumerate(zip(labels, values, colours, strict=True)):
        y = 5 + i * row
        width = bar_width * value / top
        shown = f"{value:.0%}" if unit == "%" else f"{value:,.0f}"
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 12}" text-anchor="end">{_e(label)}</text>'
            f'<rect x="{label_width}" y="{y + 2}" width="{width:.1f}" height="{row - 5}" '
            f'fill="{colour}"><title>{_e(label)}: {shown}</title></rect>'
            f'<text x="{label_width + width + 4:.1f}" y="{y + 12}">{shown}</text>'
        )
    return "".join(parts) + "</svg>"


def _columns_chart(frame: pd.DataFrame, title: str) -> str:
    """The hours distribution: one column per bin, the R1 line at 90 hours marked."""
    width, height, pad = 700, 220, 30
    top = max(int(frame["people"].max()) if len(frame) else 0, 1)
    step = (width - 2 * pad) / max(len(frame), 1)
    parts = [
        f'<svg role="img" aria-label="{_e(title)}" viewBox="0 0 {width} {height + 40}" '
        f'width="{width}"><title>{_e(title)}</title>'
    ]
    for i, row in enumerate(frame.itertuples(index=False)):
        bar = (height - pad) * row.people / top
        x = pad + i * step
        label = f"{row.from_hours:g}+" if np.isinf(row.to_hours) else f"{row.from_hours:g}–"
        colour = "#38a169" if row.from_hours >= 90 else "#a0aec0"
        parts.append(
            f'<rect x="{x + 2:.1f}" y="{height - bar:.1f}" width="{step - 4:.1f}" '
            f'height="{bar:.1f}" fill="{colour}"><title>{label} h: {row.people} people</title>'
            f'</rect><text x="{x + step / 2:.1f}" y="{height + 14}" text-anchor="middle">'
            f'{label}</text><text x="{x + step / 2:.1f}" y="{height - bar - 3:.1f}" '
            f'text-anchor="middle">{row.people}</text>'
        )
    parts.append(
        f'<text x="{width / 2}" y="{height + 34}" text-anchor="middle">total hours in the year '
        "(green: 90 or more, R1)</text></svg>"
    )
    return "".join(parts)


def _heatmap(months: pd.DataFrame, title: str) -> str:
    """Records by platform and month of completion: one shaded cell each."""
    codes = sorted(set(months["platform"]))
    grid = months.pivot_table(index="platform", columns="month", values="records", aggfunc="sum")
    grid = grid.reindex(index=codes, columns=range(1, 13)).fillna(0)
    top = max(float(grid.to_numpy().max()) if grid.size else 0.0, 1.0)
    left, cell, row = 90, 44, 22
    parts = [
        f'<svg role="img" aria-label="{_e(title)}" viewBox="0 0 {left + 12 * cell + 10} '
        f'{row * (len(codes) + 1) + 10}" width="{left + 12 * cell + 10}"><title>{_e(title)}'
        "</title>"
    ]
    parts += [
        f'<text x="{left + m * cell + cell / 2}" y="14" text-anchor="middle">{m + 1}月</text>'
        for m in range(12)
    ]
    for i, code in enumerate(codes):
        y = row * (i + 1)
        parts.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">{_e(code)}</text>')
        for m in range(12):
            count = int(grid.loc[code, m + 1])
            shade = 0.08 + 0.92 * count / top if count else 0.0
            parts.append(
                f'<rect x="{left + m * cell + 1}" y="{y + 1}" width="{cell - 2}" '
                f'height="{row - 2}" fill="#2b6cb0" fill-opacity="{shade:.2f}" stroke="#e2e8f0">'
                f"<title>{_e(code)} {m + 1}月: {count} records</title></rect>"
            )
    return "".join(parts) + "</svg>"


def render_html(year: int, found: Figures) -> str:
    """The whole page: headline, charts, tables; nothing fetched from anywhere."""
    people = int(found.cities["people"].sum())
    compliant = int(found.cities["compliant"].sum())
    quarantined = int(found.platforms["quarantined"].sum()) if len(found.platforms) else 0
    share = compliant / people if people else 0.0
    headline = {
        "people": f"{people:,}",
        "compliant (R1)": f"{share:.1%}",
        "public hours short": f"{found.cities['public_short_hours'].sum():,.1f}",
        "professional hours short": f"{found.cities['professional_short_hours'].sum():,.1f}",
        "makeup hours": f"{found.cities['makeup_hours'].sum():,.1f}",
        "records quarantined": f"{quarantined:,}",
    }
    lowest = found.units.sort_values(["compliant_share", "people"], ascending=[True, False])
    lowest = lowest.head(CHART_UNITS)
    reasons = found.quarantine.groupby("reason")["records"].sum().sort_values(ascending=False)
    organizers = {code: spec.organizer for code, spec in PLATFORMS.items()}
    platforms = found.platforms.assign(
        name=found.platforms["platform"].map(organizers).astype("str")
    )
    legend = pd.DataFrame(
        {"reason": list(reasons.index), "meaning": [REASON_WORDS.get(r, r) for r in reasons.index]}
    )
    sections = [
        f"<h1>继续教育学时合规报告 — compliance report {year}</h1>",
        '<p class="note">From the ledger and hours bank (学时银行). A person is compliant when R1 '
        "is met (30 public, 60 professional, 90 in all); not-binding people (R2) are counted "
        "with the rest. No ID numbers appear in this report.</p>",
        '<div class="headline">'
        + "".join(f"<div><b>{_e(v)}</b>{_e(k)}</div>" for k, v in headline.items())
        + "</div>",
        "<h2>Compliance by city</h2>",
        _bars(
            [_CITY_NAMES.get(c, c) for c in found.cities["city"]],
            found.cities["compliant_share"].tolist(),
            [_CITY_COLOURS.get(c, "#4a5568") for c in found.cities["city"]],
            unit="%",
            title="compliant share by city",
            maximum=1.0,
        ),
        _table(found.cities),
        f"<h2>Compliance by unit (the {len(lowest)} lowest of {len(found.units)})</h2>",
        _bars(
            [str(e) for e in lowest["employer"]],
            lowest["compliant_share"].tolist(),
            [_CITY_COLOURS.get(c, "#4a5568") for c in lowest["city"]],
            unit="%",
            title="compliant share by unit",
            maximum=1.0,
        ),
        f"<h2>Units furthest behind (top {BEHIND_UNITS})</h2>",
        _table(found.behind),
        "<h2>Hours distribution</h2>",
        _columns_chart(found.hours, "people by total hours"),
        "<h2>Records by platform and month</h2>",
        _heatmap(found.months, "records by platform and month of completion"),
        "<h2>Per platform: D4 counts</h2>",
        _table(platforms[["platform", "name", "raw", *STATES]]),
        "<h2>Quarantine reasons</h2>",
        _bars(
            [str(r) for r in reasons.index],
            [float(v) for v in reasons.to_numpy()],
            ["#c53030"] * len(reasons),
            unit="records",
            title="quarantined records by reason",
        ),
        _table(legend),
        "<details><summary>Quarantined records by unit and reason</summary>",
        _table(found.quarantine),
        "</details>",
        "<details><summary>Every unit</summary>",
        _table(found.units),
        "</details>",
    ]
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>学时合规报告 {year}</title><style>{_STYLE}</style></head><body>"
        + "\n".join(sections)
        + f"<script>{_SCRIPT}</script></body></html>\n"
    )


def build_report(store: Store, year: int, out: Path) -> tuple[Figures, Path]:
    """Read the year, compute its figures, write page and CSVs."""
    found = figures(*read_year(store, year))
    return found, write_report(year, found, out)
