"""Family treewises: JSON with an opaque keyset cursor, tombstones and a rate limit (ta_sdty).

Items are ordered by `(updated_at, id)`; the cursor encodes the last item's pair, so a page after
`advance()` continues where the previous one stopped. Withdrawn versions are served with
`revoked: true`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.families import Context, json_text, parse_int

TENANT = "sdta"
MAX_LIMIT = 1000
MS = 1_000


@dataclass(frozen=True)
class View:
    updated: np.ndarray  # epoch ms
    keys: np.ndarray
    items: list[str]


def _millis(times: pd.Series) -> pd.Series:
    """Epoch milliseconds (UTC) as nullable integers."""
    since_epoch = times.dt.tz_convert("UTC") - pd.Timestamp(0, tz="UTC")
    return (since_epoch // pd.Timedelta(milliseconds=1)).astype("Int64")


def prepare(frame: pd.DataFrame) -> View:
    frame = frame.dropna(subset=["updated_at"])
    updated = _millis(frame["updated_at"])
    frame = frame.assign(_updated=updated).sort_values(["_updated", "source_key"], kind="stable")
    wire = pd.DataFrame(
        {
            "id": frame["source_key"],
            "name": frame["name"],
            "id_no": frame["raw_id"],
            "org": frame["employer"],
            "code": frame["course_code"],
            "title": frame["course_title"],
            "kind": frame["category_label"],
            "hours": frame["wire_hours"],
            "completed": _millis(frame["completed_at"]),
            "passed": frame["passed"].astype("boolean").fillna(False).astype(bool),
            "certificate": frame["certificate_no"],
            "makeup": frame["makeup_year"].astype("Int64"),
            "revoked": frame["withdrawn"].astype(bool),
            "updated": frame["_updated"],
        }
    ).astype(object)
    wire = wire.where(wire.notna(), None)
    items = [
        json.dumps(
            {
                "id": r.id,
                "learner": {"name": r.name, "id_no": r.id_no, "org": r.org},
                "course": {"code": r.code, "title": r.title, "kind": r.kind},
                "credit_hours": r.hours,
                "completed_at": r.completed,
                "passed": r.passed,
                "certificate": None if r.certificate is None else {"no": r.certificate},
                "makeup_for": r.makeup,
                "revoked": r.revoked,
                "updated_at": r.updated,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        for r in wire.itertuples(index=False)
    ]
    return View(
        updated=frame["_updated"].to_numpy(dtype="int64"),
        keys=frame["source_key"].to_numpy(dtype=object),
        items=items,
    )


def encode_cursor(updated: int, key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([updated, key]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str] | None:
    try:
        updated, key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, TypeError):
        return None
    return (updated, key) if isinstance(updated, int) and isinstance(key, str) else None


def _since(text: str | None) -> int | None:
    """`since` (ISO-8601 with an offset) in epoch ms; a `+` decoded as a space is forgiven."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace(" ", "+"))
    except ValueError:
        return None
    return math.ceil(moment.timestamp() * MS) if moment.tzinfo is not None else None


def after(view: View, updated: int, key: str) -> int:
    """The index of the first item strictly after `(updated, key)`."""
    low = int(np.searchsorted(view.updated, updated, "left"))
    high = int(np.searchsorted(view.updated, updated, "right"))
    return low + int(np.searchsorted(view.keys[low:high], key, "right"))


class RateLimiter:
    """A token bucket per client: `rate` requests a second, bursts of `rate`."""

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def wait(self, client: str) -> float:
        """0 when the request may pass (and is counted), else seconds until it could."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        tokens, then = self._buckets.get(client, (self.rate, now))
        tokens = min(self.rate, tokens + (now - then) * self.rate)
        if tokens < 1:
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate
        self._buckets[client] = (tokens - 1, now)
        return 0.0


def routes(ctx: Context) -> list[Route]:
    limiter = RateLimiter(ctx.options.rate_limit, ctx.clock)

    def refuse(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
        return json_text(json.dumps({"detail": detail}), status, headers)

    async def completions(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        if header != f"Token {ctx.key}" or request.headers.get("x-tenant") != TENANT:
            return refuse(401, "Invalid token or tenant.")
        wait = limiter.wait(header)
        if wait > 0:
            retry = {"Retry-After": str(max(1, math.ceil(wait)))}
            return refuse(429, "Request was throttled.", retry)
        params = request.query_params
        limit = parse_int(params.get("limit"), 200)
        if limit is None or not 1 <= limit <= MAX_LIMIT:
            return refuse(400, f"limit must be between 1 and {MAX_LIMIT}")
        cursor = params.get("cursor")
        position = decode_cursor(cursor) if cursor else None
        if cursor and position is None:
            return refuse(400, "Invalid cursor.")
        since = _since(params.get("since"))
        if since is None and position is None:
            return refuse(400, "since must be an ISO-8601 time with an offset")
        view = ctx.view(prepare)
        first = 0 if since is None else int(np.searchsorted(view.updated, since, "left"))
        if position is not None:
            first = max(first, after(view, *position))
        last = min(len(view.items), first + limit)
        ctx.log.add(view.keys[first:last], first=cursor is None)
        following = (
            encode_cursor(int(view.updated[last - 1]), str(view.keys[last - 1]))
            if last < len(view.items) and last > first
            else None
        )
        body = '{"items":[' + ",".join(view.items[first:last]) + '],"next_cursor":'
        return json_text(body + json.dumps(following) + "}")

    return [Route("/v2/completions", completions, methods=["GET"])]
