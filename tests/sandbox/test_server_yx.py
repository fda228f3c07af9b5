"""Family yx over real HTTP: token auth, in-band errors, half-open update windows, page numbers."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pandas as pd
import pytest

from schemas.raw import TZ
from tests.sandbox.fixtures_server import Clock, client, record, records, running, served_frame

CODE = "ta_yx"
YEAR_2022 = {"updatedFrom": "2022-01-01 00:00:00", "updatedTo": "2023-01-01 00:00:00"}
CREDENTIALS = {
    "appKey": "ta_yx-key",
    "appSecret": "ta_yx-secret",
    "grant_type": "client_credentials",
}
CLOCK = Clock()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    frame = records(CODE, 23)
    with running({CODE: [frame]}, clock=CLOCK, seed=3) as sandbox, client(sandbox, CODE) as http:
        yield http


def token(http: httpx.Client) -> dict[str, str]:
    body = http.post("/openapi/oauth/token", data=CREDENTIALS).json()
    return {"Authorization": f"Bearer {body['data']['accessToken']}"}


def page(http: httpx.Client, number: int, size: int = 10, **window: str) -> dict:
    params = {**YEAR_2022, **window, "pageNo": number, "pageSize": size}
    return http.get("/openapi/v1/study-records", params=params, headers=token(http)).json()


def test_token_response_follows_the_contract(http: httpx.Client) -> None:
    body = http.post("/openapi/oauth/token", data=CREDENTIALS).json()
    assert body["code"] == 0
    assert body["data"]["expiresIn"] == 7200
    assert isinstance(body["data"]["accessToken"], str)


def test_wrong_secret_is_refused_in_band(http: httpx.Client) -> None:
    response = http.post("/openapi/oauth/token", data={**CREDENTIALS, "appSecret": "nope"})
    assert response.status_code == 200
    assert response.json()["code"] not in (0, 40101, 50001)


def test_records_without_a_token_are_refused_in_band(http: httpx.Client) -> None:
    body = http.get("/openapi/v1/study-records", params={**YEAR_2022, "pageNo": 1}).json()
    assert body["code"] not in (0, 40101, 50001)


def test_an_unknown_token_reads_as_expired(http: httpx.Client) -> None:
    headers = {"Authorization": "Bearer forged"}
    body = http.get("/openapi/v1/study-records", params=YEAR_2022, headers=headers).json()
    assert body["code"] == 40101


def test_pages_together_hold_every_record_once_in_update_order(http: httpx.Client) -> None:
    first = page(http, 1)
    pages = [first] + [page(http, n) for n in (2, 3)]
    ids = [r["recordId"] for p in pages for r in p["data"]["list"]]
    assert first["data"]["total"] == 23
    assert ids == [f"ta_yx-{n:05d}" for n in range(23)]


def test_page_envelope_echoes_page_number_and_size(http: httpx.Client) -> None:
    data = page(http, 3)["data"]
    assert (data["pageNo"], data["pageSize"], len(data["list"])) == (3, 10, 3)


def test_page_size_over_500_is_an_error(http: httpx.Client) -> None:
    body = page(http, 1, size=501)
    assert body["code"] not in (0, 40101, 50001)
    assert "data" not in body


def test_window_is_half_open_on_update_time(http: httpx.Client) -> None:
    # record n is updated at 2022-05-03 08:30 + n h
    body = page(http, 1, updatedFrom="2022-05-03 09:30:00", updatedTo="2022-05-03 11:30:00")
    assert [r["recordId"] for r in body["data"]["list"]] == ["ta_yx-00001", "ta_yx-00002"]


def test_record_fields_follow_the_contract(http: httpx.Client) -> None:
    item = page(http, 1, size=1)["data"]["list"][0]
    assert item == {
        "recordId": "ta_yx-00000",
        "idCard": "370902198801011234",
        "realName": "张0",
        "mobile": item["mobile"],
        "unitName": "泰安市第一中学",
        "courseId": "K000",
        "courseName": "课程0",
        "courseCategory": "公需科目",
        "classHour": 2.0,
        "finishTime": "2022-05-03 08:00:00",
        "examScore": 85.0,
        "examPassed": True,
        "certificateNo": "CERT0000",
        "makeupYear": None,
        "updateTime": "2022-05-03 08:30:00",
    }
    assert len(item["mobile"]) == 11


def test_tokens_expire_after_expires_in() -> None:
    clock = Clock()
    with running({CODE: [records(CODE, 2)]}, clock=clock) as sandbox, client(sandbox, CODE) as http:
        headers = token(http)
        clock.now += 7201
        body = http.get("/openapi/v1/study-records", params=YEAR_2022, headers=headers).json()
    assert body["code"] == 40101


def test_makeup_year_and_missing_score_are_served_as_numbers_and_nulls() -> None:
    makeup = record(CODE, 0, makeup=True, makeup_year=2020, score=None, passed=False)
    frame = served_frame([makeup])
    with running({CODE: [frame]}) as sandbox, client(sandbox, CODE) as http:
        item = page(http, 1)["data"]["list"][0]
    assert (item["makeupYear"], item["examScore"], item["examPassed"]) == (2020, None, False)


def test_a_newer_version_after_advance_is_served_with_its_new_update_time() -> None:
    later = pd.Timestamp("2022-09-01 12:00:05", tz=TZ)
    epochs = [records(CODE, 1), served_frame([record(CODE, 0, updated_at=later, score=99.0)])]
    with running({CODE: epochs}) as sandbox, client(sandbox, CODE) as http:
        sandbox.advance()
        item = page(http, 1)["data"]["list"][0]
    assert (item["updateTime"], item["examScore"]) == ("2022-09-01 12:00:05", 99.0)
