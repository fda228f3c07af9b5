"""D1: many versions of one platform record become one row, the newest, unless withdrawn."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from schemas.raw import record_key


def stamp_us(series: pd.Series) -> np.ndarray:
    """Timestamps as int64 microseconds; NaT is the smallest value, so missing sorts first."""
    return series.to_numpy(dtype="datetime64[us]").view(np.int64)


def _from_stamp(stamps: np.ndarray, tz: object) -> pd.Series:
    """Back from `stamp_us`, in the input's time zone (the raw schema's Asia/Shanghai)."""
    utc = pd.Series(stamps.astype("datetime64[us]")).dt.tz_localize("UTC")
    return utc.dt.tz_convert(tz)


VERSION_ORDER: tuple[str, ...] = ("updated_at", "pulled_at", "withdrawn", "payload")
"""D1's order of one record's versions, oldest first: the platform's update time (missing
first), then the pull, then a tombstone over its twin, then the payload (so the winner never
depends on input order). The store's upsert compares stored and incoming rows in this order
(`pipelines.store`), so a stale version pulled late never overwrites a newer one."""


@dataclass(frozen=True)
class Versions:
    """The rows of a raw frame grouped by record, each group in `VERSION_ORDER`."""

    keys: pd.Series
    order: np.ndarray
    """Row positions, by record, then version order: a record's newest version is its last."""
    group: np.ndarray
    """The record number of each position of `order`."""
    newest: np.ndarray
    """Over `order`: True at each record's newest version."""


def order_versions(raw: pd.DataFrame, keys: pd.Series | None = None) -> Versions:
    """Group `raw` by `record_key` (`keys`, when the caller has them already) and order each
    record's versions (D1, `VERSION_ORDER`)."""
    keys = record_key(raw["platform"], raw["source_key"]) if keys is None else keys
    by_key = keys.argsort(kind="stable").to_numpy()
    sorted_keys = keys.iloc[by_key].reset_index(drop=True)
    starts = sorted_keys.ne(sorted_keys.shift()).to_numpy(dtype=bool, na_value=True)
    group = np.empty(len(raw), dtype=np.int64)
    group[by_key] = np.cumsum(starts) - 1
    withdrawn = raw["withdrawn"].to_numpy(dtype=bool)
    updated, pulled = stamp_us(raw["updated_at"]), stamp_us(raw["pulled_at"])
    payload = np.zeros(len(raw), dtype=np.int64)
    order = np.lexsort((payload, withdrawn, pulled, updated, group))
    last = np.ones(len(raw), dtype=bool)
    last[:-1] = group[order][1:] != group[order][:-1]
    same = np.ones(len(raw), dtype=bool)  # the winner ties its runner-up on every key
    same[:1] = False
    for column in (group, updated, pulled, withdrawn):
        ordered = column[order]
        same[1:] &= ordered[1:] == ordered[:-1]
    if (same & last).any():
        tied = np.isin(group, group[order][same & last])
        payload[tied] = pd.factorize(raw["payload"].iloc[np.flatnonzero(tied)], sort=True)[0]
        order = np.lexsort((payload, withdrawn, pulled, updated, group))
    return Versions(keys=keys, order=order, group=group[order], newest=last)


def latest_versions(raw: pd.DataFrame) -> pd.DataFrame:
    """D1: one row per `record_key`, its newest version (`order_versions`).

    A withdrawn winner leaves every output; the sighting times span all versions, including a
    stored `first_seen_at` when the input carries one. The result is sorted by `record_key`,
    which later stages rely on for their tie-breaks.
    """
    versions = order_versions(raw)
    order, group, last = versions.order, versions.group, versions.newest
    pulled = stamp_us(raw["pulled_at"])
    grouped_pulls = pd.Series(pulled[order]).groupby(group, sort=False)
    first_seen = grouped_pulls.transform("min").to_numpy()
    last_seen = grouped_pulls.transform("max").to_numpy()
    if "first_seen_at" in raw.columns:
        stored = stamp_us(raw["first_seen_at"])[order]
        stored = np.where(stored == np.iinfo(np.int64).min, first_seen, stored)
        earliest = pd.Series(np.minimum(stored, first_seen)).groupby(group, sort=False)
        first_seen = earliest.transform("min").to_numpy()
    live = last & ~raw["withdrawn"].to_numpy(dtype=bool)[order]
    winners = raw.iloc[order[live]].reset_index(drop=True)
    tz = raw["pulled_at"].dt.tz
    return winners.assign(
        record_key=versions.keys.iloc[order[live]].reset_index(drop=True),
        first_seen_at=_from_stamp(first_seen[live], tz),
        last_seen_at=_from_stamp(last_seen[live], tz),
    )
