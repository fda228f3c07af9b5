"""R4, R11–R13 and C1 quarantine: the first matching reason, in docs/decisions.md's order."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.rules.clean import ID_CORRUPTED, INVALID_ID
from pipelines.rules.config import RulesConfig
from schemas.raw import TZ

UNKNOWN_CATEGORY = "unknown_category"
INVALID_MAKEUP = "invalid_makeup"
OUT_OF_RANGE_DATE = "out_of_range_date"
INVALID_HOURS = "invalid_hours"

PRECEDENCE: tuple[str, ...] = (
    ID_CORRUPTED,
    INVALID_ID,
    UNKNOWN_CATEGORY,
    INVALID_MAKEUP,
    OUT_OF_RANGE_DATE,
    INVALID_HOURS,
)


def invalid_makeup(frame: pd.DataFrame, config: RulesConfig) -> pd.Series:
    """R11: a makeup mark off a makeup city's platform, or for a missing or unsupported year."""
    year = frame["makeup_year"]
    allowed = (
        frame["city"].isin(config.makeup_cities)
        & year.notna()
        & year.between(config.makeup_first_year, config.makeup_last_year).fillna(False)
    )
    return frame["makeup"] & ~allowed


def out_of_range_date(frame: pd.DataFrame, config: RulesConfig, as_of: pd.Timestamp) -> pd.Series:
    """R12: completed before the first supported year or after `as_of`; passed with no date."""
    completed = frame["completed_at"]
    start = pd.Timestamp(year=config.first_year, month=1, day=1, tz=TZ)
    outside = ((completed < start) | (completed > as_of)).fillna(False)
    undated_pass = completed.isna() & frame["passed"].fillna(False).astype(bool)
    return outside | undated_pass


def invalid_hours(hours: pd.Series, config: RulesConfig) -> pd.Series:
    """R13: not a number, not positive, above the maximum, or not in steps of 0.1."""
    h = hours.to_numpy(dtype=np.float64, na_value=np.nan)
    steps = h / config.hours_step
    with np.errstate(invalid="ignore"):
        bad = ~(
            (h > 0)
            & (h <= config.max_hours)
            & (np.abs(steps - np.round(steps)) < config.hours_step_tolerance)
        )
    return pd.Series(bad, index=hours.index)


def quarantine_reason(frame: pd.DataFrame, config: RulesConfig, as_of: pd.Timestamp) -> pd.Series:
    """The quarantine code of each record, null when it passes; first match wins.

    Needs the cleaned frame: `id_problem` (C1), `subject` (R4) and `city` columns.
    """
    checks = [
        frame["id_problem"].eq(ID_CORRUPTED).fillna(False),
        frame["id_problem"].eq(INVALID_ID).fillna(False),
        frame["subject"].isna(),
        invalid_makeup(frame, config),
        out_of_range_date(frame, config, as_of),
        invalid_hours(frame["hours"], config),
    ]
    conditions = [c.to_numpy(dtype=bool) for c in checks]
    reason = pd.Series(np.select(conditions, list(PRECEDENCE), default=""), index=frame.index)
    return reason.astype("str").where(reason.ne(""))
