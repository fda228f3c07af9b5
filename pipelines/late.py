"""Late records on platforms without update times (PLATFORMS.md zjp, issue 13).

zjp, tyjrp and lllnet filter on the completion date only, so a record that turns up months
after its completion is seen only by pulling its window again. The nightly look-back serves the
open year; a year that has ended is pulled whole whenever it is synced or backfilled, and the
monthly schedule does that for every ended year. Records such a pull finds that the store did
not hold are what the nights missed: counted per platform and year as `late_records` metadata.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import dagster as dg

from schemas.platforms import PlatformSpec

LATE_METADATA = "late_records_by_year"
SNAPSHOT_FAMILY = "huaxue"


def without_update_times(spec: PlatformSpec) -> bool:
    """Families that re-pull a look-back window instead of asking for updates (zjp, tyjrp,
    lllnet): their spec has `lookback_days`."""
    return "lookback_days" in spec.options


def repulls_whole(spec: PlatformSpec, year: int, current_year: int) -> bool:
    """An ended year of a family without update times is pulled whole, ignoring its watermark."""
    return year < current_year and without_update_times(spec)


def counts_late(spec: PlatformSpec, year: int, current_year: int) -> bool:
    """Whether a pull of this partition reports the records the nights missed."""
    return year < current_year and (without_update_times(spec) or spec.family == SNAPSHOT_FAMILY)


def missed(pulled: Iterable[str], known: frozenset[str]) -> int:
    """Source keys a whole pull found that the store did not hold."""
    return len(set(pulled) - known)


def late_records(instance: dg.DagsterInstance, run_id: str) -> dict[str, dict[str, int]]:
    """Per platform and year, the late records a run's raw steps reported."""
    found: dict[str, dict[str, int]] = {}
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    for record in records:
        materialization = record.asset_materialization
        if materialization is None or LATE_METADATA not in materialization.metadata:
            continue
        value = materialization.metadata[LATE_METADATA].value
        platform = materialization.asset_key.path[-1].removeprefix("raw_")
        if isinstance(value, Mapping) and value:
            found[platform] = {str(y): int(n) for y, n in value.items()}
    return found


def summary_line(found: Mapping[str, Mapping[str, int]]) -> str | None:
    """`late records (missed by the nights): ta_zjp 2021: 3, yt_ytec 2020: 0`, or None."""
    if not found:
        return None
    parts = [
        f"{platform} {year}: {count}"
        for platform, years in sorted(found.items())
        for year, count in sorted(years.items())
    ]
    return "late records (missed by the nights): " + ", ".join(parts)
