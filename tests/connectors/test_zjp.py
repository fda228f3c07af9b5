"""Family zjp (ta_zjp GBK, yt_sdbc UTF-8 with BOM): CSV windows by completion date."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable
from datetime import date

import httpx
import pandas as pd
import pytest

from connectors.core import (
    AuthError,
    Batch,
    ContractError,
    PlatformClient,
    PullRequest,
    sandbox_settings,
)
from connectors.engines import zjp
from schemas.platforms import load_specs
from tests.connectors.clients import offline_client

HEADER = "序号,姓名,身份证号,工作单位,课程名称,课程类型,学时,完成日期,考核结果,证书编号,补学年度"
ROWS = [
    "1,欧阳·堃,'370921197501011234,泰安某公司,【2022】职业道德,公需课,1.5,2022/1/3,合格,C-1,2019",
    "2,𠮷喆,\t37092119750101123X,泰安某医院,临床新进展,专业课,3,2022/1/13,不合格,,",
    "3,王喆,370921197501011234,泰安某医院,临床新进展,专业课,abc,2022/2/1,合格,C-3,",
]
TODAY = date(2030, 1, 1)

Handler = Callable[[httpx.Request], httpx.Response]


def body(
    rows: list[str], *, encoding: str = "gb18030", bom: bool = False, header: str = HEADER
) -> bytes:
    text = "\n".join([header, *rows]) + "\n"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding)


def csv_response(content: bytes, charset: str = "GBK") -> httpx.Response:
    return httpx.Response(
        200, content=content, headers={"Content-Type": f"text/csv; charset={charset}"}
    )


def serving(
    rows: list[str], seen: list[httpx.Request] | None = None, header: str = HEADER
) -> Handler:
    """A ta_zjp export filtering `rows` by completion date, both ends inclusive."""

    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        start = date.fromisoformat(request.url.params["start"])
        end = date.fromisoformat(request.url.params["end"])
        kept = [r for r in rows if start <= _completed(r) <= end]
        return csv_response(body(kept, header=header) + "合计,,,,,,4.5\n".encode("gb18030"))

    return handler


def _completed(row: str) -> date:
    y, m, d = row.split(",")[7].split("/")
    return date(int(y), int(m), int(d))


def run(
    handler: Handler,
    code: str = "ta_zjp",
    request: PullRequest | None = None,
    today: date = TODAY,
) -> list[Batch]:
    client = offline_client(code, handler)
    with client:
        spec = load_specs()[code]
        return list(
            zjp.pull(spec, client, request or PullRequest.for_year(2022), [].append, today=today)
        )


def records(handler: Handler, code: str = "ta_zjp") -> pd.DataFrame:
    return pd.concat([b.records for b in run(handler, code)], ignore_index=True)


def first_window(content: bytes, charset: str = "GBK", empty: bytes | None = None) -> Handler:
    """Serves `content` for January's window and an empty export for every other."""
    other = body([]) if empty is None else empty

    def handler(request: httpx.Request) -> httpx.Response:
        january = request.url.params["start"] == "2022-01-01"
        return csv_response(content if january else other, charset)

    return handler


def one_window(
    rows: list[str], *, encoding: str = "gb18030", bom: bool = False, charset: str = "GBK"
) -> Handler:
    return first_window(
        body(rows, encoding=encoding, bom=bom), charset, body([], encoding=encoding, bom=bom)
    )


def test_gbk_export_keeps_middle_dot_and_rare_characters() -> None:
    assert records(one_window(ROWS[:2]))["name"].tolist() == ["欧阳·堃", "𠮷喆"]


def test_utf8_export_with_bom_reads_its_first_column() -> None:
    frame = records(one_window(ROWS[:1], encoding="utf-8", bom=True, charset="utf-8"), "yt_sdbc")
    assert json.loads(frame["payload"].iloc[0])["序号"] == "1"


def test_id_number_is_kept_verbatim_with_quote_and_tab() -> None:
    assert records(one_window(ROWS[:2]))["raw_id"].tolist() == [
        "'370921197501011234",
        "\t37092119750101123X",
    ]


def test_fields_are_typed_from_the_wire_labels() -> None:
    first = records(one_window(ROWS[:1])).iloc[0]
    assert first[
        ["hours", "completed_at", "passed", "category_label", "certificate_no"]
    ].tolist() == [
        1.5,
        pd.Timestamp("2022-01-03", tz="Asia/Shanghai"),
        True,
        "公需课",
        "C-1",
    ]


def test_failed_exam_is_not_passed() -> None:
    assert records(one_window(ROWS[1:2]))["passed"].tolist() == [False]


def test_makeup_year_marks_a_makeup_record() -> None:
    frame = records(one_window(ROWS[:2]))
    assert frame["makeup"].tolist() == [True, False]
    assert frame["makeup_year"].iloc[0] == 2019


def test_unparseable_hours_become_nan() -> None:
    assert records(serving(ROWS[2:]))["hours"].isna().all()


def test_source_key_is_the_natural_key_of_id_title_and_date() -> None:
    frame = records(one_window(ROWS[:1]))
    again = records(one_window([ROWS[0].replace(",合格,C-1,", ",不合格,,")]))
    assert frame["source_key"].tolist() == again["source_key"].tolist()


def test_blank_lines_and_final_totals_row_are_skipped() -> None:
    content = body(["", ROWS[0], "", ROWS[1]]) + "\n合计,2\n".encode("gb18030")
    assert len(records(first_window(content))) == 2


def test_totals_row_that_is_not_last_is_a_contract_error() -> None:
    content = body([ROWS[0], "合计,,,,,,1.5", ROWS[1]])
    with pytest.raises(ContractError, match="totals row"):
        run(lambda request: csv_response(content))


def test_header_missing_a_contract_column_is_a_contract_error() -> None:
    content = body([]).replace("补学年度".encode("gb18030"), "补学".encode("gb18030"))
    with pytest.raises(ContractError, match="missing columns"):
        run(lambda request: csv_response(content))


def test_undecodable_body_is_a_contract_error() -> None:
    content = body(ROWS[:1], encoding="gb18030")
    with pytest.raises(ContractError, match="not valid utf-8"):
        run(lambda request: csv_response(content, "utf-8"), "yt_sdbc")


def test_html_error_page_is_a_contract_error_not_an_empty_window() -> None:
    page = "<html><body>系统维护中</body></html>".encode()
    with pytest.raises(ContractError):
        run(
            lambda request: httpx.Response(
                200, content=page, headers={"Content-Type": "text/html; charset=utf-8"}
            )
        )


def test_record_outside_the_requested_window_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="outside"):
        run(lambda request: csv_response(body(ROWS[2:])))


def test_windows_cover_the_year_in_at_most_31_inclusive_days() -> None:
    seen: list[httpx.Request] = []
    run(serving(ROWS, seen))
    spans = [
        (date.fromisoformat(r.url.params["start"]), date.fromisoformat(r.url.params["end"]))
        for r in seen
    ]
    assert spans[0][0] == date(2022, 1, 1) and spans[-1][1] == date(2022, 12, 31)
    assert all((end - start).days < 31 for start, end in spans)
    assert all((b[0] - a[1]).days == 1 for a, b in itertools.pairwise(spans))


def test_each_batch_watermark_is_its_window_end() -> None:
    batches = run(serving(ROWS))
    assert [b.watermark["through"] for b in batches[:2]] == ["2022-01-31", "2022-03-03"]
    assert sum(len(b.records) for b in batches) == 3


def test_progress_reports_each_window_with_counts_only() -> None:
    notes: list[str] = []
    with PlatformClient(
        "ta_zjp", sandbox_settings("ta_zjp"), transport=httpx.MockTransport(serving(ROWS))
    ) as client:
        request = PullRequest.for_year(2022)
        list(zjp.pull(load_specs()["ta_zjp"], client, request, notes.append, today=TODAY))
    assert notes[:2] == [
        "ta_zjp 2022-01-01..2022-01-31: 2 records",
        "ta_zjp 2022-02-01..2022-03-03: 1 records",
    ]
    assert len(notes) == 12


def test_new_column_is_kept_and_logged_once_per_pull(caplog: pytest.LogCaptureFixture) -> None:
    noted = serving([row + ",x" for row in ROWS], header=f"{HEADER},备注")
    with caplog.at_level(logging.INFO, logger="xueshi.connectors"):
        frame = records(noted)
    notes = [r.getMessage() for r in caplog.records if "new columns" in r.getMessage()]
    assert notes == ["[ta_zjp] new columns kept in the payload: 备注"]
    assert json.loads(frame["payload"].iloc[0])["备注"] == "x"


def test_api_key_is_sent_in_its_header() -> None:
    seen: list[httpx.Request] = []
    run(serving([], seen))
    assert {r.headers["X-Api-Key"] for r in seen} == {"ta_zjp-key"}


def test_resume_re_pulls_35_days_ending_at_the_watermark() -> None:
    seen: list[httpx.Request] = []
    run(
        serving(ROWS, seen), request=PullRequest.for_year(2022, watermark={"through": "2022-02-04"})
    )
    assert seen[0].url.params["start"] == "2022-01-01"
    seen.clear()
    run(
        serving(ROWS, seen), request=PullRequest.for_year(2022, watermark={"through": "2022-12-31"})
    )
    assert [r.url.params["start"] for r in seen] == ["2022-11-27", "2022-12-28"]


def test_windows_stop_at_today() -> None:
    seen: list[httpx.Request] = []
    run(serving(ROWS, seen), today=date(2022, 2, 10))
    assert seen[-1].url.params["end"] == "2022-02-10"


def test_transient_server_errors_are_retried_without_doubling() -> None:
    failures = iter([503, 500])
    good = serving(ROWS)

    def flaky(request: httpx.Request) -> httpx.Response:
        status = next(failures, None)
        return httpx.Response(status) if status else good(request)

    assert sorted(records(flaky)["name"]) == sorted(["欧阳·堃", "𠮷喆", "王喆"])


def test_refused_key_is_sent_once_more() -> None:
    statuses = iter([401])
    good = serving(ROWS)
    frame = records(lambda request: httpx.Response(401) if next(statuses, None) else good(request))
    assert len(frame) == 3


def test_key_refused_twice_is_an_auth_error() -> None:
    with pytest.raises(AuthError):
        run(lambda request: httpx.Response(401))


def test_window_longer_than_allowed_is_reported_as_contract_error() -> None:
    with pytest.raises(ContractError, match="HTTP 400"):
        run(lambda request: httpx.Response(400, text="window longer than 31 days"))
