"""C1, R4, R11, R12, R13 quarantine, with docs/decisions.md's precedence."""

from __future__ import annotations

import pandas as pd
import pytest

from schemas.raw import TZ
from tests.rules.factory import AS_OF, ledger, record


def outcome(**overrides: object) -> tuple[str, str | None]:
    row = ledger(record(**overrides)).iloc[0]
    return row["state"], None if pd.isna(row["reason"]) else row["reason"]


def test_r13_credits_one_and_a_half_hours() -> None:
    row = ledger(record(hours=1.5)).iloc[0]
    assert (row["state"], row["hours_credited"]) == ("credited", 1.5)


@pytest.mark.parametrize("hours", [1.25, 0.0, 150.0, -2.0, float("nan"), 100.05])
def test_r13_quarantines_hours_off_the_grid_or_out_of_range(hours: float) -> None:
    assert outcome(hours=hours) == ("quarantined", "invalid_hours")


def test_r13_accepts_exactly_one_hundred_hours_which_r7_then_trims() -> None:
    assert outcome(hours=100.0) == ("credited", "R7")


def test_r11_quarantines_makeup_for_2016() -> None:
    assert outcome(makeup=True, makeup_year=2016) == ("quarantined", "invalid_makeup")


def test_r11_quarantines_makeup_without_a_year() -> None:
    assert outcome(platform="ta_tyjrp", makeup=True, makeup_year=None) == (
        "quarantined",
        "invalid_makeup",
    )


def test_r11_quarantines_makeup_on_a_yantai_platform() -> None:
    assert outcome(platform="yt_ldu", makeup=True, makeup_year=2019) == (
        "quarantined",
        "invalid_makeup",
    )


def test_r12_quarantines_completion_before_2017() -> None:
    when = pd.Timestamp("2016-12-31 23:59", tz=TZ)
    assert outcome(completed_at=when) == ("quarantined", "out_of_range_date")


def test_r12_quarantines_completion_after_as_of() -> None:
    assert outcome(completed_at=AS_OF + pd.Timedelta(minutes=1)) == (
        "quarantined",
        "out_of_range_date",
    )


def test_r12_quarantines_a_passed_record_without_a_date() -> None:
    assert outcome(completed_at=pd.NaT) == ("quarantined", "out_of_range_date")


def test_r12_an_unfinished_record_without_a_date_is_only_not_credited() -> None:
    assert outcome(completed_at=pd.NaT, passed=False) == ("not_credited", "R6")


def test_c1_corrupted_id_wins_over_every_other_reason() -> None:
    assert outcome(raw_id="3.70902198801011e+17", category_label="?", hours=0.0) == (
        "quarantined",
        "id_number_corrupted",
    )


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"raw_id": "123", "category_label": "?"}, "invalid_id_number"),
        ({"category_label": "?", "makeup": True, "makeup_year": 2016}, "unknown_category"),
        ({"makeup": True, "makeup_year": 2016, "completed_at": pd.NaT}, "invalid_makeup"),
        ({"completed_at": pd.NaT, "hours": 0.0}, "out_of_range_date"),
    ],
    ids=["C1>R4", "R4>R11", "R11>R12", "R12>R13"],
)
def test_quarantine_precedence_first_match_wins(overrides: dict, reason: str) -> None:
    assert outcome(**overrides) == ("quarantined", reason)


def test_quarantine_keeps_the_id_when_another_rule_caught_the_record() -> None:
    row = ledger(record(hours=0.0)).iloc[0]
    assert len(row["id_number"]) == 18


def test_c1_quarantine_leaves_the_id_null() -> None:
    assert pd.isna(ledger(record(raw_id="123")).iloc[0]["id_number"])
