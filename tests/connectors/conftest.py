"""Fixtures for connector tests: clients over `httpx.MockTransport`, specs with test options,
and an in-process sandbox serving a small generated dataset over real HTTP."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pandas as pd
import pytest

from connectors.core import (
    PlatformClient,
    RetryPolicy,
)
from sandbox.generator import Dataset, generate
from sandbox.server import Sandbox
from schemas.platforms import PlatformSpec, load_specs
from schemas.raw import RAW_DTYPES
from tests.connectors.clients import offline_client

Handler = Callable[[httpx.Request], httpx.Response]

SANDBOX_SEED = 11
SANDBOX_RETRIES = RetryPolicy(attempts=8, initial_wait=0.01, max_wait=1.0, timeout=0.5)
"""Fast backoff, and a read timeout the sandbox's slow fault (1 s in `FAST_FAULTS`) exceeds."""
FAST_FAULTS = "slow=1;retry_after=0.2"
"""Fault timings scaled for tests: stalls still outlast the read timeout, Retry-Afters are short."""
COMPARED = [c for c in RAW_DTYPES if c not in ("source_key", "payload", "pulled_at")]


class Sleeps(list[float]):
    """Records the waits a client asked for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def mock_client(sleeps: Sleeps) -> Callable[..., PlatformClient]:
    """`mock_client(code, handler)`: a client of `code` whose requests `handler` answers."""

    def build(code: str, handler: Handler) -> PlatformClient:
        return offline_client(code, handler, sleep=sleeps, host="platform.test", port=80)

    return build


@pytest.fixture
def spec_with() -> Callable[..., PlatformSpec]:
    """`spec_with(code, **options)`: the spec with some options replaced (e.g. a page size)."""

    def build(code: str, **options: Any) -> PlatformSpec:
        spec = load_specs()[code]
        return dataclasses.replace(spec, options={**spec.options, **options})

    return build


@pytest.fixture(scope="session")
def dataset() -> Dataset:
    """A small generated world (about 3,000 record versions over 2017–2022), built once."""
    return generate(records=3_000, seed=SANDBOX_SEED)


@pytest.fixture
def sandbox(dataset: Dataset) -> Iterator[Callable[..., Sandbox]]:
    """`sandbox(faults="none", **options)`: a started sandbox on an ephemeral loopback port,
    its fault timings scaled for tests (`FAST_FAULTS`)."""
    with ExitStack() as stack:

        def start(faults: str = "none", **kwargs: Any) -> Sandbox:
            spec = f"{faults};{FAST_FAULTS}"
            served = Sandbox(dataset, port=0, faults=spec, seed=SANDBOX_SEED, **kwargs)
            return stack.enter_context(served)

        yield start


@pytest.fixture
def sandbox_client() -> Iterator[Callable[[Sandbox, str], PlatformClient]]:
    """`sandbox_client(sandbox, code)`: a client of `code` talking to the sandbox."""
    with ExitStack() as stack:

        def build(served: Sandbox, code: str) -> PlatformClient:
            client = PlatformClient(code, served.settings(code), retry=SANDBOX_RETRIES)
            return stack.enter_context(client)

        yield build


@pytest.fixture
def same_records() -> Callable[[pd.DataFrame, pd.DataFrame], None]:
    """`same_records(pulled, served)` asserts a pull returned exactly the served records."""
    return _assert_same_records


def _assert_same_records(pulled: pd.DataFrame, served: pd.DataFrame) -> None:
    """The pull returned exactly the served records: same keys, no duplicates, same values
    column by column (except `payload` and `pulled_at`, which only the connector knows)."""
    assert not pulled["source_key"].duplicated().any()
    assert sorted(pulled["source_key"]) == sorted(served["source_key"])
    expected = served.astype({c: RAW_DTYPES[c] for c in COMPARED}).set_index("source_key")
    actual = pulled.set_index("source_key").loc[expected.index]
    pd.testing.assert_frame_equal(actual[COMPARED], expected[COMPARED], check_index_type=False)
