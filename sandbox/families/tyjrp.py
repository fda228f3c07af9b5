"""Family tyjrp: asynchronous XLSX export jobs behind HTTP Basic (ta_tyjrp).

A job goes pending → running → done (or failed, when the `job` fault hit it) over a few status
polls or seconds. The file is the window's sheet `学习记录`, rendered once per epoch and window.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
import xlsxwriter
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.families import (
    Context,
    basic_refusal,
    inclusive_days,
    instants,
    json_text,
    live,
    numbers,
    parse_date,
)
from schemas.raw import TZ

SHEET = "学习记录"
HEADER = (
    "学员姓名",
    "证件号码",
    "单位",
    "课程编号",
    "课程名称",
    "科目",
    "学习时长(分钟)",
    "完成时间",
    "成绩",
    "是否合格",
    "补学",
    "补学年度",
)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXCEL_EPOCH = pd.Timestamp("1899-12-30")


@dataclass
class View:
    completed: np.ndarray
    keys: np.ndarray
    columns: list[list[object]]
    files: dict[tuple[date, date], bytes] = field(default_factory=dict)


@dataclass
class Job:
    start: date
    end: date
    created: float
    fails: bool
    polls: int = 0


def _cells(values: pd.Series) -> list[object]:
    """Python values for xlsxwriter: nulls (NaN, NA) become blank cells."""
    return values.astype(object).where(values.notna(), None).tolist()


def prepare(frame: pd.DataFrame) -> View:
    frame = live(frame).dropna(subset=["completed_at"])
    frame = frame.sort_values(["completed_at", "source_key"], kind="stable")
    numeric_id = frame["wire_id_numeric"].astype(bool)
    id_cells = frame["raw_id"].astype(object)
    id_cells = id_cells.where(~numeric_id, numbers(frame["raw_id"]))
    minutes = numbers(frame["wire_hours"])
    local = frame["completed_at"].dt.tz_convert(TZ).dt.tz_localize(None)
    serial = (local - EXCEL_EPOCH) / pd.Timedelta(days=1)
    passed = frame["passed"].astype("boolean").fillna(False).astype(bool)
    columns = [
        _cells(frame["name"]),
        _cells(id_cells),
        _cells(frame["employer"]),
        _cells(frame["course_code"]),
        _cells(frame["course_title"]),
        _cells(frame["category_label"]),
        _cells(minutes.astype(object).where(minutes.notna(), frame["wire_hours"])),
        _cells(serial),
        _cells(frame["score"].astype("float64")),
        np.where(passed, "是", "否").tolist(),
        np.where(frame["makeup"].astype(bool), "是", "否").tolist(),
        _cells(frame["makeup_year"].astype("Int64")),
    ]
    return View(
        completed=instants(frame["completed_at"]),
        keys=frame["source_key"].to_numpy(dtype=object),
        columns=columns,
    )


def render(view: View, low: int, high: int) -> bytes:
    """The XLSX of rows `low:high`: header, text cells, numbers, a real date-time column."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        buffer, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    sheet = workbook.add_worksheet(SHEET)
    when = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    sheet.write_row(0, 0, HEADER)
    for index, column in enumerate(view.columns):
        sheet.write_column(
            1, index, column[low:high], when if HEADER[index] == "完成时间" else None
        )
    workbook.close()
    return buffer.getvalue()


def routes(ctx: Context) -> list[Route]:
    jobs: dict[str, Job] = {}

    def status(job: Job) -> tuple[str, int]:
        finished = job.polls > ctx.options.job_polls
        if finished or ctx.clock() - job.created >= ctx.options.job_seconds:
            return ("failed", 50) if job.fails else ("done", 100)
        return ("pending", 0) if job.polls <= 1 else ("running", 50)

    async def create(request: Request) -> Response:
        if not ctx.basic_auth(request):
            return basic_refusal("tyjrp")
        try:
            body = json.loads(await request.body())
            start, end = parse_date(body.get("from")), parse_date(body.get("to"))
        except (ValueError, AttributeError):
            start = end = None
        if start is None or end is None or end < start:
            return json_text('{"error":"from and to must be yyyy-MM-dd, from <= to"}', 400)
        fails = ctx.fault(request, "job") and ctx.plan.fail_job()
        if not fails:
            ctx.plan.job_succeeded()
        material = f"{ctx.seed}:{ctx.code}:{len(jobs)}".encode()
        job_id = hashlib.blake2b(material, digest_size=8).hexdigest()
        jobs[job_id] = Job(start, end, ctx.clock(), fails)
        return json_text(json.dumps({"jobId": job_id}), 202)

    async def poll(request: Request) -> Response:
        if not ctx.basic_auth(request):
            return basic_refusal("tyjrp")
        job = jobs.get(request.path_params["job_id"])
        if job is None:
            return json_text('{"error":"no such job"}', 404)
        job.polls += 1
        state, progress = status(job)
        return json_text(json.dumps({"status": state, "progress": progress}))

    async def download(request: Request) -> Response:
        if not ctx.basic_auth(request):
            return basic_refusal("tyjrp")
        job = jobs.get(request.path_params["job_id"])
        if job is None:
            return json_text('{"error":"no such job"}', 404)
        if status(job)[0] != "done":
            return json_text('{"error":"job is not done"}', 409)
        view = ctx.view(prepare)
        low, high = inclusive_days(view.completed, job.start, job.end)
        window = (job.start, job.end)
        if window not in view.files:
            view.files[window] = render(view, low, high)
        ctx.log.add(view.keys[low:high], first=True)
        filename = f"export-{job.start:%Y%m%d}-{job.end:%Y%m%d}.xlsx"
        disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
        return Response(view.files[window], media_type=XLSX, headers=disposition)

    return [
        Route("/api/export-jobs", create, methods=["POST"]),
        Route("/api/export-jobs/{job_id}", poll, methods=["GET"]),
        Route("/api/export-jobs/{job_id}/file", download, methods=["GET"]),
    ]
