"""apply_rules end to end: output schemas and order, empty input, and explain()."""

from __future__ import annotations

import pandas as pd

from pipelines.rules import COMPLETION_OUTPUT_DTYPES, apply_rules, explain
from schemas.ledger import COMPLETION_DTYPES, HOURS_BANK_DTYPES
from tests.rules.factory import AS_OF, ledger, raw, record


def test_completion_has_the_ledger_columns_plus_pull_year_sorted_by_record_key() -> None:
    completion = apply_rules(
        raw(record(source_key="b"), record(source_key="a", course_title="A")), as_of=AS_OF
    ).completion
    assert completion.dtypes.astype(str).to_dict() == COMPLETION_DTYPES | {"pull_year": "int64"}
    assert completion["record_key"].tolist() == ["ta_yx:a", "ta_yx:b"]


def test_empty_input_gives_empty_frames_with_their_schemas() -> None:
    result = apply_rules(raw(), as_of=AS_OF)
    assert result.completion.dtypes.astype(str).to_dict() == COMPLETION_OUTPUT_DTYPES
    assert result.hours_bank.dtypes.astype(str).to_dict() == HOURS_BANK_DTYPES
    assert result.reconciliation.empty
    assert result.name_conflicts.empty


def test_as_of_defaults_to_now_so_last_year_is_in_range() -> None:
    last_year = pd.Timestamp.now(tz="Asia/Shanghai") - pd.Timedelta(days=365)
    completion = apply_rules(raw(record(completed_at=last_year))).completion
    assert completion.iloc[0]["state"] == "credited"


def test_name_conflicts_come_from_the_ledger() -> None:
    result = apply_rules(
        raw(record(name="于明"), record(source_key="b", course_title="B", name="於明")), as_of=AS_OF
    )
    assert result.name_conflicts["names"].tolist() == ["于明|於明"]


def test_explain_a_trimmed_record_names_the_cap_and_the_hours() -> None:
    completion = ledger(
        record(source_key="a", course_title="A", hours=6.0),
        record(source_key="b", course_title="B", hours=6.0),
    ).reset_index()
    assert explain(completion, "ta_yx:b") == (
        "ta_yx:b: credited for 2022, 2 of 6 hours; reason: the person's hours that day exceeded"
        " the daily cap (R7), 4 hours trimmed on 2022-05-03."
    )


def test_explain_a_merged_record_points_at_the_kept_one() -> None:
    completion = ledger(record(source_key="a"), record(source_key="b")).reset_index()
    assert explain(completion, "ta_yx:b").endswith(
        "its hours count once, on ta_yx:a (ta_yx, 数据安全, 2022-05-03)."
    )


def test_explain_a_quarantined_record_gives_the_rule() -> None:
    completion = ledger(record(hours=1.25)).reset_index()
    assert explain(completion, "ta_yx:r1") == (
        "ta_yx:r1: quarantined; reason: the hours are missing, not positive, too large or not"
        " in 0.1 steps (R13)."
    )


def test_explain_an_unknown_key_says_it_is_not_in_the_ledger() -> None:
    completion = ledger(record()).reset_index()
    assert "not in the ledger" in explain(completion, "ta_yx:nope")
