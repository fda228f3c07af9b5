"""R3 over constructed hours-bank histories: each year short in turn, each employer type,
missing years, and people outside Yantai."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.rules.eligibility import UNKNOWN, title_eligibility, title_requirements

ID = "370602198001011234"
INSTITUTION_UNIT = "烟台市芝罘区第一中学"
ENTERPRISE_UNIT = "烟台万华化工有限公司"
REGISTER = {INSTITUTION_UNIT: "institution", ENTERPRISE_UNIT: "enterprise"}
ALL_YEARS = range(2017, 2023)


def history(
    employer: str,
    years: range | list[int] = ALL_YEARS,
    *,
    public: dict[int, float] | None = None,
    professional: dict[int, float] | None = None,
    city: str = "yantai",
    id_number: str = ID,
) -> pd.DataFrame:
    """Hours-bank rows of one person: every year met unless `public`/`professional` say less."""
    public, professional = public or {}, professional or {}
    return pd.DataFrame(
        {
            "id_number": id_number,
            "year": list(years),
            "name": "张三",
            "employer": employer,
            "city": city,
            "public_hours": [public.get(y, 30.0) for y in years],
            "professional_hours": [professional.get(y, 60.0) for y in years],
        }
    )


def eligibility(bank: pd.DataFrame, register: dict[str, str] | None = REGISTER) -> pd.Series:
    frame = title_eligibility(title_requirements(bank, register))
    assert len(frame) == 1
    return frame.iloc[0]


@pytest.mark.parametrize("employer", [INSTITUTION_UNIT, ENTERPRISE_UNIT])
def test_every_required_year_met_is_eligible(employer: str) -> None:
    row = eligibility(history(employer))
    assert row["eligible"]
    assert row["years_short"] == 0
    assert row["short"] == ""


@pytest.mark.parametrize("year", [2017, 2018, 2019, 2020, 2021])
def test_an_institution_applicant_short_of_public_hours_in_any_year_2017_2021_is_not_eligible(
    year: int,
) -> None:
    row = eligibility(history(INSTITUTION_UNIT, public={year: 18.5}))
    assert not row["eligible"]
    assert row["public_short"] == 11.5
    assert row["short"] == f"{year} public 11.5"


@pytest.mark.parametrize("year", [2019, 2020, 2021])
def test_an_institution_applicant_short_of_professional_hours_2019_2021_is_not_eligible(
    year: int,
) -> None:
    row = eligibility(history(INSTITUTION_UNIT, professional={year: 40.0}))
    assert not row["eligible"]
    assert row["professional_short"] == 20.0
    assert row["short"] == f"{year} professional 20"


@pytest.mark.parametrize("year", [2017, 2018])
def test_professional_hours_before_2019_do_not_matter_to_an_institution_applicant(
    year: int,
) -> None:
    assert eligibility(history(INSTITUTION_UNIT, professional={year: 0.0}))["eligible"]


@pytest.mark.parametrize("year", [2019, 2020, 2021])
def test_an_enterprise_applicant_short_of_public_hours_2019_2021_is_not_eligible(
    year: int,
) -> None:
    row = eligibility(history(ENTERPRISE_UNIT, public={year: 29.9}))
    assert not row["eligible"]
    assert row["short"] == f"{year} public 0.1"


@pytest.mark.parametrize("year", [2020, 2021])
def test_an_enterprise_applicant_short_of_professional_hours_2020_2021_is_not_eligible(
    year: int,
) -> None:
    row = eligibility(history(ENTERPRISE_UNIT, professional={year: 59.0}))
    assert not row["eligible"]
    assert row["short"] == f"{year} professional 1"


@pytest.mark.parametrize(("public", "professional"), [(2017, 2019), (2018, 2019)])
def test_years_outside_the_enterprise_lists_do_not_matter(public: int, professional: int) -> None:
    row = eligibility(
        history(ENTERPRISE_UNIT, public={public: 0.0}, professional={professional: 0.0})
    )
    assert row["eligible"]


def test_a_missing_year_is_short_by_the_whole_requirement_and_says_so() -> None:
    row = eligibility(history(INSTITUTION_UNIT, years=[2017, 2018, 2019, 2021, 2022]))
    assert not row["eligible"]
    assert row["years_short"] == 2
    assert row["public_short"] == 30.0
    assert row["professional_short"] == 60.0
    assert row["short"] == (
        "2020 public 30 (no hours recorded); 2020 professional 60 (no hours recorded)"
    )


def test_an_employer_missing_from_the_register_is_unknown_with_no_verdict() -> None:
    row = eligibility(history("烟台某某有限公司"))
    assert row["employer_type"] == UNKNOWN
    assert pd.isna(row["eligible"])


def test_an_unknown_employer_type_is_checked_against_the_institution_years() -> None:
    bank = history("烟台某某有限公司", public={2017: 0.0})
    requirements = title_requirements(bank, REGISTER)
    assert set(requirements.loc[requirements["subject"].eq("public"), "year"]) == set(
        range(2017, 2022)
    )
    assert eligibility(bank)["short"] == "2017 public 30"


def test_a_register_type_other_than_the_two_r3_names_is_unknown() -> None:
    row = eligibility(history("烟台市人民政府办公室"), {"烟台市人民政府办公室": "government"})
    assert row["employer_type"] == UNKNOWN
    assert pd.isna(row["eligible"])


def test_the_register_matches_employers_across_full_width_and_spaces() -> None:
    row = eligibility(history("烟台万华化工有限公司 "), {"烟台万华化工有限公司": "enterprise"})
    assert row["employer_type"] == "enterprise"


def test_only_people_whose_latest_unit_is_in_yantai_are_checked() -> None:
    moved_to_taian = history(INSTITUTION_UNIT, id_number="370911198001011236")
    moved_to_taian.loc[moved_to_taian["year"].eq(2022), "city"] = "taian"
    bank = pd.concat(
        [
            history(INSTITUTION_UNIT),
            history("泰安市第一中学", city="taian", id_number="370902198001011232"),
            moved_to_taian,
        ]
    )
    assert title_eligibility(title_requirements(bank, REGISTER))["id_number"].tolist() == [ID]


def test_the_latest_year_decides_the_employer_and_its_type() -> None:
    bank = history(INSTITUTION_UNIT, public={2017: 10.0})
    bank.loc[bank["year"].eq(2022), "employer"] = ENTERPRISE_UNIT
    row = eligibility(bank)
    assert row["employer"] == ENTERPRISE_UNIT
    assert row["employer_type"] == "enterprise"
    assert row["eligible"]
