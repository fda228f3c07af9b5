"""Family lllnet: signed XML pages by completion date, one calendar month per request series.

Every request is signed afresh (the platform refuses a `ts` older than 300 s): HMAC-SHA256 keyed
by the secret over the other parameters sorted by name and joined as `k=v&k=v`, not URL-encoded.
Errors arrive as HTTP 200 with an `<error code=…>` document.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from xml.etree.ElementTree import Element

import httpx
import pandas as pd

from connectors import decode, frames
from connectors.core import (
    AuthError,
    Batch,
    PlatformClient,
    Progress,
    PullRequest,
    log,
)
from schemas.clock import today as today_in_shanghai
from schemas.platforms import PlatformSpec
from schemas.raw import TZ

Clock = Callable[[], float]
AUTH_CODES = frozenset({"APPID_INVALID", "SIGN_INVALID", "TS_EXPIRED"})
"""Refusals of the credentials: an unknown appid, a wrong secret, TS_EXPIRED twice (a clock off
by minutes)."""


def sign(params: Mapping[str, str], secret: str) -> str:
    """Lowercase hex HMAC-SHA256 of `k=v&k=v` over the parameters sorted by name (PLATFORMS.md)."""
    message = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign")
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def pull(
    spec: PlatformSpec,
    client: PlatformClient,
    request: PullRequest,
    progress: Progress,
    *,
    today: date | None = None,
    clock: Clock = time.time,
) -> Iterator[Batch]:
    """One batch per calendar month; its watermark is the month's last completion date pulled."""
    lookback = spec.options["lookback_days"]
    window = decode.pull_window(request, lookback, today or today_in_shanghai())
    if window is None:
        return
    logged: set[str] = set()
    for first, last in decode.month_windows(*window):
        records = _month(spec, client, request.year, first, last, clock, logged, progress)
        progress(f"{spec.code} {first}..{last}: {len(records)} records")
        yield Batch(records, decode.through_watermark(last))


def _month(
    spec: PlatformSpec,
    client: PlatformClient,
    pull_year: int,
    first: date,
    last: date,
    clock: Clock,
    logged: set[str],
    progress: Progress,
) -> pd.DataFrame:
    """Pages 1..pages of one window; a page out of order, empty or repeated is an error."""
    options = spec.options
    required = list(options["fields"])
    rows: list[dict[str, str]] = []
    found: list[dict[str, str]] = []
    page, pages = 1, 1
    while page <= pages:
        response, root = _page(spec, client, first, last, page, clock)
        pages = _page_count(client, response, root, page, options["max_pages"])
        previous = found
        found = [_record(client, response, element, required, logged) for element in root]
        if page > 1 and (not found or found == previous):
            raise client.fail(response, f"page {page} of {pages} adds no records")
        progress(f"{spec.code} {first}..{last} page {page}/{pages}: {len(found)} records")
        rows.extend(found)
        page += 1
    wire = pd.DataFrame(rows, columns=_columns(rows, required), dtype="str").fillna("")
    columns = decode.map_fields(wire, options)
    decode.check_dates(client, response, columns["completed_at"], first, last)
    return decode.raw_records(
        spec,
        wire,
        columns,
        pulled_at=pd.Timestamp.now(tz=TZ),
        pull_year=pull_year,
        payload=frames.payloads(rows),
    )


def _page(
    spec: PlatformSpec,
    client: PlatformClient,
    first: date,
    last: date,
    page: int,
    clock: Clock,
) -> tuple[httpx.Response, Element]:
    """One page, signed; an expired timestamp is signed afresh and sent once more."""
    response, root = _signed_get(spec, client, first, last, page, clock)
    if root.tag == "error" and root.get("code") == "TS_EXPIRED":
        log.info("[%s] timestamp refused; signing again", client.platform)
        response, root = _signed_get(spec, client, first, last, page, clock)
    if root.tag != "error":
        return response, root
    code = root.get("code", "")
    if code in AUTH_CODES:
        raise AuthError(
            client.platform, str(response.request.url), f"refused: {code}", response.content
        )
    raise client.fail(response, f"platform error {code or '(no code)'}")


def _signed_get(
    spec: PlatformSpec,
    client: PlatformClient,
    first: date,
    last: date,
    page: int,
    clock: Clock,
) -> tuple[httpx.Response, Element]:
    params = {
        "appid": client.settings.key,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "page": str(page),
        "ts": str(int(clock())),
    }
    params["sign"] = sign(params, client.settings.secret)
    response = decode.fetch(client, "GET", spec.options["path"], params=params)
    return response, decode.parse_xml(client, response)


def _page_count(
    client: PlatformClient, response: httpx.Response, root: Element, page: int, max_pages: int
) -> int:
    if root.tag != "export":
        raise client.fail(response, f"root element <{root.tag}>, not <export>")
    try:
        served, pages = int(root.get("page", "")), int(root.get("pages", ""))
    except ValueError as exc:
        raise client.fail(response, "page or pages attribute is not a number") from exc
    if served != page:
        raise client.fail(response, f"asked for page {page}, got page {served}")
    if not 0 <= pages <= max_pages:
        raise client.fail(response, f"pages={pages} outside 0..{max_pages}")
    return pages


def _record(
    client: PlatformClient,
    response: httpx.Response,
    element: Element,
    required: list[str],
    logged: set[str],
) -> dict[str, str]:
    if element.tag != "record":
        raise client.fail(response, f"unexpected element <{element.tag}> in <export>")
    tags = [child.tag for child in element]
    if tags != required:  # reordered, missing, repeated or new fields: let the check judge
        decode.check_columns(client, response, tags, required, logged)
    return {child.tag: child.text or "" for child in element}


def _columns(rows: list[dict[str, str]], required: list[str]) -> list[str]:
    """The contract's fields, then any new ones in the order first seen."""
    extra = dict.fromkeys(name for row in rows for name in row if name not in required)
    return required + list(extra)
