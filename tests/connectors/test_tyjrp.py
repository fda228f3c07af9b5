"""Family tyjrp (ta_tyjrp): asynchronous XLSX export jobs, one per calendar month."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import httpx
import pandas as pd
import pytest
import xlsxwriter

from connectors.core import (
    AuthError,
    Batch,
    ConnectorError,
    ContractError,
    PullRequest,
)
from connectors.engines import tyjrp
from schemas.platforms import load_specs
from tests.connectors.clients import offline_client

CODE = "ta_tyjrp"
HEADER = [
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
]
NUMERIC_ID = 3.70902198801011e17  # what a spreadsheet made of 370902198801011234
TEXT_ROW = [
    "欧阳·堃",
    "37090219880101123X",
    "泰安某公司",
    "K-01",
    "职业道德",
    "公需",
    101.25,
    datetime(2022, 1, 5, 8, 30),
    88.5,
    "是",
    "是",
    2019,
]
NUMBER_ROW = [
    "𠮷喆",
    NUMERIC_ID,
    "泰安某医院",
    1001,
    "临床新进展",
    "专业",
    90,
    date(2022, 1, 6),
    "",
    "否",
    "否",
    "",
]


def workbook(
    rows: list[list[Any]], *, sheet: str = "学习记录", header: list[str] = HEADER
) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    formats = {
        datetime: book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
        date: book.add_format({"num_format": "yyyy-mm-dd"}),
    }
    page = book.add_worksheet(sheet)
    page.write_row(0, 0, header)
    for r, row in enumerate(rows, start=1):
        for c, cell in enumerate(row):
            if isinstance(cell, date):
                page.write_datetime(r, c, cell, formats[type(cell)])
            elif isinstance(cell, str):
                page.write_string(r, c, cell)
            else:
                page.write_number(r, c, cell)
    book.close()
    return buffer.getvalue()


@dataclass
class ExportServer:
    """A tyjrp platform: jobs run `polls` status requests, then end as `outcomes` say."""

    file: bytes = field(default_factory=lambda: workbook([TEXT_ROW, NUMBER_ROW]))
    polls: int = 2
    outcomes: Iterator[str] = field(default_factory=lambda: iter(()))
    jobs: list[dict[str, str]] = field(default_factory=list)
    statuses: dict[str, Iterator[str]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix(f"/{CODE}/api/export-jobs")
        if request.method == "POST":
            job_id = f"job-{len(self.jobs)}"
            self.jobs.append(json.loads(request.content))
            final = next(self.outcomes, "done")
            self.statuses[job_id] = iter(["pending"] + ["running"] * (self.polls - 1) + [final])
            return httpx.Response(202, json={"jobId": job_id})
        job_id, _, rest = path.strip("/").partition("/")
        if rest == "file":
            first = self.jobs[int(job_id.removeprefix("job-"))]["from"]
            return httpx.Response(200, content=self.file if first == "2022-01-01" else workbook([]))
        status = next(self.statuses[job_id], "done")
        return httpx.Response(200, json={"status": status, "progress": 50})


def run(
    handler: Callable[[httpx.Request], httpx.Response],
    request: PullRequest | None = None,
    today: date = date(2022, 3, 15),
    sleeps: list[float] | None = None,
    **options: Any,
) -> list[Batch]:
    client = offline_client(CODE, handler)
    waits = [] if sleeps is None else sleeps
    spec = load_specs()[CODE]
    with client:
        return list(
            tyjrp.pull(
                dataclasses.replace(spec, options={**spec.options, "job_months": 1, **options}),
                client,
                request or PullRequest.for_year(2022),
                [].append,
                today=today,
                sleep=waits.append,
            )
        )


def january(server: ExportServer | None = None) -> pd.DataFrame:
    return run(server or ExportServer())[0].records


def test_numeric_id_cell_becomes_the_repr_of_its_float() -> None:
    assert january()["raw_id"].tolist() == ["37090219880101123X", "3.70902198801011e+17"]


def test_names_with_middle_dot_and_rare_characters_survive() -> None:
    assert january()["name"].tolist() == ["欧阳·堃", "𠮷喆"]


def test_date_time_cell_is_a_timestamp_and_date_cell_is_midnight() -> None:
    assert january()["completed_at"].tolist() == [
        pd.Timestamp("2022-01-05 08:30", tz="Asia/Shanghai"),
        pd.Timestamp("2022-01-06", tz="Asia/Shanghai"),
    ]


def test_text_time_cell_is_parsed() -> None:
    row = [*TEXT_ROW[:7], "2022-01-07 09:15:00", *TEXT_ROW[8:]]
    stamp = january(ExportServer(file=workbook([row])))["completed_at"].iloc[0]
    assert stamp == pd.Timestamp("2022-01-07 09:15", tz="Asia/Shanghai")


def test_minutes_become_hours_rounded_half_up_to_one_decimal() -> None:
    assert january()["hours"].tolist() == [2.3, 2.0]


def test_labels_map_to_passed_and_makeup() -> None:
    frame = january()
    assert frame[["passed", "makeup"]].to_dict(orient="list") == {
        "passed": [True, False],
        "makeup": [True, False],
    }
    assert frame["makeup_year"].iloc[0] == 2019


def test_numeric_course_code_and_score_keep_their_values() -> None:
    frame = january()
    assert frame["course_code"].tolist() == ["K-01", "1001"]
    assert frame["score"].iloc[0] == 88.5


def test_the_shipped_spec_exports_a_whole_year_in_one_job() -> None:
    server = ExportServer()
    run(server, today=date(2023, 3, 1), job_months=load_specs()[CODE].options["job_months"])
    assert server.jobs == [{"from": "2022-01-01", "to": "2022-12-31"}]


def test_one_job_per_calendar_month_up_to_today() -> None:
    server = ExportServer()
    run(server)
    assert server.jobs == [
        {"from": "2022-01-01", "to": "2022-01-31"},
        {"from": "2022-02-01", "to": "2022-02-28"},
        {"from": "2022-03-01", "to": "2022-03-15"},
    ]


def test_each_batch_watermark_is_its_month_end() -> None:
    marks = [b.watermark["through"] for b in run(ExportServer())]
    assert marks == ["2022-01-31", "2022-02-28", "2022-03-15"]


def test_an_export_longer_than_sheet_rows_comes_in_batches_of_that_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tyjrp, "SHEET_ROWS", 2)
    rows = [[*TEXT_ROW[:4], f"课程{n}", *TEXT_ROW[5:]] for n in range(5)]
    batches = run(ExportServer(file=workbook(rows)), today=date(2022, 1, 31))
    assert [len(b.records) for b in batches] == [2, 2, 1]
    assert pd.concat([b.records for b in batches])["course_title"].tolist() == [
        f"课程{n}" for n in range(5)
    ]


def test_only_the_last_batch_of_an_export_moves_the_watermark(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tyjrp, "SHEET_ROWS", 1)
    batches = run(ExportServer(), today=date(2022, 2, 10))
    assert [(len(b.records), b.watermark["through"]) for b in batches] == [
        (1, "2021-12-31"),
        (1, "2022-01-31"),
        (0, "2022-02-10"),
    ]


def test_a_resumed_export_keeps_the_stored_watermark_until_its_last_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tyjrp, "SHEET_ROWS", 1)
    request = PullRequest.for_year(2022, watermark={"through": "2022-02-20"})
    marks = [b.watermark["through"] for b in run(ExportServer(), request, job_months=12)]
    assert marks == ["2022-03-15"]


def test_resume_starts_35_days_before_the_watermark_end() -> None:
    server = ExportServer()
    run(server, request=PullRequest.for_year(2022, watermark={"through": "2022-02-28"}))
    assert server.jobs[0] == {"from": "2022-01-25", "to": "2022-01-31"}


def test_status_is_polled_with_doubling_waits_up_to_the_cap() -> None:
    sleeps: list[float] = []
    run(
        ExportServer(polls=5),
        today=date(2022, 1, 31),
        sleeps=sleeps,
        poll_initial=0.5,
        poll_max=1.5,
    )
    assert sleeps == [0.5, 1.0, 1.5, 1.5, 1.5]


def test_failed_job_is_created_again() -> None:
    server = ExportServer(outcomes=iter(["failed", "done"]))
    batches = run(server, today=date(2022, 1, 31))
    assert (len(server.jobs), len(batches[0].records)) == (2, 2)


def test_job_failing_every_attempt_is_a_connector_error() -> None:
    server = ExportServer(outcomes=iter(["failed"] * 3))
    with pytest.raises(ConnectorError, match="failed 3 times"):
        run(server, today=date(2022, 1, 31))


def test_job_never_finishing_gives_up_after_the_bounded_wait() -> None:
    with pytest.raises(ConnectorError, match="not finished"):
        run(ExportServer(polls=10_000), today=date(2022, 1, 31))


def test_unknown_job_status_is_a_contract_error() -> None:
    server = ExportServer(outcomes=iter(["exploded"]), polls=1)
    with pytest.raises(ContractError, match="unknown job status"):
        run(server, today=date(2022, 1, 31))


def test_job_creation_without_job_id_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="no jobId"):
        run(lambda request: httpx.Response(202, json={"id": "x"}))


def test_basic_auth_is_sent_on_every_request() -> None:
    server = ExportServer()
    run(server, today=date(2022, 1, 31))
    token = base64.b64encode(b"ta_tyjrp-key:ta_tyjrp-secret").decode()
    assert {r.headers["Authorization"] for r in server.requests} == {f"Basic {token}"}


def test_refused_twice_is_an_auth_error() -> None:
    with pytest.raises(AuthError):
        run(lambda request: httpx.Response(401))


def test_missing_sheet_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="no sheet"):
        run(ExportServer(file=workbook([TEXT_ROW], sheet="Sheet1")))


def test_file_that_is_not_a_workbook_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="not a readable workbook"):
        run(ExportServer(file=b"<html>error</html>"))


def test_missing_column_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="missing columns"):
        run(ExportServer(file=workbook([TEXT_ROW[:-1]], header=HEADER[:-1])))


def test_payload_keeps_the_cells_as_received() -> None:
    payload = json.loads(january()["payload"].iloc[1])
    assert payload["证件号码"] == NUMERIC_ID
