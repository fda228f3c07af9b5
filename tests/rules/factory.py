"""Hand-built raw frames for the rule tests: one valid record by default, override what matters."""

from __future__ import annotations

from typing import Any

import pandas as pd

from schemas.raw import RAW_DTYPES, TIMESTAMP, TZ, conform
from tests.ids import with_check

AS_OF = pd.Timestamp("2024-06-30 12:00", tz=TZ)


PERSON = with_check("37090219880101123")
OTHER = with_check("37068219900215004")


def record(**overrides: Any) -> dict[str, Any]:
    """A passed 2 h public record of PERSON on ta_yx, completed 2022-05-03 09:00."""
    when = pd.Timestamp("2022-05-03 09:00", tz=TZ)
    base: dict[str, Any] = {
        "platform": "ta_yx",
        "source_key": "r1",
        "raw_id": PERSON,
        "name": "张三",
        "employer": "泰安市第一中学",
        "course_code": None,
        "course_title": "数据安全",
        "category_label": "公需科目",
        "hours": 2.0,
        "completed_at": when,
        "passed": True,
        "score": 90.0,
        "certificate_no": None,
        "makeup": False,
        "makeup_year": None,
        "updated_at": when,
        "withdrawn": False,
        "pulled_at": pd.Timestamp("2024-01-01 00:00", tz=TZ),
        "pull_year": 2022,
        "payload": "{}",
    }
    base.update(overrides)
    return base


def raw(*records: dict[str, Any]) -> pd.DataFrame:
    """A raw-schema frame of the given records (each from `record`)."""
    if not records:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in RAW_DTYPES.items()})
    frame = pd.DataFrame(list(records))
    for column, dtype in RAW_DTYPES.items():
        if dtype == TIMESTAMP:
            frame[column] = pd.to_datetime(frame[column], utc=True).dt.tz_convert(TZ)
    return conform(frame)


def ledger(*records: dict[str, Any], **kwargs: Any) -> pd.DataFrame:
    """The completion ledger of the given records, indexed by record_key, as of AS_OF."""
    from pipelines.rules import apply_rules

    result = apply_rules(raw(*records), as_of=kwargs.pop("as_of", AS_OF), **kwargs)
    return result.completion.set_index("record_key")
