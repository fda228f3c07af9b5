"""The answers as assets: R3 title eligibility and the compliance report, both read from the
hours bank (and the ledger) through the store, so they run after the ledger however it is built.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd

from pipelines.assets import employer_types
from pipelines.metadata import markdown_table, masked_preview, table_schema
from pipelines.report import Figures, build_report
from pipelines.resources import Database, ProvincialOutput
from pipelines.rules.config import RulesConfig
from pipelines.rules.eligibility import ELIGIBILITY_DTYPES, title_eligibility, title_requirements

BAR_WIDTH = 20


def text_bar(share: float, width: int = BAR_WIDTH) -> str:
    """A share as a bar of block characters, for charts in Dagster's Markdown metadata."""
    filled = round(max(0.0, min(1.0, share)) * width)
    return "█" * filled + "░" * (width - filled) + f" {share:.0%}"


@dg.asset(
    name="title_eligibility",
    group_name="answers",
    deps=["hours_bank"],
    description="R3 (Yantai 2022): which people of Yantai units may apply for a title, and "
    "which years are short by how much. IDs masked in metadata.",
    kinds={"pandas"},
    metadata={"dagster/column_schema": table_schema(ELIGIBILITY_DTYPES)},
)
def title_eligibility_asset(database: Database) -> dg.MaterializeResult:
    config = RulesConfig()
    store = database.store()
    columns = ("id_number", "year", "name", "employer", "city", "public_hours")
    bank = store.read_table("hours_bank", columns=(*columns, "professional_hours"))
    people = title_eligibility(title_requirements(bank, employer_types(), config))
    verdict = people["eligible"].map({True: "eligible", False: "not eligible"}).fillna("unknown")
    counts = pd.crosstab(people["employer_type"], verdict)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(people),
            "eligible": int(people["eligible"].eq(True).sum()),
            "not_eligible": int(people["eligible"].eq(False).sum()),
            "unknown_employer_type": int(people["eligible"].isna().sum()),
            "by_employer_type": dg.MetadataValue.md(markdown_table(counts.reset_index())),
            "preview": dg.MetadataValue.md(masked_preview(people, ("id_number",))),
        }
    )


def report_metadata(year: int, found: Figures, page: str) -> dict[str, object]:
    """The headline figures of a year's report and a compliance chart per city."""
    people = int(found.cities["people"].sum())
    compliant = int(found.cities["compliant"].sum())
    chart = found.cities.assign(compliance=found.cities["compliant_share"].map(text_bar))
    behind = found.behind[["city", "employer", "people", "compliant_share"]].head(5)
    return {
        "year": year,
        "report": dg.MetadataValue.path(page),
        "people": people,
        "compliant_share": round(compliant / people, 4) if people else 0.0,
        "public_short_hours": float(found.cities["public_short_hours"].sum()),
        "professional_short_hours": float(found.cities["professional_short_hours"].sum()),
        "quarantined": int(found.platforms["quarantined"].sum()) if len(found.platforms) else 0,
        "compliance_by_city": dg.MetadataValue.md(
            markdown_table(chart[["city", "people", "compliance"]])
        ),
        "units_furthest_behind": dg.MetadataValue.md(markdown_table(behind)),
    }


@dg.asset(
    group_name="answers",
    deps=["completion", "hours_bank"],
    description="The compliance report of the latest year with hours: one static HTML page and "
    "its figures as CSV under <output>/reports/<year>/ (`xueshi report` writes any year).",
    kinds={"html", "csv"},
)
def compliance_report(database: Database, output: ProvincialOutput) -> dg.MaterializeResult:
    store = database.store()
    years = store.read_table("hours_bank", columns=("year",))["year"]
    if years.empty:
        return dg.MaterializeResult(metadata={"report": "no hours yet"})
    year = int(years.max())
    found, page = build_report(store, year, output.path())
    return dg.MaterializeResult(metadata=report_metadata(year, found, str(page)))
