"""The pipeline's today: the date in Asia/Shanghai, or `XUESHI_TODAY` when an operator (or the
benchmark, whose data end in 2022) replays a past night."""

from __future__ import annotations

import os
from datetime import date, datetime
from zoneinfo import ZoneInfo

from schemas.raw import TZ

TODAY_ENV = "XUESHI_TODAY"
SHANGHAI = ZoneInfo(TZ)


def today() -> date:
    """Pull windows never reach past it; its year is the open year (the nightly partition)."""
    fixed = os.environ.get(TODAY_ENV, "").strip()
    if not fixed:
        return datetime.now(SHANGHAI).date()
    try:
        return date.fromisoformat(fixed)
    except ValueError:
        raise ValueError(f"{TODAY_ENV}={fixed!r} is not a date like 2022-12-31") from None


def current_year() -> int:
    return today().year
