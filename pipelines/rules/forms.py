"""F1–F6 and the F-order (FORMS.md): unit registration forms beside the platform records.

A form row reaches the rules as a raw record of platform `forms` whose `course_code` holds the
form's facts as JSON (`connectors.forms.FACTS`). The stages here are pure and vectorized:

- `classify_forms` (after R4/R5): the subject (only 培训进修 may be public; the other kinds and
  an empty cell are professional: yantai 二(二)4), the mode (`training`, `self_study`,
  `conversion`), the unit's city, and R9's hours (件数 × 10) for the conversion kinds;
- `form_quarantine`: a training span that ends before it starts is `out_of_range_date`;
- `form_reason` (F1, F2, F4, F6 in the F-order): the first reason a row is not credited;
- `filing_cap` (F2) and `day_parts` (F3), which `credit` uses with R7 and the yearly caps of
  R8/F4 and R9/F5, so R7 and D2/D3 run across platform records and form rows together.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.json as pajson

from pipelines.rules.classify import TRAINING, classify_subject
from pipelines.rules.config import RulesConfig
from schemas.ledger import CAP_REASONS, FORM_REASONS, MODES
from schemas.platforms import FORMS
from schemas.raw import TIMESTAMP, TZ

SELF_STUDY, CONVERSION = MODES[1:]  # 自学类 (R8, F4), 折算类 (R9, F5)
KINDS: dict[str, str] = {
    "培训进修": TRAINING,
    "自学": SELF_STUDY,
    "成果折算": CONVERSION,
    "论文著作折算": CONVERSION,
}
PROFESSIONAL_LABEL = "专业科目"
UNKNOWN_CITY = "unknown"

F_ORDER = FORM_REASONS  # F1, F2 (unfiled, outside the filing), F4, F6
# the caps: the register's 批准学时 (F2), a person's self-study (R8/F4) and conversions (R9/F5)
FILING_CAP, SELF_STUDY_CAP, CONVERSION_CAP = CAP_REASONS[1:]

FACT_SCHEMA = pa.schema(
    [
        ("unit", pa.string()),
        ("row", pa.string()),
        ("kind", pa.string()),
        ("start", pa.string()),
        ("end", pa.string()),
        ("items", pa.float64()),
        ("filing", pa.string()),
        ("filed", pa.bool_()),
        ("filed_hours", pa.float64()),
        ("filed_start", pa.string()),
        ("filed_end", pa.string()),
        ("file_no", pa.string()),
        ("evidence", pa.string()),
        ("city", pa.string()),
    ]
)
"""What `connectors.forms.form_records` writes into a form record's `course_code`."""
DAY_US = 86_400_000_000
SHANGHAI_OFFSET_US = 8 * 3_600_000_000  # Asia/Shanghai has kept UTC+8 since 1991
FORM_COLUMNS: tuple[str, ...] = ("form_start", "hours_cap", "form_reason")
"""Columns `classify_forms` and `form_reason` add for `credit`; the ledger drops them."""


def is_form(frame: pd.DataFrame) -> np.ndarray:
    return frame["platform"].eq(FORMS).to_numpy(dtype=bool, na_value=False)


def form_facts(codes: pd.Series) -> pd.DataFrame:
    """The facts of form records (their `course_code` JSON) as typed columns, same index."""
    if codes.empty:
        return pa.Table.from_pylist([], FACT_SCHEMA).to_pandas().set_axis(codes.index)
    lines = "\n".join(codes.fillna("{}").tolist()).encode()
    options = pajson.ParseOptions(explicit_schema=FACT_SCHEMA, unexpected_field_behavior="ignore")
    table = pajson.read_json(io.BytesIO(lines), parse_options=options)
    frame = table.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get)
    return frame.astype({f.name: "str" for f in FACT_SCHEMA if f.type == pa.string()}).set_axis(
        codes.index
    )


def _day(text: pd.Series) -> pd.Series:
    return pd.to_datetime(text, format="%Y-%m-%d", errors="coerce").dt.tz_localize(TZ)


def classify_forms(frame: pd.DataFrame, config: RulesConfig | None = None) -> pd.DataFrame:
    """Subject, mode, city and hours of form rows; adds `form_start` and `hours_cap` (F2/F3).

    Only 培训进修 keeps its 科目类别; other kinds count as professional whatever the cell
    says, as does an empty cell. An unknown 类别 maps to no subject (`unknown_category`).
    """
    config = config or RulesConfig()
    frame = frame.assign(
        form_start=pd.Series(pd.NaT, index=frame.index, dtype=TIMESTAMP),
        hours_cap=np.nan,
    )
    rows = is_form(frame)
    if not rows.any():
        return frame
    forms = frame.loc[rows]
    facts = form_facts(forms["course_code"])
    kind = facts["kind"].str.strip()
    mode = kind.map(KINDS).astype("str")
    training = mode.eq(TRAINING).to_numpy(dtype=bool, na_value=False)
    label = forms["category_label"].where(training & forms["category_label"].notna(), None)
    label = label.fillna(PROFESSIONAL_LABEL).where(mode.notna(), None).astype("str")
    subject = classify_subject(forms["platform"], label, config)
    items = facts["items"].to_numpy(dtype=np.float64, na_value=np.nan)
    conversion = mode.eq(CONVERSION).to_numpy(dtype=bool, na_value=False)
    hours = forms["hours"].mask(conversion, items * config.conversion_hours)
    start = _day(facts["start"]).fillna(forms["completed_at"])
    frame.loc[rows, "subject"] = subject.to_numpy()
    frame.loc[rows, "mode"] = mode.fillna(TRAINING).to_numpy()
    frame.loc[rows, "city"] = facts["city"].fillna(UNKNOWN_CITY).to_numpy()
    frame.loc[rows, "hours"] = hours.to_numpy()
    frame.loc[rows, "form_start"] = start.where(training).to_numpy()
    frame.loc[rows, "hours_cap"] = facts["filed_hours"].where(training).to_numpy()
    return frame


def form_quarantine(frame: pd.DataFrame, quarantine: pd.Series) -> pd.Series:
    """R12 for spans: a training row whose 开始日期 is after its 结束日期 is out of range."""
    backwards = (frame["form_start"] > frame["completed_at"]).fillna(False)
    return quarantine.mask(quarantine.isna() & backwards, "out_of_range_date")


def form_reason(frame: pd.DataFrame) -> pd.Series:
    """The F-order: the first of F1, F2 (unfiled, outside the filed dates), F4, F6 that a
    non-quarantined form row fails; null for platform records and rows that pass."""
    reason = pd.Series(None, index=frame.index, dtype="str")
    rows = is_form(frame) & frame["quarantine"].isna().to_numpy()
    if not rows.any():
        return reason
    forms = frame.loc[rows]
    facts = form_facts(forms["course_code"])
    training = forms["mode"].eq(TRAINING).to_numpy()
    filed = facts["filed"].to_numpy(dtype=bool, na_value=False)
    start = facts["start"].fillna(facts["end"])
    outside = (start < facts["filed_start"]).fillna(False) | (
        facts["end"] > facts["filed_end"]
    ).fillna(False)
    checks = [
        ~forms["passed"].fillna(False).to_numpy(dtype=bool),  # F1: the unit has not reviewed it
        training & ~filed,  # F2
        training & filed & outside.to_numpy(dtype=bool),  # F2
        forms["mode"].eq(SELF_STUDY).to_numpy() & facts["file_no"].isna().to_numpy(),  # F4
        facts["evidence"].isna().to_numpy(),  # F6
    ]
    found = np.select(checks, list(F_ORDER), default="")
    reason.loc[rows] = pd.Series(found, index=forms.index).replace("", None).astype("str")
    return reason


def filing_cap(frame: pd.DataFrame, tenths: np.ndarray) -> np.ndarray:
    """F2: a filed training row's tenths of an hour, at most the register's 批准学时."""
    cap = np.round(frame["hours_cap"].to_numpy(dtype=np.float64, na_value=np.nan) * 10)
    return np.where(np.isnan(cap), tenths, np.minimum(tenths, np.nan_to_num(cap))).astype(np.int64)


def _days(stamps: pd.Series) -> np.ndarray:
    local = stamps.dt.tz_convert(TZ).dt.tz_localize(None)
    return local.to_numpy(dtype="datetime64[D]").view(np.int64)


def day_parts(
    frame: pd.DataFrame, rows: np.ndarray, tenths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """F3: the training rows at positions `rows` as parts, one per calendar day (Asia/Shanghai).

    A platform record is one part on its completion day; a form row's tenths are spread evenly
    over 开始日期…结束日期 (earlier days take the odd tenths), each part at the start of its day.
    Returns each part's row position, day (days since the epoch), tenths and time (µs).
    """
    completed = frame["completed_at"].iloc[rows]
    last = _days(completed)
    first = _days(frame["form_start"].iloc[rows].fillna(completed))
    days = np.maximum(last - first + 1, 1)
    stamps = completed.to_numpy(dtype="datetime64[us]").view(np.int64)
    if (days == 1).all():
        return rows, last, tenths, stamps
    part_row = np.repeat(rows, days)
    offset = np.arange(len(part_row)) - np.repeat(np.cumsum(days) - days, days)
    part_day = np.repeat(first, days) + offset
    share, odd = np.divmod(np.repeat(tenths, days), np.repeat(days, days))
    part_tenths = share + (offset < odd)
    midnight = part_day * DAY_US - SHANGHAI_OFFSET_US  # 00:00 Asia/Shanghai, in µs since 1970
    spread = np.repeat(days > 1, days)
    part_stamp = np.where(spread, midnight, np.repeat(stamps, days))
    return part_row, part_day, part_tenths, part_stamp


# --- what units get back ---------------------------------------------------------------------

REGISTERED, NOT_REGISTERED, PENDING = "登记", "未登记", "待审核"
RESULT_WORDS: dict[str, str] = {
    "pending_review": "单位尚未审核：请填写单位审核人和单位审核日期",
    "unfiled_training": "培训未备案：备案编号为空或不在本年度备案登记中",
    "outside_filing": "培训日期不在备案的起止日期内",
    "no_learning_file": "自学未填写学习档案编号",
    "no_evidence": "未附证明材料",
    "F2": "超过备案批准学时的部分不计",
    "R7": "当日学时超过每日上限的部分不计",
    "R8": "本人本年度自学学时超过上限的部分不计",
    "R9": "本人本年度折算学时超过上限的部分不计",
    "D2": "与同一证书编号的记录重复，只计一次",
    "D3": "同一项目本年度已有登记，只计一次",
    "R6": "未完成或未通过",
    "invalid_id_number": "身份证号无效",
    "id_number_corrupted": "身份证号被存为数字，位数已丢失：请将单元格设为文本后重新填写",
    "unknown_category": "类别或科目类别无法识别",
    "invalid_makeup": "补学标记无效",
    "out_of_range_date": "日期缺失、早于2017年、晚于今天，或开始日期晚于结束日期",
    "invalid_hours": "学时或件数无效：须为正数，不超过100，最小单位0.1",
}
NOT_YET = "尚未处理：请等待下一次同步"


def result_columns(ledger: pd.DataFrame) -> pd.DataFrame:
    """结果 (登记 | 未登记 | 待审核) and 原因 in plain Chinese for form rows' ledger rows
    (state, reason, hours_credited, hours_trimmed); a row not in the ledger yet is pending."""
    state, reason = ledger["state"], ledger["reason"]
    credited = state.eq("credited").to_numpy(dtype=bool, na_value=False)
    hours = ledger["hours_credited"].to_numpy(dtype=np.float64, na_value=0.0)
    pending = reason.eq(F_ORDER[0]).to_numpy(dtype=bool, na_value=False) | state.isna().to_numpy()
    result = np.select(
        [credited & (hours > 0), pending], [REGISTERED, PENDING], default=NOT_REGISTERED
    )
    words = reason.map(RESULT_WORDS).astype("str")
    trimmed = ledger["hours_trimmed"].astype("float64")
    counted = "登记" + ledger["hours_credited"].map("{:g}".format).astype("str") + "学时"
    cut = "，核减" + trimmed.map("{:g}".format).astype("str") + "学时：" + words
    because = words.mask(credited, counted + cut.where(trimmed.gt(0), ""))
    because = because.mask(state.isna().to_numpy(), NOT_YET)
    return pd.DataFrame({"结果": result, "原因": because.fillna("").to_numpy()}, index=ledger.index)
