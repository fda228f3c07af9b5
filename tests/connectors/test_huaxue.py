"""Family huaxue (yt_ytec): the year's full CSV snapshot; vanished rows are withdrawals."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pandas as pd
import pytest

from connectors.core import (
    AuthError,
    Batch,
    ContractError,
    PlatformClient,
    PullRequest,
)
from connectors.engines import huaxue
from schemas.platforms import load_specs
from tests.connectors.clients import offline_client

CODE = "yt_ytec"
HEADER = "姓名,身份证号码,单位名称,所属领域,课程,课程性质,获得学时,结业日期,证书号"
ROWS = [
    "欧阳·堃,370602197501011234,烟台某公司,智能制造,工业互联网,专业,3学时,2022年5月3日,HX-1",
    "𠮷喆,37060219750101123X,烟台某学校,现代服务,职业道德,公需,1.5学时,2022年12月31日,",
]

Handler = Callable[[httpx.Request], httpx.Response]


def snapshot(rows: list[str], *, bom: bool = True) -> Handler:
    text = ("\ufeff" if bom else "") + "\n".join([HEADER, *rows]) + "\n"
    content = text.encode()
    return lambda request: httpx.Response(
        200, content=content, headers={"Content-Type": "text/csv; charset=utf-8"}
    )


def run(handler: Handler, request: PullRequest | None = None) -> list[Batch]:
    client = offline_client(CODE, handler)
    with client:
        spec = load_specs()[CODE]
        return list(huaxue.pull(spec, client, request or PullRequest.for_year(2022), [].append))


def records(handler: Handler, request: PullRequest | None = None) -> pd.DataFrame:
    (batch,) = run(handler, request)
    return batch.records


def test_snapshot_is_one_batch_with_its_row_count_as_watermark() -> None:
    batches = run(snapshot(ROWS))
    assert [(len(b.records), b.watermark) for b in batches] == [(2, {"snapshot_rows": 2})]


def test_requests_the_partition_year_with_basic_auth() -> None:
    seen: list[httpx.Request] = []
    serve = snapshot(ROWS)
    run(lambda request: seen.append(request) or serve(request), PullRequest.for_year(2021))
    token = base64.b64encode(b"yt_ytec-key:yt_ytec-secret").decode()
    assert (seen[0].url.path, seen[0].url.params["year"]) == ("/yt_ytec/index/export", "2021")
    assert seen[0].headers["Authorization"] == f"Basic {token}"


def test_bom_is_dropped_and_rare_names_survive() -> None:
    assert records(snapshot(ROWS))["name"].tolist() == ["欧阳·堃", "𠮷喆"]


def test_hours_are_the_number_before_xueshi() -> None:
    assert records(snapshot(ROWS))["hours"].tolist() == [3.0, 1.5]


@pytest.mark.parametrize("value", ["三学时", "3", "3小时", ""])
def test_hours_in_any_other_form_are_nan(value: str) -> None:
    row = ROWS[0].replace("3学时", value)
    assert records(snapshot([row]))["hours"].isna().all()


def test_chinese_dates_are_midnight_in_shanghai() -> None:
    assert records(snapshot(ROWS))["completed_at"].tolist() == [
        pd.Timestamp("2022-05-03", tz="Asia/Shanghai"),
        pd.Timestamp("2022-12-31", tz="Asia/Shanghai"),
    ]


def test_every_listed_record_is_passed_and_not_makeup() -> None:
    frame = records(snapshot(ROWS))
    assert (frame["passed"].tolist(), frame["makeup"].tolist()) == ([True, True], [False, False])


def test_field_and_labels_are_kept() -> None:
    frame = records(snapshot(ROWS))
    assert frame["category_label"].tolist() == ["专业", "公需"]
    assert json.loads(frame["payload"].iloc[0])["所属领域"] == "智能制造"


def test_known_key_missing_from_the_snapshot_is_withdrawn() -> None:
    first = records(snapshot(ROWS))
    gone = first["source_key"].iloc[1]
    later = records(
        snapshot(ROWS[:1]), PullRequest.for_year(2022, known_keys=frozenset(first["source_key"]))
    )
    withdrawn = later.loc[later["withdrawn"]]
    assert withdrawn["source_key"].tolist() == [gone]


def test_withdrawn_row_carries_only_its_key_and_pull() -> None:
    later = records(snapshot([]), PullRequest.for_year(2022, known_keys=frozenset({"k1"})))
    row = later.iloc[0]
    assert (row["platform"], row["source_key"], row["withdrawn"], row["pull_year"]) == (
        CODE,
        "k1",
        True,
        2022,
    )
    assert (
        row.drop(["platform", "source_key", "withdrawn", "pull_year", "pulled_at", "makeup"])
        .isna()
        .all()
    )


def test_unchanged_snapshot_withdraws_nothing() -> None:
    first = records(snapshot(ROWS))
    again = records(
        snapshot(ROWS), PullRequest.for_year(2022, known_keys=frozenset(first["source_key"]))
    )
    assert (again["source_key"].tolist(), again["withdrawn"].any()) == (
        first["source_key"].tolist(),
        False,
    )


def test_header_without_a_contract_column_is_a_contract_error() -> None:
    broken = snapshot([ROWS[0]])
    with pytest.raises(ContractError, match="missing columns"):
        run(
            lambda request: httpx.Response(
                200, content=broken(request).content.replace("证书号".encode(), b"No")
            )
        )


def test_body_that_is_not_utf8_is_a_contract_error() -> None:
    content = ("\n".join([HEADER, *ROWS]) + "\n").encode("gb18030")
    with pytest.raises(ContractError, match="not valid utf-8"):
        run(
            lambda request: httpx.Response(
                200, content=content, headers={"Content-Type": "text/csv"}
            )
        )


def test_credentials_refused_twice_are_an_auth_error() -> None:
    with pytest.raises(AuthError):
        run(lambda request: httpx.Response(401))


# --- against the sandbox, over real HTTP ----------------------------------------------------


def snapshot_of(served: pd.DataFrame, year: int) -> pd.DataFrame:
    """What the platform's snapshot of a year lists: its live records of that year."""
    return served[~served["withdrawn"] & (served["pull_year"] == year)]


def pull_year(client: PlatformClient, year: int, known: frozenset[str] | None = None) -> Batch:
    request = PullRequest.for_year(year, known_keys=known)
    (batch,) = huaxue.pull(load_specs()[CODE], client, request, [].append)
    return batch


def test_a_record_gone_from_the_next_snapshot_comes_out_withdrawn(
    sandbox: Callable[..., Any], sandbox_client: Callable[..., PlatformClient], dataset: Any
) -> None:
    later = dataset.served(CODE, 1)
    gone = dataset.served(CODE, 0).pipe(lambda s: s[~s["source_key"].isin(later["source_key"])])
    year = int(gone["pull_year"].iloc[0])
    served = sandbox("all")
    client = sandbox_client(served, CODE)
    known = frozenset(pull_year(client, year).records["source_key"])
    served.advance()
    records = pull_year(client, year, known).records
    assert records.loc[records["withdrawn"], "source_key"].tolist() == gone["source_key"].tolist()
