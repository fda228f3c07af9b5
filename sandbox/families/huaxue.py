"""Family huaxue: a yearly CSV snapshot behind HTTP Basic, UTF-8 with BOM (yt_ytec).

Every request returns the whole year; a record withdrawn by the generator is simply absent from
the next epoch's snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.families import (
    CSV_NEWLINE,
    Context,
    basic_refusal,
    csv_lines,
    live,
    local_parts,
    optional_text,
    parse_int,
    pick,
)

HEADER = "姓名,身份证号码,单位名称,所属领域,课程,课程性质,获得学时,结业日期,证书号"


@dataclass
class View:
    years: dict[int, tuple[np.ndarray, list[str]]]
    files: dict[int, bytes] = field(default_factory=dict)


def prepare(frame: pd.DataFrame, seed: int, fields: tuple[str, ...]) -> View:
    """Rows by year; 所属领域 is the generator's `wire_field`, else a stable pick per course
    among the family's `fields`."""
    frame = live(frame).sort_values("source_key", kind="stable")
    picked = np.array(fields, dtype=object)[pick(seed, frame["course_title"], len(fields))]
    fields = frame["wire_field"] if "wire_field" in frame else pd.Series(picked, index=frame.index)
    wire = pd.DataFrame(
        {
            "姓名": frame["name"],
            "身份证号码": frame["raw_id"],
            "单位名称": frame["employer"],
            "所属领域": fields.astype("str").fillna(pd.Series(picked, index=frame.index)),
            "课程": frame["course_title"],
            "课程性质": frame["category_label"],
            "获得学时": frame["wire_hours"],
            "结业日期": local_parts(frame["completed_at"], "年", "月", "日"),
            "证书号": optional_text(frame["certificate_no"]),
        }
    )
    lines = np.array(csv_lines(wire), dtype=object)
    keys = frame["source_key"].to_numpy(dtype=object)
    groups = frame.groupby("pull_year", sort=False).indices.items()
    return View(years={int(y): (keys[p], lines[p].tolist()) for y, p in groups})


def routes(ctx: Context) -> list[Route]:
    async def export(request: Request) -> Response:
        if not ctx.basic_auth(request):
            return basic_refusal("huaxue")
        year = parse_int(request.query_params.get("year"))
        if year is None:
            return Response("year must be given as YYYY", 400, media_type="text/plain")
        fields = ctx.profile.facts.wire_fields
        view = ctx.view(lambda frame: prepare(frame, ctx.seed, fields))
        keys, lines = view.years.get(year, (np.array([], dtype=object), []))
        if year not in view.files:
            text = CSV_NEWLINE.join([HEADER, *lines]) + CSV_NEWLINE
            view.files[year] = ("\ufeff" + text).encode("utf-8")
        ctx.log.add(keys, first=True)
        return Response(view.files[year], media_type="text/csv; charset=utf-8")

    return [Route("/index/export", export, methods=["GET"])]
