"""Family spa: JSON with a login token and offset pages, newest first (yt_naas, yt_samet).

Records marked `hidden_until_paged` stay out of a year's listing until a pull has fetched that
year's first page; then they appear among the newest, so the offsets of later pages shift
(a record shows twice, `total` grows), as on the real platform.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.families import Context, json_lines, json_text, live, local_text, numbers, parse_int

MAX_LIMIT = 500


@dataclass(frozen=True)
class Listing:
    """One year's rows, newest first."""

    keys: np.ndarray
    rows: list[str]


@dataclass
class View:
    years: dict[int, tuple[Listing, Listing]]  # (before the reveal, after it)
    revealed: set[int] = field(default_factory=set)


def _listing(keys: np.ndarray, rows: np.ndarray, mask: np.ndarray) -> Listing:
    return Listing(keys=keys[mask], rows=rows[mask].tolist())


def prepare(frame: pd.DataFrame) -> View:
    frame = live(frame)
    ids = pd.to_numeric(frame["source_key"], errors="coerce").astype("Int64")
    frame = frame.assign(_id=ids).dropna(subset=["_id"])
    frame = frame.sort_values("_id", ascending=False, kind="stable")
    finished = frame["completed_at"].notna()
    wire = pd.DataFrame(
        {
            "id": frame["_id"],
            "name": frame["name"],
            "sfzh": frame["raw_id"],
            "company": frame["employer"],
            "lessonName": frame["course_title"],
            "lessonType": frame["category_label"],
            "hours": numbers(frame["wire_hours"]),
            "finishDate": local_text(frame["completed_at"], "D"),
            "status": pd.Series(np.where(finished, "已完成", "学习中"), index=frame.index),
            "score": frame["score"].astype("float64"),
        }
    )
    years: dict[int, tuple[Listing, Listing]] = {}
    hidden_all = frame["hidden_until_paged"].astype(bool).to_numpy()
    keys = frame["source_key"].to_numpy(dtype=object)
    rows = np.array(json_lines(wire), dtype=object)
    for year, positions in frame.groupby("pull_year", sort=False).indices.items():
        shown = ~hidden_all[positions]
        everything = np.ones(len(positions), dtype=bool)
        years[int(year)] = (
            _listing(keys[positions], rows[positions], shown),
            _listing(keys[positions], rows[positions], everything),
        )
    return View(years=years)


def _refuse(status: int, msg: str) -> Response:
    return json_text(json.dumps({"code": status, "msg": msg}, ensure_ascii=False), status)


def routes(ctx: Context) -> list[Route]:
    async def login(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            username, password = body.get("username"), body.get("password")
        except (ValueError, AttributeError):
            return _refuse(400, "请求体须为JSON")
        if username != ctx.key or password != ctx.secret:
            return _refuse(401, "用户名或密码错误")
        return json_text(json.dumps({"token": ctx.tokens.issue(ctx.options.token_ttl)}))

    async def records(request: Request) -> Response:
        token = request.headers.get("token")
        if token is None or not ctx.tokens.valid(token):
            return _refuse(401, "token无效或已过期")
        if ctx.tokens.used(token) and ctx.fault(request, "expiry"):
            ctx.tokens.revoke(token)
            return _refuse(401, "token无效或已过期")
        params = request.query_params
        year = parse_int(params.get("year"))
        offset = parse_int(params.get("offset"), 0)
        limit = parse_int(params.get("limit"), 100)
        if year is None or offset is None or limit is None:
            return _refuse(400, "year, offset and limit must be integers")
        if offset < 0 or not 1 <= limit <= MAX_LIMIT:
            return _refuse(400, f"offset >= 0, 1 <= limit <= {MAX_LIMIT}")
        view = ctx.view(prepare)
        before, after = view.years.get(year, (Listing(np.array([], dtype=object), []),) * 2)
        # a year that fits on the first page has no later page to shift: arrivals show at once
        fits = offset == 0 and len(before.rows) <= limit
        listing = after if year in view.revealed or fits else before
        last = min(len(listing.rows), offset + limit)
        ctx.tokens.mark_used(token)
        ctx.log.add(listing.keys[offset:last], first=offset == 0)
        if offset == 0:
            view.revealed.add(year)
        body = '{"rows":[' + ",".join(listing.rows[offset:last]) + "]"
        return json_text(body + f',"total":{len(listing.rows)}}}')

    return [
        Route("/api/login", login, methods=["POST"]),
        Route("/api/records", records, methods=["GET"]),
    ]
