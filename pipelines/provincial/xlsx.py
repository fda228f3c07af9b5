"""The workbooks' bytes: one kind's rows cut into files (`Sheets`), their sheet XML, and the
XLSX around it.

Speed. About 12,000 small workbooks at a million records: per-cell writer calls cost more than
everything else, so the sheet XML is built column-wise by Arrow string kernels over a batch of
files at once, and each workbook is assembled from parts that never change (styles with the
text format `@`, content types, relationships, workbook, theme, app properties: written once
by xlsxwriter and compressed once) plus its own `docProps/core.xml` and
`xl/worksheets/sheet1.xml`. Text cells are inline strings with OOXML's escapes, as xlsxwriter's
streaming mode writes them: `_xHHHH_` for control characters (and for `\\r`, which XML would
turn into `\\n`), `_x005F` before literal `_xHHHH_` text, entities for `& < > "`. Nothing is a
formula. An empty text value leaves its cell empty.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import xlsxwriter

from pipelines.provincial.template import NUMERIC_COLUMNS

FORMAT_VERSION = "2"
"""Part of every file's digest: bump it when the workbooks' bytes change for the same rows."""
BATCH_ROWS = 100_000
"""Rows whose sheet XML is built at once: bounds memory (about 1 KB of XML per hours row)."""
ZIP_LEVEL = 1
"""zlib level: 1 compresses sheet XML 2.5 times faster than xlsxwriter's 6, files 13% larger."""
DEFAULT_AS_OF = datetime(2017, 1, 1)


# --- files of rows ------------------------------------------------------------------------


@dataclass(frozen=True)
class Sheets:
    """One kind's rows in file order, cut into files: row ranges, creation times, digests."""

    kind: str
    header: tuple[str, ...]
    starts: np.ndarray  # first row of each file; files in `_file` order
    stops: np.ndarray
    employers: list[str]  # the `_file` of each file
    as_of: list[datetime]
    digests: list[str]
    columns: Mapping[str, pa.Array]  # the header's columns but 序号, as Arrow arrays

    @classmethod
    def of(cls, kind: str, header: tuple[str, ...], frame: pd.DataFrame) -> Sheets:
        """The files of one year's rows of this kind."""
        employer = frame["_file"].to_numpy()
        new = np.ones(len(frame), dtype=bool)
        new[1:] = employer[1:] != employer[:-1]
        starts = np.flatnonzero(new)
        stops = np.append(starts[1:], len(frame))[: len(starts)].astype(np.int64)
        as_of = [_naive_utc(t) for t in frame["_as_of"].iloc[starts]]
        cells = [h for h in header if h != "序号"]
        row_hash = pd.util.hash_pandas_object(frame[cells], index=False).to_numpy()
        weight = (2 * _positions(starts, stops) + 1).astype(np.uint64)
        version = format_version()
        sums = np.add.reduceat(row_hash * weight, starts) if len(frame) else row_hash
        digests = [
            hashlib.sha256(
                f"{version}|{kind}|{stop - start}|{moment.isoformat()}|{total}".encode()
            ).hexdigest()[:32]
            for start, stop, moment, total in zip(starts, stops, as_of, sums.tolist(), strict=True)
        ]
        columns = {h: _arrow(frame[h], h in NUMERIC_COLUMNS) for h in cells}
        files = list(employer[starts])
        return cls(kind, header, starts, stops, files, as_of, digests, columns)


@dataclass(frozen=True)
class Planned:
    """A file of this run: where it goes, and whether the existing file can stay."""

    sheets: Sheets
    index: int
    path: Path
    entry: Mapping[str, object] | None  # the old manifest's entry when the file stays

    @property
    def rows(self) -> int:
        return int(self.sheets.stops[self.index] - self.sheets.starts[self.index])


def format_version() -> str:
    """The workbooks' layout and fixed parts: part of every file's digest."""
    return f"{FORMAT_VERSION}|{_template().fingerprint}"


def _naive_utc(moment: pd.Timestamp) -> datetime:
    """A workbook creation time: naive UTC, the default when the rows have none."""
    if pd.isna(moment):
        return DEFAULT_AS_OF
    return moment.tz_convert("UTC").tz_localize(None).to_pydatetime()


# --- jobs: a batch of files at once -------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One workbook to write: its sheet's rows as XML, and where it goes."""

    path: Path
    header: tuple[str, ...]
    rows: int
    body: memoryview
    as_of: datetime


def jobs(planned: Sequence[Planned]) -> Iterator[Job]:
    """The planned files' jobs, in batches of one kind and up to `BATCH_ROWS` rows."""
    batch: list[Planned] = []
    rows = 0
    for item in planned:
        if batch and (rows + item.rows > BATCH_ROWS or item.sheets is not batch[0].sheets):
            yield from _batch_jobs(batch)
            batch, rows = [], 0
        batch.append(item)
        rows += item.rows
    if batch:
        yield from _batch_jobs(batch)


def _batch_jobs(batch: Sequence[Planned]) -> list[Job]:
    """Build the batch's sheet XML at once and cut it into one job per file."""
    sheets = batch[0].sheets
    starts = sheets.starts[[p.index for p in batch]]
    stops = sheets.stops[[p.index for p in batch]]
    lengths = stops - starts
    if np.array_equal(starts[1:], stops[:-1]):  # adjacent files, as in a first write: a slice
        columns = {h: a.slice(starts[0], stops[-1] - starts[0]) for h, a in sheets.columns.items()}
    else:
        rows = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        columns = {h: a.take(rows) for h, a in sheets.columns.items()}
    offsets, data = _rows_xml(columns, sheets.header, _positions(starts, stops))
    bounds = np.append(0, np.cumsum(lengths))
    return [
        Job(
            item.path,
            sheets.header,
            item.rows,
            data[offsets[first] : offsets[last]],
            sheets.as_of[item.index],
        )
        for item, first, last in zip(batch, bounds[:-1], bounds[1:], strict=True)
    ]


def _positions(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """0-based position of every row within its file, for files given as row ranges."""
    lengths = stops - starts
    return np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)


# --- sheet XML ----------------------------------------------------------------------------

_TEXT_STYLE = "1"  # the `@` format's index in the template's cellXfs
_TEXT_OPENING = f'" s="{_TEXT_STYLE}" t="inlineStr"><is><t'
_HOSTILE = r'^[ \t\n]|[ \t\n]$|[&<>"\x00-\x08\x0B-\x1F\x{FFFE}\x{FFFF}]|_x[0-9A-Fa-f]{4}_'
"""Text that needs more than copying: edge whitespace, characters to escape."""
_CONTROL_CHARS = [*map(chr, [*range(0x00, 0x09), *range(0x0B, 0x20)]), "\ufffe", "\uffff"]
_ENTITIES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"))
_STRING = pa.large_string()
_EMPTY = pa.scalar("", _STRING)
Piece = str | pa.Array


def _arrow(column: pd.Series, numeric: bool) -> pa.Array:
    """A column as one Arrow array: large strings for text, numbers as they are."""
    if numeric:
        return pa.array(column.to_numpy(), from_pandas=True)
    array = pa.array(column, type=_STRING, from_pandas=True)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _rows_xml(
    columns: Mapping[str, pa.Array], header: Sequence[str], positions: np.ndarray
) -> tuple[np.ndarray, memoryview]:
    """Every row's `<row>` element, concatenated in frame order: offsets and UTF-8 bytes.

    A few Arrow kernel calls per column and one concatenation of all pieces: no Python per
    row or cell. Plain values are copied as they are; only the rows that need it are escaped.
    """
    number = pa.array(positions + 2).cast(_STRING)
    pieces: list[Piece] = ['<row r="', number, '">']
    for column, title in enumerate(header):
        reference = f'<c r="{_letter(column)}'
        if title in NUMERIC_COLUMNS:
            source = pa.array(positions + 1) if title == "序号" else columns[title]
            values = source.cast(_STRING)
            cell = [reference, number, '"><v>', values, "</v></c>"]
            pieces += [pc.fill_null(_join(*cell), _EMPTY)] if values.null_count else cell
        else:
            pieces += _text_cells(reference, number, columns[title])
    rows = _join(*pieces, "</row>")
    _, offsets, data = rows.buffers()
    return (
        np.frombuffer(offsets, dtype=np.int64)[rows.offset : rows.offset + len(rows) + 1],
        memoryview(data),
    )


def _text_cells(reference: str, number: pa.Array, text: pa.Array) -> list[Piece]:
    """A column's text cells as pieces of the row concatenation.

    An empty or null value leaves no cell; edge whitespace gets `xml:space="preserve"`.
    """
    if pc.any(pc.equal(text, "")).as_py():
        text = pc.if_else(pc.equal(text, ""), pa.scalar(None, _STRING), text)
    plain = [reference, number, _TEXT_OPENING + ">", text, "</t></is></c>"]
    hostile = pc.fill_null(pc.match_substring_regex(text, _HOSTILE), False)
    escapes = pc.any(hostile).as_py()
    if not escapes and not text.null_count:
        return plain
    cells = _join(*plain)
    if escapes:
        escaped = _escape(pc.filter(text, hostile))
        space = pc.if_else(
            pc.match_substring_regex(escaped, r"^[ \t\n]|[ \t\n]$"),
            pa.scalar(' xml:space="preserve">', _STRING),
            pa.scalar(">", _STRING),
        )
        numbers = pc.filter(number, hostile)
        odd = _join(reference, numbers, _TEXT_OPENING, space, escaped, "</t></is></c>")
        cells = pc.replace_with_mask(cells, hostile, odd)
    return [pc.fill_null(cells, _EMPTY)]


def _join(*pieces: Piece) -> pa.Array:
    """Element-wise concatenation, adjacent constants merged; null where any array is null."""
    arguments: list[pa.Array | pa.Scalar] = []
    constant = ""
    for piece in pieces:
        if isinstance(piece, str):
            constant += piece
            continue
        if constant:
            arguments.append(pa.scalar(constant, _STRING))
            constant = ""
        arguments.append(piece)
    if constant:
        arguments.append(pa.scalar(constant, _STRING))
    return pc.binary_join_element_wise(*arguments, _EMPTY)


def _escape(text: pa.Array) -> pa.Array:
    """OOXML escapes (see the module docstring), then XML entities; each only where needed."""
    if pc.any(pc.match_substring(text, "_x")).as_py():
        text = pc.replace_substring_regex(text, r"(_x[0-9A-Fa-f]{4}_)", r"_x005F\1")
    for char in _CONTROL_CHARS:
        if pc.any(pc.match_substring(text, char)).as_py():
            text = pc.replace_substring(text, char, f"_x{ord(char):04X}_")
    for char, entity in _ENTITIES:
        if pc.any(pc.match_substring(text, char)).as_py():
            text = pc.replace_substring(text, char, entity)
    return text


def _letter(column: int) -> str:
    """Spreadsheet column letters for a 0-based index below 26 * 27."""
    first, second = divmod(column, 26)
    return ("" if first == 0 else chr(64 + first)) + chr(65 + second)


def _header_xml(header: Sequence[str]) -> bytes:
    cells = "".join(
        f'<c r="{_letter(c)}1" t="inlineStr"><is><t>{title}</t></is></c>'
        for c, title in enumerate(header)
    )
    return f'<row r="1">{cells}</row>'.encode()


# --- workbook assembly --------------------------------------------------------------------

_PLACEHOLDER_DATE = datetime(2000, 1, 1)
_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01, as xlsxwriter's fixed zip timestamps
_SHEET = "xl/worksheets/sheet1.xml"
_CORE = "docProps/core.xml"


@dataclass(frozen=True)
class _Part:
    """A zip member, compressed: name, CRC-32, sizes and deflated bytes."""

    name: bytes
    crc: int
    size: int
    data: bytes

    @classmethod
    def of(cls, name: str, chunks: Iterable[bytes | memoryview], level: int = ZIP_LEVEL) -> _Part:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
        crc = size = 0
        out = []
        for chunk in chunks:
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
            out.append(compressor.compress(chunk))
        out.append(compressor.flush())
        return cls(name.encode(), crc, size, b"".join(out))


@dataclass(frozen=True)
class _Template:
    """xlsxwriter's parts in its order, the sheet's XML around `<sheetData>`, core properties."""

    names: tuple[str, ...]
    fixed: Mapping[str, _Part]
    sheet_head: str
    sheet_tail: bytes
    core: str
    fingerprint: str  # of the parts and the compression, so that a new xlsxwriter or zlib rewrites


@cache
def _template() -> _Template:
    """A one-cell workbook from xlsxwriter, with the text format `@` in its styles."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
    workbook.set_properties({"created": _PLACEHOLDER_DATE})
    sheet = workbook.add_worksheet("Sheet1")
    sheet.write_blank(0, 0, None, workbook.add_format({"num_format": "@", "quote_prefix": True}))
    workbook.close()
    with zipfile.ZipFile(buffer) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    sheet_xml = parts[_SHEET].decode()
    head, rest = sheet_xml.split("<sheetData>")
    if f's="{_TEXT_STYLE}"' not in rest or "quotePrefix" not in parts["xl/styles.xml"].decode():
        raise RuntimeError("xlsxwriter's template no longer has the text format where expected")
    return _Template(
        names=tuple(parts),
        fixed={n: _Part.of(n, [p]) for n, p in parts.items() if n not in {_SHEET, _CORE}},
        sheet_head=re.sub(r'<dimension ref="[^"]*"/>', "{dimension}", head) + "<sheetData>",
        sheet_tail=b"</sheetData>" + rest.split("</sheetData>")[1].encode(),
        core=parts[_CORE].decode(),
        fingerprint=hashlib.sha256(
            b"".join([*parts.values(), zlib.ZLIB_RUNTIME_VERSION.encode(), bytes([ZIP_LEVEL])])
        ).hexdigest()[:16],
    )


@lru_cache(maxsize=1024)
def _core_part(as_of: datetime) -> _Part:
    template = _template()
    stamp = as_of.strftime("%Y-%m-%dT%H:%M:%SZ")
    return _Part.of(_CORE, [template.core.replace("2000-01-01T00:00:00Z", stamp).encode()])


def workbook_bytes(header: Sequence[str], rows: int, body: memoryview, as_of: datetime) -> bytes:
    """A complete XLSX: the template's parts, this sheet, these core properties."""
    template = _template()
    dimension = f'<dimension ref="A1:{_letter(len(header) - 1)}{rows + 1}"/>'
    sheet = _Part.of(
        _SHEET,
        [
            template.sheet_head.replace("{dimension}", dimension).encode(),
            _header_xml(header),
            body,
            template.sheet_tail,
        ],
    )
    parts = [
        sheet if n == _SHEET else _core_part(as_of) if n == _CORE else template.fixed[n]
        for n in template.names
    ]
    return _zip(parts)


def _zip(parts: Sequence[_Part]) -> bytes:
    """A zip archive of deflated parts with fixed timestamps (byte-identical for equal parts)."""
    local, central = [], []
    offset = 0
    for part in parts:
        fields = (20, 0, 8, 0, _DOS_DATE, part.crc, len(part.data), part.size, len(part.name), 0)
        header = struct.pack("<4s5HI2I2H", b"PK\x03\x04", *fields) + part.name
        local += [header, part.data]
        central.append(
            struct.pack("<4s6HI2I5HII", b"PK\x01\x02", 20, *fields, 0, 0, 0, 0, offset) + part.name
        )
        offset += len(header) + len(part.data)
    directory = b"".join(central)
    end = struct.pack(
        "<4s4H2IH", b"PK\x05\x06", 0, 0, len(parts), len(parts), len(directory), offset, 0
    )
    return b"".join([*local, directory, end])
