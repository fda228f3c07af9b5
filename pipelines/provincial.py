"""The provincial import files (PROVINCIAL.md): per year, per employer, XLSX plus a manifest.

A row's employer is the person-year's employer from the hours bank (docs/decisions.md), so a
person's hours and learner rows land in files of the same name.

Speed. About 12,000 small workbooks at a million records: per-cell writer calls cost more than
everything else, so the sheet XML is built column-wise by Arrow string kernels over a batch of
files at once, and each workbook is assembled from parts that never change (styles with the
text format `@`, content types, relationships, workbook, theme, app properties: written once
by xlsxwriter and compressed once) plus its own `docProps/core.xml` and
`xl/worksheets/sheet1.xml`. Text cells are inline strings with OOXML's escapes, as xlsxwriter's
streaming mode writes them: `_xHHHH_` for control characters (and for `\\r`, which XML would
turn into `\\n`), `_x005F` before literal `_xHHHH_` text, entities for `& < > "`. Nothing is a
formula. An empty text value leaves its cell empty.

One process, one thread. Two worker processes writing the years made the writing 1.7 times
faster in isolation, but cost 0.5 GB more at peak, and `spawn` re-imports the caller's main
module in each (1.8 s for `benchmarks.run`); two threads measured no faster on the shared
2-core machine.

Skipping. Every file has a digest of its cells (vectorized row hashes, combined per file with
their positions), its creation time, `FORMAT_VERSION` and a fingerprint of the fixed parts and
the zlib build, kept in `manifest.json`. A rerun writes only the files whose digest changed or
whose file is missing or of another size, and removes the files its manifest no longer lists.
A workbook's creation date is the newest completion among its rows (the data's own time, not
the clock, nor the time records were last seen), so the same rows write byte-identical files
with the same SHA-256: a night that re-sights every record of the year but changes one
employer's rows rewrites that employer's files only.

Crash safety. A file is never visible under its final name before its bytes are durable: a
year's changed files are written under temporary names in their folders, all fsynced (in a
thread pool: the file system batches the journal commits), then moved into place with
`os.replace`; then the folders are fsynced and the manifest is written last the same way. A
crash leaves old or new complete files, temporary files that the next run removes, and at worst
a manifest older than some files, which makes the next run rewrite them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import struct
import unicodedata
import uuid
import zipfile
import zlib
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import xlsxwriter

from pipelines.crash import crash_point
from schemas.platforms import FORMS, PLATFORMS, PlatformSpec
from schemas.privacy import mask_ids

HOURS_HEADER: tuple[str, ...] = (
    "序号",
    "姓名",
    "身份证号",
    "工作单位",
    "年度",
    "科目类别",
    "学习方式",
    "项目名称",
    "主办单位",
    "完成日期",
    "学时",
    "是否补学",
    "证书编号",
    "来源记录",
)
LEARNERS_HEADER: tuple[str, ...] = (
    "序号",
    "姓名",
    "证件类型",
    "证件号码",
    "性别",
    "出生日期",
    "工作单位",
)
SUBJECT_LABELS: Mapping[str, str] = {"public": "公需科目", "professional": "专业科目"}
MODE_LABELS: Mapping[str, str] = {
    "training": "培训进修类",
    "self_study": "自学类",
    "conversion": "折算类",
}
FORMS_ORGANIZER = "单位登记"
"""主办单位 of rows from unit registration forms (FORMS.md), which no platform organized."""
ID_TYPE = "居民身份证"
UNKNOWN_EMPLOYER = "未填写单位"
"""The file name for people whose hours-bank employer is empty (their 工作单位 cell stays empty)."""

MAX_NAME_BYTES = 180
"""File-name stem cap in UTF-8 bytes: 255-byte file systems, with room for suffix and temp name."""
HASH_CHARS = 8
FORMAT_VERSION = "2"
"""Part of every file's digest: bump it when the workbooks' bytes change for the same rows."""
NUMERIC_COLUMNS = frozenset({"序号", "年度", "学时"})
HOURS = "hours"
LEARNERS = "learners"
LEDGER_COLUMNS = (
    "record_key",
    "platform",
    "id_number",
    "course_title",
    "subject",
    "mode",
    "completed_at",
    "credited_year",
    "makeup",
    "hours_credited",
    "certificate_no",
    "state",
)
"""The ledger columns the files read (of credited rows only)."""
BATCH_ROWS = 100_000
"""Rows whose sheet XML is built at once: bounds memory (about 1 KB of XML per hours row)."""
ZIP_LEVEL = 1
"""zlib level: 1 compresses sheet XML 2.5 times faster than xlsxwriter's 6, files 13% larger."""
FSYNC_THREADS = 16
"""Concurrent fsyncs, which the file system commits together: 12k files in 0.7 s, not 3.6 s."""
DEFAULT_AS_OF = datetime(2017, 1, 1)

_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_DEVICE = re.compile(r"^(CON|PRN|AUX|NUL|COM[0-9¹²³]|LPT[0-9¹²³])(\..*)?$", re.IGNORECASE)


@dataclass(frozen=True)
class ProvincialFile:
    year: int
    kind: str  # "hours" or "learners"
    employer: str
    path: Path
    rows: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """What one run wrote: every workbook, and each year's manifest.json."""

    out_dir: Path
    files: tuple[ProvincialFile, ...]
    manifests: Mapping[int, Path]
    compared: tuple[int, ...] = ()
    """The years whose files were compared with the ledger and written where they differed."""

    def rows(self, kind: str, year: int | None = None) -> int:
        return sum(f.rows for f in self.files if f.kind == kind and year in (None, f.year))

    @property
    def file_count(self) -> int:
        return len(self.files)

    @property
    def row_count(self) -> int:
        """Hours rows: the credited records delivered to the province."""
        return self.rows(HOURS)

    @property
    def years(self) -> list[int]:
        return sorted(self.manifests)


# --- file names ---------------------------------------------------------------------------


def safe_name(name: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """A file-name stem valid on Windows and Linux, at most `max_bytes` of UTF-8 (plus `_`)."""
    text = _UNSAFE.sub("_", unicodedata.normalize("NFC", name)).strip()
    text = text.encode()[:max_bytes].decode(errors="ignore").rstrip(". ")
    if not text or text.startswith("."):
        text = "_" + text
    return "_" + text if _DEVICE.match(text) else text


def file_stems(employers: Iterable[str]) -> dict[str, str]:
    """A distinct stem per employer; stems that collide (ignoring case) all get a hash suffix."""
    safe = {e: safe_name(e) for e in sorted(set(employers))}
    clashes = Counter(s.casefold() for s in safe.values())
    stems = {
        e: s
        if clashes[s.casefold()] == 1
        else f"{safe_name(e, MAX_NAME_BYTES - HASH_CHARS - 1)}~{_digest(e)}"
        for e, s in safe.items()
    }
    if len({s.casefold() for s in stems.values()}) != len(stems):
        raise ValueError("employer file names still collide after hashing")
    return stems


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_CHARS]


# --- frames for the sheets ----------------------------------------------------------------


def hours_rows(
    completion: pd.DataFrame,
    hours_bank: pd.DataFrame,
    platforms: Mapping[str, PlatformSpec] = PLATFORMS,
) -> pd.DataFrame:
    """Credited records with hours, with the person-year's name and employer from the bank.

    Rows come in file order: year, file (`_file`, the employer or `UNKNOWN_EMPLOYER`), then
    person, completion time and record key. `_as_of` is the newest completion in the file.
    """
    credited = completion.loc[
        (completion["state"] == "credited")
        & (completion["hours_credited"] > 0)
        & completion["credited_year"].notna()
        & completion["id_number"].notna(),
        list(LEDGER_COLUMNS),
    ]
    person_year = hours_bank[["id_number", "year", "name", "employer"]].rename(
        columns={"name": "bank_name", "employer": "bank_employer"}
    )
    rows = credited.assign(year=credited["credited_year"].astype("int64")).merge(
        person_year, on=["id_number", "year"], how="left", validate="many_to_one", indicator=True
    )
    orphans = rows.loc[rows["_merge"] == "left_only", "id_number"]
    if len(orphans):
        raise ValueError(
            f"{len(orphans)} credited records have no hours-bank row, e.g. "
            f"{mask_ids(orphans.head(1)).iloc[0]}"
        )
    file = rows["bank_employer"].fillna(UNKNOWN_EMPLOYER)
    keys = pd.DataFrame(
        {"y": rows["year"], "f": file, "i": rows["id_number"], "c": rows["completed_at"]}
    ).assign(k=rows["record_key"])
    order = pc.sort_indices(
        pa.Table.from_pandas(keys, preserve_index=False),
        sort_keys=[(k, "ascending") for k in keys.columns],
    ).to_numpy()  # Arrow's stable sort: ten times pandas' on these string keys
    rows, file = rows.take(order), file.take(order)
    local_day = rows["completed_at"].dt.tz_localize(None).to_numpy().astype("datetime64[D]")
    day = pd.Series(np.datetime_as_string(local_day), rows.index, "str")  # twice strftime's speed
    organizers = {code: spec.organizer for code, spec in platforms.items()}
    organizers[FORMS] = FORMS_ORGANIZER
    frame = pd.DataFrame(
        {
            "year": rows["year"],
            "employer": rows["bank_employer"],
            "_file": file,
            "姓名": rows["bank_name"],
            "身份证号": rows["id_number"],
            "工作单位": rows["bank_employer"],
            "年度": rows["year"],
            "科目类别": _labels(rows["subject"], SUBJECT_LABELS),
            "学习方式": _labels(rows["mode"], MODE_LABELS),
            "项目名称": rows["course_title"],
            "主办单位": _labels(rows["platform"], organizers),
            "完成日期": day.where(rows["completed_at"].notna()),
            "学时": rows["hours_credited"],
            "是否补学": pd.Series(np.where(rows["makeup"], "是", "否"), rows.index, "str"),
            "证书编号": rows["certificate_no"],
            "来源记录": rows["record_key"],
            "_completed_at": rows["completed_at"],
            "_as_of": rows["completed_at"],
        }
    )
    return frame.assign(_as_of=frame.groupby(["year", "_file"])["_as_of"].transform("max"))


def _labels(values: pd.Series, labels: Mapping[str, str]) -> pd.Series:
    """`values.map(labels)` by an Arrow look-up (`map` calls Python per row); NaN if unknown."""
    array = pa.array(values, type=_STRING, from_pandas=True)
    codes = pc.index_in(array, value_set=pa.array(list(labels), _STRING))
    mapped = pc.take(pa.array(list(labels.values()), _STRING), codes).to_pandas()
    return mapped.set_axis(values.index)


def learner_rows(hours: pd.DataFrame) -> pd.DataFrame:
    """One row per person in the hours rows, gender and birth date read from the ID number."""
    people = hours.drop_duplicates(["year", "_file", "身份证号"])
    ids = people["身份证号"]
    odd = ids.str[16].astype("int64") % 2 == 1
    return pd.DataFrame(
        {
            "year": people["year"],
            "employer": people["employer"],
            "_file": people["_file"],
            "姓名": people["姓名"],
            "证件类型": ID_TYPE,
            "证件号码": ids,
            "性别": odd.map({True: "男", False: "女"}),
            "出生日期": ids.str[6:10] + "-" + ids.str[10:12] + "-" + ids.str[12:14],
            "工作单位": people["工作单位"],
            "_as_of": people["_as_of"],
        }
    )


# --- writing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sheets:
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
    def of(cls, kind: str, header: tuple[str, ...], frame: pd.DataFrame) -> _Sheets:
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
        version = _format_version()
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
class _Planned:
    """A file of this run: where it goes, and whether the existing file can stay."""

    sheets: _Sheets
    index: int
    path: Path
    entry: Mapping[str, object] | None  # the old manifest's entry when the file stays

    @property
    def rows(self) -> int:
        return int(self.sheets.stops[self.index] - self.sheets.starts[self.index])


def write_provincial(
    completion: pd.DataFrame,
    hours_bank: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    platforms: Mapping[str, PlatformSpec] = PLATFORMS,
    *,
    sources: Mapping[int, str] | None = None,
) -> Manifest:
    """Write `provincial/<year>/{hours,learners}/<employer>.xlsx` and `manifest.json` per year.

    Years are those of `sources` when given (each manifest then records its year's source),
    else those of the hours bank and of the credited records; a year with no credited hours
    gets an empty manifest, and its stale workbooks are removed. Files whose digest is in the
    year's previous manifest and that are still on disk are left untouched.
    """
    root = Path(out_dir) / "provincial"
    hours = hours_rows(completion, hours_bank, platforms)
    learners = learner_rows(hours)
    years = (
        sorted(sources)
        if sources is not None
        else sorted({int(y) for y in hours_bank["year"]} | {int(y) for y in hours["year"]})
    )
    done = [
        _write_year(
            root / str(y),
            y,
            file_stems(_in_year(hours, y)["_file"]),
            [(_in_year(hours, y), _in_year(learners, y))],
            None if sources is None else sources[y],
        )
        for y in years
    ]
    return Manifest(
        Path(out_dir),
        tuple(f for year_files, _ in done for f in year_files),
        {year: manifest for year, (_, manifest) in zip(years, done, strict=True)},
        tuple(years),
    )


class LedgerFiles(Protocol):
    """What the files read of the ledger, a year and a few files at a time, so that memory
    holds one batch of employers' rows, never a year (`pipelines.store.Store` is one)."""

    def file_sizes(self, year: int, unknown: str) -> Mapping[str, int]:
        """Hours rows per file of the year: employer, or `unknown` for none."""
        ...

    def file_rows(
        self, year: int, files: Collection[str], unknown: str, columns: Collection[str]
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The credited ledger rows (their `columns`) and the bank rows of those files."""
        ...

    def changed_files(self, year: int, since: int) -> set[str] | None:
        """Employers (`''`: none) whose file of `year` changed after write `since`; None when
        every file must be compared."""
        ...


def update_provincial(
    ledger: LedgerFiles,
    out_dir: str | os.PathLike[str],
    writes: Mapping[int, int],
    platforms: Mapping[str, PlatformSpec] = PLATFORMS,
) -> Manifest:
    """Bring the files up to date with a ledger whose years last changed in `writes` (the
    store's `output_years`): rewrite the years whose manifest names another write or another
    writer, or whose files are missing or resized, and leave the others unread. A year is read
    in batches of about `BATCH_ROWS` rows, whole employers each.

    A night that changes one year's records reads that year's changed files only: the
    employer-years the store says its writes since the manifest's touched (`changed_files`);
    the other files stay as the manifest lists them.
    """
    root = Path(out_dir) / "provincial"
    version = writer_version(platforms)
    sources = {year: f"{write}/{version}" for year, write in writes.items()}
    current = {
        year: files
        for year, source in sources.items()
        if (files := _current(root / str(year), year, source)) is not None
    }
    done = {}
    for year, source in sorted(sources.items()):
        if year in current:
            continue
        folder = root / str(year)
        sizes = ledger.file_sizes(year, UNKNOWN_EMPLOYER)
        stems = file_stems(sizes)
        kept = _unchanged(folder, ledger, year, version, stems, sizes)
        changed = {file: rows for file, rows in sizes.items() if file not in kept}
        batches = _batches(ledger, year, changed, platforms)
        done[year] = _write_year(folder, year, stems, batches, source, kept)
    return Manifest(
        Path(out_dir),
        tuple(f for files in current.values() for f in files)
        + tuple(f for files, _ in done.values() for f in files),
        {year: root / str(year) / "manifest.json" for year in current}
        | {year: manifest for year, (_, manifest) in done.items()},
        tuple(done),
    )


def _batches(
    ledger: LedgerFiles, year: int, sizes: Mapping[str, int], platforms: Mapping[str, PlatformSpec]
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """The year's hours and learner rows, whole files at a time, about `BATCH_ROWS` each."""
    batch: list[str] = []
    rows = 0
    for file in sorted(sizes):
        if batch and rows + sizes[file] > BATCH_ROWS:
            yield _rows_of(ledger, year, batch, platforms)
            batch, rows = [], 0
        batch.append(file)
        rows += sizes[file]
    if batch:
        yield _rows_of(ledger, year, batch, platforms)


def _rows_of(
    ledger: LedgerFiles, year: int, files: list[str], platforms: Mapping[str, PlatformSpec]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    credited, bank = ledger.file_rows(year, files, UNKNOWN_EMPLOYER, LEDGER_COLUMNS)
    hours = hours_rows(credited, bank, platforms)
    return hours, learner_rows(hours)


def writer_version(platforms: Mapping[str, PlatformSpec] = PLATFORMS) -> str:
    """What the files depend on besides the ledger: this writer's format, its fixed parts and
    zlib, and the organizers named in `主办单位`."""
    organizers = json.dumps(
        sorted((code, spec.organizer) for code, spec in platforms.items()), ensure_ascii=False
    )
    text = f"{_format_version()}|{organizers}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _format_version() -> str:
    """The workbooks' layout and fixed parts: part of every file's digest."""
    return f"{FORMAT_VERSION}|{_template().fingerprint}"


def _current(folder: Path, year: int, source: str) -> list[ProvincialFile] | None:
    """The year's files as its manifest lists them, when it was written from `source` and
    every file is still on disk at its size; None when the year must be compared again."""
    document = _manifest(folder)
    if document.get("source") != source:
        return None
    entries = _manifest_entries(document).values()
    sizes = {kind: _sizes(folder / kind) for kind in (HOURS, LEARNERS)}
    try:
        if any(sizes[e["kind"]].get(Path(e["path"]).name) != e["bytes"] for e in entries):
            return None
        return [
            ProvincialFile(
                year, e["kind"], e["employer"], folder / e["path"], e["rows"], e["sha256"]
            )
            for e in entries
        ]
    except (KeyError, TypeError):
        return None


def _unchanged(
    folder: Path,
    ledger: LedgerFiles,
    year: int,
    version: str,
    stems: Mapping[str, str],
    sizes: Mapping[str, int],
) -> dict[str, list[Mapping[str, Any]]]:
    """The manifest entries (hours and learners) of the employers whose file no write since
    the manifest's touched, and that are on disk as listed under today's name: kept unread."""
    document = _manifest(folder)
    write, _, written_by = str(document.get("source", "")).partition("/")
    if written_by != version or not write.isdigit():
        return {}
    changed = ledger.changed_files(year, int(write))
    if changed is None:
        return {}
    changed = {e or UNKNOWN_EMPLOYER for e in changed}
    on_disk = {kind: _sizes(folder / kind) for kind in (HOURS, LEARNERS)}
    by_path = _manifest_entries(document)
    kept = {}
    for employer, rows in sizes.items():
        if employer in changed:
            continue
        entries = [by_path.get(f"{kind}/{stems[employer]}.xlsx") for kind in (HOURS, LEARNERS)]
        if (
            all(
                e is not None
                and e.get("employer") == employer
                and on_disk[e.get("kind", "")].get(Path(str(e["path"])).name) == e.get("bytes")
                for e in entries
            )
            and entries[0]["rows"] == rows
        ):
            kept[employer] = entries
    return kept


def _in_year(frame: pd.DataFrame, year: int) -> pd.DataFrame:
    """The year's rows of a frame sorted by year."""
    first, last = np.searchsorted(frame["year"].to_numpy(), [year, year + 1])
    return frame.iloc[first:last]


def _write_year(
    folder: Path,
    year: int,
    stems: Mapping[str, str],
    batches: Iterable[tuple[pd.DataFrame, pd.DataFrame]],
    source: str | None,
    kept: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> tuple[list[ProvincialFile], Path]:
    """Write one year's changed workbooks batch by batch (hours and learner rows of whole
    files), then its manifest (with the `kept` files' entries as they were), and remove its
    stale files."""
    old = _manifest_entries(_manifest(folder))
    on_disk = {kind: _sizes(folder / kind) for kind in (HOURS, LEARNERS)}
    year_files: list[ProvincialFile] = []
    sizes: dict[Path, int] = {}
    digests: dict[Path, str] = {}
    for entries in (kept or {}).values():
        for e in entries:
            path = folder / str(e["path"])
            year_files.append(
                ProvincialFile(
                    year, str(e["kind"]), str(e["employer"]), path, int(e["rows"]), str(e["sha256"])
                )
            )
            sizes[path], digests[path] = int(e["bytes"]), str(e["digest"])
    for hours, learners in batches:
        kinds = (
            _Sheets.of(HOURS, HOURS_HEADER, hours),
            _Sheets.of(LEARNERS, LEARNERS_HEADER, learners),
        )
        planned = _plan(folder, kinds, stems, old, on_disk)
        written = _write_files(folder, [p for p in planned if p.entry is None])
        for p in planned:
            year_files.append(
                ProvincialFile(
                    year,
                    p.sheets.kind,
                    p.sheets.employers[p.index],
                    p.path,
                    p.rows,
                    str(p.entry["sha256"]) if p.entry else written[p.path][0],
                )
            )
            sizes[p.path] = int(p.entry["bytes"]) if p.entry else written[p.path][1]
            digests[p.path] = p.sheets.digests[p.index]
    manifest = _write_manifest(folder, year, year_files, digests, sizes, source)
    _remove_stale(folder, {f.path for f in year_files})
    return year_files, manifest


def _plan(
    folder: Path,
    kinds: Sequence[_Sheets],
    stems: Mapping[str, str],
    old: Mapping[str, Mapping[str, Any]],
    on_disk: Mapping[str, Mapping[str, int]],
) -> list[_Planned]:
    """The batch's files, each with its old manifest entry when digest and size still match."""
    planned = []
    for sheets in kinds:
        for index in range(len(sheets.employers)):
            path = folder / sheets.kind / f"{stems[sheets.employers[index]]}.xlsx"
            entry = old.get(path.relative_to(folder).as_posix())
            keep = (
                entry is not None
                and entry.get("digest") == sheets.digests[index]
                and on_disk[sheets.kind].get(path.name) == entry.get("bytes")
            )
            planned.append(_Planned(sheets, index, path, entry if keep else None))
    return planned


def _manifest(folder: Path) -> dict[str, Any]:
    """The year's manifest.json as written; empty when it is missing or unreadable."""
    try:
        document = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def _manifest_entries(document: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """A manifest's file entries by path; empty when they are not as this writer writes them."""
    try:
        return {str(e["path"]): e for e in document.get("files", [])}
    except (KeyError, TypeError):
        return {}


def _sizes(folder: Path) -> dict[str, int]:
    """Sizes of the regular files in `folder` by name; empty when it does not exist."""
    try:
        with os.scandir(folder) as entries:
            return {e.name: e.stat().st_size for e in entries if e.is_file()}
    except FileNotFoundError:
        return {}


def _write_files(folder: Path, planned: Sequence[_Planned]) -> dict[Path, tuple[str, int]]:
    """Write the planned files atomically; returns each path's SHA-256 and size."""
    for kind in {p.sheets.kind for p in planned}:
        (folder / kind).mkdir(parents=True, exist_ok=True)
    temporaries: list[tuple[Path, Path]] = []
    written: dict[Path, tuple[str, int]] = {}
    try:
        for job in _jobs(planned):
            temporaries.append((job.temporary, job.path))
            content = _workbook(job.header, job.rows, job.body, job.as_of)
            job.temporary.write_bytes(content)
            written[job.path] = (hashlib.sha256(content).hexdigest(), len(content))
        with ThreadPoolExecutor(FSYNC_THREADS) as pool:
            list(pool.map(_fsync, [t for t, _ in temporaries]))
        for temporary, path in temporaries:
            os.replace(temporary, path)
            crash_point("files")
        temporaries.clear()
    finally:
        for temporary, _ in temporaries:
            temporary.unlink(missing_ok=True)
    for kind in {p.sheets.kind for p in planned}:
        _fsync(folder / kind)
    return written


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@dataclass(frozen=True)
class _Job:
    """One workbook to write: its sheet's rows as XML, and where the bytes go first."""

    path: Path
    temporary: Path
    header: tuple[str, ...]
    rows: int
    body: memoryview
    as_of: datetime


def _jobs(planned: Sequence[_Planned]) -> Iterator[_Job]:
    """The planned files' jobs, in batches of one kind and up to `BATCH_ROWS` rows."""
    batch: list[_Planned] = []
    rows = 0
    for item in planned:
        if batch and (rows + item.rows > BATCH_ROWS or item.sheets is not batch[0].sheets):
            yield from _batch_jobs(batch)
            batch, rows = [], 0
        batch.append(item)
        rows += item.rows
    if batch:
        yield from _batch_jobs(batch)


def _batch_jobs(batch: Sequence[_Planned]) -> list[_Job]:
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
        _Job(
            item.path,
            item.path.with_name(f".{item.path.stem}.{uuid.uuid4().hex[:8]}.tmp"),
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


def _workbook(header: Sequence[str], rows: int, body: memoryview, as_of: datetime) -> bytes:
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


# --- manifest -----------------------------------------------------------------------------


def _naive_utc(moment: pd.Timestamp) -> datetime:
    """A workbook creation time: naive UTC, the default when the rows have none."""
    if pd.isna(moment):
        return DEFAULT_AS_OF
    return moment.tz_convert("UTC").tz_localize(None).to_pydatetime()


def _write_manifest(
    folder: Path,
    year: int,
    files: Sequence[ProvincialFile],
    digests: Mapping[Path, str],
    sizes: Mapping[Path, int],
    source: str | None,
) -> Path:
    """Write manifest.json (temporary name, fsync, replace) unless it already says the same.

    `source` names the ledger write and the writer the files were compared with."""
    entries = [
        {
            "path": f.path.relative_to(folder).as_posix(),
            "kind": f.kind,
            "employer": f.employer,
            "rows": f.rows,
            "sha256": f.sha256,
            "bytes": sizes[f.path],
            "digest": digests[f.path],
        }
        for f in sorted(files, key=lambda f: (f.kind, f.path.name))
    ]
    document = {
        "year": year,
        "rows": {kind: sum(f.rows for f in files if f.kind == kind) for kind in (HOURS, LEARNERS)},
        "files": entries,
    }
    if source is not None:
        document["source"] = source
    text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    path = folder / "manifest.json"
    try:
        if path.read_text(encoding="utf-8") == text:
            return path
    except OSError:
        pass
    folder.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".manifest.{uuid.uuid4().hex[:8]}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        _fsync(temporary)
        crash_point("manifest")
        os.replace(temporary, path)
        _fsync(folder)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _remove_stale(folder: Path, keep: set[Path]) -> None:
    """Remove the files of the year's kind folders that its manifest does not list, and
    manifests a crash left under their temporary names."""
    for leftover in folder.glob(".manifest.*.tmp"):
        leftover.unlink(missing_ok=True)
    for kind in (HOURS, LEARNERS):
        for name in _sizes(folder / kind):
            if folder / kind / name not in keep:
                (folder / kind / name).unlink(missing_ok=True)
