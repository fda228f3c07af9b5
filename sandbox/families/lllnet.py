"""Family lllnet: signed XML pages by completion-date window (yt_ytu).

`sign` is lowercase hex HMAC-SHA256, keyed by the secret, of every other parameter sorted by
name and joined as `k=v&k=v` (values as received, not URL-encoded). Errors come as HTTP 200
`<error code="…">`.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.families import (
    Context,
    inclusive_days,
    instants,
    live,
    local_text,
    parse_date,
    parse_int,
    xml_escape,
)

REQUIRED = ("appid", "from", "to", "page", "ts", "sign")
XML = "application/xml; charset=utf-8"
DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
ELEMENTS = ("xm", "sfzh", "dw", "kcmc", "kclb", "xs", "wcsj", "khjg", "zsbh")


@dataclass(frozen=True)
class View:
    completed: np.ndarray
    keys: np.ndarray
    records: list[str]


def sign(params: Mapping[str, str], secret: str) -> str:
    """The contract's signature of `params` (any `sign` among them is left out)."""
    message = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign")
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def prepare(frame: pd.DataFrame) -> View:
    frame = live(frame).dropna(subset=["completed_at"])
    frame = frame.sort_values(["completed_at", "source_key"], kind="stable")
    passed = frame["passed"].astype("boolean").fillna(False).astype(bool)
    values = {
        "xm": frame["name"],
        "sfzh": frame["raw_id"],
        "dw": frame["employer"],
        "kcmc": frame["course_title"],
        "kclb": frame["category_label"],
        "xs": frame["wire_hours"],
        "wcsj": local_text(frame["completed_at"], "D"),
        "khjg": pd.Series(np.where(passed, "合格", "不合格"), index=frame.index, dtype="str"),
        "zsbh": frame["certificate_no"],
    }
    parts = [f"<{e}>" + xml_escape(values[e]) + f"</{e}>" for e in ELEMENTS]
    records = ("<record>" + parts[0].str.cat(parts[1:]) + "</record>") if len(frame) else None
    return View(
        completed=instants(frame["completed_at"]),
        keys=frame["source_key"].to_numpy(dtype=object),
        records=[] if records is None else records.tolist(),
    )


def _error(code: str, message: str) -> Response:
    body = f'{DECLARATION}<error code="{code}">{message}</error>'
    return Response(body, media_type=XML)


def routes(ctx: Context) -> list[Route]:
    size = ctx.options.lllnet_page_size

    async def export(request: Request) -> Response:
        params = dict(request.query_params)
        missing = [k for k in REQUIRED if not params.get(k)]
        if missing:
            return _error("PARAM_MISSING", f"missing {','.join(missing)}")
        if params["appid"] != ctx.key:
            return _error("APPID_INVALID", "unknown appid")
        if not hmac.compare_digest(params["sign"], sign(params, ctx.secret)):
            return _error("SIGN_INVALID", "signature mismatch")
        ts = parse_int(params["ts"])
        if ts is None:
            return _error("PARAM_INVALID", "ts must be unix seconds")
        if ctx.clock() - ts > ctx.options.ts_tolerance or ctx.fault(request, "ts"):
            return _error("TS_EXPIRED", "timestamp expired")
        start, end = parse_date(params["from"]), parse_date(params["to"])
        page = parse_int(params["page"])
        if start is None or end is None or end < start or page is None or page < 1:
            return _error("PARAM_INVALID", "from/to must be yyyy-MM-dd with from <= to, page >= 1")
        view = ctx.view(prepare)
        low, high = inclusive_days(view.completed, start, end)
        pages = max(1, math.ceil((high - low) / size))
        if page > pages:
            return _error("PAGE_INVALID", f"page {page} of {pages}")
        first = low + (page - 1) * size
        last = min(high, first + size)
        ctx.log.add(view.keys[first:last], first=page == 1)
        body = f'{DECLARATION}<export page="{page}" pages="{pages}">'
        return Response(body + "".join(view.records[first:last]) + "</export>", media_type=XML)

    return [Route("/api/export.xml", export, methods=["GET"])]
