"""A sandbox on loopback and an empty database, data folder and instance for CLI runs."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.generator import Dataset, generate
from sandbox.server import Sandbox


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(records=300, seed=9)


@pytest.fixture
def environment(
    dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Sandbox]:
    monkeypatch.setenv("XUESHI_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("XUESHI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    with Sandbox(dataset, port=0) as sandbox:
        for name, value in sandbox.env().items():
            monkeypatch.setenv(name, value)
        yield sandbox
