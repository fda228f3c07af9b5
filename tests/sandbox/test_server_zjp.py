"""Family zjp over real HTTP: API key, ≤31-day inclusive windows, GBK and BOM CSV, quirks."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import httpx
import pandas as pd
import pytest

from sandbox.server import Sandbox
from schemas.raw import TZ
from tests.sandbox.fixtures_server import client, record, records, running, served_frame

HEADER = "序号,姓名,身份证号,工作单位,课程名称,课程类型,学时,完成日期,考核结果,证书编号,补学年度"
MAY = {"start": "2022-05-01", "end": "2022-05-31"}
RARE_NAME = "王𠮷"  # U+20BB7: outside GBK, inside GB18030


def day(number: int) -> pd.Timestamp:
    return pd.Timestamp("2022-05-01 10:00", tz=TZ) + pd.Timedelta(days=number)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    ta = [record("ta_zjp", n, completed_at=day(n)) for n in range(20)]
    ta[0] |= {"name": RARE_NAME, "raw_id": "'370902198801011234", "passed": False}
    ta[1] |= {"raw_id": "\t370902198801011234", "makeup": True, "makeup_year": 2019}
    ta[2] |= {"wire_hours": "1.5", "hours": 1.5, "employer": '泰安市,"联合"公司'}
    frames = {"ta_zjp": [served_frame(ta)], "yt_sdbc": [records("yt_sdbc", 3)]}
    with running(frames) as sandbox:
        yield sandbox


def download(sandbox: Sandbox, code: str, **params: str) -> httpx.Response:
    with client(sandbox, code, headers={"X-Api-Key": f"{code}-key"}) as http:
        return http.get("/export/records.csv", params=params or MAY)


def lines(response: httpx.Response, codec: str = "gb18030") -> list[str]:
    return response.content.decode(codec).splitlines()


def rows(response: httpx.Response) -> list[list[str]]:
    text = response.content.decode("gb18030")
    return [row for row in csv.reader(io.StringIO(text)) if row and row[0] not in ("序号", "合计")]


def test_request_without_api_key_is_401(sandbox: Sandbox) -> None:
    with client(sandbox, "ta_zjp") as http:
        assert http.get("/export/records.csv", params=MAY).status_code == 401


def test_request_with_wrong_api_key_is_401(sandbox: Sandbox) -> None:
    with client(sandbox, "ta_zjp", headers={"X-Api-Key": "wrong"}) as http:
        assert http.get("/export/records.csv", params=MAY).status_code == 401


def test_window_of_32_days_is_400(sandbox: Sandbox) -> None:
    response = download(sandbox, "ta_zjp", start="2022-05-01", end="2022-06-01")
    assert response.status_code == 400


def test_window_of_31_days_is_served(sandbox: Sandbox) -> None:
    assert download(sandbox, "ta_zjp", start="2022-05-01", end="2022-05-31").status_code == 200


def test_window_includes_both_end_dates(sandbox: Sandbox) -> None:
    # record n completes on 2022-05-(1 + n)
    response = download(sandbox, "ta_zjp", start="2022-05-03", end="2022-05-05")
    assert [r[4] for r in rows(response)] == ["课程2", "课程3", "课程4"]


def test_ta_zjp_declares_gbk_and_sends_gb18030_bytes(sandbox: Sandbox) -> None:
    response = download(sandbox, "ta_zjp")
    assert response.headers["content-type"] == "text/csv; charset=GBK"
    assert RARE_NAME.encode("gb18030") in response.content
    assert rows(response)[0][1] == RARE_NAME


def test_yt_sdbc_sends_utf8_with_a_bom(sandbox: Sandbox) -> None:
    response = download(sandbox, "yt_sdbc")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content.startswith(b"\xef\xbb\xbf" + HEADER.encode())


def test_header_row_is_the_contracts(sandbox: Sandbox) -> None:
    assert lines(download(sandbox, "ta_zjp"))[0] == HEADER


def test_id_cells_keep_a_leading_apostrophe_or_tab(sandbox: Sandbox) -> None:
    ids = [r[2] for r in rows(download(sandbox, "ta_zjp"))]
    assert ids[:3] == ["'370902198801011234", "\t370902198801011234", "370902198801011234"]


def test_last_line_is_a_totals_row(sandbox: Sandbox) -> None:
    last = lines(download(sandbox, "ta_zjp"))[-1]
    assert last.startswith("合计,")
    assert last.split(",")[6] == "39.5"  # 19 × 2 + 1.5


def test_blank_lines_occur(sandbox: Sandbox) -> None:
    assert "" in lines(download(sandbox, "ta_zjp"))


def test_rows_are_numbered_from_one(sandbox: Sandbox) -> None:
    assert [r[0] for r in rows(download(sandbox, "ta_zjp"))] == [str(n) for n in range(1, 21)]


def test_values_use_the_contracts_formats(sandbox: Sandbox) -> None:
    first, second, third = rows(download(sandbox, "ta_zjp"))[:3]
    assert (first[7], first[8], first[10]) == ("2022/5/1", "不合格", "")
    assert (second[7], second[8], second[10]) == ("2022/5/2", "合格", "2019")
    assert (third[3], third[6], third[5]) == ('泰安市,"联合"公司', "1.5", "公需课")


def test_empty_window_has_only_the_header(sandbox: Sandbox) -> None:
    response = download(sandbox, "ta_zjp", start="2021-01-01", end="2021-01-31")
    assert lines(response) == [HEADER]


def test_each_download_is_one_pull_in_the_served_log(sandbox: Sandbox) -> None:
    before = len(sandbox.served_log("yt_sdbc"))
    download(sandbox, "yt_sdbc")
    log = sandbox.served_log("yt_sdbc")
    assert len(log) == before + 1
    assert log[-1] == ["yt_sdbc-00000", "yt_sdbc-00001", "yt_sdbc-00002"]
