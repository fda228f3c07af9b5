"""Family treewises over real HTTP: token and tenant, keyset cursor, tombstones, rate limit."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pandas as pd
import pytest

from sandbox.families import Options
from sandbox.server import Sandbox
from schemas.raw import TZ
from tests.sandbox.fixtures_server import Clock, client, record, records, running, served_frame

CODE = "ta_sdty"
HEADERS = {"Authorization": "Token ta_sdty-key", "X-Tenant": "sdta"}
SINCE_2022 = "2022-01-01T00:00:00+08:00"
UNLIMITED = Options(rate_limit=0)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    rows = [record(CODE, n) for n in range(25)]
    rows[3] |= {"withdrawn": True}
    rows[4] |= {"makeup": True, "makeup_year": 2019, "certificate_no": None, "wire_hours": "1.5"}
    with running({CODE: [served_frame(rows)]}, options=UNLIMITED) as sandbox:
        yield sandbox


def pull(http: httpx.Client, since: str = SINCE_2022, limit: int = 10) -> list[dict]:
    items: list[dict] = []
    params: dict[str, str | int] = {"since": since, "limit": limit}
    while True:
        body = http.get("/v2/completions", params=params).json()
        items += body["items"]
        if body["next_cursor"] is None:
            return items
        params = {"since": since, "limit": limit, "cursor": body["next_cursor"]}


def test_request_without_token_is_401(sandbox: Sandbox) -> None:
    with client(sandbox, CODE) as http:
        assert http.get("/v2/completions", params={"since": SINCE_2022}).status_code == 401


def test_request_with_another_tenant_is_401(sandbox: Sandbox) -> None:
    with client(sandbox, CODE, headers={**HEADERS, "X-Tenant": "other"}) as http:
        assert http.get("/v2/completions", params={"since": SINCE_2022}).status_code == 401


def test_cursor_pages_hold_every_item_once_in_update_order(sandbox: Sandbox) -> None:
    with client(sandbox, CODE, headers=HEADERS) as http:
        ids = [item["id"] for item in pull(http)]
    assert ids == [f"c_{n:05d}" for n in range(25)]


def test_since_is_inclusive(sandbox: Sandbox) -> None:
    # record 2 is updated at 2022-05-03 10:30 +08:00
    with client(sandbox, CODE, headers=HEADERS) as http:
        ids = [item["id"] for item in pull(http, since="2022-05-03T10:30:00+08:00")]
    assert ids[0] == "c_00002"


def test_withdrawn_versions_are_served_as_revoked(sandbox: Sandbox) -> None:
    with client(sandbox, CODE, headers=HEADERS) as http:
        revoked = [item["id"] for item in pull(http) if item["revoked"]]
    assert revoked == ["c_00003"]


def test_item_fields_follow_the_contract(sandbox: Sandbox) -> None:
    with client(sandbox, CODE, headers=HEADERS) as http:
        items = pull(http)
    assert items[0] == {
        "id": "c_00000",
        "learner": {"name": "张0", "id_no": "370902198801011234", "org": "泰安市第一中学"},
        "course": {"code": "K000", "title": "课程0", "kind": "PUBLIC"},
        "credit_hours": "2.0",
        "completed_at": int(pd.Timestamp("2022-05-03 00:00", tz="UTC").timestamp() * 1000),
        "passed": True,
        "certificate": {"no": "CERT0000"},
        "makeup_for": None,
        "revoked": False,
        "updated_at": int(pd.Timestamp("2022-05-03 00:30", tz="UTC").timestamp() * 1000),
    }
    assert (items[4]["makeup_for"], items[4]["certificate"], items[4]["credit_hours"]) == (
        2019,
        None,
        "1.5",
    )


def test_a_malformed_cursor_is_400(sandbox: Sandbox) -> None:
    with client(sandbox, CODE, headers=HEADERS) as http:
        response = http.get("/v2/completions", params={"since": SINCE_2022, "cursor": "%%%"})
    assert response.status_code == 400


def test_cursor_continues_after_advance_with_newer_versions() -> None:
    newer = pd.Timestamp("2022-08-01 09:00", tz=TZ)
    later = served_frame(
        [record(CODE, n, updated_at=newer) if n == 0 else record(CODE, n) for n in range(4)]
    )
    with (
        running({CODE: [records(CODE, 4), later]}, options=UNLIMITED) as sandbox,
        client(sandbox, CODE, headers=HEADERS) as http,
    ):
        first = http.get("/v2/completions", params={"since": SINCE_2022, "limit": 2}).json()
        sandbox.advance()
        params = {"since": SINCE_2022, "limit": 10, "cursor": first["next_cursor"]}
        rest = http.get("/v2/completions", params=params).json()
    assert [i["id"] for i in rest["items"]] == ["c_00002", "c_00003", "c_00000"]


def test_more_than_five_requests_a_second_get_429_with_retry_after() -> None:
    clock = Clock()
    with (
        running({CODE: [records(CODE, 1)]}, clock=clock) as sandbox,
        client(sandbox, CODE, headers=HEADERS) as http,
    ):
        statuses = [http.get("/v2/completions", params={"since": SINCE_2022}) for _ in range(6)]
        clock.now += 1
        after_a_second = http.get("/v2/completions", params={"since": SINCE_2022})
    assert [r.status_code for r in statuses] == [200] * 5 + [429]
    assert int(statuses[-1].headers["Retry-After"]) >= 1
    assert after_a_second.status_code == 200


def test_served_log_starts_a_pull_at_each_request_without_cursor() -> None:
    with (
        running({CODE: [records(CODE, 3)]}, options=UNLIMITED) as sandbox,
        client(sandbox, CODE, headers=HEADERS) as http,
    ):
        pull(http, limit=2)
        pull(http, limit=2)
        log = sandbox.served_log(CODE)
    assert log == [["c_00000", "c_00001", "c_00002"]] * 2
