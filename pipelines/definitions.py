"""The one Definitions object: loaded by workspace.yaml, `dg` ([tool.dg]) and the `xueshi` CLI."""

from __future__ import annotations

import dagster as dg

from pipelines.assets.answers import compliance_report, title_eligibility_asset
from pipelines.assets.delivery import form_results, provincial_files
from pipelines.assets.jobs import late_records_job, monthly_late_records, nightly_sync, sync_job
from pipelines.assets.ledger import ledger, ledger_checks
from pipelines.assets.raw import raw_assets
from pipelines.progress import progress_logger
from pipelines.resources import Database, FormsFolder, Platforms, ProvincialOutput

defs = dg.Definitions(
    assets=dg.with_source_code_references(
        [
            *raw_assets,
            ledger,
            provincial_files,
            form_results,
            title_eligibility_asset,
            compliance_report,
        ]
    ),
    asset_checks=[ledger_checks],
    jobs=[sync_job, late_records_job],
    schedules=[nightly_sync, monthly_late_records],
    loggers={"progress": progress_logger},
    resources={
        "database": Database(),
        "platforms": Platforms(),
        "output": ProvincialOutput(),
        "forms_folder": FormsFolder(),
    },
)


def sync_job() -> dg.JobDefinition:
    """The sync job, for `dagster.reconstructable`: executors that run steps in other
    processes (multiprocess, celery) load it there by this name."""
    return defs.resolve_job_def("sync")
