"""The file families' shared decoding: strict text, CSV and XML, field mapping, date windows."""

from __future__ import annotations

import itertools
import json
import logging
from datetime import date, timedelta

import httpx
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors import decode
from connectors.core import (
    FAST_RETRIES,
    AuthError,
    ContractError,
    PlatformClient,
    PullRequest,
    sandbox_settings,
)
from schemas import clock

URL = "http://127.0.0.1:8765/ta_zjp/export/records.csv"
RARE_NAMES = "欧阳·堃,𠮷喆"


def client(handler: object = None) -> PlatformClient:
    transport = httpx.MockTransport(handler or (lambda request: httpx.Response(200)))
    return PlatformClient(
        "ta_zjp", sandbox_settings("ta_zjp"), retry=FAST_RETRIES, transport=transport
    )


def response(content: bytes, content_type: str = "text/csv") -> httpx.Response:
    return httpx.Response(
        200,
        content=content,
        headers={"Content-Type": content_type},
        request=httpx.Request("GET", URL),
    )


def csv_frame(text: str, header: list[str], logged: set[str] | None = None) -> pd.DataFrame:
    body = response(text.encode())
    return decode.read_csv(client(), body, text, header, set() if logged is None else logged)


# --- charsets -------------------------------------------------------------------------------


@pytest.mark.parametrize("declared", ["GBK", "gb2312", "GB18030", "cp936"])
def test_gbk_family_charsets_decode_as_gb18030(declared: str) -> None:
    assert decode.charset(response(b"", f"text/csv; charset={declared}"), "utf-8") == "gb18030"


def test_missing_charset_falls_back_to_the_spec_default() -> None:
    assert decode.charset(response(b"", "text/csv"), "gb18030") == "gb18030"


def test_gbk_declared_body_keeps_middle_dot_and_four_byte_characters() -> None:
    body = response(RARE_NAMES.encode("gb18030"), "text/csv; charset=GBK")
    assert decode.decode_text(client(), body, "utf-8") == RARE_NAMES


def test_leading_bom_is_dropped() -> None:
    body = response("\ufeff姓名".encode(), "text/csv; charset=utf-8")
    assert decode.decode_text(client(), body, "utf-8") == "姓名"


def test_undecodable_bytes_are_a_contract_error() -> None:
    body = response("姓名".encode("gb18030"), "text/csv; charset=utf-8")
    with pytest.raises(ContractError, match="not valid utf-8"):
        decode.decode_text(client(), body, "utf-8")


def test_unknown_charset_is_a_contract_error() -> None:
    body = response(b"a", "text/csv; charset=klingon")
    with pytest.raises(ContractError, match="unknown charset"):
        decode.decode_text(client(), body, "utf-8")


# --- CSV ------------------------------------------------------------------------------------


def test_csv_cells_stay_text_verbatim() -> None:
    frame = csv_frame("a,b\n'0012,\t1.50\n", ["a", "b"])
    assert frame.to_dict(orient="list") == {"a": ["'0012"], "b": ["\t1.50"]}


def test_csv_blank_and_empty_lines_are_skipped() -> None:
    frame = csv_frame("a,b\n\n1,2\n,\n3,4\n\n", ["a", "b"])
    assert frame["a"].tolist() == ["1", "3"]


def test_csv_missing_contract_column_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="missing columns"):
        csv_frame("a,c\n1,2\n", ["a", "b"])


def test_csv_repeated_column_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="repeated columns"):
        csv_frame("a,b,b\n1,2,3\n", ["a", "b"])


def test_csv_row_longer_than_header_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="does not parse"):
        csv_frame("a,b\n1,2,3\n", ["a", "b"])


def test_csv_empty_body_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="does not parse"):
        csv_frame("", ["a", "b"])


def test_new_csv_column_is_kept_and_logged_once_by_name(caplog: pytest.LogCaptureFixture) -> None:
    logged: set[str] = set()
    with caplog.at_level(logging.INFO, logger="xueshi.connectors"):
        first = csv_frame("a,b,new\n1,2,secret-value\n", ["a", "b"], logged)
        csv_frame("a,b,new\n1,2,3\n", ["a", "b"], logged)
    assert first["new"].tolist() == ["secret-value"]
    notes = [r.getMessage() for r in caplog.records if "new columns" in r.getMessage()]
    assert notes == ["[ta_zjp] new columns kept in the payload: new"]


def test_final_totals_row_is_dropped() -> None:
    frame = csv_frame("序号,b\n1,2\n合计,2\n", ["序号", "b"])
    assert decode.drop_totals(client(), response(b""), frame, "合计")["序号"].tolist() == ["1"]


def test_totals_row_before_the_last_line_is_a_contract_error() -> None:
    frame = csv_frame("序号,b\n1,2\n合计,2\n3,4\n", ["序号", "b"])
    with pytest.raises(ContractError, match="totals row"):
        decode.drop_totals(client(), response(b""), frame, "合计")


# --- XML ------------------------------------------------------------------------------------


def test_xml_with_a_dtd_is_refused() -> None:
    body = b'<?xml version="1.0"?><!DOCTYPE export [<!ENTITY x "y">]><export>&x;</export>'
    with pytest.raises(ContractError, match="DTDForbidden"):
        decode.parse_xml(client(), response(body, "application/xml"))


def test_malformed_xml_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="does not parse"):
        decode.parse_xml(client(), response(b"<export><record></export>", "application/xml"))


def test_xml_parses_utf8_text() -> None:
    root = decode.parse_xml(client(), response("<a><b>𠮷喆</b></a>".encode(), "text/xml"))
    assert root.findtext("b") == "𠮷喆"


def test_json_body_that_is_not_json_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="not JSON"):
        decode.json_body(client(), response(b"<html>busy</html>", "text/html"))


# --- responses ------------------------------------------------------------------------------


def test_fetch_sends_again_once_after_a_refusal() -> None:
    statuses = iter([401, 200])
    recovered = decode.fetch(client(lambda r: httpx.Response(next(statuses))), "GET", "/x")
    assert recovered.status_code == 200


def test_fetch_refused_twice_is_an_auth_error() -> None:
    with pytest.raises(AuthError, match="refused twice"):
        decode.fetch(client(lambda r: httpx.Response(401)), "GET", "/x")


def test_fetch_unexpected_status_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="HTTP 400"):
        decode.fetch(client(lambda r: httpx.Response(400, text="window too long")), "GET", "/x")


# --- field mapping --------------------------------------------------------------------------


def test_hours_pattern_extracts_the_number_and_nothing_else() -> None:
    wire = pd.DataFrame({"h": ["3学时", "1.5学时", "三学时", "3", ""]}, dtype="str")
    hours = decode.map_fields(
        wire, {"fields": {"h": "hours"}, "hours_pattern": r"^(\d+(?:\.\d+)?)学时$"}
    )
    assert hours["hours"].tolist()[:2] == [3.0, 1.5]
    assert hours["hours"].iloc[2:].isna().all()


def test_hours_divisor_rounds_half_up_to_one_decimal() -> None:
    wire = pd.DataFrame({"m": ["45", "99", "101.25", "x"]}, dtype="str")
    options = {"fields": {"m": "hours"}, "hours_divisor": 45, "hours_decimals": 1}
    hours = decode.map_fields(wire, options)["hours"]
    assert hours.tolist()[:3] == [1.0, 2.2, 2.3]
    assert pd.isna(hours.iloc[3])


def test_makeup_year_marks_makeup_when_not_empty() -> None:
    wire = pd.DataFrame({"y": ["2019", "", "二〇一九"]}, dtype="str")
    options = {"fields": {"y": "makeup_year"}, "makeup_from_year": True}
    columns = decode.map_fields(wire, options)
    assert columns["makeup"].tolist() == [True, False, True]
    assert columns["makeup_year"].tolist()[0] == 2019
    assert columns["makeup_year"].iloc[1:].isna().all()


def test_unparseable_date_becomes_nat() -> None:
    wire = pd.DataFrame({"d": ["2022/5/3", "2022/13/1", ""]}, dtype="str")
    times = decode.map_fields(wire, {"fields": {"d": "completed_at"}, "time_format": "%Y/%m/%d"})
    assert times["completed_at"].iloc[0] == pd.Timestamp("2022-05-03", tz="Asia/Shanghai")
    assert times["completed_at"].iloc[1:].isna().all()


# --- windows --------------------------------------------------------------------------------


def test_pull_window_is_the_year_when_there_is_no_watermark() -> None:
    window = decode.pull_window(PullRequest.for_year(2022), 35, date(2030, 1, 1))
    assert window == (date(2022, 1, 1), date(2022, 12, 31))


def test_pull_window_never_reaches_past_today() -> None:
    window = decode.pull_window(PullRequest.for_year(2022), 35, date(2022, 3, 9))
    assert window == (date(2022, 1, 1), date(2022, 3, 9))


def test_pull_window_resumes_with_the_look_back_ending_at_the_watermark() -> None:
    request = PullRequest.for_year(2022, watermark={"through": "2022-06-30"})
    assert decode.pull_window(request, 35, date(2030, 1, 1)) == (
        date(2022, 5, 27),
        date(2022, 12, 31),
    )


def test_pull_window_of_a_future_year_is_empty() -> None:
    assert decode.pull_window(PullRequest.for_year(2031), 35, date(2030, 1, 1)) is None


def test_xueshi_today_pins_the_date_windows_end_at_and_the_open_year(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(clock.TODAY_ENV, "2022-12-31")
    assert (clock.today(), clock.current_year()) == (date(2022, 12, 31), 2022)


def test_a_today_that_is_not_a_date_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(clock.TODAY_ENV, "31/12/2022")
    with pytest.raises(ValueError, match="XUESHI_TODAY='31/12/2022'"):
        clock.today()


def test_day_windows_cover_the_range_in_steps_of_at_most_the_limit() -> None:
    windows = list(decode.day_windows(date(2022, 1, 1), date(2022, 3, 5), 31))
    assert windows == [
        (date(2022, 1, 1), date(2022, 1, 31)),
        (date(2022, 2, 1), date(2022, 3, 3)),
        (date(2022, 3, 4), date(2022, 3, 5)),
    ]


def test_month_windows_cut_at_month_ends_across_december() -> None:
    windows = list(decode.month_windows(date(2021, 11, 20), date(2022, 1, 10)))
    assert windows == [
        (date(2021, 11, 20), date(2021, 11, 30)),
        (date(2021, 12, 1), date(2021, 12, 31)),
        (date(2022, 1, 1), date(2022, 1, 10)),
    ]


@given(
    first=st.dates(date(2017, 1, 1), date(2023, 12, 31)),
    length=st.integers(0, 800),
    days=st.integers(1, 31),
)
def test_day_windows_tile_any_range_without_gaps_or_overlaps(
    first: date, length: int, days: int
) -> None:
    last = first + timedelta(days=length)
    windows = list(decode.day_windows(first, last, days))
    assert (windows[0][0], windows[-1][1]) == (first, last)
    assert all(0 <= (end - start).days < days for start, end in windows)
    assert all((b[0] - a[1]).days == 1 for a, b in itertools.pairwise(windows))


@given(first=st.dates(date(2017, 1, 1), date(2023, 12, 31)), length=st.integers(0, 800))
def test_month_windows_tile_any_range_within_calendar_months(first: date, length: int) -> None:
    last = first + timedelta(days=length)
    windows = list(decode.month_windows(first, last))
    assert (windows[0][0], windows[-1][1]) == (first, last)
    assert all((start.year, start.month) == (end.year, end.month) for start, end in windows)
    assert all((b[0] - a[1]).days == 1 for a, b in itertools.pairwise(windows))


# --- payloads -------------------------------------------------------------------------------


def test_payload_lines_round_trip_every_cell_exactly() -> None:
    cells = ["2022/5/3", "a\\/b", "\t3709'", 'say "hi"', "line\nbreak", "sep\u2028arator", "𠮷喆"]
    wire = pd.DataFrame({"完成日期": cells, "备注": list(reversed(cells))}, dtype="str")
    decoded = [json.loads(line) for line in decode.payload_lines(wire)]
    assert decoded == wire.to_dict(orient="records")


def test_payload_lines_of_an_empty_frame_are_empty() -> None:
    assert decode.payload_lines(pd.DataFrame({"a": []}, dtype="str")) == []
