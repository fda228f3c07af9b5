"""Family treewises: JSON items behind an opaque cursor, ordered by `updated_at`, with revocations.

The token is static (`Authorization: Token <key>` plus a tenant header), so re-authenticating
after a 401 means sending it once more; a second refusal is final (`decode.fetch`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date, datetime, time
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pandas as pd

from connectors import decode
from connectors.core import Batch, PlatformClient, Progress, PullRequest
from connectors.engines.jsonapi import Advance, RecordDecoder, batch_frame, expect, window_end
from schemas.platforms import PlatformSpec
from schemas.raw import TZ


def _page(
    spec: PlatformSpec, client: PlatformClient, params: Mapping[str, Any]
) -> tuple[httpx.Response, dict[str, Any]]:
    options = spec.options
    response = decode.fetch(
        client,
        "GET",
        options["records_path"],
        params=params,
        headers={"Authorization": f"Token {client.settings.key}", "X-Tenant": options["tenant"]},
    )
    body = decode.json_body(client, response)
    expect(
        client,
        response,
        isinstance(body, dict)
        and isinstance(body.get("items"), list)
        and "next_cursor" in body
        and (body["next_cursor"] is None or isinstance(body["next_cursor"], str)),
        "body is not {items, next_cursor}",
    )
    return response, body


def pull(
    spec: PlatformSpec,
    client: PlatformClient,
    request: PullRequest,
    progress: Progress,
    *,
    today: date | None = None,
) -> Iterator[Batch]:
    """Items updated in the window, one batch per page, resumable from the last `updated_at`.

    Stops at `next_cursor: null` or at the first item updated at or after the window's end.
    A cursor seen twice, a page with nothing on it that still points further, or a page of
    versions already seen is an error.
    `since` is inclusive, so a resumed pull sees its last items again (the store upserts them).
    """
    end = pd.Timestamp(datetime.combine(window_end(request, today), time(), ZoneInfo(TZ)))
    start = pd.Timestamp(datetime.combine(request.start, time(), ZoneInfo(TZ)))
    if end <= start:
        return
    since = request.watermark["since"] if request.watermark else start.isoformat()
    decoder = RecordDecoder(spec)
    cursors: set[str] = set()
    params: dict[str, Any] = {"since": since, "limit": int(spec.options["page_size"])}
    advance = Advance(client, pd.Timestamp(since))
    page = 0
    while True:
        page += 1
        response, body = _page(spec, client, params)
        items, cursor = body["items"], body["next_cursor"]
        expect(client, response, bool(items) or cursor is None, "empty page with a next_cursor")
        if items:
            frame = batch_frame(
                spec, request, decoder.columns(items, partial(client.fail, response))
            )
            advance.check(response, frame)
            inside = frame["updated_at"] < end
            frame = frame.loc[inside].reset_index(drop=True)
            progress(f"{spec.code}: page {page}, {len(frame)} items in the window")
            if len(frame):
                mark = frame["updated_at"].iloc[-1].isoformat(timespec="milliseconds")
                yield Batch(frame, {"since": mark})
            if not inside.all():
                return
        if cursor is None:
            return
        expect(client, response, cursor not in cursors, f"cursor {cursor!r} seen twice")
        cursors.add(cursor)
        params = {**params, "cursor": cursor}
