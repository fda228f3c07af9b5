"""Family zjp: CSV exports by completion date, API key, windows of at most a month.

The platform has no record ids and no update times, so a run re-pulls a look-back window
before its watermark (late records appear) and keys records by their natural key.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pandas as pd

from connectors import decode
from connectors.core import Batch, PlatformClient, Progress, PullRequest
from schemas.clock import today as today_in_shanghai
from schemas.platforms import PlatformSpec
from schemas.raw import TZ


def pull(
    spec: PlatformSpec,
    client: PlatformClient,
    request: PullRequest,
    progress: Progress,
    *,
    today: date | None = None,
) -> Iterator[Batch]:
    """One batch per date window; its watermark is the window's last completion date."""
    options = spec.options
    window = decode.pull_window(request, options["lookback_days"], today or today_in_shanghai())
    if window is None:
        return
    logged: set[str] = set()
    for first, last in decode.day_windows(*window, options["window_days"]):
        records = _window(spec, client, request.year, first, last, logged)
        progress(f"{spec.code} {first}..{last}: {len(records)} records")
        yield Batch(records, decode.through_watermark(last))


def _window(
    spec: PlatformSpec,
    client: PlatformClient,
    pull_year: int,
    first: date,
    last: date,
    logged: set[str],
) -> pd.DataFrame:
    options = spec.options
    response = decode.fetch(
        client,
        "GET",
        options["path"],
        params={"start": first.isoformat(), "end": last.isoformat()},
        headers={options["key_header"]: client.settings.key},
    )
    text = decode.decode_text(client, response, options["charset"])
    wire = decode.read_csv(client, response, text, options["header"], logged)
    wire = decode.drop_totals(client, response, wire, options["totals_marker"])
    columns = decode.map_fields(wire, options)
    decode.check_dates(client, response, columns["completed_at"], first, last)
    return decode.raw_records(
        spec, wire, columns, pulled_at=pd.Timestamp.now(tz=TZ), pull_year=pull_year
    )
