"""The answers as assets: R3 title eligibility and the compliance report, both read from the
hours bank (and the ledger) through the store, so they run after the ledger however it is built.
"""

import dagster as dg
import pandas as pd

from pipelines.assets.ledger import employer_types
from pipelines.metadata import markdown_table, masked_preview, table_schema
from pipelines.report import Figures, build_report
from pipelines.resources import Database, ProvincialOutput
from pipelines.rules.config import RulesConfig
from pipelines.rules.eligibility import title_eligibility, title_requirements
from pipelines.shards import count_for as shard_count
from pipelines.shards import shards
from pipelines.store.base import in_shard
from schemas.ledger import ELIGIBILITY_DTYPES

BAR_WIDTH = 20


def text_bar(share: float, width: int = BAR_WIDTH) -> str:
    """A share as a bar of block characters, for charts in Dagster's Markdown metadata."""
    filled = round(max(0.0, min(1.0, share)) * width)
    return "█" * filled + "░" * (width - filled) + f" {share:.0%}"


BANK_COLUMNS = (
    "id_number",
    "year",
    "name",
    "employer",
    "city",
    "public_hours",
    "professional_hours",
)
"""What R3 reads of the hours bank."""


@dg.asset(
    name="title_eligibility",
    group_name="answers",
    deps=["hours_bank"],
    description="R3 (Yantai 2022): which people of Yantai units may apply for a title, and "
    "which years are short by how much. IDs masked in metadata.",
    kinds={"pandas"},
    metadata={"dagster/column_schema": table_schema(ELIGIBILITY_DTYPES)},
)
def title_eligibility_asset(
    context: dg.AssetExecutionContext, database: Database
) -> dg.MaterializeResult:
    """Verdicts are kept per person (`title_verdict`): after a night only the people its writes
    changed are judged again, after a full refresh every person, a shard at a time; the counts
    come from SQL. Memory follows a shard or a night's people, never the history."""
    store = database.hold_writes(context)
    as_of = store.outputs_write()
    since = store.verdicts_as_of()
    people = None if since is None else store.changed_people(since)
    config, types = RulesConfig(), employer_types()
    if people is None:
        parts = shards(shard_count(store.row_count("hours_bank")))
        preview = pd.DataFrame()
        for index, shard in enumerate(parts):
            bank = store.read_table("hours_bank", columns=BANK_COLUMNS, where=(in_shard(shard),))
            verdicts = title_eligibility(title_requirements(bank, types, config))
            last = index == len(parts) - 1
            store.replace_verdicts(verdicts, shard, as_of=as_of if last else None)
            preview = verdicts if preview.empty else preview
        judged = "every person"
    else:
        bank = store.bank_rows(BANK_COLUMNS, people)
        preview = title_eligibility(title_requirements(bank, types, config))
        store.replace_verdicts(preview, people, as_of=as_of)
        judged = f"people changed since write {since}: {len(people):,}"
    counts = store.verdict_counts()
    found = counts.sum(axis=0)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": int(found.sum()),
            "judged": judged,
            "eligible": int(found.get("eligible", 0)),
            "not_eligible": int(found.get("not eligible", 0)),
            "unknown_employer_type": int(found.get("unknown", 0)),
            "by_employer_type": dg.MetadataValue.md(markdown_table(counts.reset_index())),
            "preview": dg.MetadataValue.md(masked_preview(preview, ("id_number",))),
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
    year = store.latest_bank_year()
    if year is None:
        return dg.MaterializeResult(metadata={"report": "no hours yet"})
    found, page = build_report(store, year, output.path())
    return dg.MaterializeResult(metadata=report_metadata(year, found, str(page)))
