"""The eleventh source: unit registration forms, one XLSX per unit and year (FORMS.md).

A file source, not HTTP: `XUESHI_FORMS_DIR/<year>/<unit>.xlsx` as units upload them, plus the
HR bureau's filing register `<year>/备案登记.xlsx`. Each file's version is its SHA-256, part of
every row's source key (`<unit>:<year>:<序号>:<version>`), so a replaced file brings new keys
and the rows of its earlier version are withdrawn, as are those of a removed file.

A row becomes a raw record: the common columns hold what they mean for any record (ID, name,
employer, 项目名称, 科目类别, 学时, 结束日期 as the completion, the unit's review as `passed`),
and `course_code` (forms have no course codes) holds the form's own facts as JSON (`FACTS`):
kind, dates, items, filing and learning-file numbers, evidence, the register's entry for the
filing number and the unit's city. The ledger reads records without their payload, so the
facts must ride in a column it reads; the rules (`pipelines.rules.forms`) decide from them.

Nothing here applies a rule: a file that is not a workbook, lacks the sheet or the header, or
numbers its rows ambiguously is refused whole (`FormRefused`), and the caller goes on.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from python_calamine import CalamineError, CalamineWorkbook

from connectors import frames
from schemas.platforms import FORMS
from schemas.raw import TIMESTAMP, TZ

SHEET = "登记表"
HEADER: tuple[str, ...] = (
    "序号",
    "姓名",
    "身份证号",
    "工作单位",
    "年度",
    "类别",
    "科目类别",
    "项目名称",
    "主办单位或成果说明",
    "开始日期",
    "结束日期",
    "学时",
    "件数",
    "备案编号",
    "学习档案编号",
    "证明材料",
    "单位审核人",
    "单位审核日期",
)
REGISTER_FILE = "备案登记.xlsx"
REGISTER_SHEET = "备案"
REGISTER_HEADER: tuple[str, ...] = (
    "备案编号",
    "项目名称",
    "主办单位",
    "开始日期",
    "结束日期",
    "批准学时",
    "科目类别",
)
REGISTER_COLUMNS: dict[str, str] = {
    "filing": "str",
    "title": "str",
    "organizer": "str",
    "start": "str",
    "end": "str",
    "approved_hours": "float64",
    "subject_label": "str",
}
FACTS: tuple[str, ...] = (
    "unit",
    "row",
    "kind",
    "start",
    "end",
    "items",
    "filing",
    "filed",
    "filed_hours",
    "filed_start",
    "filed_end",
    "file_no",
    "evidence",
    "city",
)
"""The keys of the JSON a form record carries in `course_code`, in this order."""
VERSION_CHARS = 16
"""Hex digits of the file's SHA-256 kept in a row's source key."""
UNKNOWN_CITY = "unknown"


class FormRefused(ValueError):
    """A file refused whole; the message is the reason, in words a unit can act on."""


@dataclass(frozen=True)
class FormFile:
    """One unit's upload for one year, and its version (SHA-256 of the bytes)."""

    unit: str
    year: int
    path: Path
    sha256: str

    @property
    def version(self) -> str:
        return self.sha256[:VERSION_CHARS]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def form_files(folder: Path, year: int) -> list[FormFile]:
    """The units' files of a year (`<folder>/<year>/*.xlsx` but the register), by unit."""
    found = sorted((folder / str(year)).glob("*.xlsx"))
    return [
        FormFile(path.stem, year, path, sha256_of(path))
        for path in found
        if path.name != REGISTER_FILE and not path.name.startswith(("~$", "."))
    ]


def register_path(folder: Path, year: int) -> Path:
    return folder / str(year) / REGISTER_FILE


def sheet_texts(data: bytes, sheet: str, header: tuple[str, ...]) -> pd.DataFrame:
    """The sheet's rows below its header as text cells (`frames.cell_text`), blank rows dropped.

    Columns are found by header name, in any order; extra columns and other sheets are ignored.
    A formula cell reads as the value the unit's spreadsheet last computed (what the unit saw);
    cells merged across rows hold their value in the first row only, the others stay empty.
    """
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
    except (CalamineError, ValueError, OSError) as exc:
        raise FormRefused(f"not a readable workbook ({type(exc).__name__})") from exc
    if sheet not in workbook.sheet_names:
        raise FormRefused(f"no sheet {sheet!r} (sheets: {', '.join(workbook.sheet_names)})")
    try:
        rows = workbook.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
    except (CalamineError, ValueError) as exc:
        raise FormRefused(f"sheet {sheet!r} cannot be read ({type(exc).__name__})") from exc
    if not rows:
        raise FormRefused(f"sheet {sheet!r} has no header")
    names = [frames.cell_text(cell).strip() for cell in rows[0]]
    missing = [h for h in header if h not in names]
    if missing:
        raise FormRefused(f"header lacks {', '.join(missing)}")
    positions = [names.index(h) for h in header]
    columns = list(zip(*rows[1:], strict=True)) if len(rows) > 1 else [()] * len(names)
    texts = pd.DataFrame(
        {
            h: frames.cell_texts(columns[p], is_id=h == "身份证号").str.strip()
            for h, p in zip(header, positions, strict=True)
        },
        dtype="str",
    )
    blank = texts.eq("").all(axis=1)  # rows with nothing in the header's columns
    return texts.loc[~blank].reset_index(drop=True)


def read_form(data: bytes) -> pd.DataFrame:
    """A unit's registration rows, as text in `HEADER` order; refused when 序号 are unusable."""
    rows = sheet_texts(data, SHEET, HEADER)
    numbers = rows["序号"]
    missing = numbers.eq("")
    repeated = numbers.duplicated(keep=False) & ~missing
    if missing.any() or repeated.any():
        where = rows.index[missing | repeated][:5] + 2
        raise FormRefused(
            f"序号 missing or repeated (sheet rows {', '.join(str(r) for r in where)}): "
            "every row needs its own 序号"
        )
    return rows


def read_register(data: bytes) -> pd.DataFrame:
    """The filing register (`REGISTER_COLUMNS`), one row per normalized 备案编号 (the last)."""
    rows = sheet_texts(data, REGISTER_SHEET, REGISTER_HEADER)
    register = pd.DataFrame(
        {
            "filing": filing_numbers(rows["备案编号"]),
            "title": rows["项目名称"],
            "organizer": rows["主办单位"],
            "start": iso_dates(rows["开始日期"]),
            "end": iso_dates(rows["结束日期"]),
            "approved_hours": frames.numbers(rows["批准学时"]),
            "subject_label": rows["科目类别"],
        }
    ).astype(REGISTER_COLUMNS)
    register = register.loc[register["filing"].notna()]
    return register.drop_duplicates("filing", keep="last").reset_index(drop=True)


def empty_register() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in REGISTER_COLUMNS.items()})


def filing_numbers(values: pd.Series) -> pd.Series:
    """备案编号 as matched against the register: NFKC, no spaces, upper case; empty is null."""
    text = values.astype("str").str.normalize("NFKC").str.replace(r"\s+", "", regex=True)
    text = text.str.upper()
    return text.mask(text.fillna("").eq(""))


def iso_dates(values: pd.Series) -> pd.Series:
    """`yyyy-MM-dd` text (a date cell reads as ISO 8601 too); anything else is null."""
    day = pd.to_datetime(values.astype("str").str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
    return day.dt.strftime("%Y-%m-%d").astype("str")


def form_records(
    rows: pd.DataFrame,
    form: FormFile,
    *,
    register: pd.DataFrame,
    city: str = UNKNOWN_CITY,
    pulled_at: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """A unit's rows as raw records of `forms` for the file's year, facts in `course_code`."""
    pulled_at = pulled_at or pd.Timestamp.now(tz=TZ)
    filing = filing_numbers(rows["备案编号"])
    filed = register.set_index("filing").reindex(filing.to_numpy())
    end = iso_dates(rows["结束日期"])
    facts = pd.DataFrame(
        {
            "unit": form.unit,
            "row": rows["序号"],
            "kind": rows["类别"],
            "start": iso_dates(rows["开始日期"]),
            "end": end,
            "items": frames.numbers(rows["件数"]),
            "filing": filing,
            "filed": filing.isin(register["filing"]).to_numpy() & filing.notna().to_numpy(),
            "filed_hours": filed["approved_hours"].to_numpy(),
            "filed_start": filed["start"].to_numpy(),
            "filed_end": filed["end"].to_numpy(),
            "file_no": _present(rows["学习档案编号"]),
            "evidence": _present(rows["证明材料"]),
            "city": city,
        },
        index=rows.index,
    )[list(FACTS)]
    source_key = f"{form.unit}:{form.year}:" + rows["序号"] + f":{form.version}"
    completed = pd.to_datetime(end, format="%Y-%m-%d", errors="coerce").dt.tz_localize(TZ)
    reviewed = _present(rows["单位审核人"]).notna() & _present(rows["单位审核日期"]).notna()
    records = frames.raw_frame(
        {
            "source_key": source_key,
            "raw_id": rows["身份证号"].mask(rows["身份证号"].eq("")),
            "name": frames.text(rows["姓名"]),
            "employer": frames.text(rows["工作单位"]).fillna(form.unit),
            "course_code": json_lines(facts),
            "course_title": frames.text(rows["项目名称"]),
            "category_label": frames.text(rows["科目类别"]),
            "hours": frames.numbers(rows["学时"]),
            "completed_at": completed.astype(TIMESTAMP),
            "passed": reviewed.astype("boolean"),
            "payload": json_lines(rows),
        },
        platform=FORMS,
        pulled_at=pulled_at,
        pull_year=form.year,
    )
    return records


def _present(values: pd.Series) -> pd.Series:
    text = values.astype("str").str.strip()
    return text.mask(text.fillna("").eq(""))


def json_lines(frame: pd.DataFrame) -> pd.Series:
    """Each row as one JSON object (pandas' C writer: six times `to_dict` plus orjson)."""
    if frame.empty:
        return pd.Series([], dtype="str")
    lines = frame.to_json(orient="records", lines=True, force_ascii=False).splitlines()
    return pd.Series(lines, index=frame.index, dtype="str")


def key_parts(source_keys: pd.Series) -> pd.DataFrame:
    """`unit` and `version` of form source keys (`<unit>:<year>:<序号>:<version>`)."""
    return source_keys.str.extract(r"^(?P<unit>.*):[^:]*:[^:]*:(?P<version>[^:]*)$")


def withdrawals(
    known_keys: frozenset[str], live_versions: Mapping[str, str], year: int, pulled_at: pd.Timestamp
) -> pd.DataFrame:
    """Bare withdrawals of the stored rows whose unit's file is gone or now another version.

    `live_versions` maps each unit of the year to the version whose rows stay (a refused
    replacement keeps its unit's earlier version: docs/decisions.md).
    """
    keys = pd.Series(sorted(known_keys), dtype="str")
    parts = key_parts(keys)
    live = parts["unit"].map(dict(live_versions))
    gone = keys[~live.eq(parts["version"]).fillna(False).astype(bool)].reset_index(drop=True)
    return frames.raw_frame(
        {"source_key": gone, "withdrawn": pd.Series(True, index=gone.index)},
        platform=FORMS,
        pulled_at=pulled_at,
        pull_year=year,
    )
