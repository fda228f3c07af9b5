"""R1/R2 hours bank (学时银行) and D4 reconciliation counts, from the completion ledger."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from pipelines.rules.clean import employer_key
from pipelines.rules.config import RulesConfig
from pipelines.rules.credit import QUARANTINED, STATES, completion_rank
from schemas.ledger import HOURS_BANK_DTYPES
from schemas.raw import conform
from schemas.vocabulary import ENTERPRISE, PROFESSIONAL, PUBLIC

ENTERPRISE_SUFFIX = "公司"  # R2: a legal form only enterprises take (decisions.md)
_YEARS = 10_000  # person-year and platform-year codes: code * _YEARS + year
STATE_COLUMNS: tuple[str, ...] = STATES  # D4 columns, in the ledger's state order


EmployerTypes = Mapping[str, str] | pd.DataFrame
"""R2's employer register: employer → `enterprise`/`institution`, or the CSV's frame
(columns `employer`, `type`) as read from `XUESHI_EMPLOYER_TYPES`."""


def register_types(employers: pd.Series, employer_types: EmployerTypes | None) -> pd.Series:
    """Each employer's type in R2's register (null where it is not listed).

    Register and records meet on `employer_key`, so width and spacing differences still match.
    """
    if employer_types is None:
        employer_types = {}
    if isinstance(employer_types, pd.DataFrame):
        names, types = employer_types["employer"], employer_types["type"]
    else:
        names, types = pd.Series(list(employer_types)), pd.Series(list(employer_types.values()))
    register = pd.Series(
        types.astype("str").str.strip().to_numpy(),
        index=employer_key(names.astype("str")).to_numpy(),
        dtype="str",
    )
    return employer_key(employers).map(register[~register.index.duplicated(keep="last")])


def is_enterprise(employers: pd.Series, employer_types: EmployerTypes | None) -> pd.Series:
    """R2: the register's type where it knows the employer, else a name ending in 公司."""
    known = register_types(employers, employer_types)
    by_name = employers.fillna("").str.strip().str.endswith(ENTERPRISE_SUFFIX)
    return known.eq(ENTERPRISE).where(known.notna(), by_name).astype(bool)


def hours_bank(
    completion: pd.DataFrame,
    config: RulesConfig | None = None,
    employer_types: EmployerTypes | None = None,
) -> pd.DataFrame:
    """R1/R2: one row per person and credited year with a non-quarantined record.

    Name, employer and city come from the person-year's latest such record (by completion
    time, platform, source key); hours are rounded to one decimal.
    """
    config = config or RulesConfig()
    columns = ["record_key", "platform", "id_number", "name", "employer", "city", "subject"]
    columns += ["completed_at", "credited_year", "makeup", "hours_credited"]
    live = completion["state"].ne(QUARANTINED) & completion["credited_year"].notna()
    rows = completion.loc[live, columns]
    person, ids = pd.factorize(rows["id_number"], sort=True)
    year = rows["credited_year"].to_numpy(dtype=np.int64)
    codes, groups = pd.factorize(person * _YEARS + year, sort=True)
    order = np.lexsort((completion_rank(rows), codes))
    ends = np.ones(len(order), dtype=bool)
    ends[:-1] = codes[order][1:] != codes[order][:-1]
    latest = rows.iloc[order[ends]]

    tenths = np.round(rows["hours_credited"].to_numpy(dtype=np.float64) * 10)

    def hours(mask: pd.Series) -> np.ndarray:
        weights = np.where(mask.to_numpy(dtype=bool, na_value=False), tenths, 0.0)
        return np.bincount(codes, weights=weights, minlength=len(groups)) / 10

    public = hours(rows["subject"].eq(PUBLIC))
    professional = hours(rows["subject"].eq(PROFESSIONAL))
    total = np.round(public + professional, 1)
    public_short = np.round(np.maximum(config.public_required - public, 0.0), 1)
    professional_short = np.round(np.maximum(config.professional_required - professional, 0.0), 1)
    years = groups % _YEARS
    exempt = (
        np.isin(years, config.enterprise_exempt_years)
        & latest["city"].eq(config.enterprise_exempt_city).to_numpy()
        & is_enterprise(latest["employer"], employer_types).to_numpy()
    )
    bank = pd.DataFrame(
        {
            "id_number": ids.array.take(groups // _YEARS),
            "year": years,
            "name": latest["name"].array,
            "employer": latest["employer"].array,
            "city": latest["city"].array,
            "public_hours": public,
            "professional_hours": professional,
            "total_hours": total,
            "makeup_hours": hours(rows["makeup"]),
            "public_short": public_short,
            "professional_short": professional_short,
            "compliant": (public_short == 0)
            & (professional_short == 0)
            & (total >= config.annual_required),
            "binding": ~exempt,
        }
    )
    return conform(bank, HOURS_BANK_DTYPES).reset_index(drop=True)


def reconciliation_counts(completion: pd.DataFrame) -> pd.DataFrame:
    """D4: records per platform, year and final state; raw is their sum.

    The year is `credited_year`, or `pull_year` where there is none (quarantined, undated).
    """
    year = completion["credited_year"].fillna(completion["pull_year"]).to_numpy(dtype=np.int64)
    platform, platforms = pd.factorize(completion["platform"], sort=True)
    pair, pairs = pd.factorize(platform * _YEARS + year, sort=True)
    state = pd.Categorical(completion["state"], categories=STATE_COLUMNS).codes
    cells = np.bincount(
        pair * len(STATE_COLUMNS) + state, minlength=len(pairs) * len(STATE_COLUMNS)
    )
    counts = pd.DataFrame(cells.reshape(-1, len(STATE_COLUMNS)), columns=list(STATE_COLUMNS))
    counts.insert(0, "raw", counts.sum(axis=1))
    counts.insert(0, "year", pairs % _YEARS)
    counts.insert(0, "platform", platforms.take(pairs // _YEARS))
    return counts.astype(
        {"platform": "str", "year": "int64"} | dict.fromkeys(["raw", *STATE_COLUMNS], "int64")
    )
