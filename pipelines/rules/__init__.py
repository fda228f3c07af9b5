"""RULES.md as pure DataFrame functions, run in the D-order: D1, C1–C3, R4, quarantine, R6,
D2, D3, R7; then the hours bank (R1, R2), the D4 counts and the C2 name conflicts.

The Dagster assets call `apply_rules`; nothing here imports Dagster.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from pipelines.rules.bank import EmployerTypes, hours_bank, reconciliation_counts
from pipelines.rules.classify import classify
from pipelines.rules.clean import (
    clean_id_numbers,
    clean_names,
    course_key,
    name_conflicts,
    shown_text,
)
from pipelines.rules.config import RulesConfig
from pipelines.rules.credit import credit
from pipelines.rules.forms import classify_forms, form_quarantine, form_reason
from pipelines.rules.quarantine import quarantine_reason
from pipelines.rules.versions import latest_versions
from schemas.ledger import COMPLETION_DTYPES
from schemas.platforms import PLATFORMS
from schemas.raw import TZ, conform

COMPLETION_OUTPUT_DTYPES: dict[str, str] = COMPLETION_DTYPES | {"pull_year": "int64"}


@dataclass(frozen=True)
class RulesResult:
    """The ledger (plus `pull_year`), the hours bank, the D4 counts and the C2 conflicts."""

    completion: pd.DataFrame
    hours_bank: pd.DataFrame
    reconciliation: pd.DataFrame
    name_conflicts: pd.DataFrame


def run_time(as_of: dt.datetime | pd.Timestamp | None = None) -> pd.Timestamp:
    """R12's "now": the run's time in Asia/Shanghai; a naive time is taken as Shanghai time."""
    stamp = pd.Timestamp.now(tz=TZ) if as_of is None else pd.Timestamp(as_of)
    return stamp.tz_localize(TZ) if stamp.tzinfo is None else stamp.tz_convert(TZ)


def completion_ledger(
    raw: pd.DataFrame, *, config: RulesConfig, as_of: pd.Timestamp
) -> pd.DataFrame:
    """D1 → C1–C3 → R4/R5 (forms: F kinds) → quarantine → R6 (forms: the F-order), D2, D3,
    then the caps (F2, R7 with F3, R8, R9): one ledger row per live record.

    Every stage keeps the row order D1 leaves (sorted by `record_key`), so the ledger needs no
    final sort of a million unique keys.
    """
    frame = latest_versions(raw)
    city = {code: spec.city for code, spec in PLATFORMS.items()}  # forms: classify_forms
    id_number, id_problem = clean_id_numbers(frame["raw_id"], config=config, today=as_of.date())
    title = shown_text(frame["course_title"])
    frame = frame.assign(
        city=frame["platform"].map(city).astype("str"),
        id_number=id_number,
        id_problem=id_problem,
        name=clean_names(frame["name"]),
        employer=shown_text(frame["employer"]),
        course_title=title,
        course_key=course_key(title),
    )
    frame = classify_forms(classify(frame, config), config)
    frame = frame.assign(quarantine=form_quarantine(frame, quarantine_reason(frame, config, as_of)))
    frame = frame.assign(form_reason=form_reason(frame))
    frame = credit(frame, config).assign(hours_reported=frame["hours"])
    return conform(frame, COMPLETION_OUTPUT_DTYPES)  # still in D1's record_key order


def apply_rules(
    raw: pd.DataFrame,
    *,
    config: RulesConfig | None = None,
    as_of: dt.datetime | pd.Timestamp | None = None,
    employer_types: EmployerTypes | None = None,
) -> RulesResult:
    """Every rule of RULES.md on raw records (any number of versions per record)."""
    config = config or RulesConfig()
    completion = completion_ledger(raw, config=config, as_of=run_time(as_of))
    return RulesResult(
        completion=completion,
        hours_bank=hours_bank(completion, config, employer_types),
        reconciliation=reconciliation_counts(completion),
        name_conflicts=name_conflicts(completion),
    )


STATE_WORDS: Mapping[str, str] = {
    "credited": "credited",
    "merged": "merged into another record",
    "not_credited": "kept but not credited",
    "quarantined": "quarantined",
}
REASON_WORDS: Mapping[str, str] = {
    "R6": "the course was not completed with a passed exam (R6)",
    "D2": "another record of this person has the same certificate number (D2)",
    "D3": "this person already completed the same course for the same subject and year (D3)",
    "R7": "the person's hours that day exceeded the daily cap (R7)",
    "id_number_corrupted": "the ID number arrived as a spreadsheet number and lost digits (C1)",
    "invalid_id_number": "the ID number is not a valid 18-character number (C1)",
    "unknown_category": "the platform's category label maps to no subject (R4)",
    "invalid_makeup": "the makeup mark is not allowed for this platform or year (R11)",
    "out_of_range_date": "the completion date is missing, too early or in the future (R12)",
    "invalid_hours": "the hours are missing, not positive, too large or not in 0.1 steps (R13)",
    "pending_review": "the unit has not reviewed this form row yet (F1)",
    "unfiled_training": "the training has no filing number in the year's register (F2)",
    "outside_filing": "the training's dates lie outside the filed dates (F2)",
    "no_learning_file": "the self-study row names no learning file (F4)",
    "no_evidence": "the form row has no evidence attached (F6)",
    "F2": "the hours exceeded the filing's approved hours (F2)",
    "R8": "the person's self-study that year exceeded its cap (R8)",
    "R9": "the person's converted hours that year exceeded their cap (R9)",
}


def explain(completion: pd.DataFrame, record_key: str) -> str:
    """Why one record ended as it did, in plain words, for operators answering a learner.

    `completion` needs only the record's person: a merged record names the kept one (platform,
    course, day) when it is there.
    """
    match = completion.loc[completion["record_key"].eq(record_key)]
    if match.empty:
        return f"{record_key}: not in the ledger (never pulled, or withdrawn by its platform)."
    row = match.iloc[0]
    year = row["credited_year"]
    words = [f"{record_key}: {STATE_WORDS.get(row['state'], row['state'])}"]
    if not pd.isna(year):
        words.append(f" for {int(year)}{' (makeup)' if row['makeup'] else ''}")
    if row["state"] == "credited":
        words.append(f", {row['hours_credited']:g} of {row['hours_reported']:g} hours")
    if not pd.isna(row["reason"]):
        words.append(f"; reason: {REASON_WORDS.get(row['reason'], row['reason'])}")
    if row["reason"] == "R7":
        words.append(f", {row['hours_trimmed']:g} hours trimmed on {_day(row['completed_at'])}")
    elif row["reason"] in ("F2", "R8", "R9"):
        words.append(f", {row['hours_trimmed']:g} hours trimmed")
    if not pd.isna(row["merged_into"]):
        words.append(f"; its hours count once, on {row['merged_into']}")
        kept = completion.loc[completion["record_key"].eq(row["merged_into"])]
        if not kept.empty:
            course, day = kept.iloc[0]["course_title"], _day(kept.iloc[0]["completed_at"])
            words.append(f" ({kept.iloc[0]['platform']}, {course}, {day})")
    return "".join(words) + "."


def _day(stamp: pd.Timestamp) -> str:
    return "an unknown day" if pd.isna(stamp) else f"{stamp:%Y-%m-%d}"
