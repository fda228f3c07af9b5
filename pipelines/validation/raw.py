"""The raw records' suite (`schemas.raw`): required columns, known platforms, one row per key."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from pipelines.validation.core import Validation, import_great_expectations, lean_columns, run
from schemas.platforms import SOURCE_CODES
from schemas.raw import record_key

RAW_SUITE = "raw_records"


def _raw_frame(frame: pd.DataFrame) -> pd.DataFrame:
    lean = lean_columns(frame, ["platform", "source_key", "pulled_at"])
    if "record_key" in frame.columns:
        lean["record_key"] = frame["record_key"].to_numpy()
    else:
        lean["record_key"] = record_key(lean["platform"], lean["source_key"])
    return lean


def record_keys(lean: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    return lean[["record_key"]].iloc[rows]


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


def validate_raw(frame: pd.DataFrame) -> Validation:
    """Raw records (schemas.raw); `record_key` is derived when the frame does not carry it."""
    import_great_expectations()
    started = time.perf_counter()
    return run(raw_suite(), _raw_frame(frame), record_keys, started)
