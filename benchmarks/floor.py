"""The floor: what the same exports cost with no processing at all.

`fetch_all` makes the requests the connectors make (same windows, page sizes and job flow, from
the specs and `connectors.decode`'s window helpers) with a plain httpx client, no retries, and
decodes each body the plain way (`json.loads`, `csv.reader`, calamine, ElementTree), counting
records. `bulk_insert` writes the pipeline's ledger rows once more into an empty table, the
plain bulk way: `COPY` on PostgreSQL, one `executemany` in one transaction on SQLite.
"""

from __future__ import annotations

import csv
import io
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, timedelta

import httpx
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from python_calamine import CalamineWorkbook
from sqlalchemy import Engine

from connectors import decode
from connectors.core import PullRequest, Settings, settings_for
from connectors.engines.lllnet import sign
from schemas.clock import SHANGHAI
from schemas.clock import today as today_in_shanghai
from schemas.platforms import PlatformSpec, load_specs

Fetcher = Callable[[httpx.Client, PlatformSpec, Settings, PullRequest], int]


def _windows(spec: PlatformSpec, request: PullRequest) -> Iterator[tuple[date, date]]:
    today = today_in_shanghai()
    window = decode.pull_window(request, int(spec.options.get("lookback_days", 0)), today)
    if window is None:
        return iter(())
    if spec.family == "zjp":
        return decode.day_windows(*window, int(spec.options["window_days"]))
    if spec.family == "tyjrp":
        return decode.month_windows(*window, int(spec.options["job_months"]))
    return decode.month_windows(*window)


def _window_end(request: PullRequest) -> date:
    return min(request.end, today_in_shanghai() + timedelta(days=1))


def _yx(http: httpx.Client, spec: PlatformSpec, settings: Settings, request: PullRequest) -> int:
    form = {"appKey": settings.key, "appSecret": settings.secret}
    token = http.post(
        spec.options["token_path"], data={**form, "grant_type": "client_credentials"}
    ).json()["data"]["accessToken"]
    end = _window_end(request)
    params = {
        "updatedFrom": f"{request.start:%Y-%m-%d} 00:00:00",
        "updatedTo": f"{end:%Y-%m-%d} 00:00:00",
        "pageSize": int(spec.options["page_size"]),
    }
    count, page = 0, 1
    while True:
        body = json.loads(
            http.get(
                spec.options["records_path"],
                params={**params, "pageNo": page},
                headers={"Authorization": f"Bearer {token}"},
            ).content
        )
        rows = body["data"]["list"]
        count += len(rows)
        if not rows or count >= body["data"]["total"]:
            return count
        page += 1


def _treewises(
    http: httpx.Client, spec: PlatformSpec, settings: Settings, request: PullRequest
) -> int:
    end = datetime.combine(_window_end(request), datetime.min.time(), SHANGHAI)
    end_ms = int(end.timestamp() * 1000)
    start = datetime.combine(request.start, datetime.min.time(), SHANGHAI)
    headers = {"Authorization": f"Token {settings.key}", "X-Tenant": spec.options["tenant"]}
    params: dict[str, str | int] = {
        "since": start.isoformat(),
        "limit": int(spec.options["page_size"]),
    }
    count = 0
    while True:
        body = json.loads(
            http.get(spec.options["records_path"], params=params, headers=headers).content
        )
        inside = [item for item in body["items"] if item["updated_at"] < end_ms]
        count += len(inside)
        if len(inside) < len(body["items"]) or body["next_cursor"] is None:
            return count
        params["cursor"] = body["next_cursor"]


def _spa(http: httpx.Client, spec: PlatformSpec, settings: Settings, request: PullRequest) -> int:
    token = http.post(
        spec.options["login_path"], json={"username": settings.key, "password": settings.secret}
    ).json()["token"]
    limit = int(spec.options["page_size"])
    count, offset = 0, 0
    while True:
        body = json.loads(
            http.get(
                spec.options["records_path"],
                params={"year": request.year, "offset": offset, "limit": limit},
                headers={"token": token},
            ).content
        )
        count += len(body["rows"])
        offset += limit
        if offset >= body["total"]:
            return count


def _csv_rows(content: bytes, encoding: str) -> int:
    text = content.decode(encoding)
    return sum(1 for row in csv.reader(io.StringIO(text)) if row) - 1


def _zjp(http: httpx.Client, spec: PlatformSpec, settings: Settings, request: PullRequest) -> int:
    count = 0
    for first, last in _windows(spec, request):
        response = http.get(
            spec.options["path"],
            params={"start": first.isoformat(), "end": last.isoformat()},
            headers={spec.options["key_header"]: settings.key},
        )
        charset = response.charset_encoding or spec.options["charset"]
        encoding = "utf-8-sig" if charset.lower().replace("-", "") == "utf8" else "gb18030"
        count += _csv_rows(response.content, encoding)
    return count


def _huaxue(
    http: httpx.Client, spec: PlatformSpec, settings: Settings, request: PullRequest
) -> int:
    response = http.get(
        spec.options["path"],
        params={"year": request.year},
        auth=(settings.key, settings.secret),
    )
    return _csv_rows(response.content, "utf-8-sig")


def _tyjrp(http: httpx.Client, spec: PlatformSpec, settings: Settings, request: PullRequest) -> int:
    path, auth, count = spec.options["jobs_path"], (settings.key, settings.secret), 0
    for first, last in _windows(spec, request):
        window = {"from": first.isoformat(), "to": last.isoformat()}
        job = http.post(path, json=window, auth=auth).json()["jobId"]
        while http.get(f"{path}/{job}", auth=auth).json()["status"] != "done":
            time.sleep(0.01)
        content = http.get(f"{path}/{job}/file", auth=auth).content
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(content))
        rows = workbook.get_sheet_by_name(spec.options["sheet"]).to_python()
        count += len(rows) - 1
    return count


def _lllnet(
    http: httpx.Client, spec: PlatformSpec, settings: Settings, request: PullRequest
) -> int:
    count = 0
    for first, last in _windows(spec, request):
        page, pages = 1, 1
        while page <= pages:
            params = {
                "appid": settings.key,
                "from": first.isoformat(),
                "to": last.isoformat(),
                "page": str(page),
                "ts": str(int(time.time())),
            }
            params["sign"] = sign(params, settings.secret)
            root = ET.fromstring(http.get(spec.options["path"], params=params).content)
            pages = int(root.get("pages", "0"))
            records = [{child.tag: child.text for child in record} for record in root]
            count += len(records)
            page += 1
    return count


FETCHERS: Mapping[str, Fetcher] = {
    "yx": _yx,
    "treewises": _treewises,
    "spa": _spa,
    "zjp": _zjp,
    "huaxue": _huaxue,
    "tyjrp": _tyjrp,
    "lllnet": _lllnet,
}


def fetch_all(years: range, env: Mapping[str, str]) -> dict[str, int]:
    """Records decoded per platform over `years`, fetched as the connectors would."""
    counts: dict[str, int] = {}
    for code, spec in load_specs().items():
        settings = settings_for(code, env)
        counts[code] = 0
        with httpx.Client(base_url=settings.base_url, timeout=120.0) as http:
            for year in years:
                counts[code] += FETCHERS[spec.family](
                    http, spec, settings, PullRequest.for_year(year)
                )
    return counts


def ledger_text(ledger: pd.DataFrame) -> pd.DataFrame:
    """The ledger's values as text, ready for a plain insert (prepared outside the timing)."""
    return pd.DataFrame({c: ledger[c].astype("str") for c in ledger.columns})


def bulk_insert(engine: Engine, values: pd.DataFrame) -> None:
    """Insert `values` into a fresh text table, as plainly and quickly as the engine allows."""
    columns = list(values.columns)
    names = ", ".join(f'"{c}"' for c in columns)
    definition = ", ".join(f'"{c}" TEXT' for c in columns)
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        if engine.dialect.name == "postgresql":
            with raw.cursor() as cursor:
                cursor.execute("DROP TABLE IF EXISTS floor_completion")
                cursor.execute(f"CREATE TABLE floor_completion ({definition})")
                buffer = io.BytesIO()
                pacsv.write_csv(
                    pa.Table.from_pandas(values, preserve_index=False),
                    buffer,
                    pacsv.WriteOptions(include_header=False),
                )
                statement = f"COPY floor_completion ({names}) FROM STDIN (FORMAT csv)"
                with cursor.copy(statement) as copy:
                    copy.write(buffer.getvalue())
            raw.commit()
            return
        raw.execute("DROP TABLE IF EXISTS floor_completion")
        raw.execute(f"CREATE TABLE floor_completion ({definition})")
        raw.execute("BEGIN")
        rows = values.astype(object).where(values.notna(), None).itertuples(index=False, name=None)
        placeholders = ", ".join("?" * len(columns))
        raw.executemany(f"INSERT INTO floor_completion ({names}) VALUES ({placeholders})", rows)
        raw.execute("COMMIT")
