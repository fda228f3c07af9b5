"""Family huaxue: the whole year as one CSV snapshot, HTTP Basic auth.

There is no incremental filter: every pull reads the full snapshot, and a record of the previous
snapshot (`request.known_keys`) missing from this one was withdrawn.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pandas as pd

from connectors import decode, frames
from connectors.core import Batch, PlatformClient, Progress, PullRequest
from schemas.platforms import PlatformSpec
from schemas.raw import TZ


def pull(
    spec: PlatformSpec,
    client: PlatformClient,
    request: PullRequest,
    progress: Progress,
) -> Iterator[Batch]:
    """One batch: the snapshot's records, then a withdrawal for every known key gone from it."""
    options = spec.options
    response = decode.fetch(
        client,
        "GET",
        options["path"],
        params={"year": str(request.year)},
        auth=httpx.BasicAuth(client.settings.key, client.settings.secret),
    )
    text = decode.decode_text(client, response, options["charset"])
    wire = decode.read_csv(client, response, text, options["header"], set())
    pulled_at = pd.Timestamp.now(tz=TZ)
    records = decode.raw_records(
        spec, wire, decode.map_fields(wire, options), pulled_at=pulled_at, pull_year=request.year
    )
    gone = sorted((request.known_keys or frozenset()) - set(records["source_key"]))
    withdrawn = frames.raw_frame(
        {"source_key": gone, "withdrawn": [True] * len(gone)},
        platform=spec.code,
        pulled_at=pulled_at,
        pull_year=request.year,
    )
    progress(f"{spec.code} {request.year}: {len(records)} records, {len(gone)} withdrawn")
    batch = pd.concat([records, withdrawn], ignore_index=True) if gone else records
    yield Batch(batch, {"snapshot_rows": len(wire)})
