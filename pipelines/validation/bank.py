"""The hours bank's suite (`schemas.ledger`, RULES.md R1): one row per person and year, hours
that add up, shorts and compliance that agree.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from pipelines.rules.config import RulesConfig
from pipelines.validation.core import (
    Validation,
    import_great_expectations,
    lean_columns,
    precomputed,
    run,
    sums_to,
)
from schemas.privacy import mask_ids

HOURS_BANK_SUITE = "hours_bank"


def _hours_bank_frame(frame: pd.DataFrame) -> pd.DataFrame:
    hours = ["public_hours", "professional_hours", "total_hours", "makeup_hours"]
    shorts = ["public_short", "professional_short"]
    lean = lean_columns(frame, ["id_number", "year", *hours, *shorts], ("compliant",))
    lean["total_adds_up"] = sums_to(
        lean["total_hours"], lean["public_hours"], lean["professional_hours"]
    )
    shorts_met = (lean["public_short"] == 0) & (lean["professional_short"] == 0)
    compliant = frame["compliant"].reset_index(drop=True)
    lean["compliance_consistent"] = (compliant == shorts_met).to_numpy(dtype=bool, na_value=False)
    return lean


def _person_years(lean: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """Hours bank rows are named by masked ID number (C6) and year."""
    taken = lean[["id_number", "year"]].iloc[rows]
    return pd.DataFrame({"id_masked": mask_ids(taken["id_number"]), "year": taken["year"]})


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
            *precomputed(("total_adds_up", "total_hours = public_hours + professional_hours")),
            *(
                expect.ExpectColumnValuesToBeBetween(column=column, min_value=0, max_value=needed)
                for column, needed in shorts
            ),
            *precomputed(
                (
                    "compliance_consistent",
                    "compliant exactly when public_short and professional_short are 0 (R1)",
                )
            ),
        ],
    )


def validate_hours_bank(frame: pd.DataFrame, config: RulesConfig | None = None) -> Validation:
    """The hours bank; failing rows are named by masked ID number and year."""
    import_great_expectations()
    started = time.perf_counter()
    suite = hours_bank_suite(config or RulesConfig())
    return run(suite, _hours_bank_frame(frame), _person_years, started)
