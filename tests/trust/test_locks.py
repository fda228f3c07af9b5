"""Two runs never interleave their writes: the write lease of pipelines/locks.py."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import dagster as dg
import pytest

from pipelines.locks import LeaseHeld, acquire, holder, release
from pipelines.runs import launch
from pipelines.store import Store
from tests.trust.conftest import Environment

QUICK = {"wait_seconds": 0.3, "poll_seconds": 0.05}


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_first_run_takes_the_lease_and_later_steps_of_it_renew_it(store: Store) -> None:
    acquire(store, "run-a", **QUICK)
    first = holder(store)
    acquire(store, "run-a", **QUICK)
    renewed = holder(store)
    assert first is not None and renewed is not None
    assert renewed.run_id == "run-a"
    assert renewed.acquired_at == first.acquired_at
    assert renewed.renewed_at >= first.renewed_at


def test_a_second_run_refuses_after_its_wait_naming_the_holder(store: Store) -> None:
    acquire(store, "run-a", pid=os.getpid(), **QUICK)
    with pytest.raises(LeaseHeld, match=r"run run-a \(process \d+ on .*\) holds the write lease"):
        acquire(store, "run-b", **QUICK)
    assert holder(store).run_id == "run-a"


def test_a_second_run_goes_on_once_the_first_releases_during_its_wait(store: Store) -> None:
    acquire(store, "run-a", pid=os.getpid(), **QUICK)
    timer = threading.Timer(0.3, release, (store, "run-a"))
    timer.start()
    acquire(store, "run-b", wait_seconds=10, poll_seconds=0.05)
    timer.join()
    assert holder(store).run_id == "run-b"


def test_a_lease_whose_process_is_gone_is_taken_over(store: Store) -> None:
    acquire(store, "run-a", pid=dead_pid(), **QUICK)
    acquire(store, "run-b", **QUICK)
    assert holder(store).run_id == "run-b"


def test_a_lease_of_a_finished_run_is_taken_over(store: Store) -> None:
    acquire(store, "run-a", pid=os.getpid(), **QUICK)
    acquire(store, "run-b", finished=lambda run_id: run_id == "run-a", **QUICK)
    assert holder(store).run_id == "run-b"


def test_a_lease_not_renewed_for_too_long_is_taken_over(store: Store) -> None:
    acquire(store, "run-a", pid=os.getpid(), **QUICK)
    acquire(store, "run-b", stale_seconds=0.0, **QUICK)
    assert holder(store).run_id == "run-b"


def test_release_by_another_run_leaves_the_lease_alone(store: Store) -> None:
    acquire(store, "run-a", pid=os.getpid(), **QUICK)
    release(store, "run-b")
    assert holder(store).run_id == "run-a"


def test_a_sync_while_another_run_writes_fails_naming_it_and_writes_nothing(
    environment: Environment,
) -> None:
    store = Store.from_url(environment.database_url)
    store.migrate()
    acquire(store, "nightly-run", pid=os.getpid(), **QUICK)
    before = environment.tables()
    outcome = launch(
        [2022],
        ["yt_ytec"],
        instance=dg.DagsterInstance.ephemeral(),
        resources={"database": {"lock_wait_seconds": 0.5}},
    )
    assert not outcome.success
    assert any("run nightly-run" in error and "write lease" in error for error in outcome.errors)
    after = environment.tables()
    assert all(after[name].equals(frame) for name, frame in before.items())
    assert holder(store).run_id == "nightly-run"

    release(store, "nightly-run")
    store.dispose()
    assert launch([2022], ["yt_ytec"], instance=dg.DagsterInstance.ephemeral()).success
