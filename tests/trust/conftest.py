"""What the trust tests share: a small world served by the sandbox, and a black-box picture of
what a run leaves behind (database tables and provincial files) to compare runs with."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from python_calamine import CalamineWorkbook

from pipelines.store import Store
from sandbox.generator import Dataset, generate
from sandbox.server import Sandbox

FAST_PLATFORMS: dict[str, object] = {
    "attempts": 2,
    "initial_wait_seconds": 0.01,
    "max_wait_seconds": 0.05,
    "timeout_seconds": 5.0,
    "max_body_megabytes": 1.0,
}
"""Give up on a platform quickly; refuse bodies over 1 MiB (the sandbox's huge one is 3 MiB)."""

VOLATILE = frozenset(
    {"pulled_at", "first_seen_at", "last_seen_at", "updated_at", "batch_seq", "seen_batch"}
)
"""Columns that say when or in which batch, not what: they differ between equal runs."""
COMPARED_TABLES = {
    "raw_record": ("record_key",),
    "watermark": ("platform", "year"),
    "completion": ("record_key",),
    "hours_bank": ("id_number", "year"),
}


@pytest.fixture(scope="module")
def world() -> Dataset:
    """About 600 record versions over 2017–2022: a few per platform and year."""
    return generate(records=600, seed=21)


@pytest.fixture(scope="module")
def served(world: Dataset) -> Iterator[Sandbox]:
    with Sandbox(world, port=0) as sandbox:
        yield sandbox


@pytest.fixture
def environment(
    served: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> Environment:
    """The sandbox's settings and fresh database, data, output and Dagster folders."""
    for name, value in served.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("XUESHI_DATABASE_URL", database_url)
    monkeypatch.setenv("XUESHI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XUESHI_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("XUESHI_EXECUTOR", "in_process")  # faults are injected into this process
    (tmp_path / "dagster_home").mkdir()
    return Environment(served, database_url, tmp_path / "out")


@dataclass(frozen=True)
class Environment:
    sandbox: Sandbox
    database_url: str
    out: Path

    def tables(self) -> dict[str, pd.DataFrame]:
        return tables(self.database_url)

    def files(self) -> dict[str, object]:
        return files(self.out)


def tables(database_url: str) -> dict[str, pd.DataFrame]:
    """The compared tables, sorted by key, without the columns that only say when."""
    store = Store.from_url(database_url)
    try:
        frames = {name: store.read_table(name) for name in COMPARED_TABLES}
    finally:
        store.dispose()
    return {
        name: frame.drop(columns=[c for c in frame.columns if c in VOLATILE])
        .sort_values(list(COMPARED_TABLES[name]))
        .reset_index(drop=True)
        for name, frame in frames.items()
    }


def assert_same_tables(actual: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame]) -> None:
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(actual[name], frame, check_dtype=False, obj=name)


def files(out: Path) -> dict[str, object]:
    """Every provincial file: workbooks by their cells, anything else by its bytes' hash."""
    found: dict[str, object] = {}
    root = out / "provincial"
    for path in sorted(root.rglob("*")) if root.exists() else []:
        if path.suffix == ".xlsx":
            book = CalamineWorkbook.from_path(str(path))
            found[str(path.relative_to(root))] = [
                book.get_sheet_by_name(name).to_python() for name in book.sheet_names
            ]
        elif path.is_file():
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found
