"""The one Definitions object: loaded by workspace.yaml, `dg` ([tool.dg]) and the `xueshi` CLI."""

from __future__ import annotations

import dagster as dg

from pipelines.assets import (
    form_results,
    ledger,
    nightly_sync,
    provincial_files,
    raw_assets,
    sync_job,
)
from pipelines.resources import Database, FormsFolder, Platforms, ProvincialOutput
from pipelines.runs import progress_logger

defs = dg.Definitions(
    assets=[*raw_assets, ledger, provincial_files, form_results],
    jobs=[sync_job],
    schedules=[nightly_sync],
    loggers={"progress": progress_logger},
    resources={
        "database": Database(),
        "platforms": Platforms(),
        "output": ProvincialOutput(),
        "forms_folder": FormsFolder(),
    },
)
