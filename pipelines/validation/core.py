"""What every suite shares: running one on a lean frame in an ephemeral GX context,
the result (`Validation`) and how shard results combine, the precomputed-boolean helpers, and
the Data Docs site.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.memory import exempt_long_lived
from schemas.raw import SchemaError

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.data_context import AbstractDataContext


# GX reads this when it is imported, here or by the forkserver (`jobs.PRELOAD`): no analytics
os.environ["GX_ANALYTICS_ENABLED"] = "false"

TOLERANCE = 1e-6  # float sums of hours rounded to 0.1

RESULT_FORMAT: dict[str, Any] = {"result_format": "COMPLETE", "exclude_unexpected_values": True}
# Dropped from kept results once mapped to keys: one entry per failing row, too big for docs.
BULKY_RESULT_KEYS = ("unexpected_index_list", "unexpected_index_query")
DOCS_SITE = "xueshi"
RESULTS_STORE = "xueshi_validation_results"


FAILING_SAMPLE = 20
"""Failing rows a shard keeps by key for the combined check's metadata."""


@dataclass(frozen=True, eq=False)
class Validation:
    """One suite run: what failed, which rows (by key, never by ID number), GX's statistics."""

    suite: str  # "raw_records" | "completion" | "hours_bank"
    success: bool
    evaluated: int  # expectations evaluated
    failed: list[str]  # names of failed expectations: "type(column, …)"
    failing_keys: pd.DataFrame  # key column(s), "row" (position in the frame), "expectation"
    statistics: dict[str, float]  # GX's statistics (success_percent etc.)
    seconds: float  # wall time of the run, GX's one-off import excluded
    result: ExpectationSuiteValidationResult = field(repr=False)
    """GX's result without per-row index lists, kept for `build_data_docs`."""
    rows: int = 0  # rows validated
    failing_rows: int = 0  # all failing rows; `failing_keys` may hold only a sample

    def summary(self, sample: int = FAILING_SAMPLE) -> dict[str, Any]:
        """The validation as JSON, with a sample of the failing rows: what a shard step keeps
        for `combine` (GX's result has counts and no values, see RESULT_FORMAT)."""
        return {
            "suite": self.suite,
            "rows": self.rows,
            "failing_rows": self.failing_rows,
            "failing_sample": self.failing_keys.head(sample).to_dict(orient="list"),
            "seconds": self.seconds,
            "result": self.result.to_json_dict(),
        }


def combine(summaries: list[dict[str, Any]]) -> Validation:
    """One validation of a suite from its shards' `summary`s: an expectation passes where it
    passed on every shard, its counts are the shards' sums, and GX's result is rebuilt from
    them, so Data Docs show one validation of the whole asset."""
    from great_expectations.core.expectation_validation_result import (
        expectationSuiteValidationResultSchema,
    )
    from great_expectations.core.run_identifier import RunIdentifier

    if not summaries:
        raise ValueError("no shard validations to combine")
    results = [s["result"] for s in summaries]
    merged = dict(results[0])
    merged["results"] = [
        _merged_expectation(parts) for parts in zip(*(r["results"] for r in results), strict=True)
    ]
    passed = sum(bool(r["success"]) for r in merged["results"])
    evaluated = len(merged["results"])
    merged["success"] = passed == evaluated
    merged["statistics"] = {
        "evaluated_expectations": evaluated,
        "successful_expectations": passed,
        "unsuccessful_expectations": evaluated - passed,
        "success_percent": 100.0 * passed / evaluated if evaluated else None,
    }
    result = expectationSuiteValidationResultSchema.load(merged)
    run_id = RunIdentifier(run_name=summaries[0]["suite"], run_time=datetime.now(UTC))
    result.meta["run_id"] = run_id
    result.meta["validation_time"] = run_id.run_time
    failing = pd.concat([pd.DataFrame(s["failing_sample"]) for s in summaries], ignore_index=True)
    return Validation(
        suite=summaries[0]["suite"],
        success=bool(merged["success"]),
        evaluated=evaluated,
        failed=[_expectation_name(r.expectation_config) for r in result.results if not r.success],
        failing_keys=failing,
        statistics={k: float(v or 0.0) for k, v in merged["statistics"].items()},
        seconds=sum(float(s["seconds"]) for s in summaries),
        result=result,
        rows=sum(int(s["rows"]) for s in summaries),
        failing_rows=sum(int(s["failing_rows"]) for s in summaries),
    )


_SUMMED = ("element_count", "missing_count", "unexpected_count")


def _merged_expectation(parts: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    """One expectation's results on every shard as one: success on all, counts added."""
    merged = dict(parts[0])
    merged["success"] = all(bool(p["success"]) for p in parts)
    details = dict(merged.get("result") or {})
    if all(key in details for key in _SUMMED):
        for key in _SUMMED:
            details[key] = sum(int((p.get("result") or {}).get(key) or 0) for p in parts)
        elements, missing = details["element_count"], details["missing_count"]
        unexpected = details["unexpected_count"]
        present = elements - missing
        details["missing_percent"] = 100.0 * missing / elements if elements else None
        details["unexpected_percent"] = 100.0 * unexpected / present if present else None
        details["unexpected_percent_total"] = 100.0 * unexpected / elements if elements else None
        details["unexpected_percent_nonmissing"] = details["unexpected_percent"]
        details["partial_unexpected_list"] = []
        details["partial_unexpected_counts"] = []
    merged["result"] = details
    return merged


def sums_to(total: pd.Series, *parts: pd.Series) -> np.ndarray:
    """total == sum(parts) within float tolerance; NaN anywhere is not equal."""
    difference = total.astype("float64") - sum(p.astype("float64") for p in parts)
    return (difference.abs() < TOLERANCE).to_numpy(dtype=bool, na_value=False)


def is_value(values: pd.Series, value: str) -> np.ndarray:
    return (values == value).to_numpy(dtype=bool, na_value=False)


def lean_columns(
    frame: pd.DataFrame, columns: list[str], inputs: tuple[str, ...] = ()
) -> pd.DataFrame:
    """The columns GX reads, on a RangeIndex so that failing positions are rows of `frame`.

    `inputs` are further columns the precomputed booleans read from `frame`.
    """
    missing = [c for c in (*columns, *inputs) if c not in frame.columns]
    if missing:
        raise SchemaError(f"missing columns: {', '.join(missing)}")
    return frame.loc[:, columns].reset_index(drop=True)


def precomputed(*checks: tuple[str, str]) -> list[Any]:
    """Expect each precomputed boolean column to be true, described for Data Docs."""
    import great_expectations as gx

    return [
        gx.expectations.ExpectColumnValuesToBeInSet(
            column=column, value_set=[True], description=description
        )
        for column, description in checks
    ]


def preload_great_expectations() -> None:
    """Start loading GX in a background thread: a run in this process and every raw step call
    this first, so the seconds of imports (scipy) overlap the run's start and the pulls' waits
    on the platforms instead of adding to the night."""
    _loading()


def import_great_expectations() -> None:
    """Load GX (or wait for the preload), analytics off (set when this module was imported)."""
    _loading().join()


@functools.cache
def _loading() -> threading.Thread:
    thread = threading.Thread(target=_import, name="great-expectations-import", daemon=True)
    thread.start()
    return thread


def _import() -> None:
    import great_expectations  # noqa: F401

    exempt_long_lived()  # GX is the last and largest import: collections walk the run from here


def _context() -> AbstractDataContext:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _expectation_name(config: Any) -> str:
    kwargs = config.kwargs
    columns = kwargs["column_list"] if "column_list" in kwargs else [kwargs["column"]]
    return f"{config.type}({', '.join(columns)})"


def run(
    suite: Any,
    lean: pd.DataFrame,
    name_rows: Callable[[pd.DataFrame, np.ndarray], pd.DataFrame],
    started: float,
) -> Validation:
    """Validate `lean` (a RangeIndex copy); `name_rows` gives the key columns of failing rows."""
    from great_expectations.core.run_identifier import RunIdentifier

    context = _context()
    batch = (
        context.data_sources.add_pandas("xueshi")
        .add_dataframe_asset(suite.name)
        .add_batch_definition_whole_dataframe("frame")
        .get_batch(batch_parameters={"dataframe": lean})
    )
    # Batch.validate, not ValidationDefinition.run: the latter stores the result in the context,
    # serializing every failing row's index, which dominates when many rows fail.
    result = batch.validate(suite, result_format=RESULT_FORMAT)
    run_id = RunIdentifier(run_name=suite.name, run_time=datetime.now(UTC))
    result.meta["run_id"] = run_id
    result.meta["validation_time"] = run_id.run_time
    failed: list[str] = []
    positions: list[np.ndarray] = []
    for outcome in result.results:
        details = outcome.result
        if not outcome.success:
            failed.append(_expectation_name(outcome.expectation_config))
            positions.append(np.asarray(details.get("unexpected_index_list", []), dtype=np.int64))
        for key in BULKY_RESULT_KEYS:
            details.pop(key, None)
    rows = np.concatenate(positions) if positions else np.empty(0, dtype=np.int64)
    failing = name_rows(lean, rows).reset_index(drop=True)
    failing["row"] = rows
    failing["expectation"] = pd.Series(np.repeat(failed, [len(p) for p in positions]), dtype="str")
    return Validation(
        suite=suite.name,
        success=bool(result.success),
        evaluated=int(result.statistics["evaluated_expectations"]),
        failed=failed,
        failing_keys=failing,
        statistics={k: float(v or 0.0) for k, v in result.statistics.items()},
        seconds=time.perf_counter() - started,
        result=result,
        rows=len(lean),
        failing_rows=len(failing),
    )


def build_data_docs(
    validations: list[Validation], site_dir: Path, history: int = 30, *, render: bool = True
) -> Path:
    """Add the validations to the Data Docs site in `site_dir`, rebuild it, return its index.html.

    Results are kept as GX JSON in `site_dir/results` (counts and row positions, never values),
    so that each build adds to the site instead of replacing it; the latest `history` results
    of each suite are kept. `render=False` only keeps the results, for the next build to show:
    a run renders the site once, not once per asset.
    """
    import_great_expectations()
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    context = _context()
    store = context.add_store(
        RESULTS_STORE,
        {
            "class_name": "ValidationResultsStore",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(site_dir / "results"),
            },
        },
    )
    for validation in validations:
        identifier = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=validation.suite),
            run_id=validation.result.meta["run_id"],
            batch_identifier=validation.suite,
        )
        store.set(identifier, validation.result)
    if not render:
        return site_dir / "index.html"
    newest_first = sorted(store.list_keys(), key=lambda k: k.run_id.run_time, reverse=True)
    kept: dict[str, int] = {}
    for key in newest_first:
        suite = key.expectation_suite_identifier.name
        kept[suite] = kept.get(suite, 0) + 1
        if kept[suite] > history:
            store.remove_key(key)
    context.add_data_docs_site(
        DOCS_SITE,
        {
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(site_dir),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "site_section_builders": {"validations": {"source_store_name": RESULTS_STORE}},
        },
    )
    context.build_data_docs(site_names=[DOCS_SITE])
    return site_dir / "index.html"
