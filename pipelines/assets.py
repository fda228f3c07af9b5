"""The asset graph: raw records per platform and year → ledger, hours bank, reconciliation → files.

Assets are thin: connectors pull, `pipelines.rules` decides, the store writes, and each asset
reports what it did as metadata (counts, schema, watermarks, a masked preview).
"""

import os
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd

from connectors.core import Batch, PullRequest
from pipelines import checks, validation
from pipelines.crash import crash_point
from pipelines.forms import (
    RESULT_LEDGER_COLUMNS,
    load_year,
    read_year_register,
    unit_cities,
    update_results,
)
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
from pipelines.provincial import update_provincial
from pipelines.refresh import (
    RefreshPlan,
    plan_refresh,
    refresh_changes,
    refresh_shard,
    rules_fingerprint,
)
from pipelines.resources import Database, FormsFolder, Platforms, ProvincialOutput
from pipelines.rules import RulesResult
from pipelines.shards import Shard
from pipelines.store import Store
from schemas.ledger import COMPLETION_DTYPES, HOURS_BANK_DTYPES, RECONCILIATION_DTYPES, STATES
from schemas.platforms import FORMS, PlatformSpec, load_specs
from schemas.raw import RAW_DTYPES
from schemas.vocabulary import FIRST_YEAR

# single-run backfills are what DESIGN.md asks for; their beta label is not news at every import
warnings.filterwarnings("ignore", category=dg.BetaWarning)

SHANGHAI = ZoneInfo("Asia/Shanghai")


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


platform_assets = [raw_asset(spec) for spec in load_specs().values()]


# --- unit registration forms (FORMS.md) -----------------------------------------------------


@dg.asset(
    group_name="raw",
    description="The HR bureau's filing register per year (备案登记.xlsx), read before the forms.",
    partitions_def=years,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"xlsx"},
)
def filing_register(
    context: dg.AssetExecutionContext, forms_folder: FormsFolder
) -> dg.MaterializeResult:
    reads = [read_year_register(forms_folder.path(), int(key)) for key in context.partition_keys]
    for read in reads:
        if read.refused:
            context.log.warning(f"filing register {read.year}: {read.refused}")
    return dg.MaterializeResult(
        metadata={
            "entries_by_year": {str(r.year): len(r.entries) for r in reads},
            "sha256_by_year": {str(r.year): r.sha256 or "" for r in reads},
            "refused_by_year": {str(r.year): r.refused for r in reads if r.refused},
        }
    )


@dg.asset(
    name=f"raw_{FORMS}",
    group_name="raw",
    description="Unit registration forms (培训进修, 自学, 折算) read from XUESHI_FORMS_DIR.",
    partitions_def=years,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[filing_register, *platform_assets],  # a unit's city comes from its platform records
    check_specs=[checks.raw_expectations(FORMS)],
    kinds={"xlsx", "sql"},
    metadata={"platform": FORMS, "dagster/column_schema": table_schema(RAW_DTYPES)},
)
def raw_forms(
    context: dg.AssetExecutionContext, database: Database, forms_folder: FormsFolder
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Each unit's file stored as raw records; replaced or removed files withdraw their rows."""
    store = database.store()
    folder = forms_folder.path()
    keys = context.partition_keys
    files = any(any((folder / key).glob("*.xlsx")) for key in keys)
    cities = unit_cities(store) if files else {}  # a scan of every record: only when needed
    loads = []
    for key in keys:
        year = int(key)
        register = read_year_register(folder, year).entries
        load = load_year(store, folder, year, register=register, cities=cities)
        for unit, reason in load.refused.items():
            context.log.warning(f"forms {year}: {unit}.xlsx refused: {reason}")
        read = load.files - len(load.refused)
        context.log.info(f"forms {key}: {load.rows} rows from {read} of {load.files} files stored")
        loads.append(load)
    stored = [frame for load in loads for frame in load.stored]
    rows = (
        pd.concat(stored, ignore_index=True) if stored else pd.DataFrame(columns=list(RAW_DTYPES))
    )
    yield dg.MaterializeResult(
        metadata={
            "records_pulled": int(sum(load.rows for load in loads)),
            "records_by_year": {str(load.year): load.rows for load in loads},
            "files_read": int(sum(load.files for load in loads)),
            "rows_withdrawn": int(sum(load.withdrawn for load in loads)),
            "refused": {
                f"{load.year}/{unit}": reason
                for load in loads
                for unit, reason in load.refused.items()
            },
            "preview": dg.MetadataValue.md(masked_preview(rows.tail(5), ("raw_id",))),
        }
    )
    keys = rows[list(RAW_KEY_COLUMNS)].drop_duplicates(["platform", "source_key"], keep="last")
    outcome = validation.validate_raw(keys)
    yield from checks.expectations(
        (checks.raw_expectations(FORMS), outcome, len(keys)), render=False
    )


raw_assets = [*platform_assets, filing_register, raw_forms]
"""Every source's raw asset (the ten platforms, the forms and their register): the ledger's deps."""


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
    shards: int = 0
    """Shards of a full refresh (people per transaction); 0: one per 250,000 stored records."""
    steps: int = 0
    """Steps the shards are spread over (each a process under the multiprocess or celery
    executor, so each costs a start-up); 0: one per shard, at most 16."""


MAX_STEPS = 16


@dataclass(frozen=True)
class LedgerWork:
    """One ledger step's share of a plan: some of its shards, or its changed people."""

    plan: RefreshPlan
    shards: tuple[Shard, ...]


@dg.op(
    ins={"start": dg.In(dg.Nothing)},
    out={"plan": dg.Out(RefreshPlan), "work": dg.DynamicOut(LedgerWork)},
)
def ledger_plan(
    context: dg.OpExecutionContext, config: LedgerConfig, database: Database
) -> Iterator[dg.Output | dg.DynamicOutput]:
    """Decide between a full and an incremental refresh, and deal the shards out to steps."""
    fingerprint = rules_fingerprint(employer_types=employer_types())
    store = database.hold_writes(context)
    plan = plan_refresh(store, fingerprint, full=config.full, shard_count=config.shards or None)
    context.log.info(
        f"ledger: {plan.mode} refresh of batches {plan.batches[0]}..{plan.batches[1]}, "
        f"{plan.records_changed} records, {len(plan.shards)} shards"
    )
    yield dg.Output(plan, "plan")
    if plan.mode == "incremental":
        yield dg.DynamicOutput(LedgerWork(plan, ()), "changes", output_name="work")
        return
    steps = min(config.steps or MAX_STEPS, len(plan.shards))
    for step in range(steps):
        dealt = plan.shards[step::steps]
        yield dg.DynamicOutput(LedgerWork(plan, dealt), f"shards_{step}", output_name="work")


@dg.op
def ledger_part(context: dg.OpExecutionContext, database: Database, work: LedgerWork) -> int:
    """Recompute this step's shards one at a time (memory: one shard), or the night's people;
    keep each part's counts and validations in the database for the checks."""
    store = database.hold_writes(context)
    types = employer_types()
    if not work.shards:
        refresh = refresh_changes(store, work.plan, employer_types=types)
        _keep(context, store, 0, refresh.result)
        return 1
    for shard in work.shards:
        result = refresh_shard(store, work.plan, shard, employer_types=types)
        _keep(context, store, shard.index, result)
        context.log.info(
            f"ledger shard {shard.label}: {len(result.completion)} records, "
            f"{len(result.hours_bank)} person-years"
        )
    return len(work.shards)


def _keep(context: dg.OpExecutionContext, store: Store, index: int, result: RulesResult) -> None:
    completion, bank = result.completion, result.hours_bank
    store.put_shard_result(
        context.run.run_id,
        index,
        {
            "records": len(completion),
            "people": int(completion["id_number"].nunique()),
            "person_years": len(bank),
            "compliant": int(bank["compliant"].sum()),
            "not_binding": int((~bank["binding"]).sum()),
            "name_conflicts": len(result.name_conflicts),
            "reasons": {str(k): int(v) for k, v in completion["reason"].value_counts().items()},
            "completion": validation.validate_completion(completion).summary(),
            "hours_bank": validation.validate_hours_bank(bank).summary(),
            "preview": masked_preview(completion, ("id_number",)) if index == 0 else "",
        },
    )


@dg.op(
    out={
        "completion": dg.Out(dg.Nothing),
        "hours_bank": dg.Out(dg.Nothing),
        "reconciliation": dg.Out(dg.Nothing),
    }
)
def ledger_finish(
    context: dg.OpExecutionContext, database: Database, plan: RefreshPlan, parts: list[int]
) -> Iterator[dg.Output]:
    """Close the refresh (a full one records its state only now), count D4 in SQL and report."""
    store = database.hold_writes(context)
    if plan.mode == "full":
        store.finish_full(plan.state)
    counts = store.state_counts()
    store.append_reconciliation(context.run.run_id, pd.Timestamp.now(tz=SHANGHAI), counts)
    kept = store.shard_results(context.run.run_id)
    states = counts[list(STATES)].sum()
    reasons = sum((Counter(k["reasons"]) for k in kept), Counter())
    yield dg.Output(
        None,
        "completion",
        metadata={
            "dagster/row_count": int(counts["raw"].sum()),
            "refresh": plan.mode,
            "batches": f"{plan.batches[0]}..{plan.batches[1]}",
            "records_changed": plan.records_changed,
            "records_recomputed": sum(k["records"] for k in kept),
            "people_recomputed": sum(k["people"] for k in kept),
            "shards": len(plan.shards),
            "steps": len(parts),
            "states": {k: int(v) for k, v in states.items()},
            "reasons_recomputed": dict(sorted(reasons.items())),
            "name_conflicts_recomputed": sum(k["name_conflicts"] for k in kept),
            "preview": dg.MetadataValue.md(kept[0]["preview"] if kept else ""),
        },
    )
    yield dg.Output(
        None,
        "hours_bank",
        metadata={
            "dagster/row_count": store.row_count("hours_bank"),
            "person_years_recomputed": sum(k["person_years"] for k in kept),
            "compliant_recomputed": sum(k["compliant"] for k in kept),
            "not_binding_recomputed": sum(k["not_binding"] for k in kept),
        },
    )
    yield dg.Output(
        None,
        "reconciliation",
        metadata={
            "dagster/row_count": len(counts),
            "run_id": context.run.run_id,
            "d4": dg.MetadataValue.md(markdown_table(counts)),
        },
    )


@dg.graph_multi_asset(
    outs={
        "completion": dg.AssetOut(
            group_name="ledger",
            description="The ledger: every record after D1 with its state and reason (D4).",
            kinds={"pandas", "sql"},
            metadata={"dagster/column_schema": table_schema(COMPLETION_DTYPES)},
            dagster_type=dg.Nothing,
        ),
        "hours_bank": dg.AssetOut(
            group_name="ledger",
            description="学时银行: hours per person and credited year against R1/R2.",
            kinds={"pandas", "sql"},
            metadata={
                "dagster/column_schema": table_schema(HOURS_BANK_DTYPES),
                "dagster/column_lineage": HOURS_BANK_LINEAGE,
            },
            dagster_type=dg.Nothing,
        ),
        "reconciliation": dg.AssetOut(
            group_name="ledger",
            description="D4 counts per run, platform and year: raw = the sum of the four states.",
            kinds={"pandas", "sql"},
            metadata={
                "dagster/column_schema": table_schema(RECONCILIATION_DTYPES),
                "dagster/column_lineage": RECONCILIATION_LINEAGE,
            },
            dagster_type=dg.Nothing,
        ),
    },
    ins={a.key.path[0]: dg.AssetIn(a.key, dagster_type=dg.Nothing) for a in raw_assets},
)
def ledger(**raw: Any) -> dict[str, Any]:
    """Fold the stored records into the ledger, the bank and the D4 counts: a plan, then the
    shards as parallel steps (or the night's people as one), then the counts.

    Only the people whose records changed since the last run are recomputed
    (`pipelines.refresh`); a full refresh holds one shard of people at a time.
    """
    plan, work = ledger_plan(start=list(raw.values()))
    parts = work.map(ledger_part)
    completion, hours_bank, reconciliation = ledger_finish(plan, parts.collect())
    return {"completion": completion, "hours_bank": hours_bank, "reconciliation": reconciliation}


@dg.multi_asset_check(
    specs=[
        checks.COMPLETION_EXPECTATIONS,
        checks.HOURS_BANK_EXPECTATIONS,
        checks.RECONCILIATION_BALANCES,
    ]
)
def ledger_checks(
    context: dg.AssetCheckExecutionContext, database: Database
) -> Iterator[dg.AssetCheckResult]:
    """The GX suites as one validation per asset, combined from the shards' results, and D4
    over the whole ledger in SQL."""
    store = database.store()
    kept = store.shard_results(context.run.run_id)
    completion = validation.combine([k["completion"] for k in kept])
    bank = validation.combine([k["hours_bank"] for k in kept])
    yield from checks.expectations(
        (checks.COMPLETION_EXPECTATIONS, completion, completion.rows),
        (checks.HOURS_BANK_EXPECTATIONS, bank, bank.rows),
    )
    yield checks.balance(store.state_counts(), store.live_raw_counts())


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
    manifest = update_provincial(store, output.path(), store.output_years())
    return dg.MaterializeResult(
        metadata={
            "output_dir": dg.MetadataValue.path(str(output.path() / "provincial")),
            "files": manifest.file_count,
            "rows": manifest.row_count,
            "years": manifest.years,
            "years_compared": list(manifest.compared),
        }
    )


@dg.asset(
    group_name="delivery",
    deps=["completion"],
    description="Per unit and year, its form rows as submitted with 结果 and 原因 (FORMS.md).",
    kinds={"xlsx"},
)
def form_results(
    database: Database, output: ProvincialOutput, forms_folder: FormsFolder
) -> dg.MaterializeResult:
    store = database.store()
    folder = forms_folder.path()

    def read(year: int) -> pd.DataFrame:
        return store.read_table(
            "completion",
            columns=RESULT_LEDGER_COLUMNS,
            where=(f"platform = '{FORMS}' AND pull_year = {int(year)}",),
        )

    years = sorted(int(p.name) for p in folder.glob("[0-9][0-9][0-9][0-9]") if p.is_dir())
    files = update_results(folder, output.path(), years, read)
    return dg.MaterializeResult(
        metadata={
            "files": len(files),
            "written": sum(f.written for f in files),
            "rows": sum(f.rows for f in files),
            "years": years,
        }
    )


PRELOAD = [
    "pipelines.definitions",
    "great_expectations",
    "dagster._core.storage.runs",
    "dagster._core.execution.asset_backfill",
    "dagster_postgres",
]
"""What the forkserver imports once for every step process: Great Expectations and the parts
of Dagster a step imports on first use to open the instance (without them a small step spends
most of its time importing). A module not installed is skipped."""


def _one_or_many(config: dict[str, Any]) -> dict[str, Any]:
    if config["in_process"]:
        return {"in_process": {}}
    start = {"forkserver": {"preload_modules": PRELOAD}}
    return {"multiprocess": {"max_concurrent": config["max_concurrent"], "start_method": start}}


local_executor = dg.multi_or_in_process_executor.configured(
    _one_or_many,
    name="local",
    config_schema={
        "in_process": dg.Field(bool, default_value=False, description="Every step in one process."),
        "max_concurrent": dg.Field(
            int, default_value=0, description="Steps at once; 0: one per CPU."
        ),
    },
    description="One process per step, forked from a server that imported the pipeline once "
    "(a step starts in well under a second, not the seconds a fresh interpreter needs).",
)


def sync_executor() -> dg.ExecutorDefinition:
    """The deployment's executor, chosen when the code location loads: Celery workers across
    machines with XUESHI_EXECUTOR=celery (broker and result backend from
    XUESHI_CELERY_BROKER and XUESHI_CELERY_BACKEND, Redis on this machine by default), else
    one process per step on this machine (`local_executor`)."""
    if os.environ.get("XUESHI_EXECUTOR") != "celery":
        return local_executor
    from dagster_celery import celery_executor

    return celery_executor.configured(
        {
            "broker": os.environ.get("XUESHI_CELERY_BROKER", "redis://127.0.0.1:6379/0"),
            "backend": os.environ.get("XUESHI_CELERY_BACKEND", "redis://127.0.0.1:6379/1"),
        }
    )


sync_job = dg.define_asset_job(
    "sync",
    selection=dg.AssetSelection.all(),
    description="Pull the selected years from every platform, then rebuild the outputs.",
    executor_def=sync_executor(),
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
