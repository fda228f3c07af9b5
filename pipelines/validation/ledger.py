"""The completion ledger's suite (`schemas.ledger`, PROVINCIAL.md, RULES.md D4, R5, R7, C1,
R10–R12).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines.rules.config import RulesConfig
from pipelines.validation.core import (
    TOLERANCE,
    Validation,
    import_great_expectations,
    is_value,
    lean_columns,
    precomputed,
    run,
    sums_to,
)
from pipelines.validation.raw import record_keys
from schemas.id_numbers import check_chars
from schemas.ledger import CAP_REASONS, FORM_REASONS, MODES, QUARANTINE_REASONS, STATES
from schemas.platforms import FORMS
from schemas.raw import TZ
from schemas.vocabulary import PROFESSIONAL, PUBLIC

COMPLETION_SUITE = "completion"
RULE_REASONS: tuple[str, ...] = ("R6", "D2", "D3", *CAP_REASONS)
REASONS: tuple[str, ...] = RULE_REASONS + FORM_REASONS + QUARANTINE_REASONS


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


def _completion_frame(frame: pd.DataFrame, config: RulesConfig, current_year: int) -> pd.DataFrame:
    """State-scoped checks as booleans, true where a row's state puts it out of their scope.

    Booleans rather than GX row conditions: each conditioned metric filters a copy of the whole
    frame, which doubled the time a million rows take.
    """
    columns = ["record_key", "state", "reason", "subject", "mode"]
    inputs = ("credited_year", "hours_reported", "merged_into", "id_number", "platform")
    lean = lean_columns(frame, [*columns, "hours_credited", "hours_trimmed"], inputs)
    credited = is_value(lean["state"], "credited")
    year = frame["credited_year"].astype("Float64")
    in_range = ((year >= config.first_year) & (year <= current_year)).to_numpy(
        dtype=bool, na_value=False
    )
    hours = sums_to(frame["hours_reported"], frame["hours_credited"], frame["hours_trimmed"])
    lean["conserved"] = ~credited | hours
    lean["id_valid"] = is_value(lean["state"], "quarantined") | id_check_valid(frame["id_number"])
    lean["credited_year_in_range"] = ~credited | in_range
    lean["merged_into_present"] = (
        ~is_value(lean["state"], "merged") | frame["merged_into"].notna().to_numpy()
    )
    cap = np.select(
        [
            is_value(frame["platform"], FORMS) & is_value(lean["mode"], "training"),
            *(is_value(lean["mode"], m) for m in MODES[1:]),
        ],
        [config.max_hours, config.selfstudy_cap, config.conversion_cap],
        default=config.daily_cap,
    )
    lean["within_cap"] = ~credited | (lean["hours_credited"].to_numpy() <= cap + TOLERANCE)
    return lean


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
            *precomputed(
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


def validate_completion(
    frame: pd.DataFrame, config: RulesConfig | None = None, current_year: int | None = None
) -> Validation:
    """The completion ledger; credited years may reach `current_year` (default: now, Shanghai)."""
    import_great_expectations()
    started = time.perf_counter()
    year = current_year if current_year is not None else datetime.now(ZoneInfo(TZ)).year
    config = config or RulesConfig()
    lean = _completion_frame(frame, config, year)
    return run(completion_suite(config, year), lean, record_keys, started)
