"""Family spa over MockTransport: login token, offset pages that shift, the distinct-id check."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

import httpx
import pandas as pd
import pytest

from connectors.core import AuthError, Batch, ContractError, PlatformClient, PullRequest
from connectors.engines import spa

CODE = "yt_naas"
TODAY = date(2026, 6, 30)


def row(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": n,
        "name": "买买提·𠮷喆",
        "sfzh": "370602198001011234",
        "company": "烟台市农业科学研究院",
        "lessonName": f"乡村振兴课程{n}",
        "lessonType": "乡村振兴",
        "hours": 3,
        "finishDate": "2022-05-03",
        "status": "已完成",
        "score": 90,
        **fields,
    }


class FakeSpa:
    """Rows of one year, newest first, behind offset pages and a login token."""

    def __init__(self, rows: list[dict[str, Any]], code: str = CODE) -> None:
        self.rows = rows
        self.code = code
        self.logins = 0
        self.refuse = 0  # answer 401 to this many record requests
        self.queries: list[dict[str, str]] = []
        self.after_page: Callable[[int], None] = lambda served: None  # e.g. a record arrives

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/api/login"):
            assert json.loads(request.content) == {
                "username": f"{self.code}-key",
                "password": f"{self.code}-secret",
            }
            self.logins += 1
            return httpx.Response(200, json={"token": f"tok{self.logins}"})
        assert request.url.path.endswith("/api/records")
        if self.refuse or request.headers.get("token") != f"tok{self.logins}":
            self.refuse = max(0, self.refuse - 1)
            return httpx.Response(401, json={"msg": "请重新登录"})
        query = dict(request.url.params)
        self.queries.append(query)
        listed = sorted(self.rows, key=lambda r: -r["id"])
        offset, limit = int(query["offset"]), int(query["limit"])
        body = {"rows": listed[offset : offset + limit], "total": len(listed)}
        self.after_page(len(self.queries))
        return httpx.Response(200, json=body)


@pytest.fixture
def run(
    mock_client: Callable[..., PlatformClient], spec_with: Callable[..., Any]
) -> Callable[..., list[Batch]]:
    """`run(handler, code=CODE, year=2022)`: the batches of one pull, two rows a page."""

    def pull(
        handler: Callable[[httpx.Request], httpx.Response], code: str = CODE, year: int = 2022
    ) -> list[Batch]:
        spec = spec_with(code, page_size=2)
        with mock_client(code, handler) as client:
            request = PullRequest.for_year(year)
            return list(spa.pull(spec, client, request, lambda _: None, today=TODAY))

    return pull


def ids(batches: list[Batch]) -> list[str]:
    return sorted(k for b in batches for k in b.records["source_key"])


def test_pages_until_the_offset_reaches_total(run: Callable[..., list[Batch]]):
    fake = FakeSpa([row(n) for n in range(1, 6)])
    assert ids(run(fake)) == ["1", "2", "3", "4", "5"]
    assert [(q["year"], q["offset"], q["limit"]) for q in fake.queries] == [
        ("2022", "0", "2"),
        ("2022", "2", "2"),
        ("2022", "4", "2"),
    ]


def test_the_whole_year_is_one_batch_whose_watermark_is_total(
    run: Callable[..., list[Batch]],
):
    batches = run(FakeSpa([row(n) for n in range(1, 6)]))
    assert len(batches) == 1
    assert batches[0].watermark == {"total": 5}


def test_a_record_arriving_mid_pull_makes_a_second_read_that_finds_everything(
    run: Callable[..., list[Batch]],
):
    fake = FakeSpa([row(n) for n in range(1, 6)])

    def arrive(served: int) -> None:
        if served == 1:
            fake.rows.append(row(6))

    fake.after_page = arrive
    assert ids(run(fake)) == ["1", "2", "3", "4", "5", "6"]
    assert [q["offset"] for q in fake.queries] == ["0", "2", "4", "0", "2", "4"]


def test_reads_that_never_match_total_end_in_a_contract_error_naming_the_mismatch(
    run: Callable[..., list[Batch]],
):
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/api/login"):
            return httpx.Response(200, json={"token": "t"})
        return httpx.Response(200, json={"rows": [row(1), row(1)], "total": 2})

    with pytest.raises(ContractError, match="after 3 reads: 1 distinct ids seen, total says 2"):
        run(answer)


def test_rows_of_all_reads_are_united_by_id_the_latest_read_winning(
    run: Callable[..., list[Batch]],
):
    fake = FakeSpa([row(n) for n in range(1, 4)])

    def arrive_and_finish(served: int) -> None:
        if served == 1:
            fake.rows[0] = row(1, status="学习中", finishDate=None, score=None)
            fake.rows.append(row(4))

    fake.rows[0] = row(1, score=60)
    fake.after_page = arrive_and_finish
    frame = run(fake)[0].records.set_index("source_key")
    assert frame.index.sort_values().tolist() == ["1", "2", "3", "4"]
    assert not frame.loc["1", "passed"]


def test_an_unfinished_row_is_kept_as_not_passed_without_a_date(
    run: Callable[..., list[Batch]],
):
    fake = FakeSpa([row(1, status="学习中", finishDate=None, score=None)])
    frame = run(fake)[0].records
    assert not frame["passed"].iloc[0]
    assert pd.isna(frame["completed_at"].iloc[0])


def test_an_unknown_status_is_an_unknown_pass(run: Callable[..., list[Batch]]):
    frame = run(FakeSpa([row(1, status="已退课")]))[0].records
    assert pd.isna(frame["passed"].iloc[0])


def test_rows_decode_into_the_raw_schema(run: Callable[..., list[Batch]]):
    wire = row(7, hours=1.5)
    r = run(FakeSpa([wire]))[0].records.iloc[0]
    assert (r["source_key"], r["raw_id"], r["name"], r["employer"]) == (
        "7",
        "370602198001011234",
        "买买提·𠮷喆",
        "烟台市农业科学研究院",
    )
    assert (r["course_title"], r["category_label"]) == ("乡村振兴课程7", "乡村振兴")
    assert pd.isna(r["course_code"])
    assert r["hours"] == 1.5
    assert r["completed_at"] == pd.Timestamp("2022-05-03", tz="Asia/Shanghai")
    assert r["passed"]
    assert r["score"] == 90
    assert not r["makeup"]
    assert pd.isna(r["updated_at"])
    assert json.loads(r["payload"]) == wire


def test_yt_samet_field_names_pass_through_as_labels(run: Callable[..., list[Batch]]):
    fake = FakeSpa([row(1, lessonType="工程技术")], code="yt_samet")
    frame = run(fake, code="yt_samet")[0].records
    assert frame["category_label"].tolist() == ["工程技术"]
    assert frame["platform"].tolist() == ["yt_samet"]


def test_a_401_logs_in_again_once(run: Callable[..., list[Batch]]):
    fake = FakeSpa([row(1)])
    fake.refuse = 1
    assert ids(run(fake)) == ["1"]
    assert fake.logins == 2


def test_a_401_right_after_logging_in_again_is_an_auth_error(run: Callable[..., list[Batch]]):
    fake = FakeSpa([row(1)])
    fake.refuse = 2
    with pytest.raises(AuthError):
        run(fake)


def test_a_refused_login_is_an_auth_error(run: Callable[..., list[Batch]]):
    with pytest.raises(AuthError, match="login refused"):
        run(lambda request: httpx.Response(401, json={"msg": "用户名或密码错误"}))


def test_a_body_without_rows_is_a_contract_error(run: Callable[..., list[Batch]]):
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/api/login"):
            return httpx.Response(200, json={"token": "t"})
        return httpx.Response(200, json={"data": [], "total": 0})

    with pytest.raises(ContractError, match="rows"):
        run(answer)


def test_an_empty_year_yields_nothing(run: Callable[..., list[Batch]]):
    assert run(FakeSpa([])) == []


def test_a_year_after_today_sends_no_request(run: Callable[..., list[Batch]]):
    fake = FakeSpa([row(1)])
    assert run(fake, year=2027) == []
    assert fake.logins == 0


# --- against the sandbox, over real HTTP ----------------------------------------------------


def listed(served: pd.DataFrame, year: int) -> pd.DataFrame:
    """What spa lists for `year=Y`, at the wire's resolution: finishDate carries no time."""
    rows = served[~served["withdrawn"] & (served["pull_year"] == year)]
    return rows.assign(completed_at=rows["completed_at"].dt.normalize())


def pull_year(spec: Any, client: PlatformClient, year: int) -> list[Batch]:
    return list(spa.pull(spec, client, PullRequest.for_year(year), lambda _: None))


def test_records_arriving_during_the_first_read_are_found_by_a_second(
    sandbox: Callable[..., Any],
    sandbox_client: Callable[..., PlatformClient],
    spec_with: Callable[..., Any],
    dataset: Any,
):
    served = sandbox()
    client = sandbox_client(served, CODE)
    (batch,) = pull_year(spec_with(CODE, page_size=10), client, 2020)
    expected = listed(dataset.served(CODE, 0), 2020)
    assert expected["hidden_until_paged"].any()
    assert sorted(batch.records["source_key"]) == sorted(expected["source_key"])
    assert batch.watermark == {"total": len(expected)}
    first_read, second_read = served.served_log(CODE)
    assert len(set(first_read)) < len(expected) == len(set(second_read))
