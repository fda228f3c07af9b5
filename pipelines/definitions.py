"""The one Definitions object: loaded by workspace.yaml, `dg` ([tool.dg]) and the `xueshi` CLI."""

from __future__ import annotations

import dagster as dg

from pipelines.assets import (
    late_records_job,
    ledger,
    monthly_late_records,
    nightly_sync,
    provincial_files,
    raw_assets,
    sync_job,
)
from pipelines.resources import Database, Platforms, ProvincialOutput
from pipelines.runs import progress_logger

defs = dg.Definitions(
    assets=[*raw_assets, ledger, provincial_files],
    jobs=[sync_job, late_records_job],
    schedules=[nightly_sync, monthly_late_records],
    loggers={"progress": progress_logger},
    resources={
        "database": Database(),
        "platforms": Platforms(),
        "output": ProvincialOutput(),
    },
)
