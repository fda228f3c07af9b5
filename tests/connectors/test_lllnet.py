"""Family lllnet (yt_ytu): HMAC-signed XML pages, one calendar month per request series."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from xml.sax.saxutils import escape

import httpx
import pandas as pd
import pytest

from connectors.core import (
    FAST_RETRIES,
    AuthError,
    Batch,
    ContractError,
    PlatformClient,
    PullRequest,
    sandbox_settings,
)
from connectors.engines import lllnet
from schemas.platforms import load_specs
from tests.connectors.clients import offline_client

CODE = "yt_ytu"
SECRET = b"yt_ytu-secret"
RECORD = {
    "xm": "欧阳·堃",
    "sfzh": "370602197501011234",
    "dw": "烟台大学",
    "kcmc": "数字经济",
    "kclb": "公需科目",
    "xs": "2.5",
    "wcsj": "2022-01-05",
    "khjg": "合格",
    "zsbh": "Z-1",
}

Handler = Callable[[httpx.Request], httpx.Response]


def xml(fields: dict[str, str]) -> str:
    return "<record>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items()) + "</record>"


def export(page: int, pages: int, records: list[dict[str, str]]) -> httpx.Response:
    text = f'<export page="{page}" pages="{pages}">{"".join(map(xml, records))}</export>'
    return httpx.Response(200, content=text.encode(), headers={"Content-Type": "application/xml"})


def error(code: str) -> httpx.Response:
    return httpx.Response(200, content=f'<error code="{code}">refused</error>'.encode())


def expected_sign(params: dict[str, str]) -> str:
    message = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign")
    return hmac.new(SECRET, message.encode(), hashlib.sha256).hexdigest()


@dataclass
class Pages:
    """January in `per_page`-record pages; every other month empty. Checks each signature."""

    records: list[dict[str, str]]
    per_page: int = 2
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        params = dict(request.url.params)
        if params["sign"] != expected_sign(params):
            return error("SIGN_INVALID")
        rows = self.records if params["from"] == "2022-01-01" else []
        pages = -(-len(rows) // self.per_page)
        page = int(params["page"])
        return export(page, pages, rows[(page - 1) * self.per_page : page * self.per_page])


def person(n: int) -> dict[str, str]:
    return {**RECORD, "sfzh": f"3706021975010{n:05d}", "kcmc": f"课程{n}"}


def run(
    handler: Handler, request: PullRequest | None = None, today: date = date(2022, 2, 10)
) -> list[Batch]:
    client = offline_client(CODE, handler)
    with client:
        spec = load_specs()[CODE]
        return list(
            lllnet.pull(spec, client, request or PullRequest.for_year(2022), [].append, today=today)
        )


def january(handler: Handler) -> pd.DataFrame:
    return run(handler)[0].records


def test_sign_is_hmac_sha256_over_sorted_unencoded_params() -> None:
    params = {"to": "2022-01-31", "appid": "a b", "from": "2022-01-01", "page": "1", "ts": "9"}
    message = b"appid=a b&from=2022-01-01&page=1&to=2022-01-31&ts=9"
    assert lllnet.sign(params, "k") == hmac.new(b"k", message, hashlib.sha256).hexdigest()


def test_every_request_carries_a_valid_signature_and_appid() -> None:
    server = Pages([person(n) for n in range(5)])
    run(server)
    assert {r.url.params["appid"] for r in server.requests} == {"yt_ytu-key"}
    assert all(r.url.params["sign"] == expected_sign(dict(r.url.params)) for r in server.requests)


def test_pages_are_read_from_one_to_pages() -> None:
    server = Pages([person(n) for n in range(5)])
    frame = january(server)
    january_pages = [
        r.url.params["page"] for r in server.requests if r.url.params["from"] == "2022-01-01"
    ]
    assert (january_pages, len(frame)) == (["1", "2", "3"], 5)


def test_one_request_series_per_calendar_month_up_to_today() -> None:
    server = Pages([])
    batches = run(server)
    assert [(r.url.params["from"], r.url.params["to"]) for r in server.requests] == [
        ("2022-01-01", "2022-01-31"),
        ("2022-02-01", "2022-02-10"),
    ]
    assert [b.watermark["through"] for b in batches] == ["2022-01-31", "2022-02-10"]


def test_fields_are_typed_from_the_pinyin_children() -> None:
    first = january(Pages([RECORD])).iloc[0]
    assert first[["name", "raw_id", "employer", "course_title", "category_label"]].tolist() == [
        "欧阳·堃",
        "370602197501011234",
        "烟台大学",
        "数字经济",
        "公需科目",
    ]
    assert first[["hours", "completed_at", "passed", "certificate_no", "makeup"]].tolist() == [
        2.5,
        pd.Timestamp("2022-01-05", tz="Asia/Shanghai"),
        True,
        "Z-1",
        False,
    ]


def test_failed_exam_and_empty_certificate() -> None:
    first = january(Pages([{**RECORD, "khjg": "不合格", "zsbh": ""}])).iloc[0]
    assert (bool(first["passed"]), pd.isna(first["certificate_no"])) == (False, True)


def test_expired_timestamp_is_signed_again_and_sent_once_more() -> None:
    server = Pages([RECORD])
    refusals = iter([error("TS_EXPIRED")])
    frame = january(lambda request: next(refusals, None) or server(request))
    assert len(frame) == 1


def test_expired_timestamp_is_replaced_by_a_fresh_one() -> None:
    server = Pages([])
    refusals = iter([error("TS_EXPIRED")])
    ticks = iter([1_000.0, 1_400.0, 1_500.0, 1_600.0])
    client = PlatformClient(
        CODE,
        sandbox_settings(CODE),
        retry=FAST_RETRIES,
        transport=httpx.MockTransport(lambda request: next(refusals, None) or server(request)),
    )
    request = PullRequest.for_year(2022)
    with client:
        list(
            lllnet.pull(
                load_specs()[CODE],
                client,
                request,
                [].append,
                today=date(2022, 1, 5),
                clock=ticks.__next__,
            )
        )
    assert [r.url.params["ts"] for r in server.requests] == ["1400"]


def test_timestamp_expired_twice_is_an_auth_error() -> None:
    with pytest.raises(AuthError, match="TS_EXPIRED"):
        run(lambda request: error("TS_EXPIRED"))


def test_invalid_signature_is_an_auth_error() -> None:
    with pytest.raises(AuthError, match="SIGN_INVALID"):
        run(lambda request: error("SIGN_INVALID"))


def test_other_error_codes_are_contract_errors() -> None:
    with pytest.raises(ContractError, match="PARAM_INVALID"):
        run(lambda request: error("PARAM_INVALID"))


def test_document_with_a_dtd_is_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE export [<!ENTITY a "aaaa">]>'
        b'<export page="1" pages="1">&a;</export>'
    )
    with pytest.raises(ContractError, match="DTDForbidden"):
        run(lambda request: httpx.Response(200, content=bomb))


def test_malformed_xml_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="does not parse"):
        run(lambda request: httpx.Response(200, content=b'<export page="1" pages="1"><record>'))


def test_page_other_than_requested_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="asked for page 2, got page 1"):
        run(lambda request: export(1, 2, [RECORD]))


def test_empty_page_before_the_last_is_a_contract_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        return export(page, 3, [RECORD] if page == 1 else [])

    with pytest.raises(ContractError, match="adds no records"):
        run(handler)


def test_page_repeating_the_previous_one_is_a_contract_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return export(int(request.url.params["page"]), 3, [RECORD])

    with pytest.raises(ContractError, match="page 2 of 3 adds no records"):
        run(handler)


def test_record_missing_a_field_is_a_contract_error() -> None:
    partial = {k: v for k, v in RECORD.items() if k != "xs"}
    with pytest.raises(ContractError, match="missing columns"):
        run(lambda request: export(1, 1, [partial]))


def test_new_field_is_kept_in_the_payload() -> None:
    frame = january(Pages([{**RECORD, "xsbh": "S-9"}]))
    assert '"xsbh":"S-9"' in frame["payload"].iloc[0]


def test_unparseable_hours_and_date_become_nan_and_nat() -> None:
    first = january(Pages([{**RECORD, "xs": "两", "wcsj": "2022-01-32"}])).iloc[0]
    assert (pd.isna(first["hours"]), pd.isna(first["completed_at"])) == (True, True)


def test_resume_starts_35_days_before_the_watermark_end() -> None:
    server = Pages([])
    run(server, request=PullRequest.for_year(2022, watermark={"through": "2022-02-10"}))
    assert server.requests[0].url.params["from"] == "2022-01-07"
