"""A database holding the rules' outputs for a small generated dataset, and its ground truth."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

from pipelines.refresh import refresh_outputs
from pipelines.rules import RulesResult, apply_rules
from pipelines.store import Store
from sandbox.generator import Dataset, Truth, generate
from schemas.raw import RAW_COLUMNS, TZ


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


@pytest.fixture
def store(database_url: str, raw: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """The records stored and refreshed in the database `XUESHI_DATABASE_URL` now names."""
    monkeypatch.setenv("XUESHI_DATABASE_URL", database_url)
    loaded = Store.from_url(database_url)
    loaded.migrate()
    for (platform, year), batch in raw.groupby(["platform", "pull_year"]):
        loaded.store_batch(str(platform), int(year), batch, {"done": True})
    refresh_outputs(loaded, full=True)
    yield loaded
    loaded.dispose()
