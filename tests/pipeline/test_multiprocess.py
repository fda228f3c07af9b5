"""A backfill on SQLite with a process per step, as many at once as there are cores: the raw
steps take turns at SQLite's one writer and leave the same database as a run in one process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.generator import generate
from sandbox.server import Sandbox
from tests.pipeline.test_celery import assert_same, backfill, outputs


@pytest.fixture
def environment(tmp_path: Path) -> Iterator[dict[str, str]]:
    with Sandbox(generate(records=400, seed=23), port=0) as sandbox:
        yield {
            **os.environ,
            **sandbox.env(),
            "XUESHI_DATA_DIR": str(tmp_path / "data"),
            "XUESHI_OUTPUT_DIR": str(tmp_path / "out"),
        }


def backfill_into(env: dict[str, str], executor: str, folder: Path) -> str:
    url = f"sqlite:///{folder / 'xueshi.db'}"
    backfill(env, url, executor, str(folder / "dagster_home"), years="2020-2022")
    return url


def test_a_multiprocess_backfill_on_sqlite_equals_one_in_a_single_process(
    environment: dict[str, str], tmp_path: Path
) -> None:
    parallel = backfill_into(environment, "multiprocess", tmp_path / "parallel")
    single = backfill_into(environment, "in_process", tmp_path / "single")

    found = outputs(parallel)
    assert len(found["completion"]) > 0
    assert_same(found, outputs(single))
