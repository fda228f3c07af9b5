"""Family lllnet over real HTTP: HMAC-signed requests, ts freshness, XML pages, in-band errors."""

from __future__ import annotations

import hashlib
import hmac
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import httpx
import pandas as pd
import pytest

from sandbox.families import Options
from schemas.raw import TZ
from tests.sandbox.fixtures_server import Clock, client, record, running, served_frame

CODE = "yt_ytu"
SECRET = "yt_ytu-secret"
CLOCK = Clock()
MAY = {"from": "2022-05-01", "to": "2022-05-31"}


def day(number: int) -> pd.Timestamp:
    return pd.Timestamp("2022-05-01 23:30", tz=TZ) + pd.Timedelta(days=number)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    rows = [record(CODE, n, completed_at=day(n)) for n in range(25)]
    rows[0] |= {"name": "A&B<C>", "passed": False, "certificate_no": None}
    frames = {CODE: [served_frame(rows)]}
    options = Options(lllnet_page_size=10)
    with running(frames, clock=CLOCK, options=options) as sandbox, client(sandbox, CODE) as http:
        yield http


def signed(secret: str = SECRET, ts: float | None = None, **params: str) -> dict[str, str]:
    """Parameters signed as PLATFORMS.md defines it, written independently of the server."""
    values = {"appid": "yt_ytu-key", **MAY, "page": "1", **params}
    values["ts"] = str(int(CLOCK.now if ts is None else ts))
    message = "&".join(f"{k}={values[k]}" for k in sorted(values))
    values["sign"] = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return values


def fetch(http: httpx.Client, params: dict[str, str]) -> ET.Element:
    response = http.get("/api/export.xml", params=params)
    assert response.status_code == 200
    return ET.fromstring(response.content)


def test_wrong_sign_is_sign_invalid(http: httpx.Client) -> None:
    root = fetch(http, signed(secret="not-the-secret"))
    assert (root.tag, root.get("code")) == ("error", "SIGN_INVALID")


def test_ts_older_than_300_seconds_is_ts_expired(http: httpx.Client) -> None:
    root = fetch(http, signed(ts=CLOCK.now - 301))
    assert (root.tag, root.get("code")) == ("error", "TS_EXPIRED")


def test_ts_of_299_seconds_ago_is_accepted(http: httpx.Client) -> None:
    assert fetch(http, signed(ts=CLOCK.now - 299)).tag == "export"


def test_unknown_appid_is_refused(http: httpx.Client) -> None:
    root = fetch(http, signed(appid="someone"))
    assert root.tag == "error"


def test_missing_sign_is_refused(http: httpx.Client) -> None:
    params = signed()
    del params["sign"]
    assert fetch(http, params).tag == "error"


def test_pages_together_hold_every_record_once(http: httpx.Client) -> None:
    first = fetch(http, signed())
    pages = int(first.get("pages"))
    roots = [first] + [fetch(http, signed(page=str(n))) for n in range(2, pages + 1)]
    names = [r.findtext("xm") for root in roots for r in root.iter("record")]
    assert pages == 3
    assert sorted(names) == sorted(["A&B<C>"] + [f"张{n}" for n in range(1, 25)])


def test_page_attributes_name_the_page(http: httpx.Client) -> None:
    root = fetch(http, signed(page="2"))
    assert (root.get("page"), root.get("pages"), len(root.findall("record"))) == ("2", "3", 10)


def test_window_includes_both_end_dates(http: httpx.Client) -> None:
    # record n completes on 2022-05-(1 + n) at 23:30 local, 15:30 UTC
    root = fetch(http, signed(**{"from": "2022-05-04", "to": "2022-05-05"}))
    assert [r.findtext("kcmc") for r in root.iter("record")] == ["课程3", "课程4"]


def test_record_children_are_the_pinyin_initials(http: httpx.Client) -> None:
    record_element = fetch(http, signed(**{"from": "2022-05-01", "to": "2022-05-01"}))[0]
    assert {child.tag: child.text for child in record_element} == {
        "xm": "A&B<C>",
        "sfzh": "370902198801011234",
        "dw": "泰安市第一中学",
        "kcmc": "课程0",
        "kclb": "公需科目",
        "xs": "2.0",
        "wcsj": "2022-05-01",
        "khjg": "不合格",
        "zsbh": None,
    }


def test_body_is_utf8_xml(http: httpx.Client) -> None:
    response = http.get("/api/export.xml", params=signed())
    assert response.headers["content-type"].startswith("application/xml")
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
