"""Family spa: JSON rows by year behind offset pages that shift while records arrive.

Offset pages cannot resume, so every pull reads the whole year: page until `offset >= total`,
then check that the distinct ids seen match `total`; if not, read the year again (bounded) and
union all reads by id, the latest read of an id winning. One batch at the end.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date
from functools import partial
from typing import Any

import httpx

from connectors.core import (
    AuthError,
    Batch,
    PlatformClient,
    Progress,
    PullRequest,
)
from connectors.engines.jsonapi import (
    RecordDecoder,
    Session,
    batch_frame,
    expect,
    session_json,
    window_end,
)
from schemas.platforms import PlatformSpec


def _login(spec: PlatformSpec, client: PlatformClient) -> str:
    settings = client.settings
    response = client.request(
        "POST",
        spec.options["login_path"],
        json={"username": settings.key, "password": settings.secret},
    )
    if response.status_code in (400, 401, 403):
        raise AuthError(
            client.platform, str(response.request.url), "login refused", response.content
        )
    body = session_json(client, response)
    token = body.get("token") if isinstance(body, dict) else None
    expect(client, response, isinstance(token, str) and bool(token), "login answer has no token")
    return token


def _page(
    spec: PlatformSpec, client: PlatformClient, params: Mapping[str, Any], token: str
) -> tuple[httpx.Response, dict[str, Any]]:
    response = client.request(
        "GET", spec.options["records_path"], params=params, headers={"token": token}
    )
    body = session_json(client, response)
    expect(
        client,
        response,
        isinstance(body, dict)
        and isinstance(body.get("rows"), list)
        and isinstance(body.get("total"), int)
        and all(isinstance(row, dict) and row.get("id") is not None for row in body["rows"]),
        "body is not {rows: [{id, …}], total}",
    )
    return response, body


def _read_year(
    spec: PlatformSpec,
    client: PlatformClient,
    session: Session,
    year: int,
    progress: Progress,
) -> tuple[dict[Any, dict[str, Any]], int, httpx.Response]:
    """One pass over the year's offset pages: rows by id, the last `total`, the last response."""
    limit = int(spec.options["page_size"])
    rows: dict[Any, dict[str, Any]] = {}
    offset = 0
    while True:
        params = {"year": year, "offset": offset, "limit": limit}
        response, body = session.call(partial(_page, spec, client, params))
        rows.update((row["id"], row) for row in body["rows"])
        total = body["total"]
        offset += limit
        progress(f"{spec.code}: offset {offset - limit}, {len(rows)} of {total} rows")
        if not body["rows"] or offset >= total:
            return rows, total, response


def pull(
    spec: PlatformSpec,
    client: PlatformClient,
    request: PullRequest,
    progress: Progress,
    *,
    today: date | None = None,
) -> Iterator[Batch]:
    """The whole year in one batch; its watermark is the `total` the platform reported."""
    if window_end(request, today) <= request.start:
        return
    session = Session(client, partial(_login, spec, client))
    attempts = int(spec.options["read_attempts"])
    union: dict[Any, dict[str, Any]] = {}
    for attempt in range(1, attempts + 1):
        rows, total, response = _read_year(spec, client, session, request.year, progress)
        union.update(rows)
        if total in (len(rows), len(union)):
            break
        progress(f"{spec.code}: read {attempt} saw {len(rows)} distinct ids of {total}, again")
    else:
        raise client.fail(
            response,
            f"after {attempts} reads: {len(union)} distinct ids seen, total says {total}",
        )
    if not union:
        return
    records = list(union.values())
    columns = RecordDecoder(spec).columns(records, partial(client.fail, response))
    yield Batch(batch_frame(spec, request, columns), {"total": total})
