"""The pull runner: a platform code and a window in, raw-schema batches out.

It looks the platform's spec up, builds its client from the environment (or what the caller
passes, e.g. a sandbox's settings or a mock transport) and hands both to the family's engine.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import ExitStack
from queue import Full, Queue
from types import MappingProxyType
from typing import Any, TypeVar

import httpx
import pandas as pd

from connectors.core import (
    Batch,
    Engine,
    PlatformClient,
    Progress,
    PullRequest,
    RetryPolicy,
    Settings,
    settings_for,
)
from connectors.engines import huaxue, lllnet, spa, treewises, tyjrp, yx, zjp
from schemas.platforms import load_specs
from schemas.raw import empty

log = logging.getLogger("xueshi.connectors")
DEFAULT_RETRY = RetryPolicy()

ENGINES: Mapping[str, Engine] = MappingProxyType(
    {
        "yx": yx.pull,
        "zjp": zjp.pull,
        "tyjrp": tyjrp.pull,
        "treewises": treewises.pull,
        "lllnet": lllnet.pull,
        "spa": spa.pull,
        "huaxue": huaxue.pull,
    }
)


PROGRESS_SECONDS = 10.0
"""At most one progress message per this many seconds per pull, plus a summary at its end."""


class Throttled:
    """Progress for a caller whose messages cost (Dagster's event log): engines report every
    page, this passes at most one message per `interval` seconds, then `summary` closes the pull.
    """

    def __init__(
        self, progress: Progress, interval: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._progress = progress
        self._interval = interval
        self._clock = clock
        self._next = -math.inf
        self.started = clock()

    def __call__(self, message: str) -> None:
        now = self._clock()
        if now >= self._next:
            self._next = now + self._interval
            self._progress(message)

    def summary(self, message: str) -> None:
        self._progress(f"{message} in {self._clock() - self.started:.1f} s")


def client_for(
    code: str,
    *,
    settings: Settings | None = None,
    transport: httpx.BaseTransport | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> PlatformClient:
    """A client for `code` that a caller pulling several years can pass to each `pull`.

    One client means one connection pool for all of them; close it (or use it as a context
    manager) when done.
    """
    return PlatformClient(code, settings or settings_for(code), retry=retry, transport=transport)


def pull(
    code: str,
    request: PullRequest,
    *,
    settings: Settings | None = None,
    transport: httpx.BaseTransport | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    progress: Progress | None = None,
    progress_seconds: float = PROGRESS_SECONDS,
    client: PlatformClient | None = None,
) -> Iterator[Batch]:
    """Batches of `code`'s records in the request's window, each with its watermark.

    `client` (from `client_for`) is used and left open; without one, a client is built from
    `settings`/`transport`/`retry` for this pull and closed after it. `progress` gets at most
    one message per `progress_seconds` and a summary line when the pull ends.
    """
    specs = load_specs()
    if code not in specs:
        raise KeyError(f"unknown platform {code!r}; known: {', '.join(specs)}")
    spec = specs[code]
    engine = ENGINES[spec.family]
    throttled = Throttled(progress or _log_progress, progress_seconds)
    with ExitStack() as stack:
        if client is None:
            client = stack.enter_context(
                client_for(code, settings=settings, transport=transport, retry=retry)
            )
        requests, retries = client.requests, client.retries
        records = batches = 0
        for batch in engine(spec, client, request, throttled):
            records += len(batch.records)
            batches += 1
            yield batch
        throttled.summary(
            f"{code} {request.year}: {records} records in {batches} batches,"
            f" {client.requests - requests} requests ({client.retries - retries} retried)"
        )


T = TypeVar("T")
READ_AHEAD = 8
"""Pages a pull may run ahead of the step that stores them."""
_POLL_SECONDS = 0.1


def read_ahead(pages: Generator[T, None, None], depth: int = READ_AHEAD) -> Iterator[T]:
    """`pages` produced by a thread at most `depth` pages ahead of the caller: a pull's next page
    travels while the last is stored (the platform's server, the parse and the database each
    wait less on the others), the provincial files' next batch is read while the last is
    written. An error of the producer is raised here, in order; a caller that stops early stops
    it and closes it (a pull's client with it)."""
    queue: Queue[tuple[bool, T | BaseException | None]] = Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[bool, T | BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=_POLL_SECONDS)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for page in pages:
                if not put((False, page)):
                    return
            put((True, None))
        except BaseException as error:  # handed to the caller's thread, raised there
            put((True, error))
        finally:
            pages.close()

    thread = threading.Thread(target=produce, name="xueshi-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            done, item = queue.get()  # the thread always ends by putting `done`
            if done:
                if isinstance(item, BaseException):
                    raise item
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()


def _log_progress(message: str) -> None:
    log.info("%s", message)


def pull_frame(code: str, year: int, **kwargs: Any) -> pd.DataFrame:
    """A whole year's records without a watermark, one row per source key (the last one wins)."""
    frames = [batch.records for batch in pull(code, PullRequest.for_year(year), **kwargs)]
    if not frames:
        return empty()
    frame = pd.concat(frames, ignore_index=True)
    return frame.drop_duplicates("source_key", keep="last", ignore_index=True)
