"""R1/R2 hours bank and D4 reconciliation counts."""

from __future__ import annotations

import pandas as pd

from pipelines.rules import apply_rules
from schemas.ledger import HOURS_BANK_DTYPES
from schemas.raw import TZ
from tests.rules.factory import AS_OF, OTHER, PERSON, raw, record


def at(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=TZ)


def day_of(i: int, year: int = 2022) -> pd.Timestamp:
    return pd.Timestamp(f"{year}-01-01 09:00", tz=TZ) + pd.Timedelta(days=i)


def studies(public: int, professional: int, **overrides: object) -> list[dict]:
    """Eight-hour days: `public` and `professional` hours, each course on its own day."""
    return [
        record(
            source_key=f"{label}{j}",
            category_label=label,
            course_title=f"{label}{j}",
            hours=float(min(8, total - j)),
            completed_at=day_of(i * 200 + j // 8),
            **overrides,
        )
        for i, (label, total) in enumerate([("公需科目", public), ("专业科目", professional)])
        for j in range(0, total, 8)
    ]


def bank(*records: dict, **kwargs: object) -> pd.DataFrame:
    return apply_rules(raw(*records), as_of=AS_OF, **kwargs).hours_bank


def test_r1_met_requirement_is_compliant_with_no_shortfall() -> None:
    row = bank(*studies(30, 60)).iloc[0]
    assert row[["public_hours", "professional_hours", "total_hours"]].tolist() == [30.0, 60.0, 90.0]
    assert row[["public_short", "professional_short", "compliant"]].tolist() == [0.0, 0.0, True]


def test_r1_surplus_public_does_not_cover_professional() -> None:
    row = bank(*studies(50, 40)).iloc[0]
    assert row[["total_hours", "public_short", "professional_short"]].tolist() == [90.0, 0.0, 20.0]
    assert not row["compliant"]


def test_r1_makeup_hours_count_toward_their_year_and_are_reported() -> None:
    frame = bank(*studies(8, 0), *studies(0, 16, makeup=True, makeup_year=2019, platform="ta_zjp"))
    assert frame[["year", "public_hours", "professional_hours", "makeup_hours"]].to_dict(
        "list"
    ) == {
        "year": [2019, 2022],
        "public_hours": [0.0, 8.0],
        "professional_hours": [16.0, 0.0],
        "makeup_hours": [16.0, 0.0],
    }


def test_r1_a_person_year_with_only_a_failed_record_has_a_row_with_full_shortfall() -> None:
    row = bank(record(passed=False)).iloc[0]
    assert row[["total_hours", "public_short", "professional_short"]].tolist() == [0.0, 30.0, 60.0]


def test_r1_quarantined_records_make_no_row() -> None:
    assert bank(record(hours=0.0)).empty


def test_bank_takes_name_employer_and_city_from_the_latest_record() -> None:
    frame = bank(
        record(source_key="a", name="张三", employer="甲", completed_at=at("2022-05-03 09:00")),
        record(
            platform="yt_ldu",
            source_key="b",
            name="張三",
            employer="乙",
            course_title="X",
            completed_at=at("2022-06-03 09:00"),
        ),
    )
    assert frame[["name", "employer", "city"]].iloc[0].tolist() == ["張三", "乙", "yantai"]


def test_bank_has_the_schema_and_is_sorted_by_person_and_year() -> None:
    frame = bank(
        record(raw_id=OTHER, completed_at=at("2021-05-03 09:00")),
        record(source_key="b"),
        record(source_key="c", completed_at=at("2021-05-03 09:00")),
    )
    assert frame.dtypes.astype(str).to_dict() == HOURS_BANK_DTYPES
    assert list(zip(frame["id_number"], frame["year"], strict=True)) == sorted(
        [(OTHER, 2021), (PERSON, 2021), (PERSON, 2022)]
    )


def test_r2_taian_enterprise_2022_is_not_binding() -> None:
    assert not bank(record(employer="泰安某某科技有限公司")).iloc[0]["binding"]


def test_r2_binds_in_another_year() -> None:
    frame = bank(record(employer="泰安某某科技有限公司", completed_at=at("2021-05-03 09:00")))
    assert frame.iloc[0]["binding"]


def test_r2_binds_in_yantai() -> None:
    assert bank(record(platform="yt_ldu", employer="烟台某某有限公司")).iloc[0]["binding"]


def test_r2_binds_when_the_employer_type_is_unknown() -> None:
    assert bank(record(employer="泰安市第一中学")).iloc[0]["binding"]


def test_r2_the_employer_register_decides_before_the_name() -> None:
    frame = bank(
        record(source_key="a", raw_id=PERSON, employer="泰安市某研究所"),
        record(source_key="b", raw_id=OTHER, employer="泰安某某有限公司"),
        employer_types={"泰安市某研究所": "enterprise", "泰安某某有限公司": "institution"},
    )
    assert frame.set_index("id_number")["binding"].to_dict() == {PERSON: False, OTHER: True}


def test_r2_register_may_be_the_csv_frame_and_matches_across_widths() -> None:
    register = pd.DataFrame({"employer": ["泰安（岱宗）研究所"], "type": ["enterprise"]})
    frame = bank(record(employer="泰安(岱宗)研究所"), employer_types=register)
    assert not frame.iloc[0]["binding"]


def test_d4_counts_every_state_per_platform_and_year() -> None:
    result = apply_rules(
        raw(
            record(source_key="a"),
            record(source_key="b"),  # D3 duplicate
            record(source_key="c", course_title="C", passed=False),
            record(source_key="d", hours=0.0, pull_year=2023),  # quarantined: pull year
            record(source_key="e", completed_at=pd.NaT, passed=False, pull_year=2024),
            record(platform="yt_ldu", source_key="f", makeup=True, makeup_year=2019),
            record(source_key="g", makeup=True, makeup_year=2019, course_title="G"),
        ),
        as_of=AS_OF,
    )
    assert result.reconciliation.to_dict("records") == [
        {
            "platform": "ta_yx",
            "year": 2019,
            "raw": 1,
            "credited": 1,
            "merged": 0,
            "not_credited": 0,
            "quarantined": 0,
        },
        {
            "platform": "ta_yx",
            "year": 2022,
            "raw": 3,
            "credited": 1,
            "merged": 1,
            "not_credited": 1,
            "quarantined": 0,
        },
        {
            "platform": "ta_yx",
            "year": 2023,
            "raw": 1,
            "credited": 0,
            "merged": 0,
            "not_credited": 0,
            "quarantined": 1,
        },
        {
            "platform": "ta_yx",
            "year": 2024,
            "raw": 1,
            "credited": 0,
            "merged": 0,
            "not_credited": 1,
            "quarantined": 0,
        },
        {
            "platform": "yt_ldu",
            "year": 2022,
            "raw": 1,
            "credited": 0,
            "merged": 0,
            "not_credited": 0,
            "quarantined": 1,
        },
    ]
