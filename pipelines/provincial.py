"""The provincial import files (PROVINCIAL.md): per year, per employer, XLSX plus a manifest.

A row's employer is the person-year's employer from the hours bank (docs/decisions.md), so a
person's hours and learner rows land in files of the same name. Files are written under a
temporary name in their folder and moved into place with `os.replace`; a rerun removes the
files its manifest no longer lists. Workbooks carry the data's own time as their creation date,
so the same ledger writes byte-identical files (and the same SHA-256) on every run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import xlsxwriter

from connectors.core import PlatformSpec
from schemas.platforms import PLATFORMS

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
MODE_LABELS: Mapping[str, str] = {"training": "培训进修类"}
ID_TYPE = "居民身份证"
UNKNOWN_EMPLOYER = "未填写单位"
"""The file name for people whose hours-bank employer is empty (their 工作单位 cell stays empty)."""

MAX_NAME_BYTES = 180
"""File-name stem cap in UTF-8 bytes: 255-byte file systems, with room for suffix and temp name."""
HASH_CHARS = 8
WORKBOOK_OPTIONS: Mapping[str, Any] = {
    "constant_memory": True,
    "strings_to_formulas": False,  # C5: a text cell is never a formula
    "strings_to_numbers": False,
    "strings_to_urls": False,
}
IN_MEMORY_ROWS = 20_000
FORMAT_VERSION = "1"  # bump when the workbooks' layout changes, so unchanged years are rewritten
"""Sheets up to this many rows are built in memory (fast); longer ones stream to disk."""
NUMERIC_COLUMNS = frozenset({"序号", "年度", "学时"})
HOURS = "hours"
LEARNERS = "learners"

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


def mask_id(id_number: str) -> str:
    """C6: `370921********123X`."""
    return f"{id_number[:6]}********{id_number[-4:]}"


# --- frames for the sheets ----------------------------------------------------------------


def hours_rows(
    completion: pd.DataFrame,
    hours_bank: pd.DataFrame,
    platforms: Mapping[str, PlatformSpec] = PLATFORMS,
) -> pd.DataFrame:
    """Credited records with hours, with the person-year's name and employer from the bank."""
    credited = completion[
        (completion["state"] == "credited")
        & (completion["hours_credited"] > 0)
        & completion["credited_year"].notna()
        & completion["id_number"].notna()
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
            f"{mask_id(orphans.iloc[0])}"
        )
    organizers = {code: spec.organizer for code, spec in platforms.items()}
    return pd.DataFrame(
        {
            "year": rows["year"],
            "employer": rows["bank_employer"],
            "姓名": rows["bank_name"],
            "身份证号": rows["id_number"],
            "工作单位": rows["bank_employer"],
            "年度": rows["year"],
            "科目类别": rows["subject"].map(SUBJECT_LABELS),
            "学习方式": rows["mode"].map(MODE_LABELS),
            "项目名称": rows["course_title"],
            "主办单位": rows["platform"].map(organizers),
            "完成日期": rows["completed_at"].dt.strftime("%Y-%m-%d"),
            "学时": rows["hours_credited"],
            "是否补学": rows["makeup"].map({True: "是", False: "否"}),
            "证书编号": rows["certificate_no"],
            "来源记录": rows["record_key"],
            "_completed_at": rows["completed_at"],
            "_as_of": rows["last_seen_at"].fillna(rows["completed_at"]),
        }
    ).sort_values(["year", "employer", "身份证号", "_completed_at", "来源记录"], kind="stable")


def learner_rows(hours: pd.DataFrame) -> pd.DataFrame:
    """One row per person in the hours rows, gender and birth date read from the ID number."""
    people = hours.drop_duplicates(["year", "employer", "身份证号"])
    ids = people["身份证号"]
    odd = ids.str[16].astype("int64") % 2 == 1
    return pd.DataFrame(
        {
            "year": people["year"],
            "employer": people["employer"],
            "姓名": people["姓名"],
            "证件类型": ID_TYPE,
            "证件号码": ids,
            "性别": odd.map({True: "男", False: "女"}),
            "出生日期": ids.str[6:10] + "-" + ids.str[10:12] + "-" + ids.str[12:14],
            "工作单位": people["工作单位"],
        }
    )


# --- writing ------------------------------------------------------------------------------


def write_provincial(
    completion: pd.DataFrame,
    hours_bank: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    platforms: Mapping[str, PlatformSpec] = PLATFORMS,
) -> Manifest:
    """Write `provincial/<year>/{hours,learners}/<employer>.xlsx` and `manifest.json` per year.

    Years are those of the hours bank and of the credited records; a year with no credited
    hours gets an empty manifest, and its stale workbooks are removed.
    """
    root = Path(out_dir) / "provincial"
    hours = hours_rows(completion, hours_bank, platforms)
    learners = learner_rows(hours)
    years = sorted({int(y) for y in hours_bank["year"]} | {int(y) for y in hours["year"]})
    files: list[ProvincialFile] = []
    manifests: dict[int, Path] = {}
    for year in years:
        year_hours = hours[hours["year"] == year]
        year_learners = learners[learners["year"] == year]
        content = _content_digest(year_hours, year_learners)
        year_files = _unchanged(root / str(year), year, content)
        if year_files is None:
            year_files = _write_year(
                root / str(year), year, year_hours, year_learners, _as_of(year_hours)
            )
            _write_manifest(root / str(year), year, year_files, content)
        manifests[year] = root / str(year) / "manifest.json"
        files.extend(year_files)
    return Manifest(Path(out_dir), tuple(files), manifests)


def _content_digest(hours: pd.DataFrame, learners: pd.DataFrame) -> str:
    """A fingerprint of a year's rows (and of this writer's format), to skip unchanged years."""
    digest = hashlib.sha256(FORMAT_VERSION.encode())
    for frame in (hours, learners):
        ordered = frame.sort_index(axis=1)
        digest.update(",".join(ordered.columns).encode())
        digest.update(pd.util.hash_pandas_object(ordered, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _unchanged(folder: Path, year: int, content: str) -> list[ProvincialFile] | None:
    """The year's files as the manifest lists them, when its content is the same and intact.

    A nightly sync touches one year's records; the other years' workbooks stay as they are.
    """
    try:
        document = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if document.get("content") != content:
        return None
    files = [
        ProvincialFile(year, e["kind"], e["employer"], folder / e["path"], e["rows"], e["sha256"])
        for e in document["files"]
    ]
    return files if all(f.path.is_file() for f in files) else None


def _as_of(hours: pd.DataFrame) -> datetime:
    """The newest sighting among the rows, as the workbooks' (naive UTC) creation time."""
    latest = hours["_as_of"].max()
    if pd.isna(latest):
        return datetime(2017, 1, 1)
    return latest.tz_convert("UTC").tz_localize(None).to_pydatetime()


def _write_year(
    folder: Path, year: int, hours: pd.DataFrame, learners: pd.DataFrame, as_of: datetime
) -> list[ProvincialFile]:
    stems = file_stems(hours["employer"].fillna(UNKNOWN_EMPLOYER))
    written: list[ProvincialFile] = []
    for kind, frame, header in (
        (HOURS, hours, HOURS_HEADER),
        (LEARNERS, learners, LEARNERS_HEADER),
    ):
        target = folder / kind
        target.mkdir(parents=True, exist_ok=True)
        files = frame["employer"].fillna(UNKNOWN_EMPLOYER)
        ordered = frame.assign(_file=files).sort_values("_file", kind="stable")
        cells = {h: _cells(ordered[h]) for h in header if h != "序号"}
        bounds = ordered.groupby("_file", sort=True).size().cumsum()
        start = 0
        for employer, stop in bounds.items():
            path = target / f"{stems[str(employer)]}.xlsx"
            columns = [
                range(1, stop - start + 1) if h == "序号" else cells[h][start:stop] for h in header
            ]
            digest = _write_workbook(path, header, columns, as_of)
            written.append(ProvincialFile(year, kind, str(employer), path, stop - start, digest))
            start = stop
        keep = {f.path.name for f in written if f.kind == kind}
        for stale in target.iterdir():
            if stale.name not in keep and stale.is_file():
                stale.unlink()
    return written


def _write_workbook(
    path: Path, header: Sequence[str], columns: Sequence[Sequence[Any]], as_of: datetime
) -> str:
    """Write one sheet atomically (temp name, fsync, `os.replace`); returns its SHA-256.

    Small sheets are built in memory; xlsxwriter's temporary files cost more than the rows
    there. Sheets above `IN_MEMORY_ROWS` stream row by row (`constant_memory`).
    """
    temporary = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp")
    numeric = [h in NUMERIC_COLUMNS for h in header]
    options = {**WORKBOOK_OPTIONS, "in_memory": len(columns[0]) <= IN_MEMORY_ROWS}
    try:
        workbook = xlsxwriter.Workbook(str(temporary), options)
        workbook.set_properties({"created": as_of})
        text = workbook.add_format({"num_format": "@", "quote_prefix": True})
        sheet = workbook.add_worksheet("Sheet1")
        for c, title in enumerate(header):
            sheet.write_string(0, c, title)
        for r, values in enumerate(zip(*columns, strict=True), start=1):
            for c, value in enumerate(values):
                if value is None:
                    continue
                if numeric[c]:
                    sheet.write_number(r, c, value)
                else:
                    sheet.write_string(r, c, value, text)
        workbook.close()
        with temporary.open("rb") as stream:
            digest = hashlib.file_digest(stream, "sha256").hexdigest()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return digest


def _cells(column: pd.Series) -> list[Any]:
    """A column as cell values: Python scalars, None for an empty cell."""
    return column.astype(object).where(column.notna(), None).tolist()


def _write_manifest(folder: Path, year: int, files: Sequence[ProvincialFile], content: str) -> Path:
    entries = [
        {
            "path": f.path.relative_to(folder).as_posix(),
            "kind": f.kind,
            "employer": f.employer,
            "rows": f.rows,
            "sha256": f.sha256,
        }
        for f in sorted(files, key=lambda f: (f.kind, f.path.name))
    ]
    document = {
        "year": year,
        "rows": {kind: sum(f.rows for f in files if f.kind == kind) for kind in (HOURS, LEARNERS)},
        "files": entries,
        "content": content,
    }
    path = folder / "manifest.json"
    folder.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".manifest.{uuid.uuid4().hex[:8]}.tmp")
    try:
        temporary.write_text(
            json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path
