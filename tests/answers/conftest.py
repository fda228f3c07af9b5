"""A database holding the rules' outputs for a small generated dataset, and its ground truth."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import dagster as dg
import pandas as pd
import pytest

from pipelines.refresh import refresh_outputs
from pipelines.rules import RulesResult, apply_rules
from pipelines.store import Store
from sandbox.generator import Dataset, Truth, generate
from schemas.raw import RAW_COLUMNS, TZ
from tests.conftest import fresh_postgres


@pytest.fixture(scope="session")
def dataset() -> Dataset:
    return generate(records=600, seed=11)


@pytest.fixture(scope="session")
def truth(dataset: Dataset) -> Truth:
    return dataset.truth()


@pytest.fixture(scope="session")
def raw(dataset: Dataset) -> pd.DataFrame:
    records = dataset.records.loc[dataset.records["epoch"].eq(0)]  # as the truth's epoch 0
    pulled = pd.Timestamp("2026-01-01", tz=TZ) + pd.to_timedelta(range(len(records)), unit="us")
    return records.assign(pulled_at=pulled, payload="{}")[list(RAW_COLUMNS)]


@pytest.fixture(scope="session")
def result(raw: pd.DataFrame) -> RulesResult:
    return apply_rules(raw, as_of=pd.Timestamp.now(tz=TZ))


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def stored_url(
    request: pytest.FixtureRequest, raw: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database of each engine holding the records and their outputs, made once per module:
    the tests here read it (the title asset writes its verdicts, which nothing else reads)."""
    with ExitStack() as stack:
        if request.param == "postgres":
            admin = request.getfixturevalue("postgres_admin_url")
            url = stack.enter_context(fresh_postgres(admin))
        else:
            url = f"sqlite:///{tmp_path_factory.mktemp('answers') / 'xueshi.db'}"
        stack.callback(load(url, raw).dispose)
        yield url


def load(url: str, raw: pd.DataFrame) -> Store:
    """The records stored and their outputs computed, as a first backfill leaves them."""
    loaded = Store.from_url(url)
    loaded.migrate()
    for (platform, year), batch in raw.groupby(["platform", "pull_year"]):
        loaded.store_batch(str(platform), int(year), batch, {"done": True})
    refresh_outputs(loaded, full=True)
    return loaded


@pytest.fixture
def database_url(stored_url: str) -> str:
    return stored_url


@pytest.fixture
def store(stored_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """The stored database, which `XUESHI_DATABASE_URL` now names."""
    monkeypatch.setenv("XUESHI_DATABASE_URL", stored_url)
    opened = Store.from_url(stored_url)
    yield opened
    opened.dispose()


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    """One Dagster instance for a module's runs: the title asset takes the write lease, and the
    next run finds the holder's run finished there."""
    with dg.DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral
