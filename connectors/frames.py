"""Raw-schema frames from decoded columns: where engines turn wire values into types.

Values that do not parse become NaN/NaT (the rules quarantine them); only the response's shape is
the engine's business. Columns arrive as Arrow arrays (JSON pages via `pa.array`, CSV via
Arrow's reader) or pandas Series; well-typed ones convert in Arrow or pandas' C code, and only
a column whose wire type is not the expected one (a number where text belongs) takes the
per-value path of pandas' object dtype, with the same result as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.types import infer_dtype, pandas_dtype
from pandas.arrays import ArrowStringArray

from schemas.raw import RAW_DTYPES, TIMESTAMP, TZ, natural_key

Values = Sequence[Any] | pd.Series | pa.Array | pa.ChunkedArray
STR = pandas_dtype("str")
DTYPES = {name: pandas_dtype(dtype) for name, dtype in RAW_DTYPES.items()}
"""The raw schema's dtypes resolved once: comparing resolved dtypes is cheap, parsing is not."""
TEXT_TYPES = (pa.types.is_string, pa.types.is_large_string, pa.types.is_null)
NUMBER_TYPES = (pa.types.is_integer, pa.types.is_floating, pa.types.is_null)


def raw_frame(
    columns: Mapping[str, Values],
    *,
    platform: str,
    pulled_at: pd.Timestamp,
    pull_year: int,
) -> pd.DataFrame:
    """A raw-schema frame from decoded columns; absent optional columns get their empty value.

    `columns` must hold `source_key` and may hold any other raw column, already typed or as
    strings the schema's dtype accepts. Columns already of the schema's dtype are taken as they
    are; the rest are cast, so the frame is what `schemas.raw.conform` would make of them.
    """
    n = len(columns["source_key"])
    defaults: dict[str, Any] = {
        "platform": platform,
        "makeup": False,
        "withdrawn": False,
        "pulled_at": pulled_at,
        "pull_year": pull_year,
    }
    data: dict[str, Any] = {}
    for name, dtype in DTYPES.items():
        if name in columns:
            data[name] = _typed(columns[name], dtype)
        else:
            data[name] = pd.Series(defaults.get(name), index=range(n), dtype=dtype).array
    return pd.DataFrame(data, copy=False)


def _typed(values: Values, dtype: Any) -> Any:
    """`values` as an array of `dtype`, without a copy when it already is one."""
    if isinstance(values, pd.Series):
        values = values.array
    if isinstance(values, pa.Array | pa.ChunkedArray) and dtype == STR:
        return _str_array(values.cast(pa.large_string()))
    if getattr(values, "dtype", None) == dtype:
        return values
    return pd.Series(values).astype(dtype).array


def _str_array(values: pa.Array | pa.ChunkedArray) -> ArrowStringArray:
    if isinstance(values, pa.Array):
        values = pa.chunked_array([values], type=values.type)
    return ArrowStringArray(values, dtype=STR)


def _as_series(values: Values) -> pd.Series:
    if isinstance(values, pd.Series):
        return values.reset_index(drop=True)
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return pd.Series(values.to_pylist(), dtype="object")
    return pd.Series(values)


def _arrow(values: Values, kinds: tuple[Any, ...]) -> pa.Array | pa.ChunkedArray | None:
    """`values` as Arrow when their type is one of `kinds`, else None (the per-value path)."""
    if isinstance(values, pd.Series) and values.dtype == STR:
        values = pa.array(values.array)
    if isinstance(values, pa.Array | pa.ChunkedArray) and any(k(values.type) for k in kinds):
        return values
    return None


def text(values: Values) -> pd.Series:
    """Strings as received; empty strings and None become null."""
    arrow = _arrow(values, TEXT_TYPES)
    if arrow is None:
        series = _as_series(values).astype("str")
        return series.mask(series.str.len() == 0)
    strings = arrow.cast(pa.large_string())
    kept = pc.if_else(pc.not_equal(strings, ""), strings, pa.scalar(None, pa.large_string()))
    return pd.Series(_str_array(kept), copy=False)


def numbers(values: Values) -> pd.Series:
    """Floats; anything unparseable becomes NaN."""
    arrow = _arrow(values, NUMBER_TYPES)
    if arrow is not None:
        floats = arrow.cast(pa.float64()).to_numpy(zero_copy_only=False)
        return pd.Series(floats, dtype="float64", copy=False)
    strings = _arrow(values, TEXT_TYPES)
    if strings is not None:
        values = strings.to_numpy(zero_copy_only=False)
    return pd.to_numeric(_as_series(values), errors="coerce").astype("float64")


def local_times(values: Values, fmt: str) -> pd.Series:
    """Timestamps in Asia/Shanghai from strings in `fmt`; unparseable ones become NaT."""
    strings = _arrow(values, TEXT_TYPES)
    source = _as_series(values) if strings is None else pd.Series(_str_array(strings))
    parsed = pd.to_datetime(source, format=fmt, errors="coerce")
    return parsed.dt.tz_localize(TZ).astype(TIMESTAMP)


def epoch_millis(values: Values) -> pd.Series:
    """Timestamps in Asia/Shanghai from epoch milliseconds (UTC)."""
    millis = numbers(values)
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


def payloads(records: Iterable[Mapping[str, Any]]) -> pa.Array:
    """Each record as compact JSON (orjson: UTF-8, no spaces, non-ASCII unescaped), for provenance.

    The serializer does the per-record work; Arrow checks the UTF-8 once for the whole column.
    Spreadsheet dates and times are written in ISO 8601 (`2022-03-01T10:00:00`); any other
    value JSON has no type for as its `str`.
    """
    encoded = [orjson.dumps(r, default=str) for r in records]
    return pa.array(encoded, pa.large_binary()).cast(pa.large_string())


def cell_texts(cells: Iterable[Any], *, is_id: bool = False) -> pd.Series:
    """Spreadsheet cells as text: strings verbatim, numbers as written, dates in ISO 8601.

    An ID cell that is a number has lost its digits: it becomes the float it is
    (`repr(float)`), which C1 quarantines as `id_number_corrupted`, never a guessed string.
    """
    values = pd.Series(cells if isinstance(cells, pd.Series) else list(cells), dtype="object")
    if infer_dtype(values, skipna=False) in ("string", "empty"):  # text cells: nothing to convert
        return values.astype("str")
    return pd.Series([cell_text(cell, is_id=is_id) for cell in values], dtype="str")


def cell_text(cell: Any, *, is_id: bool = False) -> str:
    if isinstance(cell, str):
        return cell
    if isinstance(cell, bool):
        return str(cell)
    if isinstance(cell, int | float):
        if is_id:
            return repr(float(cell))
        return str(int(cell)) if float(cell).is_integer() else repr(float(cell))
    if isinstance(cell, datetime | date):
        return cell.isoformat()
    return str(cell)
