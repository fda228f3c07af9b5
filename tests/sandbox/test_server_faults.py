"""Faults: the config grammar, each fault appearing when switched on and absent when off,
bounded streaks, and determinism under a seed."""

from __future__ import annotations

import hashlib
import hmac
import time

import httpx
import pytest

from sandbox.faults import Faults
from sandbox.server import Sandbox
from schemas.platforms import PLATFORMS
from tests.sandbox.fixtures_server import client, records, running

ZJP = {"start": "2022-05-01", "end": "2022-05-31"}
ZJP_KEY = {"X-Api-Key": "ta_zjp-key"}
YX_TOKEN = {"appKey": "ta_yx-key", "appSecret": "ta_yx-secret", "grant_type": "client_credentials"}
YX_WINDOW = {"updatedFrom": "2022-01-01 00:00:00", "updatedTo": "2023-01-01 00:00:00"}
ALWAYS = "rate=1;retry_after=0"


def frames(*codes: str) -> dict:
    return {code: [records(code, 3)] for code in codes}


def zjp_statuses(sandbox: Sandbox, count: int) -> list[int]:
    with client(sandbox, "ta_zjp", headers=ZJP_KEY) as http:
        return [http.get("/export/records.csv", params=ZJP).status_code for _ in range(count)]


# --- the grammar ------------------------------------------------------------------------------


def test_none_switches_every_fault_off() -> None:
    assert Faults.parse("none").enabled == {}


def test_all_switches_every_platforms_faults_on() -> None:
    faults = Faults.parse("all")
    assert set(faults.enabled) == set(PLATFORMS)
    assert faults.for_platform("ta_yx") == {"5xx", "reset", "429", "slow", "expiry", "busy"}
    assert faults.for_platform("ta_zjp") == {"5xx", "reset", "429", "slow"}


def test_platform_lists_name_kinds_per_platform() -> None:
    faults = Faults.parse("ta_yx:5xx,429;yt_ytu:reset")
    assert dict(faults.enabled) == {"ta_yx": {"5xx", "429"}, "yt_ytu": {"reset"}}


def test_all_with_a_family_kind_applies_where_the_family_has_it() -> None:
    assert set(Faults.parse("all:expiry").enabled) == {"ta_yx", "yt_ldu", "yt_naas", "yt_samet"}


def test_options_set_rate_retry_after_delay_and_streak() -> None:
    faults = Faults.parse("all;rate=0.5;retry_after=0;slow=0.25;streak=3")
    assert (faults.rate, faults.retry_after, faults.slow_delay, faults.max_streak) == (
        0.5,
        0.0,
        0.25,
        3,
    )


@pytest.mark.parametrize("text", ["ta_yx:fire", "nowhere:5xx", "ta_zjp:expiry", "speed=3"])
def test_a_wrong_fault_config_is_an_error(text: str) -> None:
    with pytest.raises(ValueError):
        Faults.parse(text)


# --- generic faults ---------------------------------------------------------------------------


def test_server_errors_appear_when_switched_on() -> None:
    with running(frames("ta_zjp"), f"ta_zjp:5xx;{ALWAYS}") as sandbox:
        statuses = zjp_statuses(sandbox, 2)
    assert set(statuses) <= {500, 502, 503}


def test_no_fault_appears_when_switched_off() -> None:
    with running(frames("ta_zjp"), f"ta_yx;{ALWAYS}") as sandbox:
        assert zjp_statuses(sandbox, 30) == [200] * 30


def test_never_more_than_max_streak_faults_in_a_row() -> None:
    with running(frames("ta_zjp"), f"ta_zjp:5xx;{ALWAYS};streak=2") as sandbox:
        statuses = zjp_statuses(sandbox, 6)
    assert [s == 200 for s in statuses] == [False, False, True, False, False, True]


def test_429_carries_the_configured_retry_after() -> None:
    with (
        running(frames("ta_zjp"), "ta_zjp:429;rate=1;retry_after=2") as sandbox,
        client(sandbox, "ta_zjp", headers=ZJP_KEY) as http,
    ):
        response = http.get("/export/records.csv", params=ZJP)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "2")


def test_reset_drops_the_connection_mid_response() -> None:
    with (
        running(frames("ta_zjp"), f"ta_zjp:reset;{ALWAYS};streak=1") as sandbox,
        client(sandbox, "ta_zjp", headers=ZJP_KEY) as http,
    ):
        with pytest.raises(httpx.RemoteProtocolError):
            http.get("/export/records.csv", params=ZJP)
        assert http.get("/export/records.csv", params=ZJP).status_code == 200


def test_slow_response_outlasts_the_read_timeout() -> None:
    with (
        running(frames("ta_zjp"), f"ta_zjp:slow;{ALWAYS};slow=0.5") as sandbox,
        client(sandbox, "ta_zjp", headers=ZJP_KEY, timeout=0.1) as http,
        pytest.raises(httpx.ReadTimeout),
    ):
        http.get("/export/records.csv", params=ZJP)


def test_injected_counts_faults_by_kind() -> None:
    with running(frames("ta_zjp"), f"ta_zjp:5xx;{ALWAYS}") as sandbox:
        zjp_statuses(sandbox, 3)
        assert sandbox.injected("ta_zjp") == {"5xx": 2}


# --- in-band faults ---------------------------------------------------------------------------


def yx_codes(sandbox: Sandbox, reads_per_token: int) -> list[int]:
    """Codes of `reads_per_token` reads with one token, then as many with a fresh one."""
    codes = []
    with client(sandbox, "ta_yx") as http:
        for _ in range(2):
            data = http.post("/openapi/oauth/token", data=YX_TOKEN).json()["data"]
            headers = {"Authorization": f"Bearer {data['accessToken']}"}
            for _ in range(reads_per_token):
                body = http.get("/openapi/v1/study-records", params=YX_WINDOW, headers=headers)
                codes.append(body.json()["code"])
    return codes


def test_yx_token_expires_mid_pull_but_never_on_a_fresh_token() -> None:
    with running(frames("ta_yx"), f"ta_yx:expiry;{ALWAYS}") as sandbox:
        assert yx_codes(sandbox, 2) == [0, 40101, 0, 40101]


def test_yx_busy_comes_in_band() -> None:
    with running(frames("ta_yx"), f"ta_yx:busy;{ALWAYS}") as sandbox:
        assert yx_codes(sandbox, 3)[:3] == [50001, 50001, 0]


def test_spa_token_expires_mid_pull_with_401() -> None:
    with (
        running(frames("yt_samet"), f"yt_samet:expiry;{ALWAYS}") as sandbox,
        client(sandbox, "yt_samet") as http,
    ):
        login = {"username": "yt_samet-key", "password": "yt_samet-secret"}
        headers = {"token": http.post("/api/login", json=login).json()["token"]}
        statuses = [
            http.get("/api/records", params={"year": 2022}, headers=headers).status_code
            for _ in range(3)
        ]
    assert statuses == [200, 401, 401]


def test_tyjrp_jobs_fail_but_never_more_than_max_streak_in_a_row() -> None:
    auth = ("ta_tyjrp-key", "ta_tyjrp-secret")
    with (
        running(frames("ta_tyjrp"), f"ta_tyjrp:job;{ALWAYS}") as sandbox,
        client(sandbox, "ta_tyjrp", auth=auth) as http,
    ):
        finals = []
        for _ in range(3):
            job = http.post("/api/export-jobs", json={"from": "2022-05-01", "to": "2022-05-31"})
            url = f"/api/export-jobs/{job.json()['jobId']}"
            finals.append([http.get(url).json()["status"] for _ in range(3)][-1])
    assert finals == ["failed", "failed", "done"]


def test_lllnet_refuses_a_fresh_ts_as_expired() -> None:
    with running(frames("yt_ytu"), f"yt_ytu:ts;{ALWAYS}") as sandbox:
        params = {"appid": "yt_ytu-key", "from": "2022-05-01", "to": "2022-05-31", "page": "1"}
        params["ts"] = str(int(time.time()))
        message = "&".join(f"{k}={params[k]}" for k in sorted(params))
        params["sign"] = hmac.new(b"yt_ytu-secret", message.encode(), hashlib.sha256).hexdigest()
        with client(sandbox, "yt_ytu") as http:
            bodies = [http.get("/api/export.xml", params=params).text for _ in range(3)]
    assert ['code="TS_EXPIRED"' in body for body in bodies] == [True, True, False]


# --- determinism ------------------------------------------------------------------------------


def sequence(seed: int) -> list[int]:
    with running(frames("ta_zjp"), "ta_zjp:5xx,429;rate=0.5;retry_after=0", seed=seed) as sandbox:
        return zjp_statuses(sandbox, 40)


def test_the_same_seed_gives_the_same_faults() -> None:
    assert sequence(7) == sequence(7)


def test_another_seed_gives_other_faults() -> None:
    assert sequence(7) != sequence(8)
