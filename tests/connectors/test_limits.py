"""How long a client waits when told to, and how much of a body it reads (issue 13)."""

import dataclasses

import httpx
import pytest

from connectors.core import (
    FAST_RETRIES,
    ConnectorError,
    ContractError,
    PlatformClient,
    sandbox_settings,
)
from tests.connectors.conftest import Sleeps


def client(handler: httpx.MockTransport, sleeps: Sleeps, **policy: float) -> PlatformClient:
    return PlatformClient(
        "ta_sdty",
        sandbox_settings("ta_sdty"),
        retry=dataclasses.replace(FAST_RETRIES, **policy),
        transport=handler,
        sleep=sleeps,
    )


def limited_once(seconds: str) -> httpx.MockTransport:
    answers = [httpx.Response(429, headers={"Retry-After": seconds}), httpx.Response(200)]
    return httpx.MockTransport(lambda request: answers.pop(0))


def test_a_retry_after_longer_than_max_wait_is_waited_in_full(sleeps: Sleeps) -> None:
    with client(limited_once("45"), sleeps, max_wait=2.0) as platform:
        assert platform.request("GET", "/v2/completions").status_code == 200
    assert sleeps == [45.0]


def test_a_retry_after_past_the_ceiling_fails_saying_how_long_it_asked_for(
    sleeps: Sleeps,
) -> None:
    platform = client(limited_once("3600"), sleeps, retry_after_ceiling=300.0)
    with (
        platform,
        pytest.raises(ConnectorError, match=r"\[ta_sdty\] asked to wait 3600 s") as error,
    ):
        platform.request("GET", "/v2/completions")
    assert "300 s ceiling" in str(error.value)
    assert "/v2/completions" in str(error.value)
    assert sleeps == []


def test_a_retry_after_at_the_ceiling_is_honored(sleeps: Sleeps) -> None:
    with client(limited_once("300"), sleeps, retry_after_ceiling=300.0) as platform:
        assert platform.request("GET", "/v2/completions").status_code == 200
    assert sleeps == [300.0]


def test_a_body_larger_than_the_bound_is_a_contract_error(sleeps: Sleeps) -> None:
    huge = httpx.MockTransport(lambda request: httpx.Response(200, content=b"x" * 5000))
    platform = client(huge, sleeps, max_body_bytes=4096)
    with platform, pytest.raises(ContractError, match="declares 5000 bytes, more than the 4096"):
        platform.request("GET", "/v2/completions")


def test_a_streamed_body_running_past_the_bound_is_a_contract_error(sleeps: Sleeps) -> None:
    chunks = httpx.ByteStream(b"x" * 5000)
    endless = httpx.MockTransport(lambda request: httpx.Response(200, stream=chunks))
    platform = client(endless, sleeps, max_body_bytes=4096)
    with platform, pytest.raises(ContractError, match="ran past 4096 bytes"):
        platform.request("GET", "/v2/completions")


def test_a_body_within_the_bound_is_read_whole(sleeps: Sleeps) -> None:
    fits = httpx.MockTransport(lambda request: httpx.Response(200, content=b"x" * 4096))
    with client(fits, sleeps, max_body_bytes=4096) as platform:
        assert platform.request("GET", "/v2/completions").content == b"x" * 4096
