"""Family treewises over MockTransport: cursor paging, stop rules, revocations, static token."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

import httpx
import pandas as pd
import pytest

from connectors.core import AuthError, Batch, ContractError, PlatformClient, PullRequest
from connectors.engines import treewises

CODE = "ta_sdty"
TODAY = date(2026, 6, 30)
MARCH = 1_646_064_000_000  # 2022-03-01 00:00 +08:00 in epoch milliseconds
MINUTE = 60_000


def item(n: int, updated: int | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"c_{n:05d}",
        "learner": {"name": "欧阳·堃", "id_no": "370902198801011234", "org": "泰安市中心医院"},
        "course": {"code": f"K{n}", "title": f"课程{n}", "kind": "PROFESSIONAL"},
        "credit_hours": "2.0",
        "completed_at": MARCH - 90 * MINUTE,
        "passed": True,
        "certificate": {"no": f"SD{n}"},
        "makeup_for": None,
        "revoked": False,
        "updated_at": MARCH + n * MINUTE if updated is None else updated,
        **fields,
    }


class FakeTreewises:
    """Items ordered by `updated_at` behind an opaque cursor, as the contract serves them."""

    def __init__(self, items: list[dict[str, Any]], limit: int = 2) -> None:
        self.items = sorted(items, key=lambda i: i["updated_at"])
        self.limit = limit
        self.queries: list[dict[str, str]] = []
        self.refuse = 0  # answer 401 to this many requests
        self.cursor: Callable[[int], str] = lambda offset: f"opaque-{offset}"
        self.offsets: dict[str, int] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/v2/completions")
        assert request.headers["X-Tenant"] == "sdta"
        if self.refuse or request.headers["Authorization"] != f"Token {CODE}-key":
            self.refuse = max(0, self.refuse - 1)
            return httpx.Response(401, json={"detail": "invalid token"})
        query = dict(request.url.params)
        self.queries.append(query)
        since = pd.Timestamp(query["since"]).value // 1_000_000
        selected = [i for i in self.items if i["updated_at"] >= since]
        offset = self.offsets[query["cursor"]] if "cursor" in query else 0
        end = offset + int(query["limit"])
        cursor = self.cursor(end) if end < len(selected) else None
        if cursor is not None:
            self.offsets[cursor] = end
        return httpx.Response(200, json={"items": selected[offset:end], "next_cursor": cursor})


@pytest.fixture
def run(
    mock_client: Callable[..., PlatformClient], spec_with: Callable[..., Any]
) -> Callable[..., list[Batch]]:
    """`run(handler, watermark=None, year=2022)`: the batches of one pull, two items a page."""

    def pull(
        handler: Callable[[httpx.Request], httpx.Response],
        watermark: dict[str, Any] | None = None,
        year: int = 2022,
    ) -> list[Batch]:
        spec = spec_with(CODE, page_size=2)
        request = PullRequest.for_year(year, watermark=watermark)
        with mock_client(CODE, handler) as client:
            return list(treewises.pull(spec, client, request, lambda _: None, today=TODAY))

    return pull


def ids(batches: list[Batch]) -> list[str]:
    return [k for b in batches for k in b.records["source_key"]]


def test_pages_follow_the_cursor_until_it_is_null(run: Callable[..., list[Batch]]):
    fake = FakeTreewises([item(n) for n in range(5)])
    assert ids(run(fake)) == [f"c_{n:05d}" for n in range(5)]
    assert [q.get("cursor") for q in fake.queries] == [None, "opaque-2", "opaque-4"]


def test_the_first_request_asks_since_the_start_of_the_year_with_an_offset(
    run: Callable[..., list[Batch]],
):
    fake = FakeTreewises([item(1)])
    run(fake)
    assert fake.queries[0] == {"since": "2022-01-01T00:00:00+08:00", "limit": "2"}


def test_the_pull_stops_at_the_first_item_updated_in_the_next_year(
    run: Callable[..., list[Batch]],
):
    new_year = 1_672_502_400_000  # 2023-01-01 00:00 +08:00
    late = [item(n, new_year + n) for n in range(3, 8)]
    fake = FakeTreewises([item(1), item(2, new_year - 1), *late])
    assert ids(run(fake)) == ["c_00001", "c_00002"]
    assert len(fake.queries) == 2


def test_a_cursor_seen_twice_is_a_contract_error(run: Callable[..., list[Batch]]):
    fake = FakeTreewises([item(n) for n in range(6)])
    fake.cursor = lambda offset: "same"
    with pytest.raises(ContractError, match="cursor 'same' seen twice"):
        run(fake)


def test_a_page_of_versions_already_seen_is_a_contract_error(run: Callable[..., list[Batch]]):
    fake = FakeTreewises([item(n, MARCH) for n in range(6)])  # one instant: the order cannot tell
    fake.offsets["fresh-cursor"] = 0

    def first_page_again(request: httpx.Request) -> httpx.Response:
        response = fake(request)
        return httpx.Response(
            200, json={**json.loads(response.content), "next_cursor": "fresh-cursor"}
        )

    with pytest.raises(ContractError, match="repeats versions seen"):
        run(first_page_again)


def test_an_empty_page_that_points_further_is_a_contract_error(
    run: Callable[..., list[Batch]],
):
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [], "next_cursor": "more"})

    with pytest.raises(ContractError, match="empty page with a next_cursor"):
        run(answer)


def test_an_empty_last_page_ends_the_pull(run: Callable[..., list[Batch]]):
    assert run(FakeTreewises([])) == []


def test_items_decode_into_the_raw_schema(run: Callable[..., list[Batch]]):
    wire = item(3, makeup_for=2020, credit_hours="1.5", passed=False)
    row = run(FakeTreewises([wire]))[0].records.iloc[0]
    assert (row["source_key"], row["raw_id"], row["name"], row["employer"]) == (
        "c_00003",
        "370902198801011234",
        "欧阳·堃",
        "泰安市中心医院",
    )
    assert (row["course_code"], row["course_title"], row["category_label"]) == (
        "K3",
        "课程3",
        "PROFESSIONAL",
    )
    assert row["hours"] == 1.5
    assert row["completed_at"] == pd.Timestamp("2022-02-28 22:30", tz="Asia/Shanghai")
    assert row["updated_at"] == pd.Timestamp("2022-03-01 00:03", tz="Asia/Shanghai")
    assert not row["passed"]
    assert row["certificate_no"] == "SD3"
    assert row["makeup"]
    assert row["makeup_year"] == 2020
    assert not row["withdrawn"]
    assert json.loads(row["payload"]) == wire


def test_a_revoked_item_is_a_withdrawal(run: Callable[..., list[Batch]]):
    frame = run(FakeTreewises([item(1), item(2, revoked=True)]))[0].records
    assert frame["withdrawn"].tolist() == [False, True]


def test_a_null_certificate_is_a_missing_certificate_number(run: Callable[..., list[Batch]]):
    frame = run(FakeTreewises([item(1, certificate=None)]))[0].records
    assert pd.isna(frame["certificate_no"].iloc[0])
    assert not frame["makeup"].iloc[0]


def test_an_item_missing_a_nested_field_fails_the_pull(run: Callable[..., list[Batch]]):
    wire = item(1)
    del wire["learner"]["id_no"]
    with pytest.raises(ContractError, match=r"lack required fields: learner\.id_no"):
        run(FakeTreewises([wire]))


def test_a_body_without_items_is_a_contract_error(run: Callable[..., list[Batch]]):
    with pytest.raises(ContractError, match="items, next_cursor"):
        run(lambda request: httpx.Response(200, json={"results": []}))


def test_each_batch_watermark_is_its_last_update_time(run: Callable[..., list[Batch]]):
    marks = [b.watermark for b in run(FakeTreewises([item(n) for n in range(3)]))]
    assert marks == [
        {"since": "2022-03-01T00:01:00.000+08:00"},
        {"since": "2022-03-01T00:02:00.000+08:00"},
    ]


def test_a_resumed_pull_asks_since_the_watermark(run: Callable[..., list[Batch]]):
    fake = FakeTreewises([item(n) for n in range(5)])
    batches = run(fake, watermark={"since": "2022-03-01T00:03:00.000+08:00"})
    assert fake.queries[0]["since"] == "2022-03-01T00:03:00.000+08:00"
    assert ids(batches) == ["c_00003", "c_00004"]


def test_a_refused_token_is_sent_once_more(run: Callable[..., list[Batch]]):
    fake = FakeTreewises([item(1)])
    fake.refuse = 1
    assert ids(run(fake)) == ["c_00001"]


def test_a_token_refused_twice_is_an_auth_error(run: Callable[..., list[Batch]]):
    fake = FakeTreewises([item(1)])
    fake.refuse = 2
    with pytest.raises(AuthError):
        run(fake)


def test_a_rate_limited_request_waits_its_retry_after(
    run: Callable[..., list[Batch]], sleeps: list[float]
):
    fake = FakeTreewises([item(1)])
    limited = [True]

    def answer(request: httpx.Request) -> httpx.Response:
        if limited.pop() if limited else False:
            return httpx.Response(429, headers={"Retry-After": "1.5"})
        return fake(request)

    assert ids(run(answer)) == ["c_00001"]
    assert sleeps == [1.5]


def test_items_out_of_update_order_are_a_contract_error(run: Callable[..., list[Batch]]):
    fake = FakeTreewises([item(1), item(2)])
    fake.items.reverse()
    with pytest.raises(ContractError, match="not ordered by update time"):
        run(fake)
