"""Asset checks: Great Expectations suites and the D4 balance, reading the database.

The ledger and hours-bank checks block: a failure stops the provincial files from being
written. Failing rows are named by record key in the check's metadata, never by ID number.
"""

import dagster as dg
import pandas as pd

from connectors.core import PlatformSpec
from connectors.specs import load_specs
from pipelines import validation
from pipelines.assets import markdown_table
from pipelines.resources import Database, data_dir

FAILING_ROWS_SHOWN = 20


def _result(outcome: validation.Validation) -> dg.AssetCheckResult:
    failing = outcome.failing_keys
    return dg.AssetCheckResult(
        passed=outcome.success,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "suite": outcome.suite,
            "expectations_evaluated": outcome.evaluated,
            "failed_expectations": outcome.failed,
            "failing_rows": len(failing),
            "failing_rows_sample": dg.MetadataValue.md(
                markdown_table(failing.head(FAILING_ROWS_SHOWN))
            ),
            "success_percent": float(outcome.statistics.get("success_percent") or 0.0),
            "seconds": round(outcome.seconds, 2),
            "data_docs": dg.MetadataValue.path(str(data_docs_dir())),
        },
    )


def data_docs_dir():
    return data_dir() / "data_docs"


def _validate(kind: str, frame: pd.DataFrame) -> dg.AssetCheckResult:
    run = {
        "raw_records": validation.validate_raw,
        "completion": validation.validate_completion,
        "hours_bank": validation.validate_hours_bank,
    }[kind]
    outcome = run(frame)
    validation.build_data_docs([outcome], data_docs_dir())
    return _result(outcome)


@dg.asset_check(asset="completion", blocking=True, description="The ledger's GX suite.")
def completion_expectations(database: Database) -> dg.AssetCheckResult:
    return _validate("completion", database.store().read_table("completion"))


@dg.asset_check(asset="hours_bank", blocking=True, description="The hours bank's GX suite.")
def hours_bank_expectations(database: Database) -> dg.AssetCheckResult:
    return _validate("hours_bank", database.store().read_table("hours_bank"))


@dg.asset_check(
    asset="reconciliation",
    blocking=True,
    description="D4: per platform and year, raw = credited + merged + not credited + quarantined.",
)
def reconciliation_balances(
    context: dg.AssetCheckExecutionContext, database: Database
) -> dg.AssetCheckResult:
    counts = database.store().read_table("reconciliation")
    counts = counts[counts["run_id"] == context.run.run_id]
    states = counts[["credited", "merged", "not_credited", "quarantined"]].sum(axis=1)
    unbalanced = counts[counts["raw"] != states]
    return dg.AssetCheckResult(
        passed=unbalanced.empty,
        metadata={
            "rows": len(counts),
            "raw": int(counts["raw"].sum()),
            "unbalanced": dg.MetadataValue.md(markdown_table(unbalanced)),
        },
    )


def raw_expectations(spec: PlatformSpec) -> dg.AssetChecksDefinition:
    """The raw suite for one platform; bad values flow on to quarantine, so it does not block."""

    @dg.asset_check(
        asset=f"raw_{spec.code}",
        name="raw_expectations",
        description=f"GX suite of the raw schema on every stored {spec.code} record.",
    )
    def _check(database: Database) -> dg.AssetCheckResult:
        return _validate("raw_records", database.store().raw_records(platforms=[spec.code]))

    return _check


checks = [
    completion_expectations,
    hours_bank_expectations,
    reconciliation_balances,
    *(raw_expectations(spec) for spec in load_specs().values()),
]
