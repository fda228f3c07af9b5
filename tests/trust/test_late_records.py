"""Late records on platforms without update times: an ended year is pulled whole, and the run
says how many records the nights had missed."""

from __future__ import annotations

from datetime import datetime

import dagster as dg
import pytest
from sqlalchemy import delete

from pipelines.assets.jobs import late_records_job, monthly_late_records
from pipelines.cli import main
from pipelines.definitions import defs
from pipelines.late import counts_late, repulls_whole, summary_line
from pipelines.store import Store
from schemas.clock import current_year
from schemas.platforms import load_specs
from schemas.tables import TABLES
from tests.trust.conftest import Environment

SPECS = load_specs()
ENDED = 2021


@pytest.mark.parametrize("code", ["ta_zjp", "yt_sdbc", "ta_tyjrp", "yt_ytu"])
def test_an_ended_year_of_a_family_without_update_times_is_pulled_whole(code: str) -> None:
    assert repulls_whole(SPECS[code], ENDED, current_year())
    assert not repulls_whole(SPECS[code], current_year(), current_year())


@pytest.mark.parametrize("code", ["ta_yx", "ta_sdty", "yt_naas"])
def test_families_with_update_times_or_whole_years_keep_their_watermark(code: str) -> None:
    assert not repulls_whole(SPECS[code], ENDED, current_year())


def test_late_records_are_counted_for_the_snapshot_family_too() -> None:
    assert counts_late(SPECS["yt_ytec"], ENDED, current_year())
    assert not counts_late(SPECS["ta_yx"], ENDED, current_year())


def test_the_monthly_schedule_pulls_every_ended_year_as_one_run() -> None:
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 12, 1, 3))
    request = monthly_late_records(context)
    assert request.tags["dagster/asset_partition_range_start"] == "2017"
    assert request.tags["dagster/asset_partition_range_end"] == "2025"
    assert defs.resolve_schedule_def("monthly_late_records").cron_schedule == "0 3 1 * *"


def test_the_monthly_job_holds_the_families_without_update_times_and_the_snapshot() -> None:
    job = defs.resolve_job_def(late_records_job.name)
    raw = {key.path[-1] for key in job.asset_layer.executable_asset_keys if "raw_" in key.path[-1]}
    assert raw == {"raw_ta_zjp", "raw_yt_sdbc", "raw_ta_tyjrp", "raw_yt_ytu", "raw_yt_ytec"}


def test_the_summary_line_lists_platform_and_year() -> None:
    line = summary_line({"yt_ytec": {"2020": 0}, "ta_zjp": {"2021": 3}})
    assert line == "late records (missed by the nights): ta_zjp 2021: 3, yt_ytec 2020: 0"


def test_a_resync_of_an_ended_year_finds_the_records_the_nights_missed(
    environment: Environment, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sync", "--year", str(ENDED), "--platform", "ta_zjp"]) == 0
    raw = environment.tables()["raw_record"]
    held = raw[(raw["platform"] == "ta_zjp") & (raw["pull_year"] == ENDED)]
    early = held[held["completed_at"].dt.month <= 6]
    assert len(early) > 0
    store = Store.from_url(environment.database_url)
    table = TABLES["raw_record"]
    with store.engine.begin() as conn:
        conn.execute(delete(table).where(table.c.record_key.in_(list(early["record_key"]))))
    store.dispose()
    capsys.readouterr()

    assert main(["sync", "--year", str(ENDED), "--platform", "ta_zjp"]) == 0

    out = capsys.readouterr().out
    assert f"late records (missed by the nights): ta_zjp {ENDED}: {len(early)}" in out
    raw = environment.tables()["raw_record"]
    again = raw[(raw["platform"] == "ta_zjp") & (raw["pull_year"] == ENDED)]
    assert set(again["record_key"]) == set(held["record_key"])
