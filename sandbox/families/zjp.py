"""Family zjp: CSV download by completion-date window, API key, in the platform's encoding
(`Profile.encoding`: ta_zjp GBK, yt_sdbc UTF-8 with a BOM).

Quirks served: ID cells keep the generator's leading `'` or tab, a blank line after every eighth
row and before the totals row, and a totals row `合计,…` closing every non-empty file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.families import (
    CSV_NEWLINE,
    Context,
    csv_lines,
    inclusive_days,
    instants,
    live,
    local_parts,
    numbers,
    optional_text,
    parse_date,
    year_text,
)
from sandbox.profiles import Encoding

HEADER = "序号,姓名,身份证号,工作单位,课程名称,课程类型,学时,完成日期,考核结果,证书编号,补学年度"
MAX_DAYS = 31
BLANK_EVERY = 8


@dataclass
class View:
    completed: np.ndarray
    keys: np.ndarray
    lines: list[str]
    hours: np.ndarray
    files: dict[tuple[date, date], bytes] = field(default_factory=dict)


def prepare(frame: pd.DataFrame) -> View:
    frame = live(frame).dropna(subset=["completed_at"])
    frame = frame.sort_values(["completed_at", "source_key"], kind="stable")
    passed = frame["passed"].astype("boolean").fillna(False).astype(bool)
    wire = pd.DataFrame(
        {
            "姓名": frame["name"],
            "身份证号": frame["raw_id"],
            "工作单位": frame["employer"],
            "课程名称": frame["course_title"],
            "课程类型": frame["category_label"],
            "学时": frame["wire_hours"],
            "完成日期": local_parts(frame["completed_at"], "/", "/", ""),
            "考核结果": np.where(passed, "合格", "不合格"),
            "证书编号": optional_text(frame["certificate_no"]),
            "补学年度": year_text(frame["makeup_year"]),
        }
    )
    return View(
        completed=instants(frame["completed_at"]),
        keys=frame["source_key"].to_numpy(dtype=object),
        lines=csv_lines(wire),
        hours=numbers(frame["wire_hours"]).fillna(0.0).to_numpy(),
    )


def render(view: View, low: int, high: int, encoding: Encoding) -> bytes:
    """The CSV of rows `low:high`, numbered from 1, with blank lines and a totals row."""
    rows = [
        f"{number},{line}{CSV_NEWLINE if number % BLANK_EVERY == 0 else ''}"
        for number, line in enumerate(view.lines[low:high], start=1)
    ]
    if rows:
        total = f"{round(float(view.hours[low:high].sum()), 1):g}"
        rows += ["", "合计" + "," * 6 + total + "," * 4]
    text = CSV_NEWLINE.join([HEADER, *rows]) + CSV_NEWLINE
    return ("\ufeff" if encoding.bom else "").encode(encoding.codec) + text.encode(encoding.codec)


def routes(ctx: Context) -> list[Route]:
    encoding = ctx.profile.encoding
    media_type = f"text/csv; charset={encoding.charset}"

    async def export(request: Request) -> Response:
        if request.headers.get("x-api-key") != ctx.key:
            return Response("invalid or missing X-Api-Key", 401, media_type="text/plain")
        start = parse_date(request.query_params.get("start"))
        end = parse_date(request.query_params.get("end"))
        if start is None or end is None or end < start:
            return Response("start and end must be yyyy-MM-dd, start <= end", 400)
        if (end - start).days + 1 > MAX_DAYS:
            return Response(f"a window is at most {MAX_DAYS} days", 400)
        view = ctx.view(prepare)
        low, high = inclusive_days(view.completed, start, end)
        if (start, end) not in view.files:
            view.files[start, end] = render(view, low, high, encoding)
        ctx.log.add(view.keys[low:high], first=True)
        return Response(view.files[start, end], media_type=media_type)

    return [Route("/export/records.csv", export, methods=["GET"])]
