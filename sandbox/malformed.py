"""Malformed answers a platform in trouble gives, served in place of its data (issue 13).

`Sandbox.malform(code, kind)` makes every data request of `code` (not its login or job
endpoints) answer with the body of `kind`, until `Sandbox.malform(code, None)`. The classes are
the ones the issue lists; `KINDS_BY_FAMILY` says which of them mean something for a family
(a CSV header is no question for a JSON family). `no_rows` is a well-formed CSV export with
its header and nothing else, which only the plausibility guard can refuse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sandbox.families import CSV_NEWLINE, huaxue, zjp
from sandbox.faults import SimulatedReset

DATA_PATHS: Mapping[str, re.Pattern[str]] = MappingProxyType(
    {
        "yx": re.compile(r"/openapi/v1/study-records$"),
        "zjp": re.compile(r"/export/records\.csv$"),
        "tyjrp": re.compile(r"/api/export-jobs/[^/]+/file$"),
        "treewises": re.compile(r"/v2/completions$"),
        "lllnet": re.compile(r"/api/export\.xml$"),
        "spa": re.compile(r"/api/records$"),
        "huaxue": re.compile(r"/index/export$"),
    }
)
CONTENT_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "yx": "application/json; charset=utf-8",
        "zjp": "text/csv; charset=utf-8",
        "tyjrp": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "treewises": "application/json; charset=utf-8",
        "lllnet": "application/xml; charset=utf-8",
        "spa": "application/json; charset=utf-8",
        "huaxue": "text/csv; charset=utf-8",
    }
)
HUGE_BYTES = 3 * 2**20
"""The size of the `huge` body: far larger than any page or test ceiling (1 MiB)."""

_BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    b'<export page="1" pages="1"><record><xm>&lol3;</xm></record></export>'
)
_CUT_OFF: Mapping[str, bytes] = MappingProxyType(
    {
        "yx": b'{"code":0,"msg":"ok","data":{"total":3,"pageNo":1,"pageSize":500,"list":[{"recor',
        "treewises": b'{"items":[{"id":"c_1","learner":{"name":"',
        "spa": b'{"rows":[{"id":7,"name":"',
        "lllnet": b'<export page="1" pages="1"><record><xm>',
    }
)
_WRONG_SHAPE: Mapping[str, bytes] = MappingProxyType(
    {
        "yx": b'{"code":0,"msg":"ok","data":{"total":"many","pageNo":1,"list":{"a":1}}}',
        "treewises": b'{"items":{"id":"c_1"},"next_cursor":17}',
        "spa": b'{"rows":"none","total":"x"}',
        "lllnet": b'<export page="one" pages="two"><row><a>1</a></row></export>',
    }
)
_CSV_HEADERS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "zjp": {
            "missing_header": "1,张三,370902198801011234,某单位,课程,公需课,2,2022/5/3,合格,,\r\n",
            "changed_header": "序号,名字,证件,单位,课程,类型,学时,日期,结果,证书,补学\r\n"
            "1,张三,370902198801011234,某单位,课程,公需课,2,2022/5/3,合格,,\r\n",
        },
        "huaxue": {
            "missing_header": "\ufeff张三,370902198801011234,某单位,智能制造,课程,公需,3学时,"
            "2022年5月3日,\r\n",
            "changed_header": "\ufeff名字,证件,单位,领域,课程,性质,学时,日期,证书\r\n"
            "张三,370902198801011234,某单位,智能制造,课程,公需,3学时,2022年5月3日,\r\n",
        },
    }
)

_NO_ROWS: Mapping[str, str] = MappingProxyType(
    {
        "zjp": zjp.HEADER + CSV_NEWLINE,
        "huaxue": "\ufeff" + huaxue.HEADER + CSV_NEWLINE,
    }
)
"""Not malformed but implausible: the CSV families' header and no rows (an empty export)."""

GENERIC_KINDS: tuple[str, ...] = (
    "html_200",
    "empty_body",
    "binary_garbage",
    "closed_early",
    "entity_bomb",
    "huge_body",
)
KINDS_BY_FAMILY: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "yx": (*GENERIC_KINDS, "cut_off", "wrong_shape"),
        "zjp": (*GENERIC_KINDS, "missing_header", "changed_header"),
        "tyjrp": (*GENERIC_KINDS, "not_a_workbook"),
        "treewises": (*GENERIC_KINDS, "cut_off", "wrong_shape"),
        "lllnet": (*GENERIC_KINDS, "cut_off", "wrong_shape"),
        "spa": (*GENERIC_KINDS, "cut_off", "wrong_shape"),
        "huaxue": (*GENERIC_KINDS, "missing_header", "changed_header"),
    }
)


@dataclass(frozen=True)
class Answer:
    """A malformed response: status, content type and body (`declared` > len(body) cuts it)."""

    body: bytes
    content_type: str
    status: int = 200
    declared: int | None = None


def answer(family: str, kind: str) -> Answer:
    """The response of malformed class `kind` for a data request of `family`."""
    content_type = CONTENT_TYPES[family]
    bodies: dict[str, bytes] = {
        "html_200": "<!DOCTYPE html><html><body><h1>系统维护中</h1></body></html>".encode(),
        "empty_body": b"",
        "binary_garbage": bytes(range(256)) * 16,
        "entity_bomb": _BOMB,
        "huge_body": b"[" + b"0," * (HUGE_BYTES // 2) + b"0]",
        "not_a_workbook": b"PK\x03\x04 this zip ends here",
    }
    if kind == "html_200":
        return Answer(bodies[kind], "text/html; charset=utf-8")
    if kind == "closed_early":
        return Answer(b'{"code":0,"data":{"list":[', content_type, declared=4096)
    if kind == "cut_off":
        return Answer(_CUT_OFF[family], content_type)
    if kind == "wrong_shape":
        return Answer(_WRONG_SHAPE[family], content_type)
    if kind == "no_rows":
        return Answer(_NO_ROWS[family].encode(), content_type)
    if kind in {"missing_header", "changed_header"}:
        return Answer(_CSV_HEADERS[family][kind].encode(), content_type)
    return Answer(bodies[kind], content_type)


class MalformedMiddleware:
    """ASGI middleware in front of one platform: while `kinds[code]` is set, its data requests
    get that malformed answer; everything else passes through."""

    def __init__(self, app: Any, code: str, family: str, kinds: dict[str, str]) -> None:
        self.app = app
        self.code = code
        self.family = family
        self.kinds = kinds

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = self.kinds.get(self.code)
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if kind is None or not DATA_PATHS[self.family].search(path):
            await self.app(scope, receive, send)
            return
        served = answer(self.family, kind)
        length = served.declared if served.declared is not None else len(served.body)
        await send(
            {
                "type": "http.response.start",
                "status": served.status,
                "headers": [
                    (b"content-type", served.content_type.encode()),
                    (b"content-length", str(length).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": served.body, "more_body": True})
        if served.declared is not None:
            raise SimulatedReset(self.code)
        await send({"type": "http.response.body", "body": b""})
