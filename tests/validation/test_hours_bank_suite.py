"""The hours bank suite: one row per person and year, hours that add up, R1 shorts."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.validation import HOURS_BANK_SUITE, validate_hours_bank
from tests.validation.frames import LI, ZHANG, hours_bank, validate_cases


def _name(kind: str, column: str) -> str:
    return f"expect_column_values_to_{kind}({column})"


def _break(row: int, changes: dict[str, object]) -> pd.DataFrame:
    frame = hours_bank()
    for column, value in changes.items():
        frame.loc[row, column] = value
    return frame


# case: (row to break, its new values, expectation → rows that fail)
BREAKS: dict[str, tuple[int, dict[str, object], dict[str, list[int]]]] = {
    "id_number_null": (2, {"id_number": None}, {_name("not_be_null", "id_number"): [2]}),
    "person_year_twice": (
        2,
        {"id_number": ZHANG},
        {"expect_compound_columns_to_be_unique(id_number, year)": [0, 2]},
    ),
    "negative_public_hours": (
        1,
        {"public_hours": -1.0, "total_hours": -1.0, "public_short": 30.0},
        {_name("be_between", "public_hours"): [1], _name("be_between", "total_hours"): [1]},
    ),
    "negative_professional_hours": (
        1,
        {"professional_hours": -1.0, "total_hours": 11.5},
        {_name("be_between", "professional_hours"): [1]},
    ),
    "negative_makeup_hours": (
        1,
        {"makeup_hours": -0.5},
        {_name("be_between", "makeup_hours"): [1]},
    ),
    "total_is_not_the_sum": (0, {"total_hours": 90.0}, {_name("be_in_set", "total_adds_up"): [0]}),
    "public_short_beyond_requirement": (
        1,
        {"public_short": 31.0},
        {_name("be_between", "public_short"): [1]},
    ),
    "professional_short_beyond_requirement": (
        1,
        {"professional_short": 60.5},
        {_name("be_between", "professional_short"): [1]},
    ),
    "negative_short": (
        2,
        {"professional_short": -0.1},
        {_name("be_between", "professional_short"): [2]},
    ),
    "compliant_while_short": (
        2,
        {"compliant": True},
        {_name("be_in_set", "compliance_consistent"): [2]},
    ),
    "not_compliant_with_no_short": (
        0,
        {"compliant": False},
        {_name("be_in_set", "compliance_consistent"): [0]},
    ),
}


def _separate(frame: pd.DataFrame, case: int) -> pd.DataFrame:
    """Give each case's person-years keys of their own (years far apart)."""
    return frame.assign(year=frame["year"] + 100 * case)


@pytest.fixture(scope="module")
def broken_results() -> dict[str, dict[str, list[int]]]:
    cases = {case: _break(row, changes) for case, (row, changes, _) in BREAKS.items()}
    return validate_cases(validate_hours_bank, cases, _separate)


def test_clean_hours_bank_passes_every_expectation() -> None:
    validation = validate_hours_bank(hours_bank())
    assert (validation.suite, validation.success, validation.failed) == (
        HOURS_BANK_SUITE,
        True,
        [],
    )
    assert validation.evaluated == 10
    assert validation.failing_keys.empty


def test_empty_hours_bank_passes() -> None:
    assert validate_hours_bank(hours_bank().iloc[:0]).success


@pytest.mark.parametrize("case", list(BREAKS))
def test_a_broken_row_fails_exactly_its_expectation_on_exactly_that_row(
    case: str, broken_results: dict[str, dict[str, list[int]]]
) -> None:
    assert broken_results[case] == BREAKS[case][2]


def test_a_failing_run_names_rows_by_masked_id_number_and_year() -> None:
    validation = validate_hours_bank(_break(2, {"compliant": True}))
    assert not validation.success
    assert validation.failed == [_name("be_in_set", "compliance_consistent")]
    assert validation.failing_keys.to_dict("list") == {
        "id_masked": [f"{LI[:6]}********{LI[-4:]}"],
        "year": [2022],
        "row": [2],
        "expectation": validation.failed,
    }
