"""The in-process runner: settings and environment for clients, epochs, the served log, shutdown."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pandas as pd
import pytest

from connectors.core import SANDBOX_PORT, sandbox_settings, settings_for
from sandbox.generator import generate
from sandbox.server import Sandbox
from schemas.platforms import PLATFORMS
from tests.sandbox.fixtures_server import FakeDataset, client, records, running

YX_WINDOW = {"updatedFrom": "2022-01-01 00:00:00", "updatedTo": "2023-01-01 00:00:00"}


def test_default_port_is_the_sandbox_port() -> None:
    assert Sandbox(FakeDataset({})).requested_port == SANDBOX_PORT


def test_settings_are_the_sandbox_credentials_on_the_bound_port() -> None:
    with running({}) as sandbox:
        assert sandbox.settings("yt_ldu") == sandbox_settings("yt_ldu", port=sandbox.port)
        assert sandbox.base_url("yt_ldu") == f"http://127.0.0.1:{sandbox.port}/yt_ldu"


def test_unknown_platform_has_no_settings() -> None:
    with running({}) as sandbox, pytest.raises(KeyError):
        sandbox.settings("zz_none")


def test_env_gives_every_platform_the_settings_connectors_read() -> None:
    with running({}) as sandbox:
        env = sandbox.env()
        assert len(env) == 3 * len(PLATFORMS)
        assert all(settings_for(c, env) == sandbox.settings(c) for c in PLATFORMS)


def test_exports_can_be_evaluated_by_a_shell() -> None:
    with running({}) as sandbox:
        script = f'{sandbox.exports()}\necho "$XUESHI_YT_YTEC_BASE_URL $XUESHI_TA_SDTY_KEY"'
        echoed = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
        assert echoed.stdout.split() == [sandbox.base_url("yt_ytec"), "ta_sdty-key"]


def test_every_platform_is_mounted_under_its_code() -> None:
    with (
        running({}) as sandbox,
        client(sandbox, "ta_zjp") as http,
    ):
        assert http.get("/export/records.csv").status_code == 401
        with client(sandbox, "yt_ytec") as http:
            assert http.get("/index/export").status_code == 401


def test_an_unknown_path_is_404() -> None:
    with running({}) as sandbox, httpx.Client(verify=False) as http:
        assert http.get(f"http://127.0.0.1:{sandbox.port}/zz_none/x").status_code == 404


def test_advance_moves_to_the_next_epoch() -> None:
    epochs = [records("yt_ytec", 1), records("yt_ytec", 2)]
    with (
        running({"yt_ytec": epochs}) as sandbox,
        client(sandbox, "yt_ytec", auth=("yt_ytec-key", "yt_ytec-secret")) as http,
    ):
        first = http.get("/index/export", params={"year": 2022}).text.count("\n")
        assert sandbox.advance() == 1
        second = http.get("/index/export", params={"year": 2022}).text.count("\n")
    assert (first, second) == (2, 3)


def test_served_log_has_one_entry_per_pull_from_its_first_page() -> None:
    token = {"appKey": "ta_yx-key", "appSecret": "ta_yx-secret", "grant_type": "client_credentials"}
    with running({"ta_yx": [records("ta_yx", 3)]}) as sandbox, client(sandbox, "ta_yx") as http:
        data = http.post("/openapi/oauth/token", data=token).json()["data"]
        headers = {"Authorization": f"Bearer {data['accessToken']}"}
        for page in (1, 2, 1):
            params = {**YX_WINDOW, "pageNo": page, "pageSize": 2}
            http.get("/openapi/v1/study-records", params=params, headers=headers)
        log = sandbox.served_log("ta_yx")
    assert log == [["ta_yx-00000", "ta_yx-00001", "ta_yx-00002"], ["ta_yx-00000", "ta_yx-00001"]]


def test_stop_closes_the_port() -> None:
    with running({}) as sandbox:
        url = sandbox.base_url("ta_zjp")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/export/records.csv", verify=False)


# --- with the generator's Dataset ---------------------------------------------------------------


@pytest.fixture(scope="module")
def generated() -> Iterator[Sandbox]:
    with Sandbox(generate(records=300, seed=0), port=0, seed=0) as sandbox:
        yield sandbox


def test_yx_serves_every_generated_record_of_the_window(generated: Sandbox) -> None:
    token = {"appKey": "ta_yx-key", "appSecret": "ta_yx-secret", "grant_type": "client_credentials"}
    window = {"updatedFrom": "2000-01-01 00:00:00", "updatedTo": "2100-01-01 00:00:00"}
    with client(generated, "ta_yx") as http:
        data = http.post("/openapi/oauth/token", data=token).json()["data"]
        headers = {"Authorization": f"Bearer {data['accessToken']}"}
        params = {**window, "pageNo": 1, "pageSize": 500}
        body = http.get("/openapi/v1/study-records", params=params, headers=headers).json()
    expected = generated_keys(generated, "ta_yx")
    assert sorted(r["recordId"] for r in body["data"]["list"]) == sorted(expected)


def test_huaxue_snapshots_hold_every_generated_record(generated: Sandbox) -> None:
    frame = generated_frame(generated, "yt_ytec")
    auth = ("yt_ytec-key", "yt_ytec-secret")
    with client(generated, "yt_ytec", auth=auth) as http:
        for year in sorted(set(frame["pull_year"])):
            http.get("/index/export", params={"year": int(year)})
    served = [key for pull in generated.served_log("yt_ytec") for key in pull]
    assert sorted(served) == sorted(frame["source_key"])


def test_serve_prints_settings_to_eval_and_serves_them() -> None:
    command = [sys.executable, "-c", "from sandbox.server import serve; serve(50, 0, 0, 'none')"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            exports = dict(
                line.removeprefix("export ").split("=", 1)
                for line in (process.stdout.readline().strip() for _ in range(3 * len(PLATFORMS)))
            )
            url = exports["XUESHI_YT_YTEC_BASE_URL"]
            response = http_retrying(
                f"{url}/index/export?year=2022", ("yt_ytec-key", "yt_ytec-secret")
            )
        finally:
            process.send_signal(signal.SIGINT)
    assert response.status_code == 200
    assert exports["XUESHI_YT_YTEC_KEY"] == "yt_ytec-key"


def http_retrying(url: str, auth: tuple[str, str]) -> httpx.Response:
    """GET once the freshly started server listens (it prints its settings first)."""
    for _ in range(100):
        try:
            return httpx.get(url, auth=auth, verify=False)
        except httpx.ConnectError:
            time.sleep(0.05)
    return httpx.get(url, auth=auth, verify=False)


def generated_frame(sandbox: Sandbox, code: str) -> pd.DataFrame:
    frame = sandbox.contexts[code].frame()
    return frame.loc[~frame["withdrawn"]]


def generated_keys(sandbox: Sandbox, code: str) -> list[str]:
    return generated_frame(sandbox, code)["source_key"].tolist()
