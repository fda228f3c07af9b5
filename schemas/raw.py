"""The raw schema: what every connector returns, whatever the platform's wire format.

One row is one version of one platform record, as the platform sent it, after unit
conversion only. Cleaning (C1–C3) and every rule happen later, in `pipelines.rules`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import pandas as pd

TZ = "Asia/Shanghai"
TIMESTAMP = f"datetime64[us, {TZ}]"

RAW_DTYPES: dict[str, str] = {
    "platform": "str",  # code from PLATFORMS.md
    "source_key": "str",  # the platform's record id, or natural_key() where it has none
    "raw_id": "str",  # the ID number as received; a numeric cell as Python's repr of the float
    "name": "str",
    "employer": "str",
    "course_code": "str",  # null where the platform has none
    "course_title": "str",
    "category_label": "str",  # the platform's label, verbatim (R4 maps it)
    "hours": "float64",  # 学时 after unit conversion; NaN when unparseable (R13 quarantines)
    "completed_at": TIMESTAMP,  # NaT for unfinished records or unparseable dates
    "passed": "boolean",  # exam passed / 已完成 / 结业; False for 学习中 or 不合格
    "score": "float64",
    "certificate_no": "str",
    "makeup": "bool",  # the platform marks the record as 补学
    "makeup_year": "Int64",  # the year the makeup counts for, null when not given
    "updated_at": TIMESTAMP,  # the platform's update time; NaT where it has none
    "withdrawn": "bool",  # tombstone, revocation, or gone from a full snapshot
    "pulled_at": TIMESTAMP,  # when this version was pulled (orders versions without updated_at)
    "pull_year": "int64",  # the partition (pull window) that brought this version
    "payload": "str",  # the record as received, JSON, for provenance
}

RAW_COLUMNS: tuple[str, ...] = tuple(RAW_DTYPES)


class SchemaError(ValueError):
    """A frame is missing columns of the schema it claims to follow."""


def conform(frame: pd.DataFrame, dtypes: dict[str, str] = RAW_DTYPES) -> pd.DataFrame:
    """Select the schema's columns in order and cast them; missing columns are an error."""
    missing = [c for c in dtypes if c not in frame.columns]
    if missing:
        raise SchemaError(f"missing columns: {', '.join(missing)}")
    return frame.loc[:, list(dtypes)].astype(dtypes)


def empty(dtypes: dict[str, str] = RAW_DTYPES) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})


def natural_key(parts: Iterable[pd.Series]) -> pd.Series:
    """A stable source key for platforms without record ids: BLAKE2b of the joined natural key.

    hashlib rather than pandas' hash so that keys survive library upgrades; the parts are the
    values as received (e.g. raw ID, course title, completion date), never cleaned ones.
    """
    columns = [p.astype("str").fillna("") for p in parts]
    joined = columns[0].str.cat(columns[1:], sep="\x1f") if len(columns) > 1 else columns[0]
    return pd.Series(
        [hashlib.blake2b(s.encode(), digest_size=10).hexdigest() for s in joined.tolist()],
        index=joined.index,
        dtype="str",
    )


def record_key(platform: pd.Series, source_key: pd.Series) -> pd.Series:
    """`platform:source_key`, the ledger's primary key (PROVINCIAL.md).

    Arrow concatenation, much faster than `str.cat` on large columns.
    """
    return platform + ":" + source_key
