"""Small, clean frames in the project's schemas; tests break one thing at a time."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from pipelines.validation import Validation
from schemas.ledger import COMPLETION_DTYPES, HOURS_BANK_DTYPES
from schemas.raw import RAW_DTYPES, TZ, conform
from tests.ids import with_check

id_number = with_check


ZHANG = id_number("37092119750101123")
LI = id_number("37068219880214002")
WANG = id_number("37060219900305441")
ZHAO = id_number("37092119660707358")
ALL_IDS = (ZHANG, LI, WANG, ZHAO)


def _at(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=TZ)


def raw() -> pd.DataFrame:
    """Three pulled records of three platforms, `record_key` included."""
    frame = pd.DataFrame(
        {
            "platform": ["ta_yx", "yt_sdbc", "ta_sdty"],
            "source_key": ["r1", "5f2a9c", "c_77"],
            "raw_id": [ZHANG, "'" + LI, WANG],
            "name": ["张三", "李四", "王五"],
            "employer": ["泰安市第一中学", "烟台某某有限公司", "泰安市中心医院"],
            "course_code": ["K1", None, "P-9"],
            "course_title": ["数字经济", "【2022】专业技术", "乡村振兴实务"],
            "category_label": ["公需科目", "专业课", "RURAL"],
            "hours": [2.0, 1.5, 3.0],
            "completed_at": [_at("2022-05-01 10:00"), _at("2022-05-02"), _at("2022-05-03 09:30")],
            "passed": [True, True, False],
            "score": [90.0, None, 40.0],
            "certificate_no": ["C-1", None, None],
            "makeup": [False, False, False],
            "makeup_year": [None, None, None],
            "updated_at": [_at("2022-05-01 10:05"), pd.NaT, _at("2022-05-03 09:31")],
            "withdrawn": [False, False, False],
            "pulled_at": [_at("2022-06-01 02:00")] * 3,
            "pull_year": [2022, 2022, 2022],
            "payload": ["{}", "{}", "{}"],
        }
    )
    frame = conform(frame, RAW_DTYPES)
    frame["record_key"] = frame["platform"] + ":" + frame["source_key"]
    return frame


def ledger() -> pd.DataFrame:
    """One row of each state and reason a clean run produces (D4)."""
    rows = [
        # record_key, id, state, reason, subject, year, reported, credited, trimmed, merged_into
        ("ta_yx:1", ZHANG, "credited", None, "public", 2022, 2.0, 2.0, 0.0, None),
        ("ta_yx:2", ZHANG, "credited", "R7", "professional", 2022, 8.5, 6.0, 2.5, None),
        ("yt_ldu:3", ZHANG, "merged", "D3", "public", 2022, 2.0, 0.0, 0.0, "ta_yx:1"),
        ("ta_zjp:4", LI, "not_credited", "R6", "professional", 2022, 3.0, 0.0, 0.0, None),
        ("ta_tyjrp:5", None, "quarantined", "id_number_corrupted", None, None, 1.0, 0, 0, None),
        ("yt_samet:6", WANG, "quarantined", "unknown_category", None, None, 4.0, 0.0, 0.0, None),
        ("ta_sdty:7", ZHAO, "credited", None, "professional", 2017, 0.1, 0.1, 0.0, None),
    ]  # fmt: skip
    columns = [
        "record_key", "id_number", "state", "reason", "subject", "credited_year",
        "hours_reported", "hours_credited", "hours_trimmed", "merged_into",
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    frame["platform"] = frame["record_key"].str.split(":").str[0]
    frame["city"] = frame["platform"].str.startswith("ta_").map({True: "taian", False: "yantai"})
    frame["name"] = "张三"
    frame["employer"] = "泰安市第一中学"
    frame["course_title"] = "数字经济"
    frame["course_key"] = "数字经济"
    frame["mode"] = "training"
    frame["completed_at"] = _at("2022-05-01 10:00")
    frame["makeup"] = False
    frame["certificate_no"] = None
    frame["first_seen_at"] = _at("2022-06-01 02:00")
    frame["last_seen_at"] = _at("2022-06-01 02:00")
    return conform(frame, COMPLETION_DTYPES)


def hours_bank() -> pd.DataFrame:
    """A compliant year, a short one, the same person in another year."""
    rows = [
        # id, year, public, professional, makeup, public_short, professional_short, compliant
        (ZHANG, 2022, 32.0, 61.5, 0.0, 0.0, 0.0, True),
        (ZHANG, 2021, 12.5, 0.0, 4.0, 17.5, 60.0, False),
        (LI, 2022, 30.0, 59.9, 0.0, 0.0, 0.1, False),
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "id_number", "year", "public_hours", "professional_hours", "makeup_hours",
            "public_short", "professional_short", "compliant",
        ],
    )  # fmt: skip
    frame["total_hours"] = frame["public_hours"] + frame["professional_hours"]
    frame["name"] = "张三"
    frame["employer"] = "泰安市第一中学"
    frame["city"] = "taian"
    frame["binding"] = True
    return conform(frame, HOURS_BANK_DTYPES)


def broken(frame: pd.DataFrame, key: str, changes: dict[str, object], by: str) -> pd.DataFrame:
    """A copy of `frame` with the row whose `by` column equals `key` changed."""
    copy = frame.copy()
    row = copy[by] == key
    for column, value in changes.items():
        copy.loc[row, column] = value
    return copy


def rows_of(frame: pd.DataFrame, keys: list[str], by: str) -> list[int]:
    """Positions of the rows whose `by` column is one of `keys` (in the clean frame)."""
    return sorted(frame.index[frame[by].isin(keys)].tolist())


def failures(failing_keys: pd.DataFrame) -> dict[str, list[int]]:
    """Expectation name → sorted failing row positions."""
    grouped = failing_keys.groupby("expectation")["row"]
    return {name: sorted(rows.tolist()) for name, rows in grouped}


def validate_cases(
    validate: Callable[[pd.DataFrame], Validation],
    cases: dict[str, pd.DataFrame],
    separate: Callable[[pd.DataFrame, int], pd.DataFrame],
) -> dict[str, dict[str, list[int]]]:
    """Validate every case's frame in one GX run: case → expectation → failing rows of the case.

    A run costs GX ~0.3 s whatever its size, so the cases are stacked as blocks of one frame;
    `separate` makes block i's keys its own, so that uniqueness never spans two cases.
    """
    frames = list(cases.values())
    stacked = pd.concat([separate(f, i) for i, f in enumerate(frames)], ignore_index=True)
    failing = validate(stacked).failing_keys
    starts = np.cumsum([0] + [len(f) for f in frames])
    block = np.searchsorted(starts, failing["row"].to_numpy(), side="right") - 1
    return {
        case: failures(failing[block == i].assign(row=failing["row"][block == i] - starts[i]))
        for i, case in enumerate(cases)
    }
