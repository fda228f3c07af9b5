"""Form rows for the tests: one filed, reviewed training day by default; override cells by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from connectors.forms import REGISTER_HEADER, FormFile, form_records, read_register
from sandbox.generator.forms import workbook
from tests.rules.factory import AS_OF, PERSON, raw, record

UNIT = "泰安市第一中学"
FILED = {
    "备案编号": "BA-2022-001",
    "项目名称": "急救技能培训",
    "主办单位": "泰安市人社局",
    "开始日期": "2022-05-01",
    "结束日期": "2022-05-10",
    "批准学时": 40,
    "科目类别": "专业科目",
}


def cells(**overrides: Any) -> dict[str, Any]:
    """One row of 登记表 as a unit types it: a filed, reviewed 6-hour training on 2022-05-03."""
    row: dict[str, Any] = {
        "姓名": "张三",
        "身份证号": PERSON,
        "工作单位": UNIT,
        "年度": 2022,
        "类别": "培训进修",
        "科目类别": "专业科目",
        "项目名称": "急救技能培训",
        "主办单位或成果说明": "泰安市人社局",
        "开始日期": "2022-05-03",
        "结束日期": "2022-05-03",
        "学时": 6,
        "件数": "",
        "备案编号": "BA-2022-001",
        "学习档案编号": "",
        "证明材料": "结业证书.pdf",
        "单位审核人": "李四",
        "单位审核日期": "2022-06-01",
    }
    row.update(overrides)
    return row


def register(*entries: dict[str, Any]) -> pd.DataFrame:
    """The filing register of the given entries (default: FILED), as `read_register` reads it."""
    return read_register(workbook(list(entries or [FILED]), "备案", REGISTER_HEADER))


def form_raw(
    *rows: dict[str, Any],
    unit: str = UNIT,
    year: int = 2022,
    filings: pd.DataFrame | None = None,
    city: str = "taian",
) -> pd.DataFrame:
    """The raw records a unit's file of `rows` becomes (numbered 1, 2, … unless given)."""
    numbered = [{"序号": i, **row} for i, row in enumerate(rows, start=1)]
    from connectors.forms import read_form

    texts = read_form(workbook(numbered))
    form = FormFile(unit, year, Path(f"{unit}.xlsx"), "ab" * 32)
    return form_records(
        texts,
        form,
        register=register() if filings is None else filings,
        city=city,
        pulled_at=AS_OF - pd.Timedelta(days=1),
    )


def ledger(*frames: pd.DataFrame, **kwargs: Any) -> pd.DataFrame:
    """The ledger of platform and form records together, indexed by `序号` for form rows."""
    from pipelines.rules import apply_rules

    result = apply_rules(pd.concat(frames, ignore_index=True), as_of=AS_OF, **kwargs)
    return result.completion.set_index("record_key")


def key(number: int, unit: str = UNIT, year: int = 2022) -> str:
    return f"forms:{unit}:{year}:{number}:{'ab' * 8}"


def platform(**overrides: Any) -> pd.DataFrame:
    return raw(record(**overrides))
