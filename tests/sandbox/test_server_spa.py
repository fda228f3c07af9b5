"""Family spa over real HTTP: login token, offset pages newest first, pages shifting mid-pull."""

from __future__ import annotations

import httpx

from tests.sandbox.fixtures_server import Clock, client, record, records, running, served_frame

CODE = "yt_naas"
LOGIN = {"username": "yt_naas-key", "password": "yt_naas-secret"}


def login(http: httpx.Client) -> dict[str, str]:
    return {"token": http.post("/api/login", json=LOGIN).json()["token"]}


def listing(http: httpx.Client, headers: dict[str, str], offset: int, limit: int = 5) -> dict:
    params = {"year": 2022, "offset": offset, "limit": limit}
    return http.get("/api/records", params=params, headers=headers).json()


def ids_of(page: dict) -> list[int]:
    return [row["id"] for row in page["rows"]]


def test_login_with_a_wrong_password_is_401() -> None:
    with running({CODE: [records(CODE, 1)]}) as sandbox, client(sandbox, CODE) as http:
        response = http.post("/api/login", json={**LOGIN, "password": "wrong"})
    assert response.status_code == 401


def test_records_without_a_token_are_401() -> None:
    with running({CODE: [records(CODE, 1)]}) as sandbox, client(sandbox, CODE) as http:
        assert http.get("/api/records", params={"year": 2022}).status_code == 401


def test_tokens_expire() -> None:
    clock = Clock()
    with running({CODE: [records(CODE, 1)]}, clock=clock) as sandbox, client(sandbox, CODE) as http:
        headers = login(http)
        clock.now += 7201
        assert http.get("/api/records", params={"year": 2022}, headers=headers).status_code == 401


def test_offset_pages_hold_every_record_once_newest_first() -> None:
    with running({CODE: [records(CODE, 12)]}) as sandbox, client(sandbox, CODE) as http:
        headers = login(http)
        pages = [listing(http, headers, offset) for offset in (0, 5, 10)]
    assert [p["total"] for p in pages] == [12, 12, 12]
    assert [i for p in pages for i in ids_of(p)] == list(range(1011, 999, -1))


def test_year_selects_the_records_pull_year() -> None:
    frame = served_frame([record(CODE, 0), record(CODE, 1, pull_year=2021)])
    with running({CODE: [frame]}) as sandbox, client(sandbox, CODE) as http:
        headers = login(http)
        page = http.get("/api/records", params={"year": 2021}, headers=headers).json()
    assert (ids_of(page), page["total"]) == ([1001], 1)


def test_unfinished_record_is_learning_with_no_finish_date() -> None:
    frame = served_frame([record(CODE, 0, completed_at=None, passed=False, score=None)])
    with running({CODE: [frame]}) as sandbox, client(sandbox, CODE) as http:
        row = listing(http, login(http), 0)["rows"][0]
    assert (row["status"], row["finishDate"], row["score"]) == ("学习中", None, None)


def test_row_fields_follow_the_contract() -> None:
    with running({CODE: [records(CODE, 1)]}) as sandbox, client(sandbox, CODE) as http:
        row = listing(http, login(http), 0)["rows"][0]
    assert row == {
        "id": 1000,
        "name": "张0",
        "sfzh": "370902198801011234",
        "company": "泰安市第一中学",
        "lessonName": "课程0",
        "lessonType": "公需",
        "hours": 2.0,
        "finishDate": "2022-05-03",
        "status": "已完成",
        "score": 85.0,
    }


def test_records_hidden_until_paged_shift_later_pages_mid_pull() -> None:
    rows = [record(CODE, n, hidden_until_paged=n >= 10) for n in range(12)]
    with running({CODE: [served_frame(rows)]}) as sandbox, client(sandbox, CODE) as http:
        headers = login(http)
        first, second = listing(http, headers, 0), listing(http, headers, 5)
    assert ids_of(first) == [1009, 1008, 1007, 1006, 1005]
    assert ids_of(second) == [1006, 1005, 1004, 1003, 1002]  # 1006 and 1005 again
    assert (first["total"], second["total"]) == (10, 12)


def test_a_second_pull_sees_every_revealed_record() -> None:
    rows = [record(CODE, n, hidden_until_paged=n >= 10) for n in range(12)]
    with running({CODE: [served_frame(rows)]}) as sandbox, client(sandbox, CODE) as http:
        headers = login(http)
        listing(http, headers, 0)
        again = [listing(http, headers, offset) for offset in (0, 5, 10)]
        log = sandbox.served_log(CODE)
    assert len({i for p in again for i in ids_of(p)}) == again[0]["total"] == 12
    assert len(log) == 2
