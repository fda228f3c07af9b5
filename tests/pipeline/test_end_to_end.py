"""The whole pipeline through Dagster against the faulty sandbox equals the generator's truth.

A backfill of 2018–2021, a sync of 2022, then a second sync of 2022 after the sandbox changes
(a corrected exam, a revocation, a late record, a vanished snapshot row): after each step the
database and the provincial files hold exactly what the ground truth says.
"""

import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.tags import BACKFILL_ID_TAG
from python_calamine import CalamineWorkbook

from pipelines.runs import launch
from pipelines.store import Store
from sandbox.generator import Dataset, Truth, generate
from sandbox.server import Sandbox
from schemas.ledger import COMPLETION_DTYPES

LEDGER_COLUMNS = [c for c in COMPLETION_DTYPES if c not in ("first_seen_at", "last_seen_at")]
FAULTS = "all;retry_after=0;slow=1.5"
FAST_PLATFORMS = {
    "platforms": {"initial_wait_seconds": 0.01, "max_wait_seconds": 0.5, "timeout_seconds": 1.0}
}


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(records=1_500, seed=7)


@pytest.fixture
def sandbox(dataset: Dataset, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    with Sandbox(dataset, port=0, faults=FAULTS, seed=3) as running:
        for name, value in running.env().items():
            monkeypatch.setenv(name, value)
        yield running


@pytest.fixture
def outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    monkeypatch.setenv("XUESHI_DATABASE_URL", database_url)
    monkeypatch.setenv("XUESHI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XUESHI_OUTPUT_DIR", str(tmp_path / "out"))
    return tmp_path / "out"


def assert_database_matches(database_url: str, truth: Truth) -> None:
    store = Store.from_url(database_url)
    try:
        ledger = store.read_table("completion")
        bank = store.read_table("hours_bank")
    finally:
        store.dispose()
    pd.testing.assert_frame_equal(
        ledger[LEDGER_COLUMNS].sort_values("record_key").reset_index(drop=True),
        truth.completion[LEDGER_COLUMNS].sort_values("record_key").reset_index(drop=True),
        check_dtype=False,
    )
    key = ["id_number", "year"]
    pd.testing.assert_frame_equal(
        bank[list(truth.hours_bank.columns)].sort_values(key).reset_index(drop=True),
        truth.hours_bank.sort_values(key).reset_index(drop=True),
        check_dtype=False,
    )


def file_rows(out: Path, year: int) -> pd.DataFrame:
    """Every row of the year's hours files: record key and hours."""
    rows = []
    for path in sorted((out / "provincial" / str(year) / "hours").glob("*.xlsx")):
        sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()
        header = sheet[0]
        rows += [dict(zip(header, row, strict=True)) for row in sheet[1:]]
    frame = pd.DataFrame(rows, columns=["来源记录", "学时"])
    return frame.sort_values("来源记录").reset_index(drop=True)


def assert_files_match(out: Path, truth: Truth) -> None:
    credited = truth.completion[
        (truth.completion["state"] == "credited") & (truth.completion["hours_credited"] > 0)
    ]
    for year, expected in credited.groupby("credited_year"):
        manifest = json.loads((out / "provincial" / str(year) / "manifest.json").read_text())
        assert manifest["rows"]["hours"] == len(expected)
        got = file_rows(out, int(year))
        assert got["来源记录"].tolist() == sorted(expected["record_key"])
        want = expected.set_index("record_key").loc[got["来源记录"], "hours_credited"]
        assert got["学时"].astype(float).tolist() == pytest.approx(want.tolist())


def sync(years: range | list[int], instance: dg.DagsterInstance) -> None:
    """A range as `xueshi backfill` runs it, a year as `xueshi sync` does."""
    outcome = launch(
        list(years), instance=instance, resources=FAST_PLATFORMS, backfill=len(years) > 1
    )
    assert outcome.success, outcome.errors


def assert_the_backfill_is_listed_with_its_run(instance: dg.DagsterInstance) -> None:
    """The CLI's backfill shows in the UI's list of backfills, finished, with its one run."""
    (backfill,) = instance.get_backfills()
    assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS
    assert backfill.title == "xueshi backfill 2018–2021"
    runs = instance.get_runs(dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill.backfill_id}))
    assert len(runs) == 1
    data = backfill.asset_backfill_data
    assert data is not None and data.materialized_subset == data.target_subset


def run_scenario(
    dataset: Dataset, sandbox: Sandbox, database_url: str, out: Path, instance: dg.DagsterInstance
) -> None:
    sync(range(2018, 2022), instance)
    truth = dataset.truth(epoch=0, years=range(2018, 2022))
    assert_database_matches(database_url, truth)
    assert_files_match(out, truth)

    sync([2022], instance)
    truth = dataset.truth(epoch=0, years=range(2018, 2023))
    assert_database_matches(database_url, truth)
    assert_files_match(out, truth)

    sandbox.advance()
    sync([2022], instance)
    truth = dataset.truth(epoch=1, years=range(2018, 2023))
    assert_database_matches(database_url, truth)
    assert_files_match(out, truth)


def test_backfill_then_syncs_through_faults_equal_the_ground_truth(
    dataset: Dataset, sandbox: Sandbox, outputs: Path, database_url: str
) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        run_scenario(dataset, sandbox, database_url, outputs, instance)
        runs = instance.get_runs()
        assert_the_backfill_is_listed_with_its_run(instance)
    assert len(runs) == 3
    assert {run.job_name for run in runs} == {"sync"}


@pytest.mark.postgres
def test_runs_are_recorded_in_a_postgresql_dagster_instance(
    dataset: Dataset,
    sandbox: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    postgres_url: str,
) -> None:
    """Production keeps Dagster's run storage in PostgreSQL (docs/operations.md)."""
    monkeypatch.setenv("XUESHI_DATABASE_URL", postgres_url)
    monkeypatch.setenv("XUESHI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XUESHI_OUTPUT_DIR", str(tmp_path / "out"))
    home = tmp_path / "dagster_home"
    home.mkdir()
    storage_url = postgres_url.replace("postgresql+psycopg://", "postgresql+psycopg2://")
    (home / "dagster.yaml").write_text(
        f"storage:\n  postgres:\n    postgres_url: {storage_url}\ntelemetry:\n  enabled: false\n"
    )
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        run_scenario(dataset, sandbox, postgres_url, tmp_path / "out", instance)
        assert len(instance.get_runs()) == 3
        assert_the_backfill_is_listed_with_its_run(instance)
