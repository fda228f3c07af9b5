"""One run writes at a time: a lease row in the database, keyed by run id (issue 13).

Steps of a run may run in separate processes (the multiprocess executor), so a lock held by one
Python process for the whole run is not enough. Instead every writing step takes the lease for
its run before it writes: the first step takes it, later steps of the same run find it theirs
(re-entrant), and a step of another run waits up to a bound, then refuses with a message naming
the holder. The lease is released when the run ends, and counts as free when its holder is
gone: the Dagster instance says the run finished, or its process (on this host) is dead, or it
was not renewed for `STALE_SECONDS`.

Taking the lease is one short transaction, serialized by the database: a PostgreSQL advisory
transaction lock, SQLite's write lock (`BEGIN IMMEDIATE`).
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
from sqlalchemy import Row

from pipelines.store import Store
from schemas.tables import TABLES

LEASE = "writes"
ADVISORY_KEY = 7_873_657_368
"""The PostgreSQL advisory lock taken while the lease row is read and written."""
WAIT_SECONDS = 600.0
POLL_SECONDS = 1.0
STALE_SECONDS = 6 * 3600.0


@dataclass(frozen=True)
class Holder:
    run_id: str
    host: str
    pid: int
    acquired_at: datetime
    renewed_at: datetime

    def describe(self) -> str:
        return (
            f"run {self.run_id} (process {self.pid} on {self.host}, "
            f"writing since {self.acquired_at:%Y-%m-%d %H:%M:%S %Z})"
        )


class LeaseHeld(RuntimeError):
    """Another run holds the write lease and did not release it in time."""

    def __init__(self, holder: Holder, waited: float) -> None:
        self.holder = holder
        super().__init__(
            f"another run is writing: {holder.describe()} holds the write lease; waited "
            f"{waited:g} s. Run again when it has finished (`dagster run list`, or the runs "
            f"page of the UI), or raise Database lock_wait_seconds to wait longer."
        )


def run_process() -> int:
    """The process that runs the run: this one, or the parent of a multiprocess executor's step
    process (alive for the whole run, while step processes come and go)."""
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None and parent.pid is not None else os.getpid()


def process_alive(pid: int) -> bool:
    """Whether `pid` runs on this host (a zombie, killed but not yet reaped, does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def acquire(
    store: Store,
    run_id: str,
    *,
    finished: Callable[[str], bool] = lambda run_id: False,
    wait_seconds: float = WAIT_SECONDS,
    poll_seconds: float = POLL_SECONDS,
    stale_seconds: float = STALE_SECONDS,
    pid: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Take or renew the write lease for `run_id`; raise `LeaseHeld` after `wait_seconds`.

    `finished(run_id)` says whether another holder's run has ended (the Dagster instance).
    """
    pid = run_process() if pid is None else pid
    started = time.monotonic()
    while True:
        holder = _take(store, run_id, pid, finished, stale_seconds)
        if holder is None:
            return
        waited = time.monotonic() - started
        if waited >= wait_seconds:
            raise LeaseHeld(holder, round(waited, 1))
        sleep(min(poll_seconds, max(wait_seconds - waited, 0.0)))


def release(store: Store, run_id: str) -> None:
    """Give the lease back, if `run_id` holds it."""
    table = TABLES["run_lease"]
    with store.transaction(lock=ADVISORY_KEY) as conn:
        conn.execute(table.delete().where(table.c.name == LEASE, table.c.run_id == run_id))


def holder(store: Store) -> Holder | None:
    """Who holds the lease now (stale or not)."""
    table = TABLES["run_lease"]
    with store.engine.connect() as conn:
        row = conn.execute(table.select().where(table.c.name == LEASE)).one_or_none()
    return None if row is None else _holder(row)


def _holder(row: Row[Any]) -> Holder:
    return Holder(row.run_id, row.host, row.pid, row.acquired_at, row.renewed_at)


def _take(
    store: Store,
    run_id: str,
    pid: int,
    finished: Callable[[str], bool],
    stale_seconds: float,
) -> Holder | None:
    """One attempt: None when the lease is now `run_id`'s, else who holds it."""
    table = TABLES["run_lease"]
    now = datetime.now(UTC)
    with store.transaction(lock=ADVISORY_KEY) as conn:
        row = conn.execute(table.select().where(table.c.name == LEASE)).one_or_none()
        current = None if row is None else _holder(row)
        if (
            current is not None
            and current.run_id != run_id
            and _alive(current, finished, now, stale_seconds)
        ):
            return current
        kept = current is not None and current.run_id == run_id
        values = {
            "run_id": run_id,
            "host": socket.gethostname(),
            "pid": pid,
            "acquired_at": current.acquired_at if kept and current is not None else now,
            "renewed_at": now,
        }
        if current is None:
            conn.execute(table.insert().values(name=LEASE, **values))
        else:
            conn.execute(table.update().where(table.c.name == LEASE).values(**values))
    return None


def _alive(
    current: Holder, finished: Callable[[str], bool], now: datetime, stale_seconds: float
) -> bool:
    if finished(current.run_id):
        return False
    if current.host == socket.gethostname() and not process_alive(current.pid):
        return False
    return now - current.renewed_at <= timedelta(seconds=stale_seconds)
