"""Small hand-built frames for the load tests: raw batches, ledger rows, bank rows, ID numbers."""

from __future__ import annotations

from typing import Any

import pandas as pd

from pipelines.shards import person_buckets
from schemas.ledger import COMPLETION_DTYPES, HOURS_BANK_DTYPES
from schemas.raw import RAW_DTYPES, TZ, conform
from tests.ids import with_check

id_number = with_check


def at(text: str) -> pd.Timestamp:
    """A Shanghai-local timestamp from `YYYY-MM-DD HH:MM[:SS]`."""
    return pd.Timestamp(text, tz=TZ)


def raw_row(source_key: str, **values: Any) -> dict[str, Any]:
    """One raw record of ta_yx pulled for 2022, with plausible defaults."""
    row: dict[str, Any] = {
        "platform": "ta_yx",
        "source_key": source_key,
        "raw_id": id_number("37092119800101001"),
        "name": "张三",
        "employer": "泰安市第一中学",
        "course_code": f"C{source_key}",
        "course_title": f"课程{source_key}",
        "category_label": "专业科目",
        "hours": 2.0,
        "completed_at": at("2022-05-03 10:00"),
        "passed": True,
        "score": 90.0,
        "certificate_no": f"CERT-{source_key}",
        "makeup": False,
        "makeup_year": None,
        "updated_at": at("2022-05-03 10:05"),
        "withdrawn": False,
        "pulled_at": at("2022-06-01 02:00"),
        "pull_year": 2022,
        "payload": f'{{"recordId":"{source_key}"}}',
    }
    row.update(values)
    return row


def raw_frame(*rows: dict[str, Any]) -> pd.DataFrame:
    return conform(pd.DataFrame(list(rows), columns=list(RAW_DTYPES)))


def bare_withdrawal(source_key: str, pulled_at: pd.Timestamp) -> dict[str, Any]:
    """A row gone from a full snapshot: only its identity, the flag and the pull are known."""
    row: dict[str, Any] = dict.fromkeys(RAW_DTYPES)
    row.update(
        platform="ta_yx",
        source_key=source_key,
        makeup=False,
        withdrawn=True,
        pulled_at=pulled_at,
        pull_year=2022,
    )
    return row


def ledger_row(record: str, person: str, **values: Any) -> dict[str, Any]:
    """One credited ledger row of `person` (an ID number) for 2022."""
    row: dict[str, Any] = {
        "record_key": f"ta_yx:{record}",
        "platform": "ta_yx",
        "city": "taian",
        "id_number": person,
        "name": "张三",
        "employer": "泰安市第一中学",
        "course_title": f"课程{record}",
        "course_key": f"课程{record}",
        "subject": "professional",
        "mode": "training",
        "completed_at": at("2022-05-03 10:00"),
        "credited_year": 2022,
        "makeup": False,
        "hours_reported": 2.0,
        "hours_credited": 2.0,
        "hours_trimmed": 0.0,
        "certificate_no": f"CERT-{record}",
        "state": "credited",
        "reason": None,
        "merged_into": None,
        "first_seen_at": at("2022-06-01 02:00"),
        "last_seen_at": at("2022-06-01 02:00"),
    }
    row.update(values)
    return row


def ledger(*rows: dict[str, Any]) -> pd.DataFrame:
    """Ledger rows with the bucket the store gives their records (`pipelines.shards`)."""
    frame = conform(pd.DataFrame(list(rows), columns=list(COMPLETION_DTYPES)), COMPLETION_DTYPES)
    raw_ids = frame["id_number"].fillna(frame["record_key"])
    return frame.assign(person_bucket=person_buckets(raw_ids, frame["record_key"]))


def bank_row(person: str, **values: Any) -> dict[str, Any]:
    """A 2022 hours-bank row of `person`."""
    row: dict[str, Any] = {
        "id_number": person,
        "year": 2022,
        "name": "张三",
        "employer": "泰安市第一中学",
        "city": "taian",
        "public_hours": 0.0,
        "professional_hours": 2.0,
        "total_hours": 2.0,
        "makeup_hours": 0.0,
        "public_short": 30.0,
        "professional_short": 58.0,
        "compliant": False,
        "binding": True,
    }
    row.update(values)
    return row


def bank(*rows: dict[str, Any]) -> pd.DataFrame:
    return conform(pd.DataFrame(list(rows), columns=list(HOURS_BANK_DTYPES)), HOURS_BANK_DTYPES)


def conflicts(*pairs: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"id_number": [p for p, _ in pairs], "names": [n for _, n in pairs]})
