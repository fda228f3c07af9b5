"""Nights alone at a tiny size, on both engines: a history built once, a night on a copy of it.

Each command runs in a subprocess, since the benchmark sets the process environment as the CLI
would. Nothing here judges speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.measure import STAGES
from benchmarks.run import drop_database

ROOT = Path(__file__).resolve().parents[2]
RECORDS = 2_000


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def nights(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, Any], ...]]:
    """A build and two nights from it: what each printed."""
    admin = request.getfixturevalue("postgres_admin_url") if request.param == "postgresql" else ""
    folder = tmp_path_factory.mktemp("nights") / "night"
    database = f"xueshi_nights_{uuid.uuid4().hex[:12]}"
    command = [sys.executable, "-m", "benchmarks.nights", "--records", str(RECORDS)]
    command += ["--folder", str(folder), "--engine", request.param, "--database", database]
    if admin:
        command += ["--postgres-admin-url", admin]
    try:
        yield tuple(_printed([*command, action]) for action in ("build", "night", "night"))
    finally:
        if admin:
            for name in (database, f"{database}_history"):
                drop_database(admin, name)


def _printed(command: list[str]) -> dict[str, Any]:
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout[done.stdout.index("\n{") + 1 :])


def test_a_night_is_timed_stage_by_stage_after_its_history_is_built(
    nights: tuple[dict[str, Any], ...],
) -> None:
    built, night, _ = nights
    assert built["records"] > 0 and Path(built["history"]).is_dir()
    assert tuple(night["stages"]) == STAGES
    assert night["records_pulled"] > 0
    assert set(night["steps"]) >= {"raw_yt_ytec", "provincial_files"}


def test_every_night_starts_from_the_history_as_built(
    nights: tuple[dict[str, Any], ...],
) -> None:
    _, first, second = nights
    assert second["records_pulled"] == first["records_pulled"]
