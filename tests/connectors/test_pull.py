"""The pull runner over MockTransport: engine choice, client construction, `pull_frame`."""

from __future__ import annotations

import re
from collections.abc import Callable, Generator
from typing import Any

import httpx
import pandas as pd
import pytest

from connectors.core import FAST_RETRIES, PullRequest, Settings
from connectors.pull import ENGINES, Throttled, client_for, pull, pull_frame, read_ahead
from schemas.platforms import load_specs
from schemas.raw import RAW_COLUMNS

MARCH = 1_646_064_000_000  # 2022-03-01 00:00 +08:00 in epoch milliseconds


def item(version: int) -> dict[str, object]:
    return {
        "id": "c_1",
        "learner": {"name": "李喆", "id_no": "370902198801011234", "org": "泰安市中心医院"},
        "course": {"code": "K1", "title": "课程", "kind": "PUBLIC"},
        "credit_hours": "2.0",
        "completed_at": MARCH,
        "passed": True,
        "certificate": None,
        "makeup_for": None,
        "revoked": version > 1,
        "updated_at": MARCH + version,
    }


def two_versions(request: httpx.Request) -> httpx.Response:
    """treewises: one item on the first page, a newer version of it on the second."""
    if "cursor" in request.url.params:
        return httpx.Response(200, json={"items": [item(2)], "next_cursor": None})
    return httpx.Response(200, json={"items": [item(1)], "next_cursor": "next"})


def test_every_family_of_the_specs_has_an_engine():
    assert {spec.family for spec in load_specs().values()} <= set(ENGINES)


def test_pull_builds_the_client_from_the_settings_it_is_given():
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": [item(1)], "next_cursor": None})

    settings = Settings("http://sdty.test/base", "tok", "unused")
    batches = list(
        pull(
            "ta_sdty",
            PullRequest.for_year(2022),
            settings=settings,
            transport=httpx.MockTransport(answer),
        )
    )
    assert [b.records["source_key"].tolist() for b in batches] == [["c_1"]]
    assert str(seen[0].url).startswith("http://sdty.test/base/v2/completions?")
    assert seen[0].headers["Authorization"] == "Token tok"


def test_pull_reports_every_page_then_a_summary_without_a_rate_limit():
    messages: list[str] = []
    transport = httpx.MockTransport(two_versions)
    request = PullRequest.for_year(2022)
    list(
        pull("ta_sdty", request, transport=transport, progress=messages.append, progress_seconds=0)
    )
    assert messages[:2] == [
        "ta_sdty: page 1, 1 items in the window",
        "ta_sdty: page 2, 1 items in the window",
    ]
    assert re.fullmatch(
        r"ta_sdty 2022: 2 records in 2 batches, 2 requests \(0 retried\) in \d+\.\d s",
        messages[2],
    )
    assert len(messages) == 3


def many_pages(request: httpx.Request) -> httpx.Response:
    """treewises: 50 pages of one item each, each a newer version of the same record."""
    page = int(request.url.params.get("cursor", "1"))
    more = str(page + 1) if page < 50 else None
    return httpx.Response(200, json={"items": [item(page)], "next_cursor": more})


def test_a_pull_of_many_pages_reports_its_first_page_and_a_summary_within_the_rate_limit():
    messages: list[str] = []
    transport = httpx.MockTransport(many_pages)
    request = PullRequest.for_year(2022)
    batches = list(pull("ta_sdty", request, transport=transport, progress=messages.append))
    assert len(batches) == 50
    assert messages[0] == "ta_sdty: page 1, 1 items in the window"
    assert messages[-1].startswith("ta_sdty 2022: 50 records in 50 batches, 50 requests")
    assert len(messages) <= 3  # a slow machine may pass one more page after 10 s


def test_throttled_progress_passes_one_message_per_interval():
    now = [0.0]
    messages: list[str] = []
    throttled = Throttled(messages.append, 5.0, clock=lambda: now[0])
    for second in range(12):
        now[0] = float(second)
        throttled(f"at {second}")
    throttled.summary("done")
    assert messages == ["at 0", "at 5", "at 10", "done in 11.0 s"]


def test_an_unknown_platform_code_is_refused():
    with pytest.raises(KeyError, match="unknown platform 'ta_nope'"):
        list(pull("ta_nope", PullRequest.for_year(2022)))


def test_pull_frame_keeps_the_last_version_of_each_source_key():
    frame = pull_frame(
        "ta_sdty", 2022, transport=httpx.MockTransport(two_versions), retry=FAST_RETRIES
    )
    assert frame["source_key"].tolist() == ["c_1"]
    assert frame["withdrawn"].tolist() == [True]
    assert tuple(frame.columns) == RAW_COLUMNS


def test_pull_frame_of_an_empty_year_is_an_empty_raw_frame():
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [], "next_cursor": None})

    frame = pull_frame("ta_sdty", 2022, transport=httpx.MockTransport(answer))
    assert frame.empty
    assert tuple(frame.columns) == RAW_COLUMNS


@pytest.mark.parametrize("code", ["ta_yx", "yt_ldu", "ta_sdty"])
def test_pull_frame_over_the_sandbox_returns_the_year_it_served(
    code: str,
    sandbox: Callable[..., Any],
    dataset: Any,
    same_records: Callable[[pd.DataFrame, pd.DataFrame], None],
):
    served = sandbox()
    frame = pull_frame(code, 2021, settings=served.settings(code), retry=FAST_RETRIES)
    expected = dataset.served(code, 0)
    updated = expected["updated_at"]
    listed = updated.notna() & (updated.dt.year == 2021)
    if code != "ta_sdty":  # only treewises lists withdrawn records (as revoked items)
        listed &= ~expected["withdrawn"]
    same_records(frame, expected[listed])


def test_one_client_serves_the_pulls_of_several_years_and_stays_open():
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return two_versions(request)

    with client_for("ta_sdty", transport=httpx.MockTransport(answer)) as client:
        counts = [
            len(list(pull("ta_sdty", PullRequest.for_year(year), client=client)))
            for year in (2021, 2022)
        ]
        assert counts == [0, 2]  # 2021 stops at its first item, updated in 2022
        assert client.requests == len(requests) == 3
        assert not client._http.is_closed
    assert client._http.is_closed


def counted(
    pages: int, closed: list[int], fail_at: int | None = None
) -> Generator[int, None, None]:
    try:
        for page in range(pages):
            if page == fail_at:
                raise httpx.ConnectError("platform gone")
            yield page
    finally:
        closed.append(1)


def test_read_ahead_yields_every_page_in_order() -> None:
    closed: list[int] = []

    assert list(read_ahead(counted(50, closed), depth=3)) == list(range(50))
    assert closed == [1]


def test_read_ahead_raises_the_pulls_error_after_the_pages_before_it() -> None:
    seen: list[int] = []

    with pytest.raises(httpx.ConnectError, match="platform gone"):
        seen.extend(read_ahead(counted(10, [], fail_at=4)))

    assert seen == [0, 1, 2, 3]


def test_read_ahead_stops_and_closes_the_pull_when_the_caller_stops() -> None:
    closed: list[int] = []
    pages = read_ahead(counted(1_000, closed), depth=2)

    assert next(pages) == 0
    pages.close()

    assert closed == [1]
