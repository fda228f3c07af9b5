"""Launching sync and backfill runs through Dagster, so every run is in the instance history."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.execution.api import execute_run
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.storage.tags import BACKFILL_ID_TAG
from dagster._core.utils import make_new_backfill_id
from dagster._utils.error import SerializableErrorInfo
from sqlalchemy import make_url

from pipelines.definitions import defs, sync_job
from pipelines.locks import release
from pipelines.resources import Database, ProvincialOutput, data_dir
from pipelines.store import Store
from pipelines.validation import preload_great_expectations

DOWNSTREAM = (
    "completion",
    "hours_bank",
    "reconciliation",
    "provincial_files",
    "form_results",
    "title_eligibility",
    "compliance_report",
)
STATE_COLUMNS = ["raw", "credited", "merged", "not_credited", "quarantined"]


def dagster_home() -> Path:
    """`DAGSTER_HOME`, or `<data>/dagster_home` so the CLI and `dagster dev` share one instance."""
    home = Path(os.environ.get("DAGSTER_HOME") or data_dir() / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text("# the xueshi CLI's local instance\ntelemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    success: bool
    errors: list[str]
    summary: pd.DataFrame
    """D4 counts of this run per platform (all years added up)."""


def run_tags(years: Sequence[int]) -> tuple[str | None, dict[str, str]]:
    """One year is a partition; a range is one run over the range (single-run backfill policy)."""
    first, last = min(years), max(years)
    if first == last:
        return str(first), {}
    return None, {
        "dagster/asset_partition_range_start": str(first),
        "dagster/asset_partition_range_end": str(last),
    }


EXECUTORS = ("in_process", "multiprocess", "celery")


def executor_name(database_url: str | None = None) -> str:
    """`XUESHI_EXECUTOR`, or the engine's default: one process for SQLite (a single writer at
    a time, the embedded default), one process per step for PostgreSQL."""
    chosen = os.environ.get("XUESHI_EXECUTOR", "")
    if chosen:
        if chosen not in EXECUTORS:
            raise ValueError(f"XUESHI_EXECUTOR={chosen!r}: one of {', '.join(EXECUTORS)}")
        return chosen
    url = database_url or Database().resolved_url()
    return "in_process" if url.startswith("sqlite") else "multiprocess"


def launch(
    years: Sequence[int],
    platforms: Sequence[str] | None = None,
    *,
    instance: dg.DagsterInstance | None = None,
    tags: dict[str, str] | None = None,
    resources: dict[str, dict[str, object]] | None = None,
    executor: str | None = None,
    run_id: str | None = None,
    ops: dict[str, dict[str, object]] | None = None,
    backfill: bool = False,
) -> RunOutcome:
    """Run the sync job for `years` (and `platforms`, default all) with `executor` (default
    `executor_name()`): in this process, or each step in its own process (multiprocess; the
    celery executor when the code location was loaded with XUESHI_EXECUTOR=celery), as a run
    from the UI would. An ephemeral instance always runs in this process.

    `resources` is run config per resource, e.g. `{"platforms": {"timeout_seconds": 5}}`;
    `run_id` lets a caller follow the run's events while it runs (`pipelines.progress`);
    `ops` is config per step, e.g. `{"raw_yt_ytec": {"accept_withdrawals": True}}`;
    `backfill` records the run as a backfill of its years (`Backfill`), as the UI's would be.
    """
    instance = instance or dg.DagsterInstance.get()
    executor = executor or executor_name()
    selection = None
    if platforms:
        selection = [dg.AssetKey(f"raw_{code}") for code in platforms]
        selection += [dg.AssetKey(name) for name in DOWNSTREAM]
    partition_key, range_tags = run_tags(years)
    run_tags_ = {**range_tags, **(tags or {}), "xueshi/years": f"{min(years)}-{max(years)}"}
    recorded = Backfill.start(instance, years, selection, run_tags_) if backfill else None
    if recorded is not None:
        run_tags_[BACKFILL_ID_TAG] = recorded.backfill.backfill_id
    run_config: dict[str, object] = {
        "loggers": {"progress": {"config": {}}},
        "resources": {name: {"config": c} for name, c in (resources or {}).items()},
        "ops": {name: {"config": c} for name, c in (ops or {}).items()},
    }
    if executor == "in_process" or instance.is_ephemeral:
        preload_great_expectations()  # its seconds of imports overlap the run's start and pulls
        result = defs.resolve_job_def("sync").execute_in_process(
            instance=instance,
            partition_key=partition_key,
            tags=run_tags_,
            asset_selection=selection,
            run_id=run_id,
            raise_on_error=False,
            run_config=run_config,
        )
        events = result.all_events
        run_id, success = result.run_id, result.success
    else:
        if partition_key is not None:
            run_tags_["dagster/partition"] = partition_key
        # what `dagster.execute_job` does, with a run id the caller knows (to follow the run)
        job = dg.reconstructable(sync_job)
        run = instance.create_run_for_job(
            job_def=sync_job(),
            run_id=run_id,
            run_config=run_config,
            tags=run_tags_,
            asset_selection=frozenset(selection) if selection else None,
            job_code_origin=job.get_python_origin(),
        )
        with execute_run(job, run, instance, raise_on_error=False) as result:
            events = result.all_events
            run_id, success = result.run_id, result.success
    errors = [
        f"{event.step_key}: {root_cause(event.step_failure_data.error)}"
        for event in events
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error
    ]
    errors += [
        f"check {check.check_name} on {check.asset_key.to_user_string()} did not pass"
        for event in events
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        and not (check := event.asset_check_evaluation_data).passed
    ]
    database_url = str((resources or {}).get("database", {}).get("url", ""))
    release_writes(run_id, database_url)
    if recorded is not None:
        recorded.finish(events)
    return RunOutcome(run_id, success, errors, summary(run_id, database_url))


@dataclass(frozen=True)
class Backfill:
    """A CLI backfill as a Dagster backfill record, so the UI lists it beside the ones started
    there, with its run. It is recorded with every partition already requested (the one
    single-run backfill run), so a running daemon only follows it; the CLI closes it when the
    run ends, from the run's materializations."""

    instance: dg.DagsterInstance
    backfill: PartitionBackfill

    @classmethod
    def start(
        cls,
        instance: dg.DagsterInstance,
        years: Sequence[int],
        selection: Sequence[dg.AssetKey] | None,
        tags: dict[str, str],
    ) -> Backfill:
        graph = defs.resolve_asset_graph()
        keys = selection or sorted(defs.resolve_job_def("sync").asset_layer.executable_asset_keys)
        record = PartitionBackfill.from_asset_partitions(
            backfill_id=make_new_backfill_id(),
            asset_graph=graph,
            partition_names=[str(y) for y in sorted(set(years))],
            asset_selection=list(keys),
            backfill_timestamp=time.time(),
            tags=tags,
            dynamic_partitions_store=instance,
            all_partitions=False,
            title=f"xueshi backfill {min(years)}–{max(years)}",
            description="started by the xueshi CLI",
            run_config=None,
        )
        data = record.asset_backfill_data
        assert data is not None
        requested = data._replace(
            requested_subset=data.target_subset, requested_runs_for_target_roots=True
        )
        record = record.with_asset_backfill_data(requested, instance, graph)
        instance.add_backfill(record)
        return cls(instance, record)

    def finish(self, events: Sequence[dg.DagsterEvent]) -> None:
        """Close the record: what the run materialized, and the rest of the target as failed."""
        graph = defs.resolve_asset_graph()
        data = self.backfill.asset_backfill_data
        assert data is not None
        materialized = AssetGraphSubset.from_asset_partition_set(
            {
                AssetKeyPartitionKey(m.asset_key, m.partition)
                for event in events
                if event.is_step_materialization
                and (m := event.step_materialization_data.materialization).asset_key
                in data.target_subset.asset_keys
            },
            graph,
        )
        failed = data.target_subset - materialized
        final = data._replace(materialized_subset=materialized, failed_and_downstream_subset=failed)
        status = (
            BulkActionStatus.COMPLETED_FAILED
            if failed.num_partitions_and_non_partitioned_assets
            else BulkActionStatus.COMPLETED_SUCCESS
        )
        self.instance.update_backfill(
            self.backfill.with_asset_backfill_data(final, self.instance, graph)
            .with_status(status)
            .with_end_timestamp(time.time())
        )


def release_writes(run_id: str, database_url: str = "") -> None:
    """Give back the write lease `run_id` took (`pipelines.locks`) in the database it wrote
    (`database_url`, or the environment's), now that it has ended."""
    store = Store.from_url(Database(url=database_url).resolved_url())
    try:
        store.migrate()
        release(store, run_id)
    finally:
        store.dispose()


def root_cause(error: SerializableErrorInfo) -> str:
    """The first error under Dagster's wrappers: `[yt_ytec] ConnectError … at URL`."""
    while error.cause is not None and (error.cls_name or "").startswith("Dagster"):
        error = error.cause
    return error.message.strip()


def summary(run_id: str, database_url: str = "") -> pd.DataFrame:
    """The run's D4 counts per platform, with a total row, from the database it wrote
    (`database_url`, or the environment's)."""
    store = Store.from_url(Database(url=database_url).resolved_url())
    try:
        counts = store.read_table("reconciliation")
    finally:
        store.dispose()
    counts = counts[counts["run_id"] == run_id]
    table = counts.groupby("platform")[STATE_COLUMNS].sum().astype("int64")
    if not table.empty:
        table.loc["total"] = table.sum()
    return table


def output_paths() -> dict[str, object]:
    """Where a run left its results (the database URL without its password)."""
    return {
        "database": make_url(Database().resolved_url()).render_as_string(hide_password=True),
        "provincial files": ProvincialOutput().path() / "provincial",
        "data docs": data_dir() / "data_docs",
        "dagster home": dagster_home(),
    }
