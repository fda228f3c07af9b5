"""`kill -9` of a sync or backfill at any moment, then the same command again, and two syncs
started at once, give the same database and files as one uninterrupted run.

Black-box: `xueshi sync` (or `backfill`) runs as a subprocess against the sandbox, dies at a
fault-injection point (pipelines/crash.py) or at a seeded random time, and is run again; then
the compared tables (without the columns that only say when) and the provincial files (cells,
manifests without hashes and sources) must equal those of one uninterrupted run on a fresh
database. Two syncs at once must not interleave their writes: the second waits for the
first's write lease (pipelines/locks.py) and then finds nothing new.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster._core.instance.ref import InstanceRef

from pipelines.crash import CRASH_AT, EXIT_CODE
from pipelines.store import Store
from sandbox.server import Sandbox
from tests.trust.conftest import assert_same_tables, files, tables

pytestmark = pytest.mark.slow

SYNC = ("sync", "--year", "2022", "--platform", "ta_zjp", "--platform", "yt_ytec")
BACKFILL = ("backfill", "--years", "2020-2021", "--platform", "ta_zjp", "--platform", "yt_ytec")
POINTS = [
    "pull#2",  # a pulled batch not stored yet
    "store:raw_record#2",  # between a batch and its watermark, inside their transaction
    "store:completion",  # inside the ledger replace
    "files#2",  # between two provincial files being put in place
    "manifest",  # files in place, the manifest not yet
]
POSTGRES = pytest.mark.postgres
KILLS = (
    [pytest.param(SYNC, point, "sqlite", id=f"sqlite-{point}") for point in POINTS]
    + [
        pytest.param(SYNC, point, "postgres", id=f"postgres-{point}", marks=POSTGRES)
        for point in POINTS
        if point.startswith("store:")
    ]
    + [
        pytest.param(BACKFILL, "store:completion", "sqlite", id="backfill-sqlite"),
        pytest.param(
            BACKFILL, "store:completion", "postgres", id="backfill-postgres", marks=POSTGRES
        ),
    ]
)
"""A sync killed at every point on SQLite, and on PostgreSQL at the points inside the store's
transactions, the only code that differs between the engines (pulls and files are the same
code on both); a backfill killed inside the ledger replace on both."""
SEED = 13
RANDOM_KILLS = 1
VOLATILE_MANIFEST = frozenset({"sha256", "digest", "bytes", "source"})
_references: dict[tuple[str, ...], dict[str, object]] = {}


@dataclass
class Run:
    """A sync in its own process. Its stderr goes to a file, not a pipe: a run killed as it
    starts a step can leave Dagster's `tail -F` of the step's log behind, which would hold a
    pipe open, and a test reading it to its end would wait for ever."""

    process: subprocess.Popen[bytes]
    stderr: Path


def run(
    served: Sandbox,
    root: Path,
    database_url: str,
    command: tuple[str, ...] = SYNC,
    **extra: str,
) -> Run:
    env = {
        **os.environ,
        **served.env(),
        "XUESHI_DATABASE_URL": database_url,
        "XUESHI_DATA_DIR": str(root / "data"),
        "XUESHI_OUTPUT_DIR": str(root / "out"),
        "DAGSTER_HOME": str(root / "dagster_home"),
        # one process, so that a crash hook or kill ends the whole run, as kill -9 of a sync does
        "XUESHI_EXECUTOR": "in_process",
        **extra,
    }
    stderr = root / f"sync-{time.monotonic_ns()}.err"
    with stderr.open("w", encoding="utf-8") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", *command],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    return Run(process, stderr)


def finished(started: Run) -> int:
    try:
        started.process.wait(timeout=600)
    except subprocess.TimeoutExpired:
        started.process.kill()
        started.process.wait()
        raise
    err = started.stderr.read_text(encoding="utf-8")
    assert started.process.returncode in (0, EXIT_CODE, -signal.SIGKILL), err[-2000:]
    return started.process.returncode


def picture(root: Path, database_url: str) -> tuple[dict[str, pd.DataFrame], dict[str, object]]:
    """What a run leaves: the compared tables and the files, manifests without hashes."""
    found = files(root / "out")
    for path in [p for p in found if p.endswith("manifest.json")]:
        manifest = json.loads((root / "out" / "provincial" / path).read_text("utf-8"))
        manifest.pop("source", None)
        for entry in manifest.get("files", []):
            for key in VOLATILE_MANIFEST:
                entry.pop(key, None)
        found[path] = manifest
    return tables(database_url), found


def uninterrupted(
    served: Sandbox, factory: pytest.TempPathFactory, command: tuple[str, ...]
) -> dict[str, object]:
    """One uninterrupted run of `command` on a fresh SQLite database (tables do not depend on
    the engine), and how long it took; made once per command."""
    if command not in _references:
        root = factory.mktemp("reference")
        url = f"sqlite:///{root / 'x.db'}"
        started = time.monotonic()
        assert finished(run(served, root, url, command)) == 0
        _references[command] = {
            "seconds": time.monotonic() - started,
            "picture": picture(root, url),
        }
    return _references[command]


@pytest.fixture
def reference(served: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    return uninterrupted(served, tmp_path_factory, SYNC)


def assert_converged(root: Path, database_url: str, reference: dict[str, object]) -> None:
    expected_tables, expected_files = reference["picture"]
    actual_tables, actual_files = picture(root, database_url)
    assert_same_tables(actual_tables, expected_tables)
    assert actual_files == expected_files


@pytest.mark.parametrize(("command", "point", "engine"), KILLS)
def test_a_run_killed_at_a_fault_point_converges_when_run_again(
    command: tuple[str, ...],
    point: str,
    engine: str,
    served: Sandbox,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> None:
    reference = uninterrupted(served, tmp_path_factory, command)
    database_url = request.getfixturevalue(f"{engine}_url")
    crashed = run(served, tmp_path, database_url, command, **{CRASH_AT: point})
    assert finished(crashed) == EXIT_CODE
    assert finished(run(served, tmp_path, database_url, command)) == 0
    assert_converged(tmp_path, database_url, reference)


@pytest.mark.parametrize("kill", range(RANDOM_KILLS))
def test_a_run_killed_at_a_seeded_random_moment_converges_when_run_again(
    kill: int,
    served: Sandbox,
    reference: dict[str, object],
    tmp_path: Path,
    database_url: str,
) -> None:
    delay = random.Random(SEED + kill).uniform(2.0, float(reference["seconds"]))
    started = run(served, tmp_path, database_url)
    try:
        started.process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        started.process.send_signal(signal.SIGKILL)
    finished(started)
    assert finished(run(served, tmp_path, database_url)) == 0
    assert_converged(tmp_path, database_url, reference)


def test_two_syncs_started_at_once_end_as_one_uninterrupted_run(
    served: Sandbox,
    reference: dict[str, object],
    tmp_path: Path,
    database_url: str,
) -> None:
    # the nightly schedule and an operator find the tables and the Dagster instance made
    store = Store.from_url(database_url)
    store.migrate()
    store.dispose()
    (tmp_path / "dagster_home").mkdir()
    dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path / "dagster_home"))).dispose()
    first = run(served, tmp_path, database_url)
    second = run(served, tmp_path, database_url)
    assert (finished(first), finished(second)) == (0, 0)
    assert_converged(tmp_path, database_url, reference)
    earlier, later = sorted(write_spans(tmp_path / "dagster_home"))
    assert earlier[1] < later[0], "the two runs wrote at the same time"


def write_spans(home: Path) -> list[tuple[float, float]]:
    """Per run, from its first to its last write: the materializations of the platforms'
    records and of the ledger."""
    spans = []
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        for run_record in instance.get_runs():
            stamps = [
                record.event_log_entry.timestamp
                for record in instance.get_records_for_run(
                    run_record.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
                ).records
                if record.asset_key is not None
                and record.asset_key.path[0] in {"raw_ta_zjp", "raw_yt_ytec", "completion"}
            ]
            spans.append((min(stamps), max(stamps)))
    return spans
