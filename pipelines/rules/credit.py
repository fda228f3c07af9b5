"""R6, R10/R11, D2, D3 and R7: the state each clean record ends in, and its credited hours.

Every step is a sort plus group boundaries on integer codes (numpy lexsort, cumulative sums),
so a million records cost a few sorts, never a Python loop.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.rules import forms
from pipelines.rules.classify import TRAINING
from pipelines.rules.clean import per_unique
from pipelines.rules.config import RulesConfig
from pipelines.rules.versions import stamp_us
from schemas.raw import TZ

CREDITED = "credited"
MERGED = "merged"
NOT_CREDITED = "not_credited"
QUARANTINED = "quarantined"
STATES: tuple[str, ...] = (CREDITED, MERGED, NOT_CREDITED, QUARANTINED)


def credited_year(frame: pd.DataFrame) -> pd.Series:
    """R10/R11: the makeup year of a valid makeup record, else the completion year.

    Null for quarantined records and records with no completion date (decisions.md).
    """
    completed = frame["completed_at"]
    year = completed.dt.tz_convert(TZ).dt.year.astype("Int64")
    year = year.mask(frame["makeup"], frame["makeup_year"].astype("Int64"))
    return year.mask(frame["quarantine"].notna() | completed.isna())


def completion_rank(frame: pd.DataFrame) -> np.ndarray:
    """Each row's position in the order `completed_at, platform, source_key` (D2, D3, R7).

    Within one platform `record_key` (`platform:source_key`) sorts as the source key does, so
    the ledger, which has no source key column, ranks the same way; a frame already sorted by
    `record_key` (as the rules keep it) skips sorting the keys again.
    """
    keys = frame["record_key"]
    if keys.is_monotonic_increasing:
        key_rank = np.arange(len(frame))
    else:
        key_rank = pd.factorize(keys, sort=True)[0]
    order = np.lexsort(
        (
            key_rank,
            pd.factorize(frame["platform"], sort=True)[0],
            stamp_us(frame["completed_at"]),
        )
    )
    rank = np.empty(len(frame), dtype=np.int64)
    rank[order] = np.arange(len(frame))
    return rank


def group_codes(*columns: np.ndarray | pd.Series) -> np.ndarray:
    """One int64 code per distinct combination of the columns (nulls form their own value)."""
    codes = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        part, uniques = pd.factorize(column, use_na_sentinel=False)
        codes = pd.factorize(codes * (len(uniques) + 1) + part)[0]
    return codes


def _sorted_groups(codes: np.ndarray, rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions sorted by (group, rank) and, per sorted position, where its group starts."""
    order = np.lexsort((rank, codes))
    grouped = codes[order]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = grouped[1:] != grouped[:-1]
    start_at = np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))
    return order, start_at


def keep_earliest(codes: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """D2/D3: for each row, the position (within the inputs) of its group's earliest row."""
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    order, start_at = _sorted_groups(codes, rank)
    keeper = np.empty(len(codes), dtype=np.int64)
    keeper[order] = order[start_at]
    return keeper


def daily_cap(codes: np.ndarray, rank: np.ndarray, tenths: np.ndarray, cap: int) -> np.ndarray:
    """R7: credited tenths per row, the day's cumulative sum trimmed to `cap` in rank order."""
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    order, start_at = _sorted_groups(codes, rank)
    hours = tenths[order]
    running = np.cumsum(hours)
    before = running - hours - (running[start_at] - hours[start_at])
    credited = np.empty(len(codes), dtype=np.int64)
    credited[order] = np.clip(cap - before, 0, hours)
    return credited


def normalized_certificate(certificates: pd.Series) -> pd.Series:
    """D2: certificate numbers match after NFKC, stripping and upper-casing."""
    return per_unique(certificates, lambda s: s.str.normalize("NFKC").str.strip().str.upper())


def _shanghai_days(completed: pd.Series) -> np.ndarray:
    """R7's calendar day (Asia/Shanghai) as days since the epoch."""
    local = completed.dt.tz_convert(TZ).dt.tz_localize(None)
    return local.to_numpy(dtype="datetime64[D]").view(np.int64)


def credit(frame: pd.DataFrame, config: RulesConfig | None = None) -> pd.DataFrame:
    """R6 (F1–F6 for form rows), D2, D3, then the caps: F2, R7 with F3, R8/F4 and R9/F5.

    Takes a classified frame with its `quarantine` column (and, when it holds form rows, the
    columns of `forms.FORM_COLUMNS`). Adds `credited_year`, `state`, `reason`, `merged_into`,
    `hours_credited`, `hours_trimmed`. A record merged by D2 into one that D3 then merges
    points at the record finally kept.
    """
    config = config or RulesConfig()
    n = len(frame)
    quarantined = frame["quarantine"].notna().to_numpy()
    blocked = (
        frame["form_reason"].notna().to_numpy() if "form_reason" in frame else np.zeros(n, bool)
    )
    passed = frame["passed"].fillna(False).to_numpy(dtype=bool) & ~quarantined & ~blocked
    frame = frame.assign(credited_year=credited_year(frame))
    rank = completion_rank(frame)
    person = pd.factorize(frame["id_number"])[0]
    target = np.arange(n)  # the row whose completion each row's hours belong to

    has_certificate = passed & frame["certificate_no"].notna().to_numpy()
    d2 = np.flatnonzero(has_certificate)
    certificate = normalized_certificate(frame["certificate_no"].iloc[d2])
    d2 = d2[certificate.ne("").to_numpy()]
    certificate = certificate.loc[certificate.ne("")]
    target[d2] = d2[keep_earliest(group_codes(person[d2], certificate), rank[d2])]
    by_d2 = target != np.arange(n)

    remaining = passed & ~by_d2 & frame["course_key"].fillna("").ne("").to_numpy()
    d3 = np.flatnonzero(remaining)
    sub = frame[["course_key", "subject", "credited_year"]].iloc[d3]
    codes = group_codes(person[d3], sub["course_key"], sub["subject"], sub["credited_year"])
    target[d3] = d3[keep_earliest(codes, rank[d3])]
    by_d3 = (target != np.arange(n)) & ~by_d2
    target = target[target]  # D2 → D3 chains end at the record finally kept

    merged = passed & (target != np.arange(n))
    credited = passed & ~merged
    hours = frame["hours"].to_numpy(dtype=np.float64, na_value=np.nan)
    tenths = np.round(np.where(credited, hours, 0) * 10).astype(np.int64)
    credited_tenths, cap_reason = _caps(frame, credited, tenths, person, rank, config)
    trimmed = tenths - credited_tenths

    state = np.select(
        [quarantined, merged, passed],
        [STATES.index(QUARANTINED), STATES.index(MERGED), STATES.index(CREDITED)],
        default=STATES.index(NOT_CREDITED),
    )
    reason = frame["quarantine"].mask(~quarantined & ~passed, "R6")
    if blocked.any():
        reason = reason.mask(~quarantined & blocked, frame["form_reason"])
    reason = reason.mask(by_d2, "D2").mask(by_d3, "D3")
    reason = reason.mask(credited & (trimmed > 0), cap_reason)
    into = frame["record_key"].array.take(np.where(merged, target, -1), allow_fill=True)
    return frame.assign(
        state=pd.Series(pd.array(STATES, dtype="str").take(state), index=frame.index),
        reason=reason,
        merged_into=pd.Series(into, index=frame.index),
        hours_credited=credited_tenths / 10,
        hours_trimmed=trimmed / 10,
    )


def _caps(
    frame: pd.DataFrame,
    credited: np.ndarray,
    tenths: np.ndarray,
    person: np.ndarray,
    rank: np.ndarray,
    config: RulesConfig,
) -> tuple[np.ndarray, pd.Series]:
    """Credited tenths after F2, R7 (a person's training days, platform records and form days
    together: F3), R8/F4 and R9/F5 (a person's year), and the first cap that trimmed each row.
    """
    n = len(frame)
    mode = frame["mode"].to_numpy(dtype=object)
    creditable = forms.filing_cap(frame, tenths) if "hours_cap" in frame else tenths
    result = np.zeros(n, dtype=np.int64)
    reason = np.full(n, None, dtype=object)
    reason[creditable < tenths] = forms.FILING_CAP

    t = np.flatnonzero(credited & (mode == TRAINING))
    if "form_start" in frame:
        part_row, day, part_tenths, stamp = forms.day_parts(frame, t, creditable[t])
    else:
        part_row, day, part_tenths = t, _shanghai_days(frame["completed_at"].iloc[t]), creditable[t]
        stamp = None
    order = rank[part_row]
    if stamp is not None and len(part_row) != len(t):  # a form's days: each part at its day
        by_time = np.lexsort((order, stamp))
        order = np.empty_like(by_time)
        order[by_time] = np.arange(len(by_time))
    day_codes = group_codes(person[part_row], day)
    capped = daily_cap(day_codes, order, part_tenths, round(config.daily_cap * 10))
    result[t] = np.bincount(np.searchsorted(t, part_row), weights=capped, minlength=len(t)).astype(
        np.int64
    )
    trimmed_daily = np.zeros(n, dtype=bool)
    trimmed_daily[t] = result[t] < creditable[t]
    reason[trimmed_daily & pd.isna(reason)] = "R7"

    yearly = (
        (forms.SELF_STUDY, config.selfstudy_cap, forms.SELF_STUDY_CAP),
        (forms.CONVERSION, config.conversion_cap, forms.CONVERSION_CAP),
    )
    for kind, cap, code in yearly:
        y = np.flatnonzero(credited & (mode == kind))
        if len(y) == 0:
            continue
        year_codes = group_codes(person[y], frame["credited_year"].iloc[y])
        result[y] = daily_cap(year_codes, rank[y], creditable[y], round(cap * 10))
        reason[y[result[y] < creditable[y]]] = code
    return result, pd.Series(reason, index=frame.index, dtype="str")
