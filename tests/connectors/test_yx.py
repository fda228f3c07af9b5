"""Family yx over MockTransport: token, `code` envelope, page numbers, watermark, decoding."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any
from urllib.parse import parse_qs

import httpx
import pandas as pd
import pytest

from connectors.core import AuthError, Batch, ContractError, PlatformClient, PullRequest
from connectors.engines import yx
from schemas.platforms import load_specs

CODE = "ta_yx"
TODAY = date(2026, 6, 30)


def record(n: int, updated: str = "2022-03-01 10:00:00", **fields: Any) -> dict[str, Any]:
    return {
        "recordId": f"R{n:06d}",
        "idCard": "370921197501011234",
        "realName": "张三",
        "mobile": "13800000000",
        "unitName": "泰安市第一中学",
        "courseId": f"C{n}",
        "courseName": f"课程{n}",
        "courseCategory": "公需科目",
        "classHour": 2,
        "finishTime": "2022-02-28 09:30:00",
        "examScore": 88.5,
        "examPassed": True,
        "certificateNo": None,
        "makeupYear": None,
        "updateTime": updated,
        **fields,
    }


class FakeYx:
    """A yx platform in memory, serving the contract's token, envelope and page numbers."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = sorted(records, key=lambda r: (r["updateTime"], r["recordId"]))
        self.tokens = 0
        self.expire = 0  # answer 40101 to this many record requests
        self.codes: list[int] = []  # envelope codes to answer first, one per request
        self.pages: list[dict[str, Any]] = []  # query parameters of the record requests
        self.total_bonus = 0  # a total that claims more records than there are

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/openapi/oauth/token"):
            form = parse_qs(request.content.decode())
            assert form == {
                "appKey": [f"{CODE}-key"],
                "appSecret": [f"{CODE}-secret"],
                "grant_type": ["client_credentials"],
            }
            self.tokens += 1
            return envelope(0, {"accessToken": f"t{self.tokens}", "expiresIn": 7200})
        assert request.url.path.endswith("/openapi/v1/study-records")
        if request.headers["Authorization"] != f"Bearer t{self.tokens}" or self.expire:
            self.expire = max(0, self.expire - 1)
            return envelope(40101, None, "token expired")
        if self.codes:
            return envelope(self.codes.pop(0), None, "系统繁忙")
        query = dict(request.url.params)
        self.pages.append(query)
        selected = [
            r for r in self.records if query["updatedFrom"] <= r["updateTime"] < query["updatedTo"]
        ]
        size, number = int(query["pageSize"]), int(query["pageNo"])
        page = selected[(number - 1) * size : number * size]
        data = {"total": len(selected) + self.total_bonus, "pageNo": number, "pageSize": size}
        return envelope(0, {**data, "list": page})


def envelope(code: int, data: Any, msg: str = "ok") -> httpx.Response:
    return httpx.Response(200, json={"code": code, "msg": msg, "data": data})


@pytest.fixture
def run(
    mock_client: Callable[..., PlatformClient], spec_with: Callable[..., Any]
) -> Callable[..., list[Batch]]:
    """`run(handler, watermark=None, page_size=2, year=2022)`: the batches of one pull."""

    def pull(
        handler: Callable[[httpx.Request], httpx.Response],
        watermark: dict[str, Any] | None = None,
        page_size: int = 2,
        year: int = 2022,
    ) -> list[Batch]:
        spec = spec_with(CODE, page_size=page_size)
        request = PullRequest.for_year(year, watermark=watermark)
        with mock_client(CODE, handler) as client:
            return list(yx.pull(spec, client, request, lambda _: None, today=TODAY))

    return pull


def keys(batches: list[Batch]) -> list[str]:
    return [k for b in batches for k in b.records["source_key"]]


def test_pages_until_page_number_times_size_reaches_total(run: Callable[..., list[Batch]]):
    fake = FakeYx([record(n, f"2022-03-01 10:00:0{n}") for n in range(5)])
    batches = run(fake)
    assert keys(batches) == [f"R{n:06d}" for n in range(5)]
    assert [p["pageNo"] for p in fake.pages] == ["1", "2", "3"]


def test_an_empty_list_ends_the_pull_even_when_total_says_more(run: Callable[..., list[Batch]]):
    fake = FakeYx([record(n, f"2022-03-01 10:00:0{n}") for n in range(4)])
    fake.total_bonus = 2
    assert keys(run(fake)) == [f"R{n:06d}" for n in range(4)]
    assert [p["pageNo"] for p in fake.pages] == ["1", "2", "3"]


def test_a_short_page_before_total_is_a_contract_error(run: Callable[..., list[Batch]]):
    fake = FakeYx([record(n, f"2022-03-01 10:00:0{n}") for n in range(3)])
    fake.total_bonus = 3
    with pytest.raises(ContractError, match="short page 2 before total 6"):
        run(fake)


def test_each_page_is_a_batch_whose_watermark_is_its_last_record(
    run: Callable[..., list[Batch]],
):
    fake = FakeYx([record(n, f"2022-03-01 10:00:0{n}") for n in range(3)])
    marks = [b.watermark for b in run(fake)]
    assert marks == [
        {"updated": "2022-03-01 10:00:01", "record_id": "R000001"},
        {"updated": "2022-03-01 10:00:02", "record_id": "R000002"},
    ]


def test_window_is_the_year_of_update_times(run: Callable[..., list[Batch]]):
    fake = FakeYx([record(1)])
    run(fake)
    assert fake.pages[0]["updatedFrom"] == "2022-01-01 00:00:00"
    assert fake.pages[0]["updatedTo"] == "2023-01-01 00:00:00"
    assert fake.pages[0]["pageSize"] == "2"


def test_window_ends_after_today_in_the_current_year(run: Callable[..., list[Batch]]):
    fake = FakeYx([record(1, "2026-03-01 10:00:00")])
    run(fake, year=2026)
    assert fake.pages[0]["updatedTo"] == "2026-07-01 00:00:00"


def test_a_year_after_today_sends_no_request(run: Callable[..., list[Batch]]):
    fake = FakeYx([record(1, "2027-03-01 10:00:00")])
    assert run(fake, year=2027) == []
    assert fake.tokens == 0


def test_resume_asks_from_the_watermark_time_and_skips_records_already_stored(
    run: Callable[..., list[Batch]],
):
    at = "2022-03-01 10:00:00"
    fake = FakeYx([record(n, at) for n in range(4)] + [record(9, "2022-03-02 08:00:00")])
    batches = run(fake, watermark={"updated": at, "record_id": "R000001"})
    assert fake.pages[0]["updatedFrom"] == at
    assert keys(batches) == ["R000002", "R000003", "R000009"]


def test_resume_past_the_last_record_returns_nothing(run: Callable[..., list[Batch]]):
    fake = FakeYx([record(n, f"2022-03-01 10:00:0{n}") for n in range(3)])
    assert run(fake, watermark={"updated": "2022-03-01 10:00:02", "record_id": "R000002"}) == []


def test_records_decode_into_the_raw_schema(run: Callable[..., list[Batch]]):
    wire = record(
        7,
        realName="阿不都·喆𠮷堃",
        classHour="1.5",
        examScore=None,
        examPassed=False,
        certificateNo="ZS-001",
        makeupYear=2020,
    )
    row = run(FakeYx([wire]))[0].records.iloc[0]
    assert row["platform"] == CODE
    assert row["source_key"] == "R000007"
    assert row["raw_id"] == "370921197501011234"
    assert row["name"] == "阿不都·喆𠮷堃"
    assert (row["employer"], row["course_code"], row["course_title"]) == (
        "泰安市第一中学",
        "C7",
        "课程7",
    )
    assert row["category_label"] == "公需科目"
    assert row["hours"] == 1.5
    assert row["completed_at"] == pd.Timestamp("2022-02-28 09:30:00", tz="Asia/Shanghai")
    assert row["updated_at"] == pd.Timestamp("2022-03-01 10:00:00", tz="Asia/Shanghai")
    assert not row["passed"]
    assert pd.isna(row["score"])
    assert row["certificate_no"] == "ZS-001"
    assert row["makeup"]
    assert row["makeup_year"] == 2020
    assert not row["withdrawn"]
    assert row["pull_year"] == 2022
    assert json.loads(row["payload"]) == wire


def test_a_record_without_makeup_year_is_not_makeup(run: Callable[..., list[Batch]]):
    frame = run(FakeYx([record(1)]))[0].records
    assert not frame["makeup"].iloc[0]
    assert pd.isna(frame["makeup_year"].iloc[0])


def test_unparseable_values_become_missing_not_errors(run: Callable[..., list[Batch]]):
    wire = record(1, classHour="两小时", finishTime="2022/02/28", examPassed="yes")
    row = run(FakeYx([wire]))[0].records.iloc[0]
    assert pd.isna(row["hours"])
    assert pd.isna(row["completed_at"])
    assert pd.isna(row["passed"])


def test_an_expired_token_is_renewed_once_and_the_page_asked_again(
    run: Callable[..., list[Batch]],
):
    fake = FakeYx([record(1)])
    fake.expire = 1
    assert keys(run(fake)) == ["R000001"]
    assert fake.tokens == 2


def test_a_token_refused_right_after_renewal_is_an_auth_error(run: Callable[..., list[Batch]]):
    fake = FakeYx([record(1)])
    fake.expire = 2
    with pytest.raises(AuthError, match="re-authentication"):
        run(fake)


def test_a_busy_code_is_retried(run: Callable[..., list[Batch]]):
    fake = FakeYx([record(1)])
    fake.codes = [50001, 50001]
    assert keys(run(fake)) == ["R000001"]


def test_any_other_error_code_is_a_contract_error(run: Callable[..., list[Batch]]):
    fake = FakeYx([record(1)])
    fake.codes = [40003]
    with pytest.raises(ContractError, match="error code 40003"):
        run(fake)


def test_a_refused_token_request_is_an_auth_error(run: Callable[..., list[Batch]]):
    with pytest.raises(AuthError, match="token refused"):
        run(lambda request: envelope(40001, None, "bad appSecret"))


def body_answer(content: bytes) -> Callable[[httpx.Request], httpx.Response]:
    fake = FakeYx([])

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth/token"):
            return fake(request)
        return httpx.Response(200, content=content)

    return answer


def test_a_body_that_is_not_json_names_platform_url_and_snippet(
    run: Callable[..., list[Batch]],
):
    with pytest.raises(ContractError) as caught:
        run(body_answer(b"<html>502 Bad Gateway</html>"))
    assert caught.value.platform == CODE
    assert "/openapi/v1/study-records" in caught.value.url
    assert "502 Bad Gateway" in caught.value.snippet


def test_undecodable_bytes_are_a_contract_error(run: Callable[..., list[Batch]]):
    body = json.dumps({"code": 0, "data": {"total": 1, "list": []}}).encode()
    with pytest.raises(ContractError, match="not JSON"):
        run(body_answer(body.replace(b'"list"', b'"\xd5\xc5"')))


def test_data_without_a_list_is_a_contract_error(run: Callable[..., list[Batch]]):
    with pytest.raises(ContractError, match="total, pageNo, list"):
        run(body_answer(json.dumps({"code": 0, "msg": "ok", "data": {"total": 3}}).encode()))


def test_a_record_missing_a_contract_field_fails_the_pull(run: Callable[..., list[Batch]]):
    wire = record(1)
    del wire["examPassed"]
    with pytest.raises(ContractError, match="lack required fields: examPassed"):
        run(FakeYx([wire]))


def test_a_field_absent_from_some_records_of_a_page_is_null(run: Callable[..., list[Batch]]):
    lacking = record(2, "2022-03-01 10:00:02")
    del lacking["certificateNo"]
    fake = FakeYx([record(1, "2022-03-01 10:00:01", certificateNo="ZS-1"), lacking])
    frame = run(fake)[0].records
    assert frame["certificate_no"].tolist()[0] == "ZS-1"
    assert pd.isna(frame["certificate_no"].iloc[1])


def test_a_page_mixing_json_types_in_a_field_is_read_value_by_value(
    run: Callable[..., list[Batch]],
):
    """No Arrow type fits the page: each value is judged alone, a bad one becomes null."""
    fake = FakeYx(
        [
            record(1, "2022-03-01 10:00:01", classHour=2, idCard=370921197501011234),
            record(2, "2022-03-01 10:00:02", classHour="1.5", examPassed="yes"),
            record(3, "2022-03-01 10:00:03", classHour="x", makeupYear="2020"),
        ]
    )
    frame = pd.concat([batch.records for batch in run(fake)], ignore_index=True)
    assert frame["hours"].tolist()[:2] == [2.0, 1.5]
    assert pd.isna(frame["hours"].iloc[2])
    assert frame["raw_id"].iloc[0] == "370921197501011234"
    assert frame["passed"].iloc[0]
    assert pd.isna(frame["passed"].iloc[1])
    assert frame["makeup_year"].iloc[2] == 2020
    assert frame["makeup"].tolist() == [False, False, True]


def test_the_payload_is_the_record_as_compact_utf8_json(run: Callable[..., list[Batch]]):
    wire = record(7, realName="阿不都·喆𠮷堃", certificateNo=None)
    row = run(FakeYx([wire]))[0].records.iloc[0]
    assert row["payload"] == json.dumps(wire, ensure_ascii=False, separators=(",", ":"))


def test_a_page_answering_for_another_page_number_is_a_contract_error(
    run: Callable[..., list[Batch]],
):
    body = {"code": 0, "msg": "ok", "data": {"total": 9, "pageNo": 2, "pageSize": 2, "list": []}}
    with pytest.raises(ContractError, match="for the requested page"):
        run(body_answer(json.dumps(body).encode()))


def test_a_page_of_versions_already_seen_is_a_contract_error(run: Callable[..., list[Batch]]):
    fake = FakeYx([record(n) for n in range(2)])  # one instant: the order cannot tell

    def ignore_page_number(request: httpx.Request) -> httpx.Response:
        if "pageNo" not in request.url.params:
            return fake(request)
        first = httpx.Request(
            "GET", request.url.copy_set_param("pageNo", "1"), headers=request.headers
        )
        data = json.loads(fake(first).content)["data"]
        return envelope(0, {**data, "total": 6, "pageNo": int(request.url.params["pageNo"])})

    with pytest.raises(ContractError, match="repeats versions seen"):
        run(ignore_page_number)


def test_records_out_of_update_order_are_a_contract_error(run: Callable[..., list[Batch]]):
    fake = FakeYx([record(1, "2022-03-02 00:00:00"), record(2, "2022-03-01 00:00:00")])
    fake.records.reverse()
    with pytest.raises(ContractError, match="not ordered by update time"):
        run(fake)


def test_a_new_field_is_logged_once_by_name_and_kept_in_the_payload(
    run: Callable[..., list[Batch]], caplog: pytest.LogCaptureFixture
):
    fake = FakeYx([record(n, f"2022-03-01 10:00:0{n}", studyMode="online") for n in range(4)])
    with caplog.at_level(logging.INFO, logger="xueshi.connectors"):
        batches = run(fake)
    notes = [r.getMessage() for r in caplog.records if "new fields" in r.getMessage()]
    assert notes == [f"[{CODE}] new fields kept in the payload only: studyMode"]
    assert json.loads(batches[1].records["payload"].iloc[0])["studyMode"] == "online"


def test_every_yx_platform_spec_pulls_with_the_same_engine(
    mock_client: Callable[..., PlatformClient],
):
    spec = load_specs()["yt_ldu"]

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth/token"):
            return envelope(0, {"accessToken": "t", "expiresIn": 7200})
        return envelope(0, {"total": 1, "pageNo": 1, "pageSize": 500, "list": [record(1)]})

    with mock_client("yt_ldu", answer) as client:
        batches: Iterator[Batch] = yx.pull(
            spec, client, PullRequest.for_year(2022), lambda _: None, today=TODAY
        )
        frame = next(batches).records
    assert frame["platform"].tolist() == ["yt_ldu"]
