"""The pull runner over MockTransport: engine choice, client construction, `pull_frame`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pandas as pd
import pytest

from connectors.core import FAST_RETRIES, PullRequest, Settings
from connectors.pull import ENGINES, pull, pull_frame
from connectors.specs import load_specs
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


def test_pull_reports_progress_per_page():
    messages: list[str] = []
    transport = httpx.MockTransport(two_versions)
    list(pull("ta_sdty", PullRequest.for_year(2022), transport=transport, progress=messages.append))
    assert messages == [
        "ta_sdty: page 1, 1 items in the window",
        "ta_sdty: page 2, 1 items in the window",
    ]


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
