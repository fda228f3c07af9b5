"""R3 title eligibility (Yantai 2022): were public and professional hours met in the years the
notice names for the applicant's employer type, and which years are short by how much.

A person belongs to the unit and city of their latest hours-bank year. The employer type comes
from R2's register only: a title application is no place for the 公司 guess, so an employer the
register does not list (or lists with another type) is `unknown`, its eligibility is null, and
its years are checked against the longest list (public institutions'), which covers both.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.rules.bank import EmployerTypes, register_types
from pipelines.rules.config import RulesConfig
from schemas.ledger import ELIGIBILITY_DTYPES
from schemas.vocabulary import INSTITUTION, PROFESSIONAL, PUBLIC

UNKNOWN = "unknown"

REQUIREMENT_DTYPES: dict[str, str] = {
    "id_number": "str",
    "name": "str",
    "employer": "str",
    "employer_type": "str",
    "subject": "str",
    "year": "int64",
    "hours": "float64",
    "required": "float64",
    "short": "float64",
    "recorded": "bool",
}


def _requirement_grid(config: RulesConfig) -> pd.DataFrame:
    """(checked type, subject, year, hours required) for every year R3 names."""
    lists = {PUBLIC: config.title_public_years, PROFESSIONAL: config.title_professional_years}
    rows = [
        (kind, subject, year)
        for subject, by_type in lists.items()
        for kind, years in by_type.items()
        for year in years
    ]
    grid = pd.DataFrame(rows, columns=["checked_type", "subject", "year"])
    required = {PUBLIC: config.public_required, PROFESSIONAL: config.professional_required}
    return grid.assign(required=grid["subject"].map(required).astype("float64"))


def title_requirements(
    bank: pd.DataFrame,
    employer_types: EmployerTypes | None = None,
    config: RulesConfig | None = None,
) -> pd.DataFrame:
    """One row per person of a `title_city` unit, subject and year R3 names: hours, shortfall,
    and whether the hours bank has the year at all (a missing year is short by all of it)."""
    config = config or RulesConfig()
    latest = bank.sort_values(["id_number", "year"]).drop_duplicates("id_number", keep="last")
    people = latest.loc[latest["city"].eq(config.title_city), ["id_number", "name", "employer"]]
    kind = register_types(people["employer"], employer_types)
    known = kind.isin(list(config.title_public_years))
    people = people.assign(
        employer_type=kind.where(known, UNKNOWN).astype("str"),
        checked_type=kind.where(known, INSTITUTION).astype("str"),
    )
    wide = bank.loc[
        bank["id_number"].isin(people["id_number"]),
        ["id_number", "year", "public_hours", "professional_hours"],
    ]
    hours = wide.melt(
        id_vars=["id_number", "year"],
        value_vars=["public_hours", "professional_hours"],
        var_name="subject",
        value_name="hours",
    ).assign(recorded=True)
    hours["subject"] = hours["subject"].str.removesuffix("_hours")
    rows = people.merge(_requirement_grid(config), on="checked_type").merge(
        hours, on=["id_number", "subject", "year"], how="left"
    )
    rows["recorded"] = rows["recorded"].eq(True)
    rows["hours"] = rows["hours"].fillna(0.0)
    rows["short"] = np.round(np.maximum(rows["required"] - rows["hours"], 0.0), 1)
    rows = rows.sort_values(["id_number", "subject", "year"], ascending=[True, False, True])
    return rows[list(REQUIREMENT_DTYPES)].astype(REQUIREMENT_DTYPES).reset_index(drop=True)


def title_eligibility(requirements: pd.DataFrame) -> pd.DataFrame:
    """One row per person: eligible (null for an unknown employer type), the number of short
    subject-years, the hours short per subject, and the short years in words."""
    short = requirements.loc[requirements["short"] > 0]
    words = (
        short["year"].astype("str")
        + " "
        + short["subject"]
        + " "
        + short["short"].map("{:g}".format).astype("str")
        + np.where(short["recorded"], "", " (no hours recorded)")
    )
    people = requirements.drop_duplicates("id_number")[
        ["id_number", "name", "employer", "employer_type"]
    ].set_index("id_number")
    by_person = short.assign(words=words).groupby("id_number")
    per_subject = short.pivot_table(
        index="id_number", columns="subject", values="short", aggfunc="sum"
    ).reindex(columns=[PUBLIC, PROFESSIONAL])
    people["years_short"] = by_person.size().reindex(people.index, fill_value=0)
    people["public_short"] = per_subject[PUBLIC].reindex(people.index).fillna(0.0).round(1)
    people["professional_short"] = (
        per_subject[PROFESSIONAL].reindex(people.index).fillna(0.0).round(1)
    )
    people["short"] = by_person["words"].agg("; ".join).reindex(people.index).fillna("")
    people["eligible"] = pd.array(people["years_short"].eq(0), dtype="boolean")
    people.loc[people["employer_type"].eq(UNKNOWN), "eligible"] = pd.NA
    frame = people.reset_index()
    return frame[list(ELIGIBILITY_DTYPES)].astype(ELIGIBILITY_DTYPES)
