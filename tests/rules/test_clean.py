"""C1–C3: ID numbers, names, employers and course titles."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from pipelines.rules.clean import (
    clean_id_numbers,
    clean_names,
    course_key,
    employer_key,
    name_conflicts,
    shown_text,
)
from tests.rules.factory import PERSON, with_check

TODAY = dt.date(2024, 6, 30)


def clean_one(raw_id: str | None) -> tuple[str | None, str | None]:
    ids, problems = clean_id_numbers(pd.Series([raw_id], dtype="str"), today=TODAY)
    first = ids.iloc[0], problems.iloc[0]
    return tuple(None if pd.isna(v) else v for v in first)


def test_c1_keeps_a_valid_id_as_it_is() -> None:
    assert clean_one(PERSON) == (PERSON, None)


def test_c1_accepts_a_370921_id_born_1975_whatever_the_county_code_history() -> None:
    tai_an = with_check("37092119750312002")
    assert clean_one(tai_an) == (tai_an, None)


def test_c1_converts_15_digits_to_18_with_19_and_a_computed_check_character() -> None:
    assert clean_one("370902880101123") == (with_check("37090219880101123"), None)


def test_c1_upper_cases_a_lower_case_x() -> None:
    x_id = with_check("11010519491231002")
    assert x_id.endswith("X")
    assert clean_one(x_id.lower()) == (x_id, None)


@pytest.mark.parametrize(
    "wrapped",
    [
        f"'{PERSON}",
        f"\t{PERSON}",
        f'="{PERSON}"',
        f"\ufeff{PERSON}",
        f" {PERSON[:6]}\u200b{PERSON[6:]} ",
        PERSON.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
    ],
    ids=["quote", "tab", "formula", "bom", "zero-width-and-spaces", "full-width"],
)
def test_c1_strips_spreadsheet_protection_and_invisible_characters(wrapped: str) -> None:
    assert clean_one(wrapped) == (PERSON, None)


@pytest.mark.parametrize(
    "number", ["3.70902198801011e+17", "3.70902198801011E+17", "370902198801011000.0", "3.7e17"]
)
def test_c1_marks_float_text_as_corrupted_never_guessed(number: str) -> None:
    assert clean_one(number) == (None, "id_number_corrupted")


def test_c1_digits_ending_000_are_judged_as_text_since_numbers_arrive_as_float_text() -> None:
    assert clean_one("370902198801011000") == (None, "invalid_id_number")


def test_c1_keeps_a_valid_id_that_happens_to_end_in_000() -> None:
    ends_000 = "370902198801181000"
    assert with_check(ends_000[:17]) == ends_000
    assert clean_one(ends_000) == (ends_000, None)


@pytest.mark.parametrize(
    "bad",
    [
        PERSON[:-1] + ("0" if PERSON[-1] != "0" else "1"),  # wrong check character
        with_check("99090219880101123"),  # unknown province
        with_check("37090219880230123"),  # 30 February
        with_check("37090218991231123"),  # before 1900
        with_check("37090220250101123"),  # born after today
        "37090219880101123",  # 17 characters
        "张三",
        "",
        None,
    ],
    ids=["check", "province", "date", "pre-1900", "future", "short", "text", "empty", "null"],
)
def test_c1_marks_anything_else_invalid(bad: str | None) -> None:
    assert clean_one(bad) == (None, "invalid_id_number")


def test_c1_accepts_every_province_of_gb_t_2260_and_a_leap_day() -> None:
    ids = [with_check(f"{p}0102200002291{i:02d}") for i, p in enumerate(["11", "65", "71", "82"])]
    cleaned, problems = clean_id_numbers(pd.Series(ids, dtype="str"), today=TODAY)
    assert cleaned.tolist() == ids
    assert problems.isna().all()


def test_c2_maps_three_middle_dot_spellings_to_one_name() -> None:
    names = pd.Series(["买买提·艾力", "买买提•艾力", "买买提.艾力", "买买提．艾力", "买买提・艾力"])
    assert clean_names(names).unique().tolist() == ["买买提·艾力"]


def test_c2_keeps_traditional_characters() -> None:
    assert clean_names(pd.Series(["於明"])).tolist() == ["於明"]


def test_c2_removes_spaces_inside_han_names_but_keeps_one_in_latin_names() -> None:
    names = pd.Series(["张 三", " 王\u3000五 ", "John  Smith ", "Ｍａｒｙ Ｌｅｅ"])
    assert clean_names(names).tolist() == ["张三", "王五", "John Smith", "Mary Lee"]


def test_c2_keeps_a_dot_between_latin_initials() -> None:
    assert clean_names(pd.Series(["J. Smith"])).tolist() == ["J. Smith"]


def test_c2_reports_an_id_seen_with_two_names_once() -> None:
    ledger = pd.DataFrame(
        {
            "id_number": [PERSON, PERSON, PERSON, "x", None],
            "name": ["张三", "張三", "张三", "李四", "王五"],
        },
        dtype="str",
    )
    conflicts = name_conflicts(ledger)
    assert conflicts.to_dict("records") == [{"id_number": PERSON, "names": "张三|張三"}]


def test_c3_shown_text_keeps_full_width_brackets() -> None:
    assert shown_text(pd.Series(["  泰安（集团）有限公司 "])).tolist() == ["泰安（集团）有限公司"]


def test_c3_employer_key_matches_full_and_half_width() -> None:
    keys = employer_key(pd.Series(["泰安（集团）有限公司", "泰安(集团) 有限公司"]))
    assert keys.iloc[0] == keys.iloc[1]


@pytest.mark.parametrize(
    "title",
    ["【2022】数据安全", "数据安全（2022年）", "[公需] 数据 安全", "数据安全【新】", "数据安全"],
)
def test_c3_course_key_drops_bracket_decoration_and_whitespace(title: str) -> None:
    assert course_key(pd.Series([title])).tolist() == ["数据安全"]


def test_c3_course_key_folds_width_and_case() -> None:
    assert course_key(pd.Series(["Ｐython 入门", "PYTHON入门"])).tolist() == ["python入门"] * 2


def test_c3_course_key_keeps_brackets_inside_a_title() -> None:
    assert course_key(pd.Series(["数据（隐私）安全"])).tolist() == ["数据(隐私)安全"]


def test_c3_course_key_keeps_a_part_marker_that_tells_courses_apart() -> None:
    assert course_key(pd.Series(["Python编程（上）", "Python编程（下）"])).nunique() == 2


def test_c2_removes_zero_width_characters_from_names() -> None:
    assert clean_names(pd.Series(["张\u200b三"])).tolist() == ["张三"]
