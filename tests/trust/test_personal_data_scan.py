"""No full ID number of the data anywhere people or tools read (C6), after a sync with every
fault on and one platform answering nonsense: CLI output, logs, error messages, the Dagster
event log and run config, GX results and Data Docs. Outputs stay out of the source checkout."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from pipelines.cli import main
from sandbox.generator import Dataset, generate
from sandbox.server import Sandbox
from schemas.platforms import PLATFORM_CODES

REPOSITORY = Path(__file__).resolve().parents[2]
CANDIDATE = re.compile(r"(?<![0-9])([0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9Xx])")
SKIPPED = frozenset({".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"})
PERSONAL_FILES = frozenset({".xlsx", ".db", ".db-wal", ".db-shm"})
"""The provincial workbooks carry full ID numbers by design, as does the database."""


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(records=1_000, seed=31)


@pytest.fixture
def data_ids(dataset: Dataset) -> frozenset[str]:
    ids: set[str] = set()
    for code in PLATFORM_CODES:
        for raw in dataset.served(code, 0)["raw_id"].dropna().astype(str):
            ids.update(match.upper() for match in CANDIDATE.findall(raw))
    return frozenset(ids)


@pytest.fixture
def logs() -> Iterator[list[str]]:
    """Every log record of the process, formatted, whatever its logger or level."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect(level=logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    yield lines
    root.removeHandler(handler)


def checkout_files() -> set[Path]:
    """The files of the source checkout, without the caches and tools' folders."""
    found: set[Path] = set()
    for folder, folders, names in os.walk(REPOSITORY):
        folders[:] = [f for f in folders if f not in SKIPPED]
        found.update(Path(folder) / name for name in names)
    return found


def leaked(text: str, ids: frozenset[str]) -> set[str]:
    return {m.upper() for m in CANDIDATE.findall(text)} & ids


def test_a_faulty_sync_leaks_no_id_number_of_the_data(
    dataset: Dataset,
    data_ids: frozenset[str],
    logs: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert len(data_ids) > 50
    checkout = checkout_files()
    monkeypatch.setenv("XUESHI_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("XUESHI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XUESHI_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    with Sandbox(dataset, port=0, faults="all;retry_after=0;slow=0.1", seed=5) as sandbox:
        for name, value in sandbox.env().items():
            monkeypatch.setenv(name, value)
        sandbox.malform("yt_sdbc", "missing_header")
        code = main(["backfill", "--years", "2021-2022"])
    printed = capsys.readouterr()
    assert code == 1  # yt_sdbc answered nonsense
    assert "[yt_sdbc]" in printed.err

    instance = dg.DagsterInstance.get()
    [run] = instance.get_runs()
    events = "\n".join(repr(entry) for entry in instance.all_logs(run.run_id))
    assert "preview" in events  # the masked previews are in there
    scanned = {
        "CLI output": printed.out + printed.err,
        "logs": "\n".join(logs),
        "Dagster event log": events,
        "run config": repr(run.run_config) + repr(run.tags),
    }
    outputs = [tmp_path / "data", tmp_path / "out"]
    for path in (p for folder in outputs for p in folder.rglob("*") if p.is_file()):
        if path.suffix not in PERSONAL_FILES and "dagster_home" not in path.parts:
            scanned[str(path.relative_to(tmp_path))] = path.read_text("utf-8", errors="replace")
    assert any("data_docs" in name for name in scanned)
    assert {name: sorted(leaked(text, data_ids)) for name, text in scanned.items()} == {
        name: [] for name in scanned
    }
    assert checkout_files() == checkout
