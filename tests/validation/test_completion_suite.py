"""The completion ledger suite: PROVINCIAL.md's values and RULES.md's invariants."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.validation import COMPLETION_SUITE, Validation, validate_completion
from tests.validation.frames import ZHANG, broken, ledger, rows_of, validate_cases

YEAR = 2026  # the "current year" the tests validate against
WRONG_CHECK = ZHANG[:-1] + ("0" if ZHANG[-1] != "0" else "1")


def _name(kind: str, column: str) -> str:
    return f"expect_column_values_to_{kind}({column})"


def _validate(frame: pd.DataFrame) -> Validation:
    return validate_completion(frame, current_year=YEAR)


# case: (record_key of the row to break, its new values, expectation → record_keys that fail)
BREAKS: dict[str, tuple[str, dict[str, object], dict[str, list[str]]]] = {
    "record_key_null": (
        "ta_yx:1",
        {"record_key": None},
        {_name("not_be_null", "record_key"): ["ta_yx:1"]},
    ),
    "record_key_twice": (
        "yt_ldu:3",
        {"record_key": "ta_yx:1"},
        {_name("be_unique", "record_key"): ["ta_yx:1", "yt_ldu:3"]},
    ),
    "state_null": ("ta_zjp:4", {"state": None}, {_name("not_be_null", "state"): ["ta_zjp:4"]}),
    "state_unknown": (
        "ta_zjp:4",
        {"state": "pending"},
        {_name("be_in_set", "state"): ["ta_zjp:4"]},
    ),
    "reason_unknown": ("ta_zjp:4", {"reason": "R99"}, {_name("be_in_set", "reason"): ["ta_zjp:4"]}),
    "subject_unmapped": (
        "ta_yx:1",
        {"subject": "公需科目"},
        {_name("be_in_set", "subject"): ["ta_yx:1"]},
    ),
    "mode_null": ("ta_yx:1", {"mode": None}, {_name("not_be_null", "mode"): ["ta_yx:1"]}),
    "mode_not_training": (
        "ta_yx:1",
        {"mode": "selfstudy"},
        {_name("be_in_set", "mode"): ["ta_yx:1"]},
    ),
    "r7_more_than_eight_credited": (
        "ta_yx:1",
        {"hours_reported": 9.0, "hours_credited": 9.0},
        {_name("be_in_set", "within_cap"): ["ta_yx:1"]},
    ),
    "r8_more_than_forty_self_study": (
        "ta_yx:1",
        {"mode": "self_study", "hours_reported": 41.0, "hours_credited": 41.0},
        {_name("be_in_set", "within_cap"): ["ta_yx:1"]},
    ),
    "beyond_r13_credited": (
        "ta_yx:1",
        {"hours_reported": 101.0, "hours_credited": 101.0},
        {
            _name("be_between", "hours_credited"): ["ta_yx:1"],
            _name("be_in_set", "within_cap"): ["ta_yx:1"],
        },
    ),
    "negative_credit": (
        "ta_yx:1",
        {"hours_reported": -1.0, "hours_credited": -1.0},
        {_name("be_between", "hours_credited"): ["ta_yx:1"]},
    ),
    "negative_trim": (
        "ta_yx:1",
        {"hours_credited": 3.0, "hours_trimmed": -1.0},
        {_name("be_between", "hours_trimmed"): ["ta_yx:1"]},
    ),
    "credited_hours_not_conserved": (
        "ta_yx:2",
        {"hours_trimmed": 2.0},
        {_name("be_in_set", "conserved"): ["ta_yx:2"]},
    ),
    "credited_without_reported_hours": (
        "ta_yx:1",
        {"hours_reported": None},
        {_name("be_in_set", "conserved"): ["ta_yx:1"]},
    ),
    "wrong_check_character": (
        "ta_yx:1",
        {"id_number": WRONG_CHECK},
        {_name("be_in_set", "id_valid"): ["ta_yx:1"]},
    ),
    "lowercase_check_character": (
        "ta_sdty:7",
        {"id_number": "11010519491231002x"},
        {_name("be_in_set", "id_valid"): ["ta_sdty:7"]},
    ),
    "seventeen_characters": (
        "ta_zjp:4",
        {"id_number": ZHANG[:17]},
        {_name("be_in_set", "id_valid"): ["ta_zjp:4"]},
    ),
    "merged_without_id": (
        "yt_ldu:3",
        {"id_number": None},
        {_name("be_in_set", "id_valid"): ["yt_ldu:3"]},
    ),
    "credited_before_2017": (
        "ta_yx:1",
        {"credited_year": 2016},
        {_name("be_in_set", "credited_year_in_range"): ["ta_yx:1"]},
    ),
    "credited_after_this_year": (
        "ta_yx:1",
        {"credited_year": YEAR + 1},
        {_name("be_in_set", "credited_year_in_range"): ["ta_yx:1"]},
    ),
    "credited_without_year": (
        "ta_yx:1",
        {"credited_year": None},
        {_name("be_in_set", "credited_year_in_range"): ["ta_yx:1"]},
    ),
    "merged_without_target": (
        "yt_ldu:3",
        {"merged_into": None},
        {_name("be_in_set", "merged_into_present"): ["yt_ldu:3"]},
    ),
    "quarantined_with_invalid_id": ("yt_samet:6", {"id_number": "37092119750101"}, {}),
    "not_credited_with_unconserved_hours": ("ta_zjp:4", {"hours_trimmed": 1.0}, {}),
}


def _separate(frame: pd.DataFrame, case: int) -> pd.DataFrame:
    """Give each case's records keys of their own."""
    return frame.assign(
        record_key=f"{case}/" + frame["record_key"], merged_into=f"{case}/" + frame["merged_into"]
    )


@pytest.fixture(scope="module")
def broken_results() -> dict[str, dict[str, list[int]]]:
    clean = ledger()
    cases = {
        case: broken(clean, key, changes, by="record_key")
        for case, (key, changes, _) in BREAKS.items()
    }
    return validate_cases(_validate, cases, _separate)


def test_clean_ledger_passes_every_expectation() -> None:
    validation = _validate(ledger())
    assert (validation.suite, validation.success, validation.failed) == (COMPLETION_SUITE, True, [])
    assert validation.evaluated == 15
    assert validation.failing_keys.empty
    assert validation.statistics["success_percent"] == 100.0


def test_empty_ledger_passes() -> None:
    validation = _validate(ledger().iloc[:0])
    assert validation.success
    assert list(validation.failing_keys.columns) == ["record_key", "row", "expectation"]


@pytest.mark.parametrize("case", list(BREAKS))
def test_a_broken_row_fails_exactly_its_expectation_on_exactly_that_row(
    case: str, broken_results: dict[str, dict[str, list[int]]]
) -> None:
    clean = ledger()
    expected = BREAKS[case][2]
    assert broken_results[case] == {
        name: rows_of(clean, keys, by="record_key") for name, keys in expected.items()
    }


def test_a_failing_run_names_failed_expectations_and_record_keys() -> None:
    frame = broken(ledger(), "ta_zjp:4", {"state": "pending", "reason": "R99"}, by="record_key")
    validation = _validate(frame)
    assert not validation.success
    assert validation.failed == [_name("be_in_set", "state"), _name("be_in_set", "reason")]
    assert validation.failing_keys.to_dict("list") == {
        "record_key": ["ta_zjp:4", "ta_zjp:4"],
        "row": [3, 3],
        "expectation": validation.failed,
    }
    assert validation.statistics["unsuccessful_expectations"] == 2.0


def test_credited_year_defaults_to_the_current_year_in_shanghai() -> None:
    this_year = pd.Timestamp.now(tz="Asia/Shanghai").year
    frame = broken(ledger(), "ta_yx:1", {"credited_year": this_year + 1}, by="record_key")
    assert validate_completion(frame).failed == [_name("be_in_set", "credited_year_in_range")]


def test_rows_are_positions_in_the_callers_frame_whatever_its_index() -> None:
    frame = broken(ledger(), "ta_zjp:4", {"state": "pending"}, by="record_key")
    frame.index = pd.Index([70, 60, 50, 40, 30, 20, 10])
    assert _validate(frame).failing_keys["row"].tolist() == [3]


def test_the_callers_frame_is_left_unchanged() -> None:
    frame = ledger()
    before = frame.copy()
    _validate(frame)
    pd.testing.assert_frame_equal(frame, before)
