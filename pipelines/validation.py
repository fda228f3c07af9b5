"""Great Expectations suites for the raw records, the completion ledger and the hours bank.

GX (1.x API) imports scipy and takes seconds to load, so it is imported inside the functions,
never at module level. Each run gets a fresh ephemeral context, because a context keeps every
result in memory. Checks that GX cannot express directly (the ID check character, conservation
of hours, compliance) are precomputed as boolean columns on a lean copy of the frame and
expected to be true: a custom expectation class silently vanishes from a suite loaded where its
module was not imported. Row-level failures come back as positions on a plain RangeIndex, mapped
to keys here; unexpected values are excluded so that no ID number reaches results or Data Docs
(RULES.md C6).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines.rules.config import RulesConfig
from schemas.id_numbers import check_chars
from schemas.ledger import CAP_REASONS, FORM_REASONS, MODES, QUARANTINE_REASONS, STATES
from schemas.platforms import FORMS, SOURCE_CODES
from schemas.privacy import mask_ids
from schemas.raw import TZ, SchemaError, record_key
from schemas.vocabulary import PROFESSIONAL, PUBLIC

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.data_context import AbstractDataContext

# GX reads this when it is imported, here or by the forkserver (`jobs.PRELOAD`): no analytics
os.environ["GX_ANALYTICS_ENABLED"] = "false"

RAW_SUITE = "raw_records"
COMPLETION_SUITE = "completion"
HOURS_BANK_SUITE = "hours_bank"

RULE_REASONS: tuple[str, ...] = ("R6", "D2", "D3", *CAP_REASONS)
REASONS: tuple[str, ...] = RULE_REASONS + FORM_REASONS + QUARANTINE_REASONS
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


# --- precomputed checks -------------------------------------------------------------------------


def id_check_valid(ids: pd.Series) -> np.ndarray:
    """18 characters, 17 digits and a correct MOD 11-2 check character (C1), vectorized."""
    text = ids.astype("str").fillna("")
    shaped = text.str.fullmatch(r"[0-9]{17}[0-9X]").to_numpy(dtype=bool, na_value=False)
    valid = np.zeros(len(text), dtype=bool)
    if shaped.any():
        arrow = pa.array(text[shaped])  # chunked when the frame was concatenated
        if isinstance(arrow, pa.ChunkedArray):
            arrow = arrow.combine_chunks()
        fixed = arrow.cast(pa.binary(18))  # one buffer of 18 bytes a row, read in place
        chars = np.frombuffer(
            fixed.buffers()[1], dtype=np.uint8, count=18 * len(fixed), offset=18 * fixed.offset
        ).reshape(-1, 18)
        valid[shaped] = chars[:, 17] == check_chars(chars[:, :17])
    return valid


def _sums_to(total: pd.Series, *parts: pd.Series) -> np.ndarray:
    """total == sum(parts) within float tolerance; NaN anywhere is not equal."""
    difference = total.astype("float64") - sum(p.astype("float64") for p in parts)
    return (difference.abs() < TOLERANCE).to_numpy(dtype=bool, na_value=False)


def _is(values: pd.Series, value: str) -> np.ndarray:
    return (values == value).to_numpy(dtype=bool, na_value=False)


def _lean(frame: pd.DataFrame, columns: list[str], inputs: tuple[str, ...] = ()) -> pd.DataFrame:
    """The columns GX reads, on a RangeIndex so that failing positions are rows of `frame`.

    `inputs` are further columns the precomputed booleans read from `frame`.
    """
    missing = [c for c in (*columns, *inputs) if c not in frame.columns]
    if missing:
        raise SchemaError(f"missing columns: {', '.join(missing)}")
    return frame.loc[:, columns].reset_index(drop=True)


def _raw_frame(frame: pd.DataFrame) -> pd.DataFrame:
    lean = _lean(frame, ["platform", "source_key", "pulled_at"])
    if "record_key" in frame.columns:
        lean["record_key"] = frame["record_key"].to_numpy()
    else:
        lean["record_key"] = record_key(lean["platform"], lean["source_key"])
    return lean


def _completion_frame(frame: pd.DataFrame, config: RulesConfig, current_year: int) -> pd.DataFrame:
    """State-scoped checks as booleans, true where a row's state puts it out of their scope.

    Booleans rather than GX row conditions: each conditioned metric filters a copy of the whole
    frame, which doubled the time a million rows take.
    """
    columns = ["record_key", "state", "reason", "subject", "mode"]
    inputs = ("credited_year", "hours_reported", "merged_into", "id_number", "platform")
    lean = _lean(frame, [*columns, "hours_credited", "hours_trimmed"], inputs)
    credited = _is(lean["state"], "credited")
    year = frame["credited_year"].astype("Float64")
    in_range = ((year >= config.first_year) & (year <= current_year)).to_numpy(
        dtype=bool, na_value=False
    )
    hours = _sums_to(frame["hours_reported"], frame["hours_credited"], frame["hours_trimmed"])
    lean["conserved"] = ~credited | hours
    lean["id_valid"] = _is(lean["state"], "quarantined") | id_check_valid(frame["id_number"])
    lean["credited_year_in_range"] = ~credited | in_range
    lean["merged_into_present"] = (
        ~_is(lean["state"], "merged") | frame["merged_into"].notna().to_numpy()
    )
    cap = np.select(
        [
            _is(frame["platform"], FORMS) & _is(lean["mode"], "training"),
            *(_is(lean["mode"], m) for m in MODES[1:]),
        ],
        [config.max_hours, config.selfstudy_cap, config.conversion_cap],
        default=config.daily_cap,
    )
    lean["within_cap"] = ~credited | (lean["hours_credited"].to_numpy() <= cap + TOLERANCE)
    return lean


def _hours_bank_frame(frame: pd.DataFrame) -> pd.DataFrame:
    hours = ["public_hours", "professional_hours", "total_hours", "makeup_hours"]
    shorts = ["public_short", "professional_short"]
    lean = _lean(frame, ["id_number", "year", *hours, *shorts], ("compliant",))
    lean["total_adds_up"] = _sums_to(
        lean["total_hours"], lean["public_hours"], lean["professional_hours"]
    )
    shorts_met = (lean["public_short"] == 0) & (lean["professional_short"] == 0)
    compliant = frame["compliant"].reset_index(drop=True)
    lean["compliance_consistent"] = (compliant == shorts_met).to_numpy(dtype=bool, na_value=False)
    return lean


def _record_keys(lean: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    return lean[["record_key"]].iloc[rows]


def _person_years(lean: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """Hours bank rows are named by masked ID number (C6) and year."""
    taken = lean[["id_number", "year"]].iloc[rows]
    return pd.DataFrame({"id_masked": mask_ids(taken["id_number"]), "year": taken["year"]})


# --- suites ------------------------------------------------------------------------------------


def _precomputed(*checks: tuple[str, str]) -> list[Any]:
    """Expect each precomputed boolean column to be true, described for Data Docs."""
    import great_expectations as gx

    return [
        gx.expectations.ExpectColumnValuesToBeInSet(
            column=column, value_set=[True], description=description
        )
        for column, description in checks
    ]


def raw_suite() -> Any:
    """Required columns present, platform one of the ten codes or `forms`, one row per key."""
    import great_expectations as gx

    expect = gx.expectations
    required = ("platform", "source_key", "record_key", "pulled_at")
    return gx.ExpectationSuite(
        name=RAW_SUITE,
        expectations=[
            *(expect.ExpectColumnValuesToNotBeNull(column=column) for column in required),
            expect.ExpectColumnValuesToBeInSet(column="platform", value_set=sorted(SOURCE_CODES)),
            expect.ExpectColumnValuesToBeUnique(column="record_key"),
        ],
    )


def completion_suite(config: RulesConfig, current_year: int) -> Any:
    """The ledger's values per PROVINCIAL.md and RULES.md (D4, R5, R7, C1, R10–R12)."""
    import great_expectations as gx

    expect = gx.expectations
    return gx.ExpectationSuite(
        name=COMPLETION_SUITE,
        expectations=[
            expect.ExpectColumnValuesToNotBeNull(column="record_key"),
            expect.ExpectColumnValuesToBeUnique(column="record_key"),
            expect.ExpectColumnValuesToNotBeNull(column="state"),
            expect.ExpectColumnValuesToBeInSet(column="state", value_set=list(STATES)),
            expect.ExpectColumnValuesToBeInSet(column="reason", value_set=list(REASONS)),
            expect.ExpectColumnValuesToBeInSet(column="subject", value_set=[PUBLIC, PROFESSIONAL]),
            expect.ExpectColumnValuesToNotBeNull(column="mode"),
            expect.ExpectColumnValuesToBeInSet(column="mode", value_set=list(MODES)),
            expect.ExpectColumnValuesToBeBetween(
                column="hours_credited", min_value=0, max_value=config.max_hours
            ),
            expect.ExpectColumnValuesToBeBetween(column="hours_trimmed", min_value=0),
            *_precomputed(
                ("conserved", "credited rows: hours_credited + hours_trimmed = hours_reported"),
                ("id_valid", "rows not quarantined: 18 characters, MOD 11-2 check valid (C1)"),
                (
                    "credited_year_in_range",
                    f"credited rows: credited_year in {config.first_year}–{current_year} (R12)",
                ),
                ("merged_into_present", "merged rows: merged_into names the kept record"),
                (
                    "within_cap",
                    "credited rows: platform records at most the daily cap (R7), self-study and "
                    "conversion rows at most their yearly caps (R8, R9)",
                ),
            ),
        ],
    )


def hours_bank_suite(config: RulesConfig) -> Any:
    """One row per person and year, hours that add up, shorts and compliance that agree (R1)."""
    import great_expectations as gx

    expect = gx.expectations
    hours = ("public_hours", "professional_hours", "total_hours", "makeup_hours")
    shorts = (
        ("public_short", config.public_required),
        ("professional_short", config.professional_required),
    )
    return gx.ExpectationSuite(
        name=HOURS_BANK_SUITE,
        expectations=[
            expect.ExpectColumnValuesToNotBeNull(column="id_number"),
            expect.ExpectCompoundColumnsToBeUnique(column_list=["id_number", "year"]),
            *(expect.ExpectColumnValuesToBeBetween(column=column, min_value=0) for column in hours),
            *_precomputed(("total_adds_up", "total_hours = public_hours + professional_hours")),
            *(
                expect.ExpectColumnValuesToBeBetween(column=column, min_value=0, max_value=needed)
                for column, needed in shorts
            ),
            *_precomputed(
                (
                    "compliance_consistent",
                    "compliant exactly when public_short and professional_short are 0 (R1)",
                )
            ),
        ],
    )


# --- running ----------------------------------------------------------------------------------


def import_great_expectations() -> None:
    """Load GX (seconds, for scipy), analytics off (set when this module was imported)."""
    import great_expectations  # noqa: F401


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


def _run(
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


def validate_raw(frame: pd.DataFrame) -> Validation:
    """Raw records (schemas.raw); `record_key` is derived when the frame does not carry it."""
    import_great_expectations()
    started = time.perf_counter()
    return _run(raw_suite(), _raw_frame(frame), _record_keys, started)


def validate_completion(
    frame: pd.DataFrame, config: RulesConfig | None = None, current_year: int | None = None
) -> Validation:
    """The completion ledger; credited years may reach `current_year` (default: now, Shanghai)."""
    import_great_expectations()
    started = time.perf_counter()
    year = current_year if current_year is not None else datetime.now(ZoneInfo(TZ)).year
    config = config or RulesConfig()
    lean = _completion_frame(frame, config, year)
    return _run(completion_suite(config, year), lean, _record_keys, started)


def validate_hours_bank(frame: pd.DataFrame, config: RulesConfig | None = None) -> Validation:
    """The hours bank; failing rows are named by masked ID number and year."""
    import_great_expectations()
    started = time.perf_counter()
    suite = hours_bank_suite(config or RulesConfig())
    return _run(suite, _hours_bank_frame(frame), _person_years, started)


# --- Data Docs ----------------------------------------------------------------------------------


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
