"""Raw records: one asset per platform, partitioned by year (the pull window), and the
unit registration forms with their register. Each batch is stored with its watermark.
"""

import warnings
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pandas as pd

from connectors.core import Batch, PullRequest
from pipelines import checks, validation
from pipelines.crash import crash_point
from pipelines.forms import (
    load_year,
    read_year_register,
    unit_cities,
)
from pipelines.guards import EMPTY_FLOOR, SNAPSHOT_FAMILIES, WITHDRAWAL_SHARE, Limits, guarded
from pipelines.late import (
    LATE_METADATA,
    counts_late,
    missed,
    repulls_whole,
)
from pipelines.memory import release_memory
from pipelines.metadata import masked_preview, table_schema
from pipelines.progress import stored_message
from pipelines.resources import Database, FormsFolder, Platforms
from pipelines.shards import SHARD_RECORDS
from schemas.clock import current_year
from schemas.platforms import FORMS, PlatformSpec, load_specs
from schemas.raw import RAW_DTYPES, empty
from schemas.vocabulary import FIRST_YEAR

# single-run backfills are what DESIGN.md asks for; their beta label is not news at every import
warnings.filterwarnings("ignore", category=dg.BetaWarning)

years = dg.StaticPartitionsDefinition([str(y) for y in range(FIRST_YEAR, current_year() + 1)])
"""Pull windows, 2017 (R12: title checks reach back to 2017) to the current year."""


# --- raw records ----------------------------------------------------------------------------


STORE_ROWS = 20_000
RAW_KEY_COLUMNS = ("platform", "source_key", "pulled_at")
"""What the raw suite reads of the stored rows (kept in memory instead of read back)."""


class StoredKeys:
    """The stored rows' keys for the raw suite, validated a shard's worth at a time
    (`SHARD_RECORDS`) and combined into one validation, so that a step pulling a platform's
    whole history holds a shard's keys, not the history's."""

    def __init__(self) -> None:
        self.pending: list[pd.DataFrame] = []
        self.size = 0
        self.summaries: list[dict[str, Any]] = []

    def add(self, records: pd.DataFrame) -> None:
        self.pending.append(records[list(RAW_KEY_COLUMNS)])
        self.size += len(records)
        if self.size >= SHARD_RECORDS:
            self._validate()

    def validation(self) -> validation.Validation:
        if self.pending or not self.summaries:
            self._validate()
        return validation.combine(self.summaries)

    def _validate(self) -> None:
        keys = pd.concat(self.pending) if self.pending else empty()[list(RAW_KEY_COLUMNS)]
        keys = keys.drop_duplicates(["platform", "source_key"], keep="last")
        self.summaries.append(validation.validate_raw(keys).summary())
        self.pending, self.size = [], 0


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
        validation.preload_great_expectations()  # the check at the end needs it
        store = database.hold_writes(context)
        pulled: dict[str, int] = {}
        watermarks: dict[str, object] = {}
        late: dict[str, int] = {}
        last = pd.DataFrame(columns=list(RAW_DTYPES))
        stored = StoredKeys()
        this_year = current_year()
        for key in context.partition_keys:
            year = int(key)
            late_counted = counts_late(spec, year, this_year)
            known = (
                store.known_keys(spec.code, year)
                if late_counted or spec.family in SNAPSHOT_FAMILIES
                else None
            )
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
                held=len(known) if known is not None else store.live_count(spec.code, year),
                limits=config.limits(),
            )
            for batch in batches:
                crash_point("pull")
                store.store_batch(spec.code, year, batch.records, batch.watermark)
                stored.add(batch.records)
                keys.append(batch.records.loc[~batch.records["withdrawn"], "source_key"])
                pulled[key] += len(batch.records)
                watermarks[key] = dict(batch.watermark)
                if len(batch.records):
                    last = batch.records
            context.log.info(stored_message(spec.code, key, pulled[key]))
            if known and late_counted:
                late[key] = missed(pd.concat(keys) if keys else [], known)
                context.log.info(f"{spec.code} {key}: {late[key]} late records the nights missed")
            release_memory()
        yield dg.MaterializeResult(
            metadata={
                "records_pulled": sum(pulled.values()),
                "records_by_year": pulled,
                "watermarks": watermarks,
                LATE_METADATA: late,
                "preview": dg.MetadataValue.md(masked_preview(last, ("raw_id",))),
            }
        )
        spec_check = checks.raw_expectations(spec.code)
        outcome = stored.validation()
        yield from checks.expectations((spec_check, outcome, outcome.rows), render=False)

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
