"""The ledger, the hours bank and the D4 reconciliation: one graph asset (a plan, the shards
as parallel steps, the counts) and the blocking checks on what it wrote.
"""

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pandas as pd

from pipelines import checks, validation
from pipelines.assets.raw import raw_assets
from pipelines.memory import release_memory
from pipelines.metadata import markdown_table, masked_preview, table_schema
from pipelines.refresh import (
    RefreshPlan,
    plan_refresh,
    refresh_changes,
    refresh_shard,
    rules_fingerprint,
)
from pipelines.resources import Database
from pipelines.rules import RulesResult
from pipelines.shards import Shard
from pipelines.store import Store
from schemas.clock import SHANGHAI
from schemas.ledger import COMPLETION_DTYPES, HOURS_BANK_DTYPES, RECONCILIATION_DTYPES, STATES

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
    store.begin_full()
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
        del result
        release_memory()
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


def _ledger_out(
    description: str, dtypes: dict[str, str], lineage: dg.TableColumnLineage | None = None
) -> dg.AssetOut:
    """One table the ledger step writes (SQL, not passed between steps: `Nothing`)."""
    metadata: dict[str, object] = {"dagster/column_schema": table_schema(dtypes)}
    if lineage is not None:
        metadata["dagster/column_lineage"] = lineage
    return dg.AssetOut(
        group_name="ledger",
        description=description,
        kinds={"pandas", "sql"},
        metadata=metadata,
        dagster_type=dg.Nothing,
    )


@dg.graph_multi_asset(
    outs={
        "completion": _ledger_out(
            "The ledger: every record after D1 with its state and reason (D4).",
            COMPLETION_DTYPES,
        ),
        "hours_bank": _ledger_out(
            "学时银行: hours per person and credited year against R1/R2.",
            HOURS_BANK_DTYPES,
            HOURS_BANK_LINEAGE,
        ),
        "reconciliation": _ledger_out(
            "D4 counts per run, platform and year: raw = the sum of the four states.",
            RECONCILIATION_DTYPES,
            RECONCILIATION_LINEAGE,
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
    over the whole ledger: the counts `ledger_finish` took in SQL (taken again when the check
    runs alone)."""
    store = database.store()
    kept = store.shard_results(context.run.run_id)
    counts = store.run_counts(context.run.run_id)
    completion = validation.combine([k["completion"] for k in kept])
    bank = validation.combine([k["hours_bank"] for k in kept])
    yield from checks.expectations(
        (checks.COMPLETION_EXPECTATIONS, completion, completion.rows),
        (checks.HOURS_BANK_EXPECTATIONS, bank, bank.rows),
    )
    yield checks.balance(
        store.state_counts() if counts is None else counts, store.live_raw_counts()
    )
