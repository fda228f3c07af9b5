"""Family yx: JSON REST with a client-credentials token, page numbers and a `code` envelope."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date, datetime, time
from functools import partial
from typing import Any

import httpx
import pandas as pd

from connectors.core import (
    AuthError,
    Batch,
    CredentialExpired,
    PlatformClient,
    Progress,
    PullRequest,
    TransientError,
)
from connectors.engines.jsonapi import (
    Advance,
    RecordDecoder,
    Session,
    batch_frame,
    expect,
    session_json,
    window_end,
)
from schemas.platforms import PlatformSpec
from schemas.raw import TZ


def _token(spec: PlatformSpec, client: PlatformClient) -> str:
    settings = client.settings
    response = client.request(
        "POST",
        spec.options["token_path"],
        data={
            "appKey": settings.key,
            "appSecret": settings.secret,
            "grant_type": "client_credentials",
        },
    )
    if response.status_code in (400, 401, 403):
        raise AuthError(
            client.platform, str(response.request.url), "token refused", response.content
        )
    body = session_json(client, response)
    expect(client, response, isinstance(body, dict) and "code" in body, "no `code` envelope")
    if body["code"] != 0:
        raise AuthError(
            client.platform, str(response.request.url), f"token refused (code {body['code']})"
        )
    data = body.get("data")
    token = data.get("accessToken") if isinstance(data, dict) else None
    expect(client, response, isinstance(token, str) and bool(token), "no accessToken")
    return token


def _page(
    spec: PlatformSpec, client: PlatformClient, params: Mapping[str, Any], token: str
) -> tuple[httpx.Response, dict[str, Any]]:
    """One page's `data`, after the envelope: 40101 re-authenticates, 50001 is retried."""
    options = spec.options
    response = client.request(
        "GET",
        options["records_path"],
        params=params,
        headers={"Authorization": f"Bearer {token}"},
    )
    body = session_json(client, response)
    expect(client, response, isinstance(body, dict) and "code" in body, "no `code` envelope")
    code = body["code"]
    if code in options["expired_codes"]:
        raise CredentialExpired(str(response.request.url))
    if code in options["busy_codes"]:
        raise TransientError(f"[{client.platform}] code {code}: {body.get('msg')}")
    if code != 0:
        raise client.fail(response, f"error code {code}")
    data = body.get("data")
    expect(
        client,
        response,
        isinstance(data, dict)
        and isinstance(data.get("list"), list)
        and isinstance(data.get("total"), int)
        and data.get("pageNo", params["pageNo"]) == params["pageNo"],
        "`data` is not {total, pageNo, list} for the requested page",
    )
    return response, data


def pull(
    spec: PlatformSpec,
    client: PlatformClient,
    request: PullRequest,
    progress: Progress,
    *,
    today: date | None = None,
) -> Iterator[Batch]:
    """Records updated in the window, one batch per page, resumable from (updateTime, recordId).

    Page numbers run until `pageNo * pageSize >= total` or an empty list; a short page before
    that is a contract error. Each batch's watermark is its last record, so a resumed pull asks
    from that update time and skips the records at that very time it already has.
    """
    options = spec.options
    size = int(options["page_size"])
    fmt = options["time_format"]
    end = window_end(request, today)
    if end <= request.start:
        return
    mark = request.watermark
    updated_from = (
        mark["updated"] if mark else datetime.combine(request.start, time()).strftime(fmt)
    )
    updated_to = datetime.combine(end, time()).strftime(fmt)
    session = Session(client, partial(_token, spec, client))
    decoder = RecordDecoder(spec)
    advance = Advance(client, pd.Timestamp(updated_from, tz=TZ))
    page_no = 1
    while True:
        params = {
            "updatedFrom": updated_from,
            "updatedTo": updated_to,
            "pageNo": page_no,
            "pageSize": size,
        }
        send = partial(_page, spec, client, params)
        response, data = session.call(partial(client.retrying(), send))
        records, total = data["list"], data["total"]
        if records:
            frame = batch_frame(
                spec, request, decoder.columns(records, partial(client.fail, response))
            )
            advance.check(response, frame)
            if mark:
                seen = (frame["updated_at"] == pd.Timestamp(mark["updated"], tz=TZ)) & (
                    frame["source_key"] <= mark["record_id"]
                )
                frame = frame.loc[~seen].reset_index(drop=True)
            progress(f"{spec.code}: page {page_no}, {len(records)} of {total} records")
            if len(frame):  # its last row is the page's last record: only a prefix is skipped
                mark_now = {
                    "updated": frame["updated_at"].iloc[-1].strftime(fmt),
                    "record_id": frame["source_key"].iloc[-1],
                }
                yield Batch(frame, mark_now)
        if not records or page_no * size >= total:
            return
        expect(client, response, len(records) == size, f"short page {page_no} before total {total}")
        page_no += 1
