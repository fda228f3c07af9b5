"""Asset checks: Great Expectations suites and the D4 balance, run inside the assets that made
the data, on the frames they hold, so a million rows are never read back just to be checked.

The ledger and hours-bank suites and the D4 balance block: a failure fails the ledger step, and
the provincial files are not written. A raw suite does not block (bad values flow on to
quarantine). Failing rows are named by record key in the check's metadata, never by ID number.
"""

from pathlib import Path

import dagster as dg
import pandas as pd

from pipelines import validation
from pipelines.metadata import markdown_table
from pipelines.resources import data_dir

FAILING_ROWS_SHOWN = 20

COMPLETION_EXPECTATIONS = dg.AssetCheckSpec(
    "completion_expectations",
    asset="completion",
    blocking=True,
    description="The ledger's GX suite, on the rows this run computed.",
)
HOURS_BANK_EXPECTATIONS = dg.AssetCheckSpec(
    "hours_bank_expectations",
    asset="hours_bank",
    blocking=True,
    description="The hours bank's GX suite, on the person-years this run computed.",
)
RECONCILIATION_BALANCES = dg.AssetCheckSpec(
    "reconciliation_balances",
    asset="reconciliation",
    blocking=True,
    description=(
        "D4: per platform and year, raw = credited + merged + not credited + quarantined; "
        "per platform, the ledger holds every stored record that is not withdrawn."
    ),
)


def raw_expectations(code: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        "raw_expectations",
        asset=f"raw_{code}",
        description=f"GX suite of the raw schema on the {code} records this run stored.",
    )


def data_docs_dir() -> Path:
    return data_dir() / "data_docs"


def expectations(
    *checks: tuple[dg.AssetCheckSpec, validation.Validation, int], render: bool = True
) -> list[dg.AssetCheckResult]:
    """Results of GX validations (spec, outcome, rows validated), kept for Data Docs; the site
    is rendered when `render` (by the ledger step: once a run, not once per platform)."""
    outcomes = [outcome for _, outcome, _ in checks]
    validation.build_data_docs(outcomes, data_docs_dir(), render=render)
    return [_result(spec, outcome, rows) for spec, outcome, rows in checks]


def _result(
    spec: dg.AssetCheckSpec, outcome: validation.Validation, rows: int
) -> dg.AssetCheckResult:
    failing = outcome.failing_keys
    return dg.AssetCheckResult(
        asset_key=spec.asset_key,
        check_name=spec.name,
        passed=outcome.success,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "suite": outcome.suite,
            "rows_validated": rows,
            "expectations_evaluated": outcome.evaluated,
            "failed_expectations": outcome.failed,
            "failing_rows": outcome.failing_rows,
            "failing_rows_sample": dg.MetadataValue.md(
                markdown_table(failing.head(FAILING_ROWS_SHOWN))
            ),
            "success_percent": float(outcome.statistics.get("success_percent") or 0.0),
            "seconds": round(outcome.seconds, 2),
            "data_docs": dg.MetadataValue.path(str(data_docs_dir())),
        },
    )


def balance(counts: pd.DataFrame, live: pd.Series) -> dg.AssetCheckResult:
    """D4 on the whole ledger's counts, and the ledger's rows against the stored records."""
    states = counts[["credited", "merged", "not_credited", "quarantined"]].sum(axis=1)
    unbalanced = counts[counts["raw"] != states]
    ledger = counts.groupby("platform")["raw"].sum()
    both = pd.DataFrame({"stored": live, "ledger": ledger}).fillna(0).astype("int64")
    lost = both[both["stored"] != both["ledger"]].rename_axis("platform").reset_index()
    return dg.AssetCheckResult(
        asset_key=RECONCILIATION_BALANCES.asset_key,
        check_name=RECONCILIATION_BALANCES.name,
        passed=unbalanced.empty and lost.empty,
        metadata={
            "rows": len(counts),
            "raw": int(counts["raw"].sum()),
            "stored_not_withdrawn": int(live.sum()),
            "unbalanced": dg.MetadataValue.md(markdown_table(unbalanced)),
            "ledger_vs_stored": dg.MetadataValue.md(markdown_table(lost)),
        },
    )
