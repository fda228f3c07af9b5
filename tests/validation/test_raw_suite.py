"""The raw records suite: required columns, the ten platform codes, one row per record_key."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.assets import raw as raw_assets
from pipelines.validation import RAW_SUITE, validate_raw
from schemas.raw import SchemaError
from tests.validation.frames import broken, raw, rows_of, validate_cases


def _name(kind: str, column: str) -> str:
    return f"expect_column_values_to_{kind}({column})"


# case: (record_key of the row to break, its new values, expectation → record_keys that fail)
BREAKS: dict[str, tuple[str, dict[str, object], dict[str, list[str]]]] = {
    "platform_null": (
        "ta_yx:r1",
        {"platform": None},
        {_name("not_be_null", "platform"): ["ta_yx:r1"]},
    ),
    "source_key_null": (
        "ta_yx:r1",
        {"source_key": None},
        {_name("not_be_null", "source_key"): ["ta_yx:r1"]},
    ),
    "record_key_null": (
        "ta_yx:r1",
        {"record_key": None},
        {_name("not_be_null", "record_key"): ["ta_yx:r1"]},
    ),
    "pulled_at_null": (
        "ta_yx:r1",
        {"pulled_at": None},
        {_name("not_be_null", "pulled_at"): ["ta_yx:r1"]},
    ),
    "platform_not_one_of_the_ten": (
        "ta_sdty:c_77",
        {"platform": "ta_xx"},
        {_name("be_in_set", "platform"): ["ta_sdty:c_77"]},
    ),
    "record_key_twice": (
        "ta_sdty:c_77",
        {"record_key": "ta_yx:r1"},
        {_name("be_unique", "record_key"): ["ta_yx:r1", "ta_sdty:c_77"]},
    ),
}


def _separate(frame: pd.DataFrame, case: int) -> pd.DataFrame:
    """Give each case's records keys of their own."""
    return frame.assign(record_key=f"{case}/" + frame["record_key"])


@pytest.fixture(scope="module")
def broken_results() -> dict[str, dict[str, list[int]]]:
    clean = raw()
    cases = {
        case: broken(clean, key, changes, by="record_key")
        for case, (key, changes, _) in BREAKS.items()
    }
    return validate_cases(validate_raw, cases, _separate)


def test_clean_raw_records_pass_every_expectation() -> None:
    validation = validate_raw(raw())
    assert (validation.suite, validation.success, validation.failed) == (RAW_SUITE, True, [])
    assert validation.evaluated == 6
    assert validation.failing_keys.empty


@pytest.mark.parametrize("case", list(BREAKS))
def test_a_broken_row_fails_exactly_its_expectation_on_exactly_that_row(
    case: str, broken_results: dict[str, dict[str, list[int]]]
) -> None:
    clean = raw()
    expected = BREAKS[case][2]
    assert broken_results[case] == {
        name: rows_of(clean, keys, by="record_key") for name, keys in expected.items()
    }


def test_a_failing_run_names_failed_expectations_and_record_keys() -> None:
    frame = broken(raw(), "ta_sdty:c_77", {"platform": "ta_xx"}, by="record_key")
    validation = validate_raw(frame)
    assert not validation.success
    assert validation.failed == [_name("be_in_set", "platform")]
    assert validation.failing_keys.to_dict("list") == {
        "record_key": ["ta_sdty:c_77"],
        "row": [2],
        "expectation": validation.failed,
    }


def test_record_key_is_derived_from_platform_and_source_key_when_absent() -> None:
    frame = raw().drop(columns="record_key")
    frame.loc[2, ["platform", "source_key"]] = ["ta_yx", "r1"]
    failing = validate_raw(frame).failing_keys
    assert failing["record_key"].tolist() == ["ta_yx:r1", "ta_yx:r1"]
    assert failing["row"].tolist() == [0, 2]


def test_a_frame_without_a_required_column_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="pulled_at"):
        validate_raw(raw().drop(columns="pulled_at"))


def test_stored_keys_validated_a_shard_at_a_time_fail_where_one_validation_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(raw_assets, "SHARD_RECORDS", 2)
    frame = raw().drop(columns="record_key")
    frame.loc[2, "platform"] = "nowhere"
    stored = raw_assets.StoredKeys()
    for start in range(len(frame)):
        stored.add(frame.iloc[start : start + 1])
    combined, whole = stored.validation(), validate_raw(frame)
    assert len(stored.summaries) == 2
    assert (combined.success, combined.failed, combined.rows) == (
        whole.success,
        whole.failed,
        whole.rows,
    )
