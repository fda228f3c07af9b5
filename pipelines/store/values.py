"""Frames to database values and back, for both engines.

Timestamps are stored as UTC ISO text (`…T…Z`, microseconds, fixed width, so text order is time
order); text cannot hold NUL on PostgreSQL, so both engines store U+0000 as U+FFFD (the
replacement character) and keep the same rows, the loss visible.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from schemas.raw import TIMESTAMP, TZ, conform

NUL_REPLACEMENT = "\ufffd"

_TEXT = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' default "str"
_TEXT_TYPES = {pa.string(): _TEXT, pa.large_string(): _TEXT}


def utc_text(values: pd.Series) -> pd.Series:
    """Timestamps as the stored UTC ISO text; null stays null.

    Arrow's cast writes `YYYY-MM-DD HH:MM:SS.ffffff`, far faster than numpy's
    `datetime_as_string` or `dt.strftime`.
    """
    utc = values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    text = pc.cast(pa.array(utc, mask=np.isnat(utc)), pa.string())
    joined = pc.binary_join_element_wise(pc.utf8_replace_slice(text, 10, 11, "T"), "Z", "")
    return joined.to_pandas(types_mapper=_TEXT_TYPES.get).set_axis(values.index)


def prepare(frame: pd.DataFrame, dtypes: Mapping[str, str]) -> pd.DataFrame:
    """The frame as database values: schema dtypes, timestamps as UTC text, NUL replaced."""
    typed = conform(frame, dict(dtypes))
    out: dict[str, pd.Series] = {}
    for name, dtype in dtypes.items():
        column = typed[name]
        if dtype == TIMESTAMP:
            column = utc_text(column)
        elif dtype == "str" and column.str.contains("\x00", regex=False).any():
            column = column.str.replace("\x00", NUL_REPLACEMENT, regex=False)
        out[name] = column
    return pd.DataFrame(out, index=typed.index)


def python_values(column: pd.Series) -> list[Any]:
    """A column as DBAPI parameters: Python scalars, None for null (Arrow's `to_pylist`: twice
    as fast as masking an object array)."""
    if column.dtype == "bool" or column.dtype == "int64":
        return column.tolist()
    return pa.array(column, from_pandas=True).to_pylist()


def csv_chunks(values: pd.DataFrame, chunk_rows: int) -> Iterator[tuple[int, bytes]]:
    """The prepared frame as CSV for PostgreSQL's `COPY … FROM STDIN`, `chunk_rows` at a time,
    each with the rows done so far."""
    arrow = pa.Table.from_pandas(values, preserve_index=False)
    options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
    for start in range(0, len(values), chunk_rows):
        buffer = io.BytesIO()
        pacsv.write_csv(arrow.slice(start, chunk_rows), buffer, options)
        yield min(start + chunk_rows, len(values)), buffer.getvalue()


def frame_from_columns(
    columns: Mapping[str, Sequence[Any] | pa.Array], dtypes: Mapping[str, str]
) -> pd.DataFrame:
    """Database values (Python values from SQLite, text as UTF-8 bytes; arrow arrays from
    PostgreSQL's CSV) back to the schema's dtypes. Text and timestamps go through arrow:
    building them from Python objects with pandas costs several times more at a million rows."""
    out: dict[str, Any] = {}
    for name, dtype in dtypes.items():
        values = columns[name]
        if dtype == TIMESTAMP:
            out[name] = _local_times(_text_array(values))
        elif dtype == "str":
            out[name] = _text_array(values).to_pandas(types_mapper=_TEXT_TYPES.get)
        elif dtype == "boolean":
            out[name] = pd.Series(_objects(values), dtype="object").astype("boolean")
        elif dtype == "float64":
            out[name] = pd.Series(_objects(values), dtype="float64")
        else:
            out[name] = pd.Series(_objects(values)).astype(dtype)
    return pd.DataFrame(out)


Block = bytes | bytearray | memoryview


def frame_from_csv(blocks: Iterable[Block], dtypes: Mapping[str, str]) -> pd.DataFrame:
    """PostgreSQL's `COPY … TO STDOUT (FORMAT csv)` back to a frame (quoted "" is text, bare
    is NULL; booleans are `t`/`f`). The blocks are parsed as they arrive, so a shard's CSV is
    never held whole beside the table parsed from it."""
    blocks = iter(blocks)
    first = next(blocks, None)
    if first is None:
        return frame_from_columns({c: [] for c in dtypes}, dtypes)
    reader = pacsv.open_csv(
        io.BufferedReader(_BlockStream(itertools.chain([first], blocks)), CSV_READ_BYTES),
        read_options=pacsv.ReadOptions(column_names=list(dtypes), block_size=CSV_BLOCK_BYTES),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={
                c: pa.large_string() if t == TIMESTAMP else _arrow_type(t)
                for c, t in dtypes.items()
            },
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )
    table = reader.read_all()
    return frame_from_columns({c: table.column(c) for c in dtypes}, dtypes)


CSV_READ_BYTES = 1 << 20
CSV_BLOCK_BYTES = 8 << 20
"""Arrow parses the CSV 8 MB at a time, read from the database's blocks 1 MB at a time."""


class _BlockStream(io.RawIOBase):
    """The database's CSV blocks as a readable stream, for Arrow's streaming reader."""

    def __init__(self, blocks: Iterator[Block]) -> None:
        self._blocks = blocks
        self._rest = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:
        while not self._rest:
            block = next(self._blocks, None)
            if block is None:
                return 0
            self._rest = memoryview(block).cast("B")
        size = min(len(target), len(self._rest))
        memoryview(target).cast("B")[:size] = self._rest[:size]
        self._rest = self._rest[size:]
        return size


def _text_array(values: Sequence[Any] | pa.Array) -> pa.Array:
    if isinstance(values, pa.ChunkedArray | pa.Array):
        return values
    return pa.array(values, type=pa.large_string())


def _objects(values: Sequence[Any] | pa.Array) -> Sequence[Any]:
    if isinstance(values, pa.ChunkedArray | pa.Array):
        return values.to_pandas()
    return values


def _local_times(text: pa.Array) -> pd.Series:
    """Stored UTC ISO text to the frames' Asia/Shanghai timestamps."""
    utc = text.cast(pa.timestamp("us", tz="UTC"))
    return pd.Series(utc.to_pandas()).dt.tz_convert(TZ).astype(TIMESTAMP)


def _arrow_type(dtype: str) -> pa.DataType:
    if dtype == "float64":
        return pa.float64()
    if dtype in {"int64", "Int64"}:
        return pa.int64()
    if dtype in {"bool", "boolean"}:
        return pa.bool_()
    return pa.large_string()
