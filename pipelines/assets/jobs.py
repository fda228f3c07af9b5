"""The jobs, their executor and their schedules: the nightly sync and the monthly re-pull of
ended years.
"""

import os
from typing import Any

import dagster as dg

from pipelines.assets.delivery import provincial_files
from pipelines.late import (
    SNAPSHOT_FAMILY,
    without_update_times,
)
from schemas.clock import SHANGHAI
from schemas.platforms import load_specs
from schemas.raw import TZ
from schemas.vocabulary import FIRST_YEAR

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


@dg.schedule(job=sync_job, cron_schedule="0 2 * * *", execution_timezone=TZ)
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


@dg.schedule(job=late_records_job, cron_schedule="0 3 1 * *", execution_timezone=TZ)
def monthly_late_records(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """On the 1st of every month at 03:00 Beijing time, every ended year as one run."""
    year = context.scheduled_execution_time.astimezone(SHANGHAI).year
    return dg.RunRequest(
        tags={
            "dagster/asset_partition_range_start": str(FIRST_YEAR),
            "dagster/asset_partition_range_end": str(year - 1),
        }
    )
