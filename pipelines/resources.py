"""Dagster resources: the database, the platforms and the output folder, from the environment.

Empty fields mean "ask the environment at run time", so one Definitions object serves the demo,
the tests and production without module-level state.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from connectors.core import Batch, Progress, PullRequest, RetryPolicy
from connectors.pull import pull, read_ahead
from pipelines.crash import store_progress
from pipelines.locks import WAIT_SECONDS, acquire
from pipelines.store import Store, default_database_url


def data_dir() -> Path:
    """The project's data folder (`XUESHI_DATA_DIR`, default `./data`), created on demand."""
    path = Path(os.environ.get("XUESHI_DATA_DIR", "data")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


class Database(dg.ConfigurableResource):
    """The SQL database every asset reads and writes (`XUESHI_DATABASE_URL`, default SQLite).

    One store per run step: migrated once when the step starts, disposed when it ends.
    """

    url: str = ""
    lock_wait_seconds: float = WAIT_SECONDS
    """How long a run's writing step waits for another run's writes before it refuses."""
    _store: Store | None = PrivateAttr(default=None)

    def resolved_url(self) -> str:
        return self.url or os.environ.get("XUESHI_DATABASE_URL") or default_database_url()

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._store = Store.from_url(self.resolved_url(), progress=store_progress)
        self._store.migrate()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._store is not None:
            self._store.dispose()
            self._store = None

    def store(self) -> Store:
        if self._store is None:
            self.setup_for_execution(dg.build_init_resource_context())
        return self._store

    def hold_writes(self, context: dg.OpExecutionContext) -> Store:
        """The store, once this run holds the write lease (`pipelines.locks`): two runs never
        interleave their writes."""
        instance = context.instance

        def finished(run_id: str) -> bool:
            run = instance.get_run_by_id(run_id)
            return run is not None and run.is_finished

        store = self.store()
        acquire(store, context.run.run_id, finished=finished, wait_seconds=self.lock_wait_seconds)
        return store


class Platforms(dg.ConfigurableResource):
    """HTTP access to the ten platforms; their URLs and credentials come from `XUESHI_<CODE>_*`."""

    attempts: int = 8
    initial_wait_seconds: float = 0.5
    max_wait_seconds: float = 30.0
    timeout_seconds: float = 30.0
    retry_after_ceiling_seconds: float = 300.0
    """A 429's Retry-After is honored up to this; a longer one fails the platform."""
    max_body_megabytes: float = 256.0
    """A response body larger than this is refused (far more than any page or export)."""

    def pull(self, code: str, request: PullRequest, progress: Progress) -> Iterator[Batch]:
        retry = RetryPolicy(
            attempts=self.attempts,
            initial_wait=self.initial_wait_seconds,
            max_wait=self.max_wait_seconds,
            timeout=self.timeout_seconds,
            retry_after_ceiling=self.retry_after_ceiling_seconds,
            max_body_bytes=int(self.max_body_megabytes * 2**20),
        )
        return read_ahead(pull(code, request, retry=retry, progress=progress))


class ProvincialOutput(dg.ConfigurableResource):
    """Where the provincial import files go (`XUESHI_OUTPUT_DIR`, default the data folder)."""

    output_dir: str = ""

    def path(self) -> Path:
        configured = self.output_dir or os.environ.get("XUESHI_OUTPUT_DIR")
        path = Path(configured).resolve() if configured else data_dir()
        path.mkdir(parents=True, exist_ok=True)
        return path


class FormsFolder(dg.ConfigurableResource):
    """Where units upload their registration forms (`XUESHI_FORMS_DIR`, default
    `forms/` under the data folder): `<year>/<unit>.xlsx` and `<year>/备案登记.xlsx`."""

    forms_dir: str = ""

    def path(self) -> Path:
        configured = self.forms_dir or os.environ.get("XUESHI_FORMS_DIR")
        return Path(configured).resolve() if configured else data_dir() / "forms"
