"""The pull runner: a platform code and a window in, raw-schema batches out.

It looks the platform's spec up, builds its client from the environment (or what the caller
passes, e.g. a sandbox's settings or a mock transport) and hands both to the family's engine.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

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
from connectors.specs import load_specs
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


def pull(
    code: str,
    request: PullRequest,
    *,
    settings: Settings | None = None,
    transport: httpx.BaseTransport | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    progress: Progress | None = None,
) -> Iterator[Batch]:
    """Batches of `code`'s records in the request's window, each with its watermark."""
    specs = load_specs()
    if code not in specs:
        raise KeyError(f"unknown platform {code!r}; known: {', '.join(specs)}")
    spec = specs[code]
    engine = ENGINES[spec.family]
    with PlatformClient(
        code, settings or settings_for(code), retry=retry, transport=transport
    ) as client:
        yield from engine(spec, client, request, progress or _log_progress)


def _log_progress(message: str) -> None:
    log.info("%s", message)


def pull_frame(code: str, year: int, **kwargs: Any) -> pd.DataFrame:
    """A whole year's records without a watermark, one row per source key (the last one wins)."""
    frames = [batch.records for batch in pull(code, PullRequest.for_year(year), **kwargs)]
    if not frames:
        return empty()
    frame = pd.concat(frames, ignore_index=True)
    return frame.drop_duplicates("source_key", keep="last", ignore_index=True)
