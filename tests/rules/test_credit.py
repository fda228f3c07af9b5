"""R6, R10/R11 (credited year), D2, D3 and R7 (daily cap)."""

from __future__ import annotations

import pandas as pd

from schemas.raw import TZ
from tests.rules.factory import OTHER, ledger, record


def at(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=TZ)


def test_r6_failed_record_is_kept_but_not_credited() -> None:
    row = ledger(record(passed=False)).iloc[0]
    assert (row["state"], row["reason"], row["hours_credited"]) == ("not_credited", "R6", 0.0)


def test_r6_unknown_pass_flag_is_not_a_pass() -> None:
    assert ledger(record(passed=None)).iloc[0]["state"] == "not_credited"


def test_r10_year_is_the_shanghai_calendar_year_of_completion() -> None:
    utc_new_year = pd.Timestamp("2021-12-31 16:30", tz="UTC")  # 2022-01-01 00:30 in Shanghai
    assert ledger(record(completed_at=utc_new_year)).iloc[0]["credited_year"] == 2022


def test_r11_makeup_2019_done_in_2022_credits_2019() -> None:
    row = ledger(record(makeup=True, makeup_year=2019)).iloc[0]
    assert (row["state"], row["credited_year"], row["makeup"]) == ("credited", 2019, True)


def test_d2_same_certificate_across_platforms_keeps_the_earliest() -> None:
    frame = ledger(
        record(platform="ta_yx", certificate_no="ZS-001", completed_at=at("2022-05-03 10:00")),
        record(
            platform="ta_sdty",
            certificate_no="zs-001 ",
            course_title="另一门课",
            completed_at=at("2022-05-02 10:00"),
        ),
    )
    assert frame.loc["ta_yx:r1", ["state", "reason", "merged_into"]].tolist() == [
        "merged",
        "D2",
        "ta_sdty:r1",
    ]
    assert frame.loc["ta_sdty:r1", "state"] == "credited"


def test_d2_ties_on_time_go_to_the_platform_code_then_source_key() -> None:
    frame = ledger(
        record(platform="yt_ldu", source_key="a", certificate_no="C1"),
        record(platform="ta_yx", source_key="b", certificate_no="C1"),
        record(platform="ta_yx", source_key="c", certificate_no="C1"),
    )
    assert frame["merged_into"].dropna().unique().tolist() == ["ta_yx:b"]


def test_d2_needs_the_same_person() -> None:
    frame = ledger(
        record(certificate_no="C1"), record(source_key="r2", raw_id=OTHER, certificate_no="C1")
    )
    assert frame["state"].tolist() == ["credited", "credited"]


def test_d2_ignores_a_failed_record() -> None:
    frame = ledger(
        record(certificate_no="C1"), record(source_key="r2", certificate_no="C1", passed=False)
    )
    assert frame["state"].tolist() == ["credited", "not_credited"]


def test_d3_decorated_title_is_the_same_course_in_the_same_year() -> None:
    frame = ledger(
        record(
            source_key="r1", course_title="【2022】数据 安全", completed_at=at("2022-08-01 09:00")
        ),
        record(source_key="r2", course_title="数据安全", completed_at=at("2022-03-01 09:00")),
    )
    assert frame.loc["ta_yx:r1", ["state", "reason", "merged_into"]].tolist() == [
        "merged",
        "D3",
        "ta_yx:r2",
    ]


def test_d3_same_course_in_another_year_counts_again() -> None:
    frame = ledger(record(), record(source_key="r2", completed_at=at("2023-05-03 09:00")))
    assert frame["state"].tolist() == ["credited", "credited"]


def test_d3_same_title_under_another_subject_counts_again() -> None:
    frame = ledger(record(), record(source_key="r2", category_label="专业科目"))
    assert frame["state"].tolist() == ["credited", "credited"]


def test_d3_makeup_counts_in_its_makeup_year() -> None:
    frame = ledger(
        record(completed_at=at("2019-05-03 09:00")),
        record(source_key="r2", makeup=True, makeup_year=2019),
    )
    assert frame.loc["ta_yx:r2", ["state", "reason"]].tolist() == ["merged", "D3"]


def test_d3_keeps_the_record_a_d2_merge_pointed_to_and_chains_end_there() -> None:
    frame = ledger(
        record(source_key="a", certificate_no="C1", completed_at=at("2022-05-03 09:00")),
        record(
            source_key="b",
            certificate_no="C1",
            course_title="其他",
            completed_at=at("2022-05-04 09:00"),
        ),
        record(source_key="c", completed_at=at("2022-05-01 09:00")),
    )
    assert frame["state"].tolist() == ["merged", "merged", "credited"]
    assert frame["reason"].tolist()[:2] == ["D3", "D2"]
    assert frame["merged_into"].tolist()[:2] == ["ta_yx:c", "ta_yx:c"]


def test_r7_twelve_hours_on_one_day_credit_eight_in_completion_order() -> None:
    frame = ledger(
        record(source_key="a", course_title="A", hours=5.0, completed_at=at("2022-05-03 08:00")),
        record(source_key="b", course_title="B", hours=4.0, completed_at=at("2022-05-03 12:00")),
        record(source_key="c", course_title="C", hours=3.0, completed_at=at("2022-05-03 18:00")),
    )
    assert frame["hours_credited"].tolist() == [5.0, 3.0, 0.0]
    assert frame["hours_trimmed"].tolist() == [0.0, 1.0, 3.0]
    assert frame["reason"].isna().tolist() == [True, False, False]
    assert frame["state"].eq("credited").all()


def test_r7_caps_across_platforms() -> None:
    frame = ledger(
        record(platform="yt_ldu", course_title="A", hours=5.0, completed_at=at("2022-05-03 08:00")),
        record(platform="ta_yx", course_title="B", hours=5.0, completed_at=at("2022-05-03 08:00")),
    )
    assert frame.loc[["ta_yx:r1", "yt_ldu:r1"], "hours_credited"].tolist() == [5.0, 3.0]


def test_r7_days_are_shanghai_calendar_days() -> None:
    frame = ledger(
        record(source_key="a", course_title="A", hours=6.0, completed_at=at("2022-05-03 23:30")),
        record(source_key="b", course_title="B", hours=6.0, completed_at=at("2022-05-04 00:30")),
    )
    assert frame["hours_credited"].tolist() == [6.0, 6.0]


def test_r7_makeup_hours_share_the_day_they_were_done() -> None:
    frame = ledger(
        record(source_key="a", course_title="A", hours=6.0),
        record(source_key="b", course_title="B", hours=6.0, makeup=True, makeup_year=2019),
    )
    assert frame["hours_credited"].tolist() == [6.0, 2.0]


def test_r7_merged_and_failed_records_do_not_use_the_cap() -> None:
    frame = ledger(
        record(source_key="a", hours=6.0),
        record(source_key="b", hours=6.0),  # D3 duplicate of a
        record(source_key="c", course_title="C", hours=6.0, passed=False),
        record(source_key="d", course_title="D", hours=2.0),
    )
    assert frame["hours_credited"].tolist() == [6.0, 0.0, 0.0, 2.0]


def test_r7_tenths_add_up_exactly() -> None:
    frame = ledger(
        *[record(source_key=f"k{i}", course_title=f"T{i}", hours=0.1) for i in range(81)]
    )
    assert frame["hours_credited"].value_counts().to_dict() == {0.1: 80, 0.0: 1}
