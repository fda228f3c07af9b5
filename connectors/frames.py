"""Raw-schema frames from decoded columns: where engines turn wire values into types.

Values that do not parse become NaN/NaT (the rules quarantine them); only the response's shape is
the engine's business.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from schemas.raw import RAW_DTYPES, TIMESTAMP, TZ, conform, natural_key


def raw_frame(
    columns: Mapping[str, Sequence[Any] | pd.Series],
    *,
    platform: str,
    pulled_at: pd.Timestamp,
    pull_year: int,
) -> pd.DataFrame:
    """A raw-schema frame from decoded columns; absent optional columns get their empty value.

    `columns` must hold `source_key` and may hold any other raw column, already typed or as
    strings the schema's dtype accepts.
    """
    frame = pd.DataFrame({name: _as_series(values) for name, values in columns.items()})
    n = len(frame)
    defaults: dict[str, Any] = {
        "platform": platform,
        "makeup": False,
        "withdrawn": False,
        "pulled_at": pulled_at,
        "pull_year": pull_year,
    }
    for name, dtype in RAW_DTYPES.items():
        if name not in frame:
            frame[name] = pd.Series(defaults.get(name), index=range(n), dtype=dtype)
    return conform(frame)


def _as_series(values: Sequence[Any] | pd.Series) -> pd.Series:
    return values.reset_index(drop=True) if isinstance(values, pd.Series) else pd.Series(values)


def text(values: Sequence[Any] | pd.Series) -> pd.Series:
    """Strings as received; empty strings and None become null."""
    series = _as_series(values).astype("str")
    return series.mask(series.str.len() == 0)


def numbers(values: Sequence[Any] | pd.Series) -> pd.Series:
    """Floats; anything unparseable becomes NaN."""
    return pd.to_numeric(_as_series(values), errors="coerce").astype("float64")


def local_times(values: Sequence[Any] | pd.Series, fmt: str) -> pd.Series:
    """Timestamps in Asia/Shanghai from strings in `fmt`; unparseable ones become NaT."""
    parsed = pd.to_datetime(_as_series(values), format=fmt, errors="coerce")
    return parsed.dt.tz_localize(TZ).astype(TIMESTAMP)


def epoch_millis(values: Sequence[Any] | pd.Series) -> pd.Series:
    """Timestamps in Asia/Shanghai from epoch milliseconds (UTC)."""
    millis = pd.to_numeric(_as_series(values), errors="coerce")
    return pd.to_datetime(millis, unit="ms", utc=True).dt.tz_convert(TZ).astype(TIMESTAMP)


def round_half_up(values: pd.Series, decimals: int = 1) -> pd.Series:
    """Round half up (not to even), as the platforms' 45-minute hours conversion requires."""
    scale = 10.0**decimals
    return np.floor(values * scale + 0.5 + 1e-9) / scale


def date_key(completed_at: pd.Series) -> pd.Series:
    """The completion date as `YYYY-MM-DD` ('' when missing), for natural keys."""
    return completed_at.dt.tz_localize(None).dt.strftime("%Y-%m-%d").fillna("")


def natural_source_key(
    raw_id: pd.Series, course_title: pd.Series, completed_at: pd.Series
) -> pd.Series:
    """The source key of platforms without record ids (docs/decisions.md)."""
    return natural_key([raw_id, course_title, date_key(completed_at)])


def payloads(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Each record as compact JSON, kept for provenance."""
    return [json.dumps(r, ensure_ascii=False, separators=(",", ":"), default=str) for r in records]
