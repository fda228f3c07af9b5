"""Decoding shared by the file families (zjp, tyjrp, lllnet, huaxue): bytes to typed columns.

Everything here is strict: bytes that do not decode, a CSV or XML body that does not parse, or a
header without the contract's columns raise `ContractError` with the platform, URL and a snippet,
so that a broken export never turns into a silently empty page. Date windows live here too,
since three of the four families cut a year the same way (docs/decisions.md "Pull windows").
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, timedelta
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeTree
import httpx
import numpy as np
import orjson
import pandas as pd
from defusedxml import DefusedXmlException

from connectors import frames
from connectors.core import (
    AuthError,
    PlatformClient,
    PullRequest,
    log,
)
from schemas.platforms import PlatformSpec
from schemas.raw import TIMESTAMP, TZ

BOM = "\ufeff"
GB_FAMILY = frozenset({"gbk", "gb2312", "cp936", "gb18030"})  # C4: all decoded as GB18030
AUTH_REFUSED = frozenset({401, 403})
TEXT_COLUMNS = frozenset(
    {
        "raw_id",
        "name",
        "employer",
        "course_code",
        "course_title",
        "category_label",
        "certificate_no",
    }
)


# --- responses ------------------------------------------------------------------------------


def fetch(
    client: PlatformClient,
    method: str,
    url: str,
    *,
    accept: frozenset[int] = frozenset({200}),
    **kwargs: Any,
) -> httpx.Response:
    """Send, resending once after a refusal (an expired credential); anything else unexpected fails.

    The file families hold static credentials (API key, Basic auth), so re-authenticating is
    sending them again; a second refusal means they are wrong.
    """
    response = client.request(method, url, **kwargs)
    if response.status_code in AUTH_REFUSED:
        log.info(
            "[%s] credentials refused (HTTP %d); trying once more",
            client.platform,
            response.status_code,
        )
        response = client.request(method, url, **kwargs)
        if response.status_code in AUTH_REFUSED:
            raise AuthError(
                client.platform,
                str(response.request.url),
                f"credentials refused twice (HTTP {response.status_code})",
                response.content,
            )
    if response.status_code not in accept:
        raise client.fail(response, f"unexpected HTTP {response.status_code}")
    return response


def json_body(client: PlatformClient, response: httpx.Response) -> Any:
    """The parsed JSON body; a body that is not JSON is a contract error.

    orjson: about twice as fast as `json`, and strict (UTF-8 only, no NaN, no lone surrogates).
    """
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise client.fail(response, f"body is not JSON ({exc})") from exc


# --- text -----------------------------------------------------------------------------------


def charset(response: httpx.Response, default: str) -> str:
    """The codec Content-Type names, or `default`; GBK and GB2312 are read as GB18030 (C4)."""
    name = response.charset_encoding or default
    try:
        canonical = codecs.lookup(name).name
    except LookupError:
        return name  # decode_text reports it with the response
    return "gb18030" if canonical in GB_FAMILY else canonical


def decode_text(client: PlatformClient, response: httpx.Response, default_charset: str) -> str:
    """The body as text, strictly decoded, without a leading byte-order mark."""
    encoding = charset(response, default_charset)
    try:
        text = response.content.decode(encoding)
    except LookupError as exc:
        raise client.fail(response, f"unknown charset {encoding!r}") from exc
    except UnicodeDecodeError as exc:
        raise client.fail(response, f"body is not valid {encoding} at byte {exc.start}") from exc
    return text.removeprefix(BOM)


# --- columns --------------------------------------------------------------------------------


def check_columns(
    client: PlatformClient,
    response: httpx.Response,
    columns: Sequence[str],
    required: Sequence[str],
    logged: set[str],
) -> None:
    """Fail on missing or repeated columns; log new ones once per pull (names only)."""
    missing = [c for c in required if c not in columns]
    if missing:
        raise client.fail(response, f"missing columns {missing}; got {list(columns)}")
    repeated = sorted({c for c in columns if list(columns).count(c) > 1})
    if repeated:
        raise client.fail(response, f"repeated columns {repeated}")
    new = [c for c in columns if c not in required and c not in logged]
    if new:
        log.info("[%s] new columns kept in the payload: %s", client.platform, ", ".join(new))
        logged.update(new)


def read_csv(
    client: PlatformClient,
    response: httpx.Response,
    text: str,
    header: Sequence[str],
    logged: set[str],
) -> pd.DataFrame:
    """A CSV body as strings (nothing inferred), blank lines dropped, header checked."""
    try:
        rows = pd.read_csv(
            io.StringIO(text),
            header=None,
            dtype="str",
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=True,
            quoting=csv.QUOTE_MINIMAL,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise client.fail(response, f"CSV does not parse ({exc})") from exc
    columns = rows.iloc[0].tolist()
    check_columns(client, response, columns, header, logged)
    frame = rows.iloc[1:].set_axis(columns, axis=1)
    blank = (frame == "").all(axis=1)
    return frame.loc[~blank].reset_index(drop=True)


def drop_totals(
    client: PlatformClient, response: httpx.Response, frame: pd.DataFrame, marker: str
) -> pd.DataFrame:
    """Drop a final totals row (first cell starts with `marker`); one elsewhere is an error."""
    totals = frame.iloc[:, 0].str.startswith(marker).to_numpy()
    if not totals.any():
        return frame
    if totals.sum() > 1 or not totals[-1]:
        raise client.fail(response, f"a {marker!r} totals row that is not the last line")
    return frame.iloc[:-1]


def parse_xml(client: PlatformClient, response: httpx.Response) -> Element:
    """The XML root, parsed with DTDs, entities and external references refused."""
    try:
        return SafeTree.fromstring(
            response.content, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as exc:
        raise client.fail(response, f"XML refused ({type(exc).__name__})") from exc
    except ParseError as exc:
        raise client.fail(response, f"XML does not parse ({exc})") from exc


# --- raw records ----------------------------------------------------------------------------


def map_fields(wire: pd.DataFrame, options: Mapping[str, Any]) -> dict[str, pd.Series]:
    """Raw columns from wire columns of strings, as the spec's `fields` and labels say.

    `completed_at` may arrive already as timestamps (spreadsheet cells); every other wire
    column is text. Values that do not parse become NaN/NaT/null (docs/decisions.md).
    """
    source = {raw: wire[name].reset_index(drop=True) for name, raw in options["fields"].items()}
    columns: dict[str, pd.Series] = {
        raw: frames.text(values) for raw, values in source.items() if raw in TEXT_COLUMNS
    }
    if "hours" in source:
        columns["hours"] = _hours(source["hours"], options)
    if "score" in source:
        columns["score"] = frames.numbers(source["score"])
    if "completed_at" in source:
        columns["completed_at"] = _times(source["completed_at"], options["time_format"])
    n = len(wire)
    if options.get("always_passed", False):
        columns["passed"] = pd.Series([True] * n, dtype="boolean")
    elif "passed" in source:
        columns["passed"] = source["passed"].isin(options["passed_values"]).astype("boolean")
    if "makeup_year" in source:
        columns["makeup_year"] = _year(source["makeup_year"])
    if "makeup" in source:
        columns["makeup"] = source["makeup"].isin(options["makeup_values"])
    elif options.get("makeup_from_year", False):
        columns["makeup"] = source["makeup_year"].str.strip() != ""
    return columns


def _hours(values: pd.Series, options: Mapping[str, Any]) -> pd.Series:
    if "hours_pattern" in options:
        values = values.str.extract(options["hours_pattern"], expand=False)
    hours = frames.numbers(values)
    if "hours_divisor" in options:
        hours = frames.round_half_up(hours / options["hours_divisor"], options["hours_decimals"])
    return hours


def _times(values: pd.Series, fmt: str) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.astype(TIMESTAMP)
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.tz_localize(TZ).astype(TIMESTAMP)
    return frames.local_times(values, fmt)


def _year(values: pd.Series) -> pd.Series:
    numbers = frames.numbers(values)
    return numbers.where(np.floor(numbers) == numbers).astype("Int64")


def raw_records(
    spec: PlatformSpec,
    wire: pd.DataFrame,
    columns: Mapping[str, pd.Series],
    *,
    pulled_at: pd.Timestamp,
    pull_year: int,
    payload: Sequence[str] | None = None,
) -> pd.DataFrame:
    """A raw-schema frame keyed by the natural key, one row per key (the last one wins).

    A key seen twice in one response is one record (D1); keeping both would make the store's
    upsert touch one row twice in a statement.
    """
    typed = dict(columns)
    typed["source_key"] = frames.natural_source_key(
        typed["raw_id"], typed["course_title"], typed["completed_at"]
    )
    typed["payload"] = pd.Series(
        payload if payload is not None else payload_lines(wire), dtype="str"
    )
    frame = frames.raw_frame(typed, platform=spec.code, pulled_at=pulled_at, pull_year=pull_year)
    return frame.drop_duplicates("source_key", keep="last").reset_index(drop=True)


def payload_lines(wire: pd.DataFrame) -> list[str]:
    """Each row of text cells as compact JSON, encoded by pandas' C writer, not per record.

    pandas writes `/` as `\\/`; that is undone safely, since every `/` it writes is escaped so.
    """
    if wire.empty:
        return []
    text = wire.to_json(orient="records", lines=True, force_ascii=False)
    return text.replace("\\/", "/").rstrip("\n").split("\n")


def check_dates(
    client: PlatformClient,
    response: httpx.Response,
    completed_at: pd.Series,
    first: date,
    last: date,
) -> None:
    """Records completed outside the requested window mean the filter was not applied."""
    start = pd.Timestamp(first, tz=TZ)
    end = pd.Timestamp(last + timedelta(days=1), tz=TZ)
    outside = completed_at.notna() & ((completed_at < start) | (completed_at >= end))
    if outside.any():
        raise client.fail(
            response, f"{int(outside.sum())} records completed outside {first}..{last}"
        )


# --- windows --------------------------------------------------------------------------------


def pull_window(request: PullRequest, lookback_days: int, today: date) -> tuple[date, date] | None:
    """The completion dates to pull (inclusive), or None when nothing is due.

    From the partition's start, or `lookback_days` days ending at the watermark's `through`
    (late records appear), to the partition's end, never past today.
    """
    first = request.start
    if request.watermark and "through" in request.watermark:
        done = date.fromisoformat(str(request.watermark["through"]))
        first = max(first, done - timedelta(days=lookback_days - 1))
    last = min(request.end - timedelta(days=1), today)
    return (first, last) if first <= last else None


def day_windows(first: date, last: date, days: int) -> Iterator[tuple[date, date]]:
    """Consecutive inclusive windows of at most `days` days covering first..last."""
    while first <= last:
        end = min(last, first + timedelta(days=days - 1))
        yield first, end
        first = end + timedelta(days=1)


def month_windows(first: date, last: date, months: int = 1) -> Iterator[tuple[date, date]]:
    """Inclusive windows of up to `months` calendar months, cut at month starts."""
    while first <= last:
        index = first.month - 1 + months
        following = date(first.year + index // 12, index % 12 + 1, 1)
        end = min(last, following - timedelta(days=1))
        yield first, end
        first = end + timedelta(days=1)


def through_watermark(batch_last: date) -> dict[str, str]:
    """The watermark once every completion date up to `batch_last` is stored."""
    return {"through": batch_last.isoformat()}
