"""The Dagster layer: loadable definitions, the nightly schedule, blocking checks."""

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

import pipelines.refresh
from pipelines.definitions import defs
from pipelines.rules import RulesResult, apply_rules
from pipelines.runs import launch
from sandbox.generator import generate
from sandbox.server import Sandbox
from schemas.platforms import PLATFORM_CODES


def test_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)


def test_every_asset_links_to_its_source_and_describes_its_columns() -> None:
    for node in defs.resolve_asset_graph().asset_nodes:
        metadata = node.metadata
        assert "dagster/code_references" in metadata, node.key
        schema = metadata.get("dagster/column_schema")
        if schema is not None:
            assert all(column.description for column in schema.columns), node.key


def test_every_platform_has_a_raw_asset_partitioned_by_year_from_2017() -> None:
    graph = defs.resolve_asset_graph()
    for code in PLATFORM_CODES:
        node = graph.get(dg.AssetKey(f"raw_{code}"))
        keys = node.partitions_def.get_partition_keys()
        assert keys[0] == "2017"
        assert keys[-1] == str(datetime.now(ZoneInfo("Asia/Shanghai")).year)
        assert node.backfill_policy == dg.BackfillPolicy.single_run()


def test_each_platform_is_pulled_under_its_own_pool() -> None:
    graph = defs.resolve_asset_graph()
    pools = {frozenset(graph.get(dg.AssetKey(f"raw_{code}")).pools) for code in PLATFORM_CODES}
    assert pools == {frozenset({f"platform_{code}"}) for code in PLATFORM_CODES}


def test_nightly_schedule_requests_the_current_year_at_two_in_beijing() -> None:
    schedule = defs.resolve_schedule_def("nightly_sync")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "Asia/Shanghai"
    year = datetime.now(ZoneInfo("Asia/Shanghai")).year
    night = datetime(year, 1, 1, 2, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # still last year in UTC
    context = dg.build_schedule_context(
        scheduled_execution_time=night, repository_def=defs.get_repository_def()
    )
    (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == str(year)


@pytest.fixture
def small_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XUESHI_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("XUESHI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XUESHI_OUTPUT_DIR", str(tmp_path / "out"))
    with Sandbox(generate(records=300, seed=5), port=0) as sandbox:
        for name, value in sandbox.env().items():
            monkeypatch.setenv(name, value)
        yield tmp_path / "out"


def test_a_failing_ledger_check_stops_the_provincial_files(
    small_sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def over_the_cap(*args: object, **kwargs: object) -> RulesResult:
        result = apply_rules(*args, **kwargs)
        credited = result.completion.index[result.completion["state"] == "credited"][0]
        result.completion.loc[credited, "hours_credited"] = 12.0
        return result

    monkeypatch.setattr(pipelines.refresh, "apply_rules", over_the_cap)
    with dg.DagsterInstance.ephemeral() as instance:
        outcome = launch([2022], instance=instance)
        ledger = instance.get_latest_materialization_event(dg.AssetKey("completion"))
        files = instance.get_latest_materialization_event(dg.AssetKey("provincial_files"))
    assert not outcome.success
    assert any("completion_expectations" in error for error in outcome.errors)
    assert ledger is not None
    assert files is None
    assert not (small_sandbox / "provincial").exists()


def test_a_run_into_the_database_of_its_config_counts_what_it_wrote_there(
    small_sandbox: Path, tmp_path: Path
) -> None:
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    with dg.DagsterInstance.ephemeral() as instance:
        outcome = launch([2022], instance=instance, resources={"database": {"url": elsewhere}})
    assert outcome.success, outcome.errors
    assert outcome.summary.loc["total", "raw"] > 0
    assert not (tmp_path / "x.db").exists()
