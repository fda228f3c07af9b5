"""Family tyjrp over real HTTP: Basic auth, export jobs that progress, an XLSX with its quirks."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime

import httpx
import openpyxl
import pandas as pd
import pytest

from schemas.raw import TZ
from tests.sandbox.fixtures_server import Clock, client, record, running, served_frame

CODE = "ta_tyjrp"
AUTH = ("ta_tyjrp-key", "ta_tyjrp-secret")
MAY = {"from": "2022-05-01", "to": "2022-05-31"}
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
CLOCK = Clock()


def day(number: int) -> pd.Timestamp:
    return pd.Timestamp("2022-05-01 10:15", tz=TZ) + pd.Timedelta(days=number)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    rows = [record(CODE, n, completed_at=day(n)) for n in range(12)]
    rows[0] |= {"raw_id": "3.70902198801011e+17", "wire_id_numeric": True}
    rows[1] |= {"makeup": True, "makeup_year": 2020, "passed": False, "score": None}
    with (
        running({CODE: [served_frame(rows)]}, clock=CLOCK) as sandbox,
        client(sandbox, CODE, auth=AUTH) as http,
    ):
        yield http


def create(http: httpx.Client, window: dict[str, str] = MAY) -> str:
    response = http.post("/api/export-jobs", json=window)
    assert response.status_code == 202
    return response.json()["jobId"]


def finished_sheet(http: httpx.Client, window: dict[str, str] = MAY) -> list[tuple]:
    job = create(http, window)
    states = [http.get(f"/api/export-jobs/{job}").json()["status"] for _ in range(3)]
    assert states[-1] == "done"
    content = http.get(f"/api/export-jobs/{job}/file").content
    sheet = openpyxl.load_workbook(io.BytesIO(content))["学习记录"]
    return list(sheet.iter_rows(values_only=True))


def test_job_creation_without_credentials_is_401(http: httpx.Client) -> None:
    response = httpx.post(f"{http.base_url}api/export-jobs", json=MAY, verify=False)
    assert response.status_code == 401


def test_job_creation_with_a_wrong_password_is_401(http: httpx.Client) -> None:
    response = http.post("/api/export-jobs", json=MAY, auth=(AUTH[0], "wrong"))
    assert response.status_code == 401


def test_job_goes_pending_running_done_over_polls(http: httpx.Client) -> None:
    job = create(http)
    states = [http.get(f"/api/export-jobs/{job}").json() for _ in range(3)]
    assert states == [
        {"status": "pending", "progress": 0},
        {"status": "running", "progress": 50},
        {"status": "done", "progress": 100},
    ]


def test_job_is_done_after_a_few_seconds_even_unpolled(http: httpx.Client) -> None:
    job = create(http)
    CLOCK.now += 3
    assert http.get(f"/api/export-jobs/{job}").json()["status"] == "done"


def test_file_of_an_unfinished_job_is_refused(http: httpx.Client) -> None:
    job = create(http)
    assert http.get(f"/api/export-jobs/{job}/file").status_code == 409


def test_unknown_job_is_404(http: httpx.Client) -> None:
    assert http.get("/api/export-jobs/nope").status_code == 404


def test_invalid_window_is_400(http: httpx.Client) -> None:
    response = http.post("/api/export-jobs", json={"from": "2022-05-31", "to": "2022-05-01"})
    assert response.status_code == 400


def test_sheet_has_the_contracts_header(http: httpx.Client) -> None:
    assert finished_sheet(http)[0] == HEADER


def test_window_includes_both_end_dates(http: httpx.Client) -> None:
    sheet = finished_sheet(http, {"from": "2022-05-03", "to": "2022-05-05"})
    assert [row[4] for row in sheet[1:]] == ["课程2", "课程3", "课程4"]


def test_completion_time_is_a_date_time_cell(http: httpx.Client) -> None:
    assert finished_sheet(http)[3][7] == datetime(2022, 5, 3, 10, 15)


def test_duration_is_in_minutes(http: httpx.Client) -> None:
    assert finished_sheet(http)[3][6] == 90


def test_numeric_id_cells_are_numbers(http: httpx.Client) -> None:
    sheet = finished_sheet(http)
    assert sheet[1][1] == pytest.approx(3.70902198801011e17)
    assert sheet[2][1] == "370902198801011234"


def test_flags_are_written_as_shi_and_fou(http: httpx.Client) -> None:
    plain, makeup = finished_sheet(http)[1:3]
    assert (plain[8], plain[9], plain[10], plain[11]) == (85, "是", "否", None)
    assert (makeup[8], makeup[9], makeup[10], makeup[11]) == (None, "否", "是", 2020)


def test_each_file_is_one_pull_in_the_served_log() -> None:
    rows = [record(CODE, n, completed_at=day(n)) for n in range(3)]
    with running({CODE: [served_frame(rows)]}) as sandbox, client(sandbox, CODE, auth=AUTH) as http:
        finished_sheet(http)
        log = sandbox.served_log(CODE)
    assert log == [["ta_tyjrp-00000", "ta_tyjrp-00001", "ta_tyjrp-00002"]]
