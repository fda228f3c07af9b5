"""D1: one row per platform record, the newest version, withdrawn ones gone."""

from __future__ import annotations

import pandas as pd

from pipelines.rules.versions import latest_versions
from schemas.raw import TZ
from tests.rules.factory import raw, record

T = pd.Timestamp("2024-01-01", tz=TZ)


def test_d1_newest_update_wins() -> None:
    frame = latest_versions(
        raw(
            record(hours=3.0, updated_at=T + pd.Timedelta(days=1), pulled_at=T),
            record(hours=2.0, updated_at=T, pulled_at=T + pd.Timedelta(days=2)),
        )
    )
    assert frame["hours"].tolist() == [3.0]


def test_d1_later_pull_wins_when_the_platform_has_no_update_time() -> None:
    frame = latest_versions(
        raw(
            record(hours=2.0, updated_at=pd.NaT, pulled_at=T + pd.Timedelta(days=1)),
            record(hours=3.0, updated_at=pd.NaT, pulled_at=T),
        )
    )
    assert frame["hours"].tolist() == [2.0]


def test_d1_a_version_without_update_time_loses_to_one_with_it() -> None:
    frame = latest_versions(
        raw(
            record(hours=2.0, updated_at=pd.NaT, pulled_at=T + pd.Timedelta(days=1)),
            record(hours=3.0, updated_at=T, pulled_at=T),
        )
    )
    assert frame["hours"].tolist() == [3.0]


def test_d1_withdrawn_newest_version_leaves() -> None:
    frame = latest_versions(
        raw(
            record(),
            record(withdrawn=True, updated_at=T + pd.Timedelta(days=1)),
            record(source_key="r2"),
        )
    )
    assert frame["record_key"].tolist() == ["ta_yx:r2"]


def test_d1_same_source_key_on_two_platforms_is_two_records() -> None:
    frame = latest_versions(raw(record(), record(platform="yt_ldu")))
    assert sorted(frame["record_key"]) == ["ta_yx:r1", "yt_ldu:r1"]


def test_d1_sighting_times_span_every_version_and_a_stored_first_seen() -> None:
    stored = T - pd.Timedelta(days=30)
    versions = raw(
        record(pulled_at=T, updated_at=T),
        record(pulled_at=T + pd.Timedelta(days=5), updated_at=T + pd.Timedelta(days=1)),
    ).assign(first_seen_at=[pd.NaT, stored])
    frame = latest_versions(versions)
    assert frame[["first_seen_at", "last_seen_at"]].iloc[0].tolist() == [
        stored,
        T + pd.Timedelta(days=5),
    ]
