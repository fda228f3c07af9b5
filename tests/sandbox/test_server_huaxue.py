"""Family huaxue over real HTTP: Basic auth, yearly full snapshots in UTF-8 with BOM."""

from __future__ import annotations

import csv
import io

import httpx

from sandbox.server import Sandbox
from tests.sandbox.fixtures_server import client, record, records, running, served_frame

CODE = "yt_ytec"
AUTH = ("yt_ytec-key", "yt_ytec-secret")
HEADER = "姓名,身份证号码,单位名称,所属领域,课程,课程性质,获得学时,结业日期,证书号"
FIELDS = {"智能制造", "现代服务", "电子信息", "建筑工程", "财经商贸", "交通运输", "文化旅游"}


def snapshot(sandbox: Sandbox, year: int = 2022) -> httpx.Response:
    with client(sandbox, CODE, auth=AUTH) as http:
        return http.get("/index/export", params={"year": year})


def table(response: httpx.Response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))[1:]


def test_request_without_credentials_is_401() -> None:
    with running({CODE: [records(CODE, 1)]}) as sandbox, client(sandbox, CODE) as http:
        assert http.get("/index/export", params={"year": 2022}).status_code == 401


def test_snapshot_is_utf8_with_a_bom_and_the_contracts_header() -> None:
    with running({CODE: [records(CODE, 1)]}) as sandbox:
        response = snapshot(sandbox)
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content.startswith(b"\xef\xbb\xbf" + HEADER.encode())


def test_hours_and_dates_are_written_as_the_platform_does() -> None:
    frame = served_frame([record(CODE, 0, wire_hours="3学时", hours=3.0)])
    with running({CODE: [frame]}) as sandbox:
        row = table(snapshot(sandbox))[0]
    assert (row[6], row[7], row[5]) == ("3学时", "2022年5月3日", "公需")
    assert row[3] in FIELDS


def test_snapshot_holds_the_whole_year_and_only_that_year() -> None:
    frame = served_frame([record(CODE, n, pull_year=2021 if n == 2 else 2022) for n in range(4)])
    with running({CODE: [frame]}) as sandbox:
        titles = sorted(row[4] for row in table(snapshot(sandbox)))
    assert titles == ["课程0", "课程1", "课程3"]


def test_a_withdrawn_row_vanishes_from_the_snapshot_after_advance() -> None:
    epochs = [records(CODE, 3), served_frame([record(CODE, 0), record(CODE, 2)])]
    with running({CODE: epochs}) as sandbox:
        before = table(snapshot(sandbox))
        sandbox.advance()
        after = table(snapshot(sandbox))
        log = sandbox.served_log(CODE)
    assert [r[4] for r in before] == ["课程0", "课程1", "课程2"]
    assert [r[4] for r in after] == ["课程0", "课程2"]
    assert log == [[f"yt_ytec-{n:05d}" for n in (0, 1, 2)], ["yt_ytec-00000", "yt_ytec-00002"]]


def test_year_missing_is_400() -> None:
    with running({CODE: [records(CODE, 1)]}) as sandbox, client(sandbox, CODE, auth=AUTH) as http:
        assert http.get("/index/export").status_code == 400
