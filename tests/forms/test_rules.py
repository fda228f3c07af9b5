"""F1–F6 and the F-order (FORMS.md), one behaviour per test, on form rows read from workbooks."""

from __future__ import annotations

import pandas as pd

from schemas.raw import TZ
from tests.forms.factory import FILED, cells, form_raw, key, ledger, platform, register


def outcome(frame: pd.DataFrame, number: int = 1) -> tuple[str, str | None, float, float]:
    row = frame.loc[key(number)]
    reason = None if pd.isna(row["reason"]) else row["reason"]
    return row["state"], reason, row["hours_credited"], row["hours_trimmed"]


def test_a_filed_reviewed_training_day_with_evidence_is_credited_in_full() -> None:
    assert outcome(ledger(form_raw(cells()))) == ("credited", None, 6.0, 0.0)


def test_f1_a_row_without_the_units_review_is_pending_and_kept() -> None:
    frame = ledger(form_raw(cells(单位审核人=""), cells(单位审核日期="", 项目名称="另一项")))
    assert outcome(frame, 1) == ("not_credited", "pending_review", 0.0, 0.0)
    assert outcome(frame, 2) == ("not_credited", "pending_review", 0.0, 0.0)


def test_f1_pending_review_comes_first_in_the_f_order() -> None:
    frame = ledger(form_raw(cells(单位审核人="", 备案编号="", 证明材料="")))
    assert outcome(frame)[1] == "pending_review"


def test_f2_training_without_a_filing_number_is_unfiled() -> None:
    assert outcome(ledger(form_raw(cells(备案编号=""))))[:2] == ("not_credited", "unfiled_training")


def test_f2_a_filing_number_missing_from_the_register_is_unfiled() -> None:
    frame = ledger(form_raw(cells(备案编号="BA-2022-999")))
    assert outcome(frame)[:2] == ("not_credited", "unfiled_training")


def test_f2_filing_numbers_match_across_width_and_case() -> None:
    assert outcome(ledger(form_raw(cells(备案编号=" ｂａ-2022-001"))))[0] == "credited"


def test_f2_training_dates_outside_the_filed_dates_are_not_credited() -> None:
    frame = ledger(form_raw(cells(开始日期="2022-04-30", 结束日期="2022-05-01")))
    assert outcome(frame)[:2] == ("not_credited", "outside_filing")


def test_f2_hours_are_capped_at_the_registers_approved_hours() -> None:
    filings = register({**FILED, "批准学时": 10})
    frame = ledger(
        form_raw(cells(开始日期="2022-05-03", 结束日期="2022-05-04", 学时=14), filings=filings)
    )
    assert outcome(frame) == ("credited", "F2", 10.0, 4.0)


def test_f2_unfiled_comes_before_no_evidence() -> None:
    assert outcome(ledger(form_raw(cells(备案编号="", 证明材料=""))))[1] == "unfiled_training"


def test_f3_training_hours_spread_over_the_days_at_most_eight_a_day() -> None:
    frame = ledger(form_raw(cells(开始日期="2022-05-03", 结束日期="2022-05-05", 学时=30)))
    assert outcome(frame) == ("credited", "R7", 24.0, 6.0)


def test_f3_a_filed_day_and_online_courses_together_pass_eight_hours() -> None:
    online = platform(completed_at=pd.Timestamp("2022-05-03 20:00", tz=TZ), hours=4.0)
    frame = ledger(form_raw(cells(学时=6)), online)
    assert outcome(frame) == ("credited", None, 6.0, 0.0)
    assert frame.loc["ta_yx:r1", ["reason", "hours_credited", "hours_trimmed"]].tolist() == [
        "R7",
        2.0,
        2.0,
    ]


def test_f3_online_hours_earlier_in_the_day_do_not_take_a_filed_days_share() -> None:
    online = platform(completed_at=pd.Timestamp("2022-05-04 09:00", tz=TZ), hours=8.0)
    spread = cells(开始日期="2022-05-03", 结束日期="2022-05-04", 学时=16)
    frame = ledger(form_raw(spread), online)
    assert outcome(frame) == ("credited", None, 16.0, 0.0)
    assert frame.loc["ta_yx:r1", "hours_credited"] == 0.0


def test_f4_self_study_without_a_learning_file_is_not_credited() -> None:
    frame = ledger(form_raw(cells(类别="自学", 备案编号="", 学时=10)))
    assert outcome(frame)[:2] == ("not_credited", "no_learning_file")


def test_f4_self_study_is_capped_at_forty_hours_a_year_in_end_date_order() -> None:
    frame = ledger(
        form_raw(
            cells(类别="自学", 学习档案编号="XX-1", 学时=30, 结束日期="2022-08-01", 项目名称="甲"),
            cells(类别="自学", 学习档案编号="XX-1", 学时=30, 结束日期="2022-03-01", 项目名称="乙"),
        )
    )
    assert outcome(frame, 2) == ("credited", None, 30.0, 0.0)
    assert outcome(frame, 1) == ("credited", "R8", 10.0, 20.0)


def test_f4_self_study_is_not_held_to_the_daily_cap() -> None:
    frame = ledger(form_raw(cells(类别="自学", 学习档案编号="XX-1", 学时=20, 备案编号="")))
    assert outcome(frame) == ("credited", None, 20.0, 0.0)


def test_f5_conversions_earn_ten_hours_an_item_whatever_the_hours_cell_says() -> None:
    frame = ledger(form_raw(cells(类别="成果折算", 件数=2, 学时=3, 备案编号="")))
    assert outcome(frame) == ("credited", None, 20.0, 0.0)


def test_f5_five_papers_earn_thirty_converted_hours_in_end_date_order() -> None:
    papers = [
        cells(类别="论文著作折算", 件数=1, 学时="", 结束日期=f"2022-0{m}-01", 项目名称=f"论文{m}")
        for m in (5, 1, 4, 2, 3)
    ]
    frame = ledger(form_raw(*papers))
    assert [outcome(frame, n)[2] for n in range(1, 6)] == [0.0, 10.0, 0.0, 10.0, 10.0]
    assert [outcome(frame, n)[1] for n in (1, 3)] == ["R9", "R9"]


def test_f6_a_row_without_evidence_is_not_credited() -> None:
    assert outcome(ledger(form_raw(cells(证明材料=""))))[:2] == ("not_credited", "no_evidence")


def test_f_order_no_learning_file_comes_before_no_evidence() -> None:
    frame = ledger(form_raw(cells(类别="自学", 备案编号="", 证明材料="")))
    assert outcome(frame)[1] == "no_learning_file"


def test_only_training_keeps_a_public_subject() -> None:
    frame = ledger(
        form_raw(
            cells(科目类别="公需科目"),
            cells(类别="自学", 科目类别="公需科目", 学习档案编号="XX-1", 项目名称="自学一"),
            cells(科目类别="", 项目名称="培训二"),
        )
    )
    assert frame.loc[[key(1), key(2), key(3)], "subject"].tolist() == [
        "public",
        "professional",
        "professional",
    ]


def test_the_mode_follows_the_kind() -> None:
    frame = ledger(
        form_raw(
            cells(),
            cells(类别="自学", 学习档案编号="XX-1", 项目名称="自学"),
            cells(类别="成果折算", 件数=1, 项目名称="专利"),
            cells(类别="论文著作折算", 件数=1, 项目名称="论文"),
        )
    )
    assert frame["mode"].tolist() == ["training", "self_study", "conversion", "conversion"]


def test_an_unknown_kind_is_quarantined_as_unknown_category() -> None:
    assert outcome(ledger(form_raw(cells(类别="其他"))))[:2] == ("quarantined", "unknown_category")


def test_a_span_that_ends_before_it_starts_is_out_of_range() -> None:
    frame = ledger(form_raw(cells(开始日期="2022-05-06", 结束日期="2022-05-03")))
    assert outcome(frame)[:2] == ("quarantined", "out_of_range_date")


def test_a_numeric_id_cell_is_quarantined_as_corrupted() -> None:
    frame = ledger(form_raw(cells(身份证号=370902198801011234)))
    assert outcome(frame)[:2] == ("quarantined", "id_number_corrupted")


def test_d3_a_platform_record_and_a_form_row_of_one_course_are_one_completion() -> None:
    online = platform(
        course_title="急救技能培训",
        category_label="专业科目",
        completed_at=pd.Timestamp("2022-07-01 10:00", tz=TZ),
    )
    frame = ledger(form_raw(cells()), online)
    assert frame.loc["ta_yx:r1", ["state", "reason", "merged_into"]].tolist() == [
        "merged",
        "D3",
        key(1),
    ]


def test_form_rows_take_their_units_city_or_unknown() -> None:
    assert ledger(form_raw(cells(), city="yantai")).loc[key(1), "city"] == "yantai"
    assert ledger(form_raw(cells(), city="unknown")).loc[key(1), "city"] == "unknown"


def test_every_form_row_that_is_not_simply_credited_has_a_reason() -> None:
    frame = ledger(
        form_raw(
            cells(),
            cells(单位审核人="", 项目名称="二"),
            cells(备案编号="", 项目名称="三"),
            cells(证明材料="", 项目名称="四"),
            cells(类别="自学", 项目名称="五"),
            cells(学时=0, 项目名称="六"),
        )
    )
    assert frame["state"].isin(["credited", "merged", "not_credited", "quarantined"]).all()
    unexplained = frame["state"].ne("credited") & frame["reason"].isna()
    assert not unexplained.any()
