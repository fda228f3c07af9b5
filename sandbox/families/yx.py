"""Family yx: JSON REST with a client-credentials token and page numbers (ta_yx, yt_ldu).

Errors are in-band (HTTP 200, `code != 0`): 40101 token expired, 50001 系统繁忙, others fatal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs

import numpy as np
import pandas as pd
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.families import (
    Context,
    instants,
    json_lines,
    json_text,
    live,
    local_text,
    numbers,
    parse_int,
    pick,
)
from schemas.raw import TZ

MAX_PAGE_SIZE = 500
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class View:
    """Records ordered by `updateTime, recordId`, with their JSON objects."""

    updated: np.ndarray
    keys: np.ndarray
    records: list[str]


def prepare(frame: pd.DataFrame, seed: int) -> View:
    frame = live(frame).dropna(subset=["updated_at"])
    frame = frame.assign(updated_at=frame["updated_at"].dt.floor("s"))
    frame = frame.sort_values(["updated_at", "source_key"], kind="stable")
    mobiles = 13_800_000_000 + pick(seed, frame["source_key"], 100_000_000)
    wire = pd.DataFrame(
        {
            "recordId": frame["source_key"],
            "idCard": frame["raw_id"],
            "realName": frame["name"],
            "mobile": pd.Series(mobiles.astype(str), index=frame.index, dtype="str"),
            "unitName": frame["employer"],
            "courseId": frame["course_code"],
            "courseName": frame["course_title"],
            "courseCategory": frame["category_label"],
            "classHour": numbers(frame["wire_hours"]),
            "finishTime": local_text(frame["completed_at"], "s"),
            "examScore": frame["score"].astype("float64"),
            "examPassed": frame["passed"].astype("boolean").fillna(False).astype(bool),
            "certificateNo": frame["certificate_no"],
            "makeupYear": frame["makeup_year"].astype("Int64"),
            "updateTime": local_text(frame["updated_at"], "s"),
        }
    )
    return View(
        updated=instants(frame["updated_at"]),
        keys=frame["source_key"].to_numpy(dtype=object),
        records=json_lines(wire),
    )


def _error(code: int, msg: str) -> Response:
    return json_text(json.dumps({"code": code, "msg": msg}, ensure_ascii=False))


def _instant(text: str | None) -> int | None:
    """A `yyyy-MM-dd HH:mm:ss` Asia/Shanghai parameter in ns since the epoch."""
    if text is None:
        return None
    try:
        return pd.Timestamp(datetime.strptime(text, TIME_FORMAT)).tz_localize(TZ).value
    except ValueError:
        return None


def routes(ctx: Context) -> list[Route]:
    async def token(request: Request) -> Response:
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return _error(40000, "grant_type must be client_credentials")
        if form.get("appKey") != ctx.key or form.get("appSecret") != ctx.secret:
            return _error(40100, "appKey或appSecret错误")
        ttl = ctx.options.token_ttl
        issued = ctx.tokens.issue(ttl)
        data = {"accessToken": issued, "expiresIn": int(ttl)}
        return json_text(json.dumps({"code": 0, "data": data}))

    async def records(request: Request) -> Response:
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not bearer:
            return _error(40100, "缺少访问令牌")
        if not ctx.tokens.valid(bearer):
            return _error(40101, "token已过期")
        if ctx.tokens.used(bearer) and ctx.fault(request, "expiry"):
            ctx.tokens.revoke(bearer)
            return _error(40101, "token已过期")
        if ctx.fault(request, "busy"):
            return _error(50001, "系统繁忙")
        params = request.query_params
        start = _instant(params.get("updatedFrom"))
        end = _instant(params.get("updatedTo"))
        page_no = parse_int(params.get("pageNo"), 1)
        page_size = parse_int(params.get("pageSize"), 20)
        if start is None or end is None or page_no is None or page_size is None:
            return _error(40000, "参数错误: updatedFrom/updatedTo/pageNo/pageSize")
        if page_size > MAX_PAGE_SIZE or page_size < 1 or page_no < 1:
            return _error(40000, f"参数错误: pageSize须在1到{MAX_PAGE_SIZE}之间, pageNo从1开始")
        view = ctx.view(lambda frame: prepare(frame, ctx.seed))
        low = int(np.searchsorted(view.updated, start, "left"))
        high = max(low, int(np.searchsorted(view.updated, end, "left")))
        first = min(high, low + (page_no - 1) * page_size)
        last = min(high, first + page_size)
        ctx.tokens.mark_used(bearer)
        ctx.log.add(view.keys[first:last], first=page_no == 1)
        head = f'"total":{high - low},"pageNo":{page_no},"pageSize":{page_size}'
        body = '{"code":0,"msg":"ok","data":{' + head + ',"list":['
        return json_text(body + ",".join(view.records[first:last]) + "]}}")

    return [
        Route("/openapi/oauth/token", token, methods=["POST"]),
        Route("/openapi/v1/study-records", records, methods=["GET"]),
    ]
