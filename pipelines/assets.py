"""The asset graph: raw records per platform and year → ledger, hours bank, reconciliation → files.

Assets are thin: connectors pull, `pipelines.rules` decides, the store writes, and each asset
reports what it did as metadata (counts, schema, watermarks, a masked preview).
"""

import os
import warnings
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd

from connectors.core import Batch, PlatformSpec, PullRequest
from connectors.specs import load_specs
from pipelines.provincial import write_provincial
from pipelines.resources import Database, Platforms, ProvincialOutput
from pipelines.rules import apply_rules
from schemas.ledger import COMPLETION_DTYPES, HOURS_BANK_DTYPES, RECONCILIATION_DTYPES
from schemas.privacy import mask_ids
from schemas.raw import RAW_DTYPES

# single-run backfills are what DESIGN.md asks for; their beta label is not news at every import
warnings.filterwarnings("ignore", category=dg.BetaWarning)

SHANGHAI = ZoneInfo("Asia/Shanghai")
FIRST_YEAR = 2017


def current_year() -> int:
    return datetime.now(SHANGHAI).year


years = dg.StaticPartitionsDefinition([str(y) for y in range(FIRST_YEAR, current_year() + 1)])
"""Pull windows, 2017 (R12: title checks reach back to 2017) to the current year."""


def table_schema(dtypes: dict[str, str]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, str(t)) for name, t in dtypes.items()])


def markdown_table(frame: pd.DataFrame) -> str:
    """A small frame as a Markdown table (metadata only; never a hot path)."""
    if frame.empty:
        return "(no rows)"
    cells = frame.astype("str").fillna("").replace("|", "\\|", regex=False)
    lines = [" | ".join(frame.columns), " | ".join("---" for _ in frame.columns)]
    lines += [" | ".join(row) for row in cells.itertuples(index=False)]
    return "\n".join(f"| {line} |" for line in lines)


def masked_preview(frame: pd.DataFrame, id_columns: tuple[str, ...], rows: int = 5) -> str:
    """A few rows with ID numbers masked (C6) and the bulky payload left out."""
    preview = frame.head(rows).drop(columns=["payload"], errors="ignore").copy()
    for column in id_columns:
        if column in preview:
            preview[column] = mask_ids(preview[column])
    return markdown_table(preview)


# --- raw records ----------------------------------------------------------------------------


STORE_ROWS = 20_000


def coalesce(batches: Iterator[Batch], rows: int = STORE_ROWS) -> Iterator[Batch]:
    """Pages joined into batches of about `rows` records, each with its last page's watermark.

    One transaction per 500-record page costs more than the page itself; the watermark of the
    last page joined still holds once the joined batch is stored.
    """
    pending: list[Batch] = []
    size = 0
    for batch in batches:
        pending.append(batch)
        size += len(batch.records)
        if size >= rows:
            yield _joined(pending)
            pending, size = [], 0
    if pending:
        yield _joined(pending)


def _joined(batches: list[Batch]) -> Batch:
    if len(batches) == 1:
        return batches[0]
    frames = [b.records for b in batches if len(b.records)] or [batches[-1].records]
    records = pd.concat(frames, ignore_index=True)
    return Batch(records, batches[-1].watermark)


def raw_asset(spec: PlatformSpec) -> dg.AssetsDefinition:
    """One platform's records, pulled by year; each batch is stored with its watermark."""

    @dg.asset(
        name=f"raw_{spec.code}",
        group_name="raw",
        description=f"Completion records pulled from {spec.organizer} ({spec.family} family).",
        partitions_def=years,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=f"platform_{spec.code}",
        kinds={"python", "sql"},
        metadata={
            "platform": spec.code,
            "family": spec.family,
            "dagster/column_schema": table_schema(RAW_DTYPES),
        },
    )
    def _raw(
        context: dg.AssetExecutionContext, database: Database, platforms: Platforms
    ) -> dg.MaterializeResult:
        store = database.store()
        pulled: dict[str, int] = {}
        watermarks: dict[str, object] = {}
        last = pd.DataFrame(columns=list(RAW_DTYPES))
        for key in context.partition_keys:
            year = int(key)
            request = PullRequest.for_year(
                year,
                watermark=store.watermark(spec.code, year),
                known_keys=store.known_keys(spec.code, year),
            )
            pulled[key] = 0
            for batch in coalesce(platforms.pull(spec.code, request, progress=context.log.info)):
                store.store_batch(spec.code, year, batch.records, batch.watermark)
                pulled[key] += len(batch.records)
                watermarks[key] = dict(batch.watermark)
                if len(batch.records):
                    last = batch.records
            context.log.info(f"{spec.code} {key}: {pulled[key]} records stored")
        return dg.MaterializeResult(
            metadata={
                "records_pulled": sum(pulled.values()),
                "records_by_year": pulled,
                "watermarks": watermarks,
                "preview": dg.MetadataValue.md(masked_preview(last, ("raw_id",))),
            }
        )

    return _raw


raw_assets = [raw_asset(spec) for spec in load_specs().values()]


# --- ledger, hours bank, reconciliation ---------------------------------------------------


def _lineage(deps: dict[str, list[str]]) -> dg.TableColumnLineage:
    return dg.TableColumnLineage(
        deps_by_column={
            column: [
                dg.TableColumnDep(asset_key=dg.AssetKey("completion"), column_name=c)
                for c in sources
            ]
            for column, sources in deps.items()
        }
    )


HOURS_BANK_LINEAGE = _lineage(
    {
        "public_hours": ["hours_credited", "subject"],
        "professional_hours": ["hours_credited", "subject"],
        "total_hours": ["hours_credited"],
        "makeup_hours": ["hours_credited", "makeup"],
        "year": ["credited_year"],
        "id_number": ["id_number"],
    }
)
RECONCILIATION_LINEAGE = _lineage(
    {c: ["state"] for c in ("raw", "credited", "merged", "not_credited", "quarantined")}
    | {"platform": ["platform"], "year": ["credited_year"]}
)


def employer_types() -> pd.DataFrame | None:
    """The employer register of R2 (`XUESHI_EMPLOYER_TYPES`: CSV employer,type), if any."""
    path = os.environ.get("XUESHI_EMPLOYER_TYPES")
    return pd.read_csv(path, dtype="str") if path else None


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "completion",
            group_name="ledger",
            deps=raw_assets,
            description="The ledger: every record after D1 with its state and reason (D4).",
            kinds={"pandas", "sql"},
            metadata={"dagster/column_schema": table_schema(COMPLETION_DTYPES)},
        ),
        dg.AssetSpec(
            "hours_bank",
            group_name="ledger",
            deps=["completion"],
            description="学时银行: hours per person and credited year against R1/R2.",
            kinds={"pandas", "sql"},
            metadata={
                "dagster/column_schema": table_schema(HOURS_BANK_DTYPES),
                "dagster/column_lineage": HOURS_BANK_LINEAGE,
            },
        ),
        dg.AssetSpec(
            "reconciliation",
            group_name="ledger",
            deps=["completion"],
            description="D4 counts per run, platform and year: raw = the sum of the four states.",
            kinds={"pandas", "sql"},
            metadata={
                "dagster/column_schema": table_schema(RECONCILIATION_DTYPES),
                "dagster/column_lineage": RECONCILIATION_LINEAGE,
            },
        ),
    ],
)
def ledger(context: dg.AssetExecutionContext, database: Database):
    """Apply the rules to every stored record, then replace the outputs in one transaction.

    The whole history is recomputed because a pull for one year can change another year's
    result (a 2022 makeup record credits 2019; a duplicate merges across platforms).
    """
    store = database.store()
    raw = store.raw_records()
    result = apply_rules(raw, employer_types=employer_types())
    store.replace_outputs(result.completion, result.hours_bank, result.name_conflicts)
    run_at = pd.Timestamp.now(tz=SHANGHAI)
    store.append_reconciliation(context.run.run_id, run_at, result.reconciliation)
    completion = result.completion
    states = (
        completion["state"]
        .value_counts()
        .reindex(["credited", "merged", "not_credited", "quarantined"], fill_value=0)
    )
    reasons = completion["reason"].value_counts().to_dict()
    yield dg.MaterializeResult(
        asset_key="completion",
        metadata={
            "dagster/row_count": len(completion),
            "raw_records": len(raw),
            "states": {k: int(v) for k, v in states.items()},
            "reasons": {str(k): int(v) for k, v in reasons.items()},
            "name_conflicts": len(result.name_conflicts),
            "preview": dg.MetadataValue.md(masked_preview(completion, ("id_number",))),
        },
    )
    bank = result.hours_bank
    yield dg.MaterializeResult(
        asset_key="hours_bank",
        metadata={
            "dagster/row_count": len(bank),
            "people": int(bank["id_number"].nunique()),
            "compliant": int(bank["compliant"].sum()),
            "not_binding": int((~bank["binding"]).sum()),
            "preview": dg.MetadataValue.md(masked_preview(bank, ("id_number",))),
        },
    )
    counts = result.reconciliation
    yield dg.MaterializeResult(
        asset_key="reconciliation",
        metadata={
            "dagster/row_count": len(counts),
            "run_id": context.run.run_id,
            "d4": dg.MetadataValue.md(markdown_table(counts)),
        },
    )


# --- provincial files -----------------------------------------------------------------------


@dg.asset(
    group_name="delivery",
    deps=["completion", "hours_bank"],
    description="学时登记 and 学员 XLSX per employer and year, with a manifest (PROVINCIAL.md).",
    kinds={"xlsx"},
)
def provincial_files(database: Database, output: ProvincialOutput) -> dg.MaterializeResult:
    store = database.store()
    manifest = write_provincial(
        store.read_table("completion"), store.read_table("hours_bank"), output.path()
    )
    return dg.MaterializeResult(
        metadata={
            "output_dir": dg.MetadataValue.path(str(output.path() / "provincial")),
            "files": manifest.file_count,
            "rows": manifest.row_count,
            "years": manifest.years,
        }
    )


sync_job = dg.define_asset_job(
    "sync",
    selection=dg.AssetSelection.all(),
    description="Pull the selected years from every platform, then rebuild the outputs.",
)


@dg.schedule(job=sync_job, cron_schedule="0 2 * * *", execution_timezone="Asia/Shanghai")
def nightly_sync(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Every night at 02:00 Beijing time, the current year from every platform."""
    year = context.scheduled_execution_time.astimezone(SHANGHAI).year
    return dg.RunRequest(partition_key=str(year))
