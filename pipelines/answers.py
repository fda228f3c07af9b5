"""`xueshi explain`: one person's years, hours against R1/R2, every record's outcome in plain
words, name conflicts (C2) and R3 title eligibility, read from the store.

The operator asked for this person, so the output shows the full ID number; nothing here logs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipelines.rules import explain
from pipelines.rules.bank import EmployerTypes
from pipelines.rules.clean import clean_id_numbers
from pipelines.rules.config import RulesConfig
from pipelines.rules.eligibility import title_eligibility, title_requirements
from pipelines.store import Store
from schemas.platforms import PLATFORMS

RECORD_COLUMNS = (
    "platform",
    "id_number",
    "name",
    "employer",
    "city",
    "course_title",
    "subject",
    "completed_at",
    "credited_year",
    "pull_year",
    "makeup",
    "hours_reported",
    "hours_credited",
    "hours_trimmed",
    "certificate_no",
    "state",
    "reason",
    "merged_into",
)


class UnknownPerson(LookupError):
    """The ID is not valid under C1, or the ledger has no record of it."""


def normalized_id(text: str, config: RulesConfig | None = None) -> str:
    """C1 on one typed ID (15 digits, lower-case x, spaces…); the problem code if unusable."""
    ids, problem = clean_id_numbers(pd.Series([text], dtype="str"), config=config)
    if pd.isna(ids.iloc[0]):
        raise UnknownPerson(f"not a valid ID number ({problem.iloc[0]}, C1)")
    return str(ids.iloc[0])


def _of_person(id_number: str) -> str:
    """The SQL condition for one person (a C1-normalized ID is 17 digits and a digit or X, so
    it quotes safely)."""
    return f"id_number = '{id_number}'"


@dataclass(frozen=True)
class PersonAnswer:
    """What the store holds about one person: ledger rows, hours bank, conflicts, R3."""

    id_number: str
    latest: dict[str, str]
    """Name, employer and city of the latest hours-bank year (else the latest record)."""
    records: pd.DataFrame
    bank: pd.DataFrame
    names: list[str]
    eligibility: pd.DataFrame
    requirements: pd.DataFrame

    def as_dict(self) -> dict[str, Any]:
        years = sorted(set(self.bank["year"]) | set(self.records["year"]))
        eligibility = None
        if len(self.eligibility):
            row = self.eligibility.iloc[0]
            eligibility = {
                "employer_type": row["employer_type"],
                "eligible": None if pd.isna(row["eligible"]) else bool(row["eligible"]),
                "years_short": int(row["years_short"]),
                "public_short": float(row["public_short"]),
                "professional_short": float(row["professional_short"]),
                "short": row["short"],
                "requirements": _plain(
                    self.requirements[["subject", "year", "hours", "short", "recorded"]]
                ),
            }
        return {
            "id_number": self.id_number,
            **self.latest,
            "name_conflict": self.names if len(self.names) > 1 else None,
            "years": [self._year(year) for year in years],
            "title_eligibility": eligibility,
        }

    def _year(self, year: int) -> dict[str, Any]:
        bank = self.bank.loc[self.bank["year"].eq(year)]
        records = self.records.loc[self.records["year"].eq(year)]
        hours = _plain(bank.drop(columns=[*_PERSON, "year"]))
        return {
            "year": int(year),
            "hours": hours[0] if hours else None,
            "hours_reported": round(float(records["hours_reported"].sum()), 1),
            "records": _plain(records.drop(columns=[*_PERSON, "year"])),
        }


_PERSON = ["id_number", "name", "employer", "city"]


def _plain(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: timestamps ISO 8601 in their own zone (Asia/Shanghai, so the
    day is the learner's day, not UTC's), missing values null."""
    times = frame.select_dtypes(include=["datetimetz", "datetime"]).columns
    local = frame.assign(
        **{c: frame[c].map(lambda t: None if pd.isna(t) else t.isoformat()) for c in times}
    )
    return json.loads(local.to_json(orient="records", force_ascii=False))


def person_answer(
    store: Store,
    id_text: str,
    *,
    year: int | None = None,
    employer_types: EmployerTypes | None = None,
    config: RulesConfig | None = None,
) -> PersonAnswer:
    """Everything the store knows about the person with this ID (any form C1 accepts)."""
    config = config or RulesConfig()
    id_number = normalized_id(id_text, config)
    rows = store.ledger_rows(RECORD_COLUMNS, people=[id_number])
    bank = store.read_table("hours_bank", where=(_of_person(id_number),))
    if rows.empty:
        raise UnknownPerson("no record of this ID number in the ledger")
    conflicts = store.read_table("name_conflict", where=(_of_person(id_number),))
    names = conflicts["names"].iloc[0].split("|") if len(conflicts) else []
    requirements = title_requirements(bank, employer_types, config)
    order = ["completed_at", "platform", "record_key"]
    rows = rows.sort_values(order, kind="stable").reset_index(drop=True)
    outcome = [explain(rows, key).removeprefix(f"{key}: ") for key in rows["record_key"]]
    rows = rows.assign(
        year=rows["credited_year"].fillna(rows["pull_year"]).astype("int64"),
        platform_name=rows["platform"].map({c: p.organizer for c, p in PLATFORMS.items()}),
        outcome=outcome,
    ).drop(columns=["pull_year"])
    latest = (bank if len(bank) else rows).iloc[-1]
    if year is not None:
        rows, bank = rows.loc[rows["year"].eq(year)], bank.loc[bank["year"].eq(year)]
    return PersonAnswer(
        id_number=id_number,
        latest={c: latest[c] for c in ("name", "employer", "city")},
        records=rows,
        bank=bank.reset_index(drop=True),
        names=names,
        eligibility=title_eligibility(requirements),
        requirements=requirements,
    )


def _hours_line(hours: dict[str, Any] | None, config: RulesConfig) -> str:
    if hours is None:
        return "  no hours: every record of this year was quarantined"
    parts = [
        f"public {hours['public_hours']:g}/{config.public_required:g}",
        f"professional {hours['professional_hours']:g}/{config.professional_required:g}",
        f"makeup {hours['makeup_hours']:g}",
        f"total {hours['total_hours']:g}/{config.annual_required:g}",
    ]
    if hours["compliant"]:
        verdict = "met (R1)"
    else:
        shorts = [
            f"{name} short by {hours[f'{name}_short']:g}"
            for name in ("public", "professional")
            if hours[f"{name}_short"] > 0
        ]
        verdict = "not met (R1): " + (", ".join(shorts) or "total short")
        if not hours["binding"]:
            verdict += "; not binding (R2: Tai'an enterprise)"
    return f"  {', '.join(parts)} — {verdict}"


def render_text(answer: dict[str, Any], config: RulesConfig | None = None) -> str:
    """The answer for a terminal: a header, then per year the hours and one line per record."""
    config = config or RulesConfig()
    lines = [f"{answer['id_number']}  {answer['name']}  {answer['employer']} ({answer['city']})"]
    if answer["name_conflict"]:
        names = "、".join(answer["name_conflict"])
        lines.append(f"Name conflict (C2): this ID appears as {names}; one person, not split.")
    for year in answer["years"]:
        credited = year["hours"]["total_hours"] if year["hours"] else 0
        lines += [
            "",
            f"{year['year']}: {year['hours_reported']:g} hours reported, {credited:g} credited",
            _hours_line(year["hours"], config),
        ]
        for record in year["records"]:
            day = (record["completed_at"] or "????-??-??")[:10]
            subject = record["subject"] or "no subject"
            lines.append(
                f"  {day}  {record['platform']} {record['platform_name']}  "
                f"《{record['course_title']}》 {subject}, {record['hours_reported']:g} h: "
                f"{record['outcome']}"
            )
    title = answer["title_eligibility"]
    if title:
        verdict = {True: "eligible", False: "not eligible", None: "unknown"}[title["eligible"]]
        lines += ["", f"R3 title application (Yantai 2022), {title['employer_type']}: {verdict}"]
        if title["short"]:
            lines.append(f"  short: {title['short']}")
        if title["eligible"] is None:
            lines.append(
                "  the employer register (XUESHI_EMPLOYER_TYPES) does not give this unit's type;"
                " years checked as for a public institution"
            )
    return "\n".join(lines)
