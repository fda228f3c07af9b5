"""Unit registration forms for the sandbox (FORMS.md): files, a filing register, ground truth.

`forms_world(dataset)` writes nothing yet: it holds one year's workbooks as bytes (so each
file's SHA-256, part of its rows' keys, is known) and the outcome of every row, stated by hand
as the scenarios of `scenarios.py` are, never by applying the rules. Scenario people are new
people (their own ID numbers, employed by units that have platform records, so each unit's
city is known), except one platform learner whose filed training day and online course of the
same day together pass 8 hours: that course's outcome changes too (R7), and `truth` says how.

Scenarios: a credited training day; training over three days past 8 a day (F3); a filing's
approved hours (F2); an unfiled training and one outside its filed dates (F2); a pending row
(F1); self-study over 40 (F4) and without a learning file; five papers (F5); a patent; a row
without evidence (F6); a public training; a file replaced by a corrected one (its first
version's rows withdrawn); a file that is not a workbook (refused, no rows).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xlsxwriter

from connectors.forms import HEADER, REGISTER_FILE, REGISTER_HEADER, REGISTER_SHEET, SHEET
from sandbox.generator import Dataset, Truth
from sandbox.generator import truth as _truth
from sandbox.generator.people import with_check
from schemas.platforms import FORMS
from schemas.raw import TZ

YEAR = 2022
FILING = "BA-2022-001"
FILED_START, FILED_END = "2022-03-01", "2022-11-30"
SMALL_FILING = "BA-2022-002"  # approved 10 hours
CREATED = dt.datetime(2022, 12, 31)
VERSION_CHARS = 16
CONVERSION = "conversion"


def workbook(
    rows: Sequence[dict[str, Any]],
    sheet: str = SHEET,
    header: Sequence[str] = HEADER,
) -> bytes:
    """An XLSX of `rows` under `header` (text as text cells, numbers as number cells, empty
    strings as empty cells); the same rows give the same bytes."""
    buffer = io.BytesIO()
    with xlsxwriter.Workbook(buffer, {"in_memory": True}) as book:
        book.set_properties({"created": CREATED})
        page = book.add_worksheet(sheet)
        page.write_row(0, 0, list(header))
        for r, row in enumerate(rows, start=1):
            for c, name in enumerate(header):
                value = row.get(name, "")
                if isinstance(value, str):
                    if value:
                        page.write_string(r, c, value)
                else:
                    page.write(r, c, value)
    return buffer.getvalue()


@dataclass(frozen=True)
class Row:
    """One form row and its outcome, were its file the unit's live version."""

    person: int  # index into the world's people
    cells: dict[str, Any]
    state: str
    reason: str | None = None
    credited: float = 0.0
    trimmed: float = 0.0


@dataclass(frozen=True)
class FormsWorld:
    """One year's unit files (bytes), the register, every row's outcome and the platform
    records whose outcome the forms change."""

    year: int
    people: pd.DataFrame  # id_number, name, employer, city, employer_type
    files: dict[str, bytes]  # unit → the live version
    rows: dict[str, list[Row]]  # unit → the live version's rows
    earlier: dict[str, bytes] = field(default_factory=dict)  # unit → a version replaced later
    broken: dict[str, bytes] = field(default_factory=dict)  # unit → a file that is not a workbook
    register: bytes = b""
    platform_changes: pd.DataFrame = field(default_factory=pd.DataFrame)

    def write(self, folder: Path, *, earlier: bool = False) -> None:
        """Write the year's files into `folder/<year>/`: the replaced versions when `earlier`."""
        target = folder / str(self.year)
        target.mkdir(parents=True, exist_ok=True)
        (target / REGISTER_FILE).write_bytes(self.register)
        for unit, data in {
            **self.files,
            **(self.earlier if earlier else {}),
            **self.broken,
        }.items():
            (target / f"{unit}.xlsx").write_bytes(data)

    def ledger(self) -> pd.DataFrame:
        """The ledger rows of the live versions' form rows (truth.COMPLETION_COLUMNS)."""
        frames = []
        for unit, rows in self.rows.items():
            version = hashlib.sha256(self.files[unit]).hexdigest()[:VERSION_CHARS]
            frames.append(_ledger_rows(unit, version, rows, self.people, self.year))
        return pd.concat(frames, ignore_index=True)


def _ledger_rows(
    unit: str, version: str, rows: list[Row], people: pd.DataFrame, year: int
) -> pd.DataFrame:
    who = people.iloc[[r.person for r in rows]].reset_index(drop=True)
    cells = pd.DataFrame([r.cells for r in rows])
    kinds = cells["类别"]
    conversion = kinds.isin(["成果折算", "论文著作折算"])
    training = kinds.eq("培训进修")
    public = training & cells["科目类别"].eq("公需科目")
    items = pd.to_numeric(cells["件数"], errors="coerce")
    hours = np.where(conversion, items * 10, pd.to_numeric(cells["学时"], errors="coerce"))
    end = pd.to_datetime(cells["结束日期"]).dt.tz_localize(TZ)
    state = pd.Series([r.state for r in rows], dtype="str")
    return pd.DataFrame(
        {
            "record_key": f"{FORMS}:{unit}:{year}:" + cells["序号"].astype("str") + f":{version}",
            "platform": FORMS,
            "city": who["city"],
            "id_number": who["id_number"],
            "name": who["name"],
            "employer": who["employer"],
            "course_title": cells["项目名称"],
            "course_key": cells["项目名称"],
            "subject": np.where(public, "public", "professional"),
            "mode": np.select([training, kinds.eq("自学")], ["training", "self_study"], CONVERSION),
            "completed_at": end,
            "credited_year": pd.array([year] * len(rows), dtype="Int64"),
            "makeup": False,
            "hours_reported": hours.astype("float64"),
            "hours_credited": [r.credited for r in rows],
            "hours_trimmed": [r.trimmed for r in rows],
            "certificate_no": pd.Series(np.nan, index=cells.index, dtype="str"),
            "state": state,
            "reason": pd.Series([r.reason for r in rows], dtype="str"),
            "merged_into": pd.Series(np.nan, index=cells.index, dtype="str"),
            "pull_year": year,
        }
    )


def _cells(number: int, person: pd.Series, **values: Any) -> dict[str, Any]:
    """A filed, reviewed, evidenced 6-hour training day on 2022-05-10 unless told otherwise."""
    row = {
        "序号": str(number),
        "姓名": person["name"],
        "身份证号": person["id_number"],
        "工作单位": person["employer"],
        "年度": str(YEAR),
        "类别": "培训进修",
        "科目类别": "专业科目",
        "项目名称": f"单位登记项目{number}",
        "主办单位或成果说明": "市人社局",
        "开始日期": "2022-05-10",
        "结束日期": "2022-05-10",
        "学时": "6",
        "件数": "",
        "备案编号": FILING,
        "学习档案编号": "",
        "证明材料": "证书.pdf",
        "单位审核人": "王审核",
        "单位审核日期": "2022-12-01",
    }
    row.update({k: str(v) for k, v in values.items()})
    return row


def _scenario_rows(first: int, person: Any) -> list[Row]:
    """The unit's rows for its people (each scenario its own person: caps stay apart)."""
    p = iter(range(first, first + 100))
    n = iter(range(1, 100))

    def row(state: str, reason: str | None, credited: float, trimmed: float, **cells: Any) -> Row:
        who = cells.pop("who", None)
        index = next(p) if who is None else who
        return Row(index, _cells(next(n), person(index), **cells), state, reason, credited, trimmed)

    rows = [
        row("credited", None, 6.0, 0.0),
        row("credited", "R7", 24.0, 6.0, 开始日期="2022-06-01", 结束日期="2022-06-03", 学时=30),
        row(
            "credited",
            "F2",
            10.0,
            4.0,
            开始日期="2022-06-01",
            结束日期="2022-06-02",
            学时=14,
            备案编号=SMALL_FILING,
        ),
        row("not_credited", "unfiled_training", 0.0, 0.0, 备案编号=""),
        row(
            "not_credited", "outside_filing", 0.0, 0.0, 开始日期="2022-02-27", 结束日期="2022-02-28"
        ),
        row("not_credited", "pending_review", 0.0, 0.0, 单位审核人=""),
        row("not_credited", "no_learning_file", 0.0, 0.0, 类别="自学", 学时=10, 备案编号=""),
        row("not_credited", "no_evidence", 0.0, 0.0, 证明材料=""),
        row("credited", None, 20.0, 0.0, 类别="成果折算", 件数=2, 学时="", 备案编号=""),
        row("credited", None, 6.0, 0.0, 科目类别="公需科目"),
    ]
    study = next(p)
    for hours, credited, reason, day in (
        (30, 30.0, None, "2022-04-01"),
        (20, 10.0, "R8", "2022-09-01"),
    ):
        rows.append(
            row(
                "credited",
                reason,
                credited,
                hours - credited,
                who=study,
                类别="自学",
                学时=hours,
                学习档案编号="DA-1",
                备案编号="",
                结束日期=day,
                开始日期=day,
            )
        )
    author = next(p)
    for month, credited in ((3, 10.0), (5, 10.0), (7, 10.0), (9, 0.0), (11, 0.0)):
        day = f"2022-{month:02d}-15"
        rows.append(
            row(
                "credited",
                "R9" if credited == 0 else None,
                credited,
                10.0 - credited,
                who=author,
                类别="论文著作折算",
                件数=1,
                学时="",
                备案编号="",
                开始日期=day,
                结束日期=day,
            )
        )
    return rows


def _new_people(dataset: Dataset, employers: pd.DataFrame, count: int) -> pd.DataFrame:
    """People of their own with unused IDs, the first share employed by the first unit, …"""
    taken = set(dataset.people["id_number"])
    bodies = pd.Series([f"37090219800101{900 + i:03d}" for i in range(count * 2)], dtype="str")
    ids = [i for i in with_check(bodies) if i not in taken][:count]
    units = employers.iloc[np.arange(count) * len(employers) // count].reset_index(drop=True)
    return pd.DataFrame(
        {
            "id_number": ids,
            "name": [
                f"登记{chr(0x4E00 + 0x100 + i)}{chr(0x4E00 + 0x200 + i)}" for i in range(count)
            ],
            "employer": units["employer"],
            "city": units["city"],
            "employer_type": units["employer_type"],
        }
    )


def _interplay(dataset: Dataset, epoch: int) -> tuple[pd.Series, pd.Series]:
    """A credited, untrimmed online course of more than 2 hours in YEAR that is its person's
    only credited record that day: a 6-hour filed training that day leaves it 2."""
    ledger = _truth.ledger(dataset.records, dataset.outcomes, epoch, None)
    day = ledger["completed_at"].dt.tz_convert(TZ).dt.strftime("%Y-%m-%d")
    credited = ledger["state"].eq("credited")
    per_day = credited.groupby([ledger["id_number"], day]).transform("sum")
    fits = (
        credited
        & ledger["reason"].isna()
        & ledger["credited_year"].eq(YEAR)
        & ~ledger["makeup"]
        & (ledger["hours_credited"] > 2)
        & per_day.eq(1)
        & ledger["id_number"].isin(dataset.people["id_number"])
    )
    chosen = ledger.loc[fits].iloc[0]
    person = dataset.people.set_index("id_number").loc[chosen["id_number"]]
    return chosen, pd.Series({"id_number": chosen["id_number"], **person.to_dict()})


def forms_world(dataset: Dataset, epoch: int = 0) -> FormsWorld:
    """The forms of YEAR: two units with every scenario, a replaced file, a broken one."""
    online, learner = _interplay(dataset, epoch)
    other = dataset.people.loc[dataset.people["city"].ne(learner["city"])]
    other = other.sort_values("employer").head(1)  # a unit of the other city
    units = pd.concat([learner.to_frame().T, other], ignore_index=True)
    units = units[["employer", "city", "employer_type"]].reset_index(drop=True)
    people = _new_people(dataset, units, 40)
    people = pd.concat(
        [learner.to_frame().T[list(people.columns)], people], ignore_index=True
    ).astype({c: "str" for c in people.columns})

    def person(index: int) -> pd.Series:
        return people.iloc[index]

    first, second = units["employer"].iloc[0], units["employer"].iloc[1]
    day = online["completed_at"].tz_convert(TZ).strftime("%Y-%m-%d")
    together = Row(
        0,
        _cells(1, person(0), 开始日期=day, 结束日期=day, 项目名称="现场急救培训"),
        "credited",
        None,
        6.0,
        0.0,
    )
    a_rows = [together] + [
        Row(r.person, {**r.cells, "序号": str(i)}, r.state, r.reason, r.credited, r.trimmed)
        for i, r in enumerate(_scenario_rows(1, person), start=2)
    ]
    # the second unit's file was replaced: a corrected version with the evidence added
    corrected = [Row(21, _cells(1, person(21), 项目名称="安全生产培训"), "credited", None, 6.0)]
    first_try = [_cells(1, person(21), 项目名称="安全生产培训", 证明材料="")]
    register = workbook(
        [filing_entry(FILING, "专业培训", 80), filing_entry(SMALL_FILING, "短期培训", 10)],
        REGISTER_SHEET,
        REGISTER_HEADER,
    )
    changes = pd.DataFrame(
        {
            "record_key": [online["record_key"]],
            "hours_credited": [2.0],
            "hours_trimmed": [online["hours_credited"] - 2.0],
            "reason": ["R7"],
        }
    )
    return FormsWorld(
        year=YEAR,
        people=people,
        files={
            first: workbook([r.cells for r in a_rows]),
            second: workbook([r.cells for r in corrected]),
        },
        rows={first: a_rows, second: corrected},
        earlier={second: workbook(first_try)},
        broken={"损坏的上传": b"PK\x03\x04 this is not a workbook"},
        register=register,
        platform_changes=changes,
    )


def filing_entry(number: str, title: str, hours: int) -> dict[str, str]:
    """One row of the filing register (备案登记.xlsx), filed for the whole training season."""
    return {
        "备案编号": number,
        "项目名称": title,
        "主办单位": "市人社局",
        "开始日期": FILED_START,
        "结束日期": FILED_END,
        "批准学时": str(hours),
        "科目类别": "专业科目",
    }


def truth_with_forms(dataset: Dataset, world: FormsWorld, epoch: int = 0) -> Truth:
    """The dataset's truth at `epoch` (all years) with the world's form rows and their effects."""
    platform = _truth.ledger(dataset.records, dataset.outcomes, epoch, None)
    changes = world.platform_changes.set_index("record_key")
    at = platform["record_key"].isin(changes.index)
    for column in ("hours_credited", "hours_trimmed", "reason"):
        platform.loc[at, column] = platform.loc[at, "record_key"].map(changes[column]).to_numpy()
    forms = world.ledger()
    ledger = pd.concat([platform, forms.astype(platform.dtypes[forms.columns].to_dict())])
    ledger = ledger.sort_values("record_key", kind="stable").reset_index(drop=True)
    people = pd.concat([dataset.people, world.people], ignore_index=True).drop_duplicates(
        "id_number"
    )
    return Truth(
        completion=ledger[list(_truth.COMPLETION_COLUMNS)],
        hours_bank=_truth.hours_bank(ledger, people),
        reconciliation=_truth.reconciliation(ledger),
        name_conflicts=_truth.name_conflicts(ledger),
    )
