"""The provincial import template (PROVINCIAL.md): the two sheets' headers, the labels and fixed
values of their cells, and how ledger and hours-bank rows become their rows. The real template
is not public; a change of it is a change of this module only.

A row's employer is the person-year's employer from the hours bank (docs/decisions.md), so a
person's hours and learner rows land in files of the same name.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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
NUMERIC_COLUMNS = frozenset({"序号", "年度", "学时"})
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
_STRING = pa.large_string()


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
