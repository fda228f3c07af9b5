"""The asset graph: raw records per platform and year → ledger, hours bank, reconciliation → files.

Assets are thin: connectors pull, `pipelines.rules` decides, the store writes, and each asset
reports what it did as metadata (counts, schema, watermarks, a masked preview).
"""

import os
import warnings
from collections.abc import Iterator, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd

from connectors.core import Batch, PlatformSpec, PullRequest
from connectors.specs import load_specs
from pipelines import checks, validation
from pipelines.crash import crash_point
from pipelines.guards import EMPTY_FLOOR, WITHDRAWAL_SHARE, Limits, guarded
from pipelines.late import (
    LATE_METADATA,
    SNAPSHOT_FAMILY,
    counts_late,
    missed,
    repulls_whole,
    without_update_times,
)
from pipelines.metadata import markdown_table, masked_preview, table_schema
from pipelines.provincial import LEDGER_COLUMNS, update_provincial
from pipelines.refresh import refresh_outputs
from pipelines.resources import Database, Platforms, ProvincialOutput
from schemas.ledger import COMPLETION_DTYPES, HOURS_BANK_DTYPES, RECONCILIATION_DTYPES, STATES
from schemas.raw import RAW_DTYPES

# single-run backfills are what DESIGN.md asks for; their beta label is not news at every import
warnings.filterwarnings("ignore", category=dg.BetaWarning)

SHANGHAI = ZoneInfo("Asia/Shanghai")
FIRST_YEAR = 2017


def current_year() -> int:
    return datetime.now(SHANGHAI).year


years = dg.StaticPartitionsDefinition([str(y) for y in range(FIRST_YEAR, current_year() + 1)])
"""Pull windows, 2017 (R12: title checks reach back to 2017) to the current year."""


# --- raw records ----------------------------------------------------------------------------


STORE_ROWS = 20_000
RAW_KEY_COLUMNS = ("platform", "source_key", "pulled_at")
"""What the raw suite reads of the stored rows (kept in memory instead of read back)."""


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


class RawConfig(dg.Config):
    """Run config of a raw step: the plausibility limits of `pipelines.guards`."""

    accept_withdrawals: bool = False
    """Store a pull the guard would refuse (a mass withdrawal or an empty export), on purpose."""
    withdrawal_share: float = WITHDRAWAL_SHARE
    """The share of a partition's records a full snapshot may withdraw."""
    empty_floor: int = EMPTY_FLOOR
    """A whole-window pull may come back empty only where fewer records than this were held."""

    def limits(self) -> Limits:
        return Limits(self.withdrawal_share, self.empty_floor, self.accept_withdrawals)


def raw_asset(spec: PlatformSpec) -> dg.AssetsDefinition:
    """One platform's records, pulled by year; each batch is stored with its watermark."""

    @dg.asset(
        name=f"raw_{spec.code}",
        group_name="raw",
        description=f"Completion records pulled from {spec.organizer} ({spec.family} family).",
        partitions_def=years,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=f"platform_{spec.code}",
        check_specs=[checks.raw_expectations(spec.code)],
        kinds={"python", "sql"},
        metadata={
            "platform": spec.code,
            "family": spec.family,
            "dagster/column_schema": table_schema(RAW_DTYPES),
        },
    )
    def _raw(
        context: dg.AssetExecutionContext,
        config: RawConfig,
        database: Database,
        platforms: Platforms,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        store = database.hold_writes(context)
        pulled: dict[str, int] = {}
        watermarks: dict[str, object] = {}
        late: dict[str, int] = {}
        last = pd.DataFrame(columns=list(RAW_DTYPES))
        stored: list[pd.DataFrame] = []
        this_year = current_year()
        for key in context.partition_keys:
            year = int(key)
            known = store.known_keys(spec.code, year)
            whole = repulls_whole(spec, year, this_year)
            request = PullRequest.for_year(
                year,
                watermark=None if whole else store.watermark(spec.code, year),
                known_keys=known,
            )
            pulled[key] = 0
            keys: list[pd.Series] = []
            batches = guarded(
                spec,
                request,
                coalesce(platforms.pull(spec.code, request, progress=context.log.info)),
                held=len(known),
                limits=config.limits(),
            )
            for batch in batches:
                crash_point("pull")
                store.store_batch(spec.code, year, batch.records, batch.watermark)
                stored.append(batch.records[list(RAW_KEY_COLUMNS)])
                keys.append(batch.records.loc[~batch.records["withdrawn"], "source_key"])
                pulled[key] += len(batch.records)
                watermarks[key] = dict(batch.watermark)
                if len(batch.records):
                    last = batch.records
            context.log.info(f"{spec.code} {key}: {pulled[key]} records stored")
            if known and counts_late(spec, year, this_year):
                late[key] = missed(pd.concat(keys) if keys else [], known)
                context.log.info(f"{spec.code} {key}: {late[key]} late records the nights missed")
        yield dg.MaterializeResult(
            metadata={
                "records_pulled": sum(pulled.values()),
                "records_by_year": pulled,
                "watermarks": watermarks,
                LATE_METADATA: late,
                "preview": dg.MetadataValue.md(masked_preview(last, ("raw_id",))),
            }
        )
        rows = pd.concat(stored) if stored else last[list(RAW_KEY_COLUMNS)]
        rows = rows.drop_duplicates(["platform", "source_key"], keep="last")
        spec_check = checks.raw_expectations(spec.code)
        outcome = validation.validate_raw(rows)
        yield from checks.expectations((spec_check, outcome, len(rows)), render=False)

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


class LedgerConfig(dg.Config):
    full: bool = False
    """Recompute every person, not only those whose records changed since the last run."""


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
    check_specs=[
        checks.COMPLETION_EXPECTATIONS,
        checks.HOURS_BANK_EXPECTATIONS,
        checks.RECONCILIATION_BALANCES,
    ],
)
def ledger(
    context: dg.AssetExecutionContext, config: LedgerConfig, database: Database
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Fold the stored records into the ledger, the bank and the D4 counts, then check them.

    Only the people whose records changed since the last run are recomputed
    (`pipelines.refresh`); the checks read the rows this run computed and the counts of all.
    """
    store = database.hold_writes(context)
    refresh = refresh_outputs(store, employer_types=employer_types(), full=config.full)
    counts = store.state_counts()
    store.append_reconciliation(context.run.run_id, pd.Timestamp.now(tz=SHANGHAI), counts)
    completion, bank = refresh.result.completion, refresh.result.hours_bank
    states = counts[list(STATES)].sum()
    reasons = completion["reason"].value_counts().to_dict()
    yield dg.MaterializeResult(
        asset_key="completion",
        metadata={
            "dagster/row_count": int(counts["raw"].sum()),
            "refresh": refresh.mode,
            "batches": f"{refresh.batches[0]}..{refresh.batches[1]}",
            "records_changed": refresh.records_changed,
            "records_recomputed": refresh.records_read,
            "people_recomputed": refresh.people,
            "states": {k: int(v) for k, v in states.items()},
            "reasons_recomputed": {str(k): int(v) for k, v in reasons.items()},
            "name_conflicts_recomputed": len(refresh.result.name_conflicts),
            "preview": dg.MetadataValue.md(masked_preview(completion, ("id_number",))),
        },
    )
    yield dg.MaterializeResult(
        asset_key="hours_bank",
        metadata={
            "dagster/row_count": store.row_count("hours_bank"),
            "person_years_recomputed": len(bank),
            "compliant_recomputed": int(bank["compliant"].sum()),
            "not_binding_recomputed": int((~bank["binding"]).sum()),
            "preview": dg.MetadataValue.md(masked_preview(bank, ("id_number",))),
        },
    )
    yield dg.MaterializeResult(
        asset_key="reconciliation",
        metadata={
            "dagster/row_count": len(counts),
            "run_id": context.run.run_id,
            "d4": dg.MetadataValue.md(markdown_table(counts)),
        },
    )
    yield from checks.expectations(
        (
            checks.COMPLETION_EXPECTATIONS,
            validation.validate_completion(completion),
            len(completion),
        ),
        (checks.HOURS_BANK_EXPECTATIONS, validation.validate_hours_bank(bank), len(bank)),
    )
    yield checks.balance(counts, store.live_raw_counts())


# --- provincial files -----------------------------------------------------------------------


@dg.asset(
    group_name="delivery",
    deps=["completion", "hours_bank"],
    description="学时登记 and 学员 XLSX per employer and year, with a manifest (PROVINCIAL.md).",
    kinds={"xlsx"},
)
def provincial_files(
    context: dg.AssetExecutionContext, database: Database, output: ProvincialOutput
) -> dg.MaterializeResult:
    store = database.hold_writes(context)

    def read(years: Sequence[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
        listed = ", ".join(str(int(y)) for y in years)
        credited = store.read_table(
            "completion",
            columns=LEDGER_COLUMNS,
            where=(f"state = 'credited' AND hours_credited > 0 AND credited_year IN ({listed})",),
        )
        bank = store.read_table(
            "hours_bank",
            columns=("id_number", "year", "name", "employer"),
            where=(f"year IN ({listed})",),
        )
        return credited, bank

    manifest = update_provincial(read, output.path(), store.output_years())
    return dg.MaterializeResult(
        metadata={
            "output_dir": dg.MetadataValue.path(str(output.path() / "provincial")),
            "files": manifest.file_count,
            "rows": manifest.row_count,
            "years": manifest.years,
            "years_compared": list(manifest.compared),
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


late_records_job = dg.define_asset_job(
    "late_records",
    selection=dg.AssetSelection.assets(
        *(
            f"raw_{spec.code}"
            for spec in load_specs().values()
            if without_update_times(spec) or spec.family == SNAPSHOT_FAMILY
        )
    )
    | dg.AssetSelection.assets("completion", "hours_bank", "reconciliation", provincial_files),
    description="Pull every ended year whole from the platforms without update times and the "
    "snapshot family, and count the late records the nights missed.",
)


@dg.schedule(job=late_records_job, cron_schedule="0 3 1 * *", execution_timezone="Asia/Shanghai")
def monthly_late_records(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """On the 1st of every month at 03:00 Beijing time, every ended year as one run."""
    year = context.scheduled_execution_time.astimezone(SHANGHAI).year
    return dg.RunRequest(
        tags={
            "dagster/asset_partition_range_start": str(FIRST_YEAR),
            "dagster/asset_partition_range_end": str(year - 1),
        }
    )
