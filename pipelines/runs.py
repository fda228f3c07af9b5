"""Launching sync and backfill runs through Dagster, so every run is in the instance history."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster._utils.error import SerializableErrorInfo
from sqlalchemy import make_url

from pipelines.locks import release
from pipelines.resources import Database, ProvincialOutput, data_dir
from pipelines.store import Store

DOWNSTREAM = ("completion", "hours_bank", "reconciliation", "provincial_files")
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


class _ProgressFormatter(logging.Formatter):
    """One short line per message: the step and the first line of what it said."""

    def format(self, record: logging.LogRecord) -> str:
        meta = getattr(record, "dagster_meta", {})
        message = (meta.get("orig_message") or record.getMessage()).strip().splitlines()
        step = meta.get("step_key") or "run"
        return f"  {step}: {message[0] if message else ''}"


@dg.logger(description="Progress lines for the CLI: one line per message, no stack traces.")
def progress_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.getLogger("xueshi.progress")
    logger.propagate = False
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(_ProgressFormatter())
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger


def launch(
    years: Sequence[int],
    platforms: Sequence[str] | None = None,
    *,
    instance: dg.DagsterInstance | None = None,
    tags: dict[str, str] | None = None,
    resources: dict[str, dict[str, object]] | None = None,
    ops: dict[str, dict[str, object]] | None = None,
) -> RunOutcome:
    """Run the sync job for `years` (and `platforms`, default all) in this process.

    `resources` is run config per resource, e.g. `{"platforms": {"timeout_seconds": 5}}`;
    `ops` per step, e.g. `{"raw_yt_ytec": {"accept_withdrawals": True}}`.
    """
    from pipelines.definitions import defs

    instance = instance or dg.DagsterInstance.get()
    job = defs.resolve_job_def("sync")
    selection = None
    if platforms:
        selection = [dg.AssetKey(f"raw_{code}") for code in platforms]
        selection += [dg.AssetKey(name) for name in DOWNSTREAM]
    partition_key, range_tags = run_tags(years)
    result = job.execute_in_process(
        instance=instance,
        partition_key=partition_key,
        tags={**range_tags, **(tags or {}), "xueshi/years": f"{min(years)}-{max(years)}"},
        asset_selection=selection,
        raise_on_error=False,
        run_config={
            "loggers": {"progress": {"config": {}}},
            "resources": {name: {"config": c} for name, c in (resources or {}).items()},
            "ops": {name: {"config": c} for name, c in (ops or {}).items()},
        },
    )
    errors = [
        f"{event.step_key}: {root_cause(event.step_failure_data.error)}"
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error
    ]
    errors += [
        f"check {check.check_name} on {check.asset_key.to_user_string()} did not pass"
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        and not (check := event.asset_check_evaluation_data).passed
    ]
    release_writes(result.run_id)
    return RunOutcome(result.run_id, result.success, errors, summary(result.run_id))


def release_writes(run_id: str) -> None:
    """Give back the write lease `run_id` took (`pipelines.locks`), now that it has ended."""
    store = Store.from_url(Database().resolved_url())
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


def summary(run_id: str) -> pd.DataFrame:
    """The run's D4 counts per platform, with a total row."""
    store = Store.from_url(Database().resolved_url())
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


def quiet_libraries() -> None:
    """Progress lines from xueshi; only warnings from the libraries under it."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("xueshi").setLevel(logging.INFO)
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
