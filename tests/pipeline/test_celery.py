"""Distributed runs: the sync job's steps on two Celery workers (Redis broker, PostgreSQL store)
leave the same database as a run in one process, also when a worker dies mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from pipelines.store import Store
from sandbox.generator import Dataset, generate
from sandbox.server import Sandbox

REDIS_URL = os.environ.get("XUESHI_TEST_REDIS_URL", "redis://127.0.0.1:6379")
COMPARED = ("completion", "hours_bank", "name_conflict")
SEEN = ["first_seen_at", "last_seen_at"]
RUN_SECONDS = 900

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def redis_url() -> str:
    """A Redis database per test process (dagster-celery fixes the queue's name)."""
    import redis

    try:
        redis.Redis.from_url(f"{REDIS_URL}/0", socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {REDIS_URL} is required under CI: {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    return f"{REDIS_URL}/{11 + int(worker)}"


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(records=400, seed=21)


@pytest.fixture
def environment(
    dataset: Dataset, redis_url: str, tmp_path: Path, postgres_url: str
) -> Iterator[dict[str, str]]:
    """What the launcher and the workers share: settings, the Dagster instance, the sandbox."""
    with Sandbox(dataset, port=0) as sandbox:
        config = tmp_path / "celery_config"
        config.mkdir()
        (config / "dagster_celery_config.py").write_text(
            f"broker_url = '{redis_url}'\nresult_backend = '{redis_url}'\n"
        )
        env = {
            **os.environ,
            **sandbox.env(),
            "XUESHI_DATABASE_URL": postgres_url,
            "XUESHI_DATA_DIR": str(tmp_path / "data"),
            "DAGSTER_HOME": str(tmp_path / "dagster_home"),
            "XUESHI_EXECUTOR": "celery",
            "XUESHI_CELERY_BROKER": redis_url,
            "XUESHI_CELERY_BACKEND": redis_url,
            "PYTHONPATH": str(config),
        }
        import redis

        redis.Redis.from_url(redis_url).flushdb()
        yield env


def worker(env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "celery", "-A", "dagster_celery.app", "worker"]
    command += ["-Q", "dagster", "-n", f"{name}@%h", "--concurrency", "1", "--loglevel", "WARNING"]
    return subprocess.Popen(command, env=env, start_new_session=True)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def sync(env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "pipelines.cli", "--attempts", "3", "backfill"]
    return subprocess.Popen([*command, "--years", "2021-2022"], env=env, start_new_session=True)


def outputs(url: str) -> dict[str, pd.DataFrame]:
    store = Store.from_url(url)
    try:
        tables = {n: store.read_table(n).drop(columns=SEEN, errors="ignore") for n in COMPARED}
        return {**tables, "d4": store.state_counts()}
    finally:
        store.dispose()


def backfill(
    env: dict[str, str], url: str, executor: str, home: str, years: str = "2021-2022"
) -> None:
    """`xueshi backfill` of `years` into `url` with `executor`, run to its end."""
    settings = {"XUESHI_DATABASE_URL": url, "XUESHI_EXECUTOR": executor, "DAGSTER_HOME": home}
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "backfill", "--years", years],
        env={**env, **settings},
        timeout=RUN_SECONDS,
        capture_output=True,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]


def in_process_outputs(env: dict[str, str], url: str) -> dict[str, pd.DataFrame]:
    backfill(env, url, "in_process", env["DAGSTER_HOME"] + "_local")
    return outputs(url)


def assert_same(left: dict[str, pd.DataFrame], right: dict[str, pd.DataFrame]) -> None:
    for name in left:
        pd.testing.assert_frame_equal(left[name], right[name], obj=name)


@pytest.fixture
def second_database(postgres_admin_url: str) -> Iterator[str]:
    import psycopg

    name = f"xueshi_test_local_{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_run_on_two_celery_workers_equals_a_run_in_one_process(
    environment: dict[str, str], second_database: str
) -> None:
    workers = [worker(environment, "one"), worker(environment, "two")]
    run = sync(environment)
    try:
        assert run.wait(timeout=RUN_SECONDS) == 0
    finally:
        for process in [run, *workers]:
            stop(process)

    distributed = outputs(environment["XUESHI_DATABASE_URL"])
    assert len(distributed["completion"]) > 0
    assert_same(distributed, in_process_outputs(environment, second_database))


def test_a_run_whose_worker_dies_converges_when_run_again(
    environment: dict[str, str], second_database: str
) -> None:
    doomed = worker(environment, "doomed")
    run = sync(environment)
    try:
        store = Store.from_url(environment["XUESHI_DATABASE_URL"])
        deadline = time.monotonic() + RUN_SECONDS
        while time.monotonic() < deadline and run.poll() is None:
            if _stored(store) > 0:
                break
            time.sleep(0.2)
        store.dispose()
        stop(doomed)  # mid-step: some records stored, the run not finished
        assert run.poll() is None, "the run ended before the worker could be killed"
    finally:
        stop(run)

    abandon(environment)
    survivor = worker(environment, "survivor")
    again = sync(environment)
    try:
        assert again.wait(timeout=RUN_SECONDS) == 0
    finally:
        for process in (again, survivor):
            stop(process)

    assert_same(
        outputs(environment["XUESHI_DATABASE_URL"]),
        in_process_outputs(environment, second_database),
    )


def abandon(env: dict[str, str]) -> None:
    """What an operator does after a run's launcher and a worker died: mark the run failed
    (the UI's "terminate"; it frees the write lease) and purge its tasks left in the queue, so
    no worker picks up a step of a run nobody waits for."""
    import dagster as dg
    import redis
    from dagster._core.instance.ref import InstanceRef

    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(env["DAGSTER_HOME"]))
    try:
        for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
            instance.report_run_failed(run)
    finally:
        instance.dispose()
    redis.Redis.from_url(env["XUESHI_CELERY_BROKER"]).flushdb()


def _stored(store: Store) -> int:
    try:
        return store.row_count("raw_record")
    except Exception:  # the first step has not created the tables yet
        return 0
