"""The benchmark at a tiny size: it runs end to end and writes every stage, figure and ratio.

One run (2,000 records, SQLite, years 2022 to now) in a subprocess, since the benchmark sets
the process environment (database URL, DAGSTER_HOME, platform settings) as the CLI would.
Nothing here judges speed: the figures are the benchmark's output, not a test's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from benchmarks.measure import STAGES

ROOT = Path(__file__).resolve().parents[2]
RATIOS = {
    "pipeline_over_floor",
    "one_process_over_floor",
    "pipeline_over_peer",
    "raw_ingest_over_peer",
    "incremental_over_full",
    "night_over_full",
    "seconds_per_million",
    "shard_speedup",
}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, postgres_admin_url: str) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    command = [sys.executable, "-m", "benchmarks.run", "--records", "2000"]
    command += ["--engines", "sqlite", "--first-year", "2022", "--out-dir", str(out / "results")]
    command += ["--work-dir", str(out / "work"), "--postgres-admin-url", postgres_admin_url]
    command += ["--database", f"xueshi_bench_{uuid.uuid4().hex[:12]}"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    (written,) = (out / "results").glob("*-2000.json")
    return json.loads(written.read_text())


@pytest.mark.postgres
def test_full_and_incremental_runs_report_every_stage(report: dict[str, Any]) -> None:
    runs = report["engines"]["sqlite"]
    for kind in ("full", "night", "incremental"):
        stages = runs[kind]["stages"]
        assert tuple(stages) == STAGES
        assert all(s["seconds"] >= 0 and s["peak_mb"] > 0 for s in stages.values())
        assert runs[kind]["records"] > 0


@pytest.mark.postgres
def test_the_full_run_is_run_again_with_a_process_per_step(report: dict[str, Any]) -> None:
    runs = report["engines"]["sqlite"]
    parallel = runs["parallel"]
    assert parallel["executor"] == "multiprocess"
    assert parallel["records"] == runs["full"]["records"]
    assert set(parallel["steps"]) >= {"raw_yt_ytec", "provincial_files"}
    assert 0 < parallel["peak_mb"] <= parallel["peak_mb_all_processes"]


@pytest.mark.postgres
def test_every_ratio_is_reported_against_floor_peer_and_full_run(report: dict[str, Any]) -> None:
    ratios = report["ratios"]["sqlite"]
    assert set(ratios) == RATIOS
    assert all(value > 0 for value in ratios.values())


@pytest.mark.postgres
def test_peer_loads_the_records_the_floor_fetches_from_the_same_platforms(
    report: dict[str, Any],
) -> None:
    fetched = report["floor"]["fetch_records_by_platform"]
    peer = report["peer"]
    assert peer["records"] == sum(fetched[code] for code in peer["platforms"])
