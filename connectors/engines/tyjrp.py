"""Family tyjrp: asynchronous XLSX exports by completion date, HTTP Basic auth.

One export job per `job_months` calendar months (12 in the spec: a job a year): create it, poll
its status with backoff (bounded), create it again when it fails (a bounded number of times),
then download the sheet and read it with python-calamine, `SHEET_ROWS` rows at a time, so that
memory follows those rows and not the export (a year of `ta_tyjrp` at 10M records is 180,000
rows, and decoding it whole took 1.4 GB). Cell types matter: a numeric ID cell has lost its
digits and must reach the rules as the float it is (`repr(float(cell))`), never as a guessed
string of digits.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pandas as pd
from python_calamine import CalamineError, CalamineWorkbook
from tenacity import RetryError, Retrying, retry_if_result, wait_exponential

from connectors import decode, frames
from connectors.core import (
    Batch,
    ConnectorError,
    PlatformClient,
    Progress,
    PullRequest,
)
from schemas.clock import today as today_in_shanghai
from schemas.platforms import PlatformSpec
from schemas.raw import TIMESTAMP, TZ

STATUSES = frozenset({"pending", "running", "done", "failed"})
UNFINISHED = frozenset({"pending", "running"})
SHEET_ROWS = 20_000
"""Rows of an export decoded and yielded as one batch (the size the raw step stores at once)."""


def pull(
    spec: PlatformSpec,
    client: PlatformClient,
    request: PullRequest,
    progress: Progress,
    *,
    today: date | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Batch]:
    """Batches of at most `SHEET_ROWS` rows per export job (`job_months` a job). A job's last
    batch carries its last completion date as the watermark; the ones before it the watermark
    that held before the job, so a pull stopped inside an export reads it again.

    `sleep` waits between status polls (tests pass a recorder).
    """
    lookback = spec.options["lookback_days"]
    window = decode.pull_window(request, lookback, today or today_in_shanghai())
    if window is None:
        return
    auth = httpx.BasicAuth(client.settings.key, client.settings.secret)
    logged: set[str] = set()
    held = request.watermark or decode.through_watermark(window[0] - timedelta(days=1))
    for first, last in decode.month_windows(*window, spec.options["job_months"]):
        response = _export(spec, client, auth, (first, last), progress, sleep)
        header, rows = _sheet(client, response, spec.options["sheet"])
        decode.check_columns(client, response, header, list(spec.options["fields"]), logged)
        done = decode.through_watermark(last)
        for body, final in _bodies(rows):
            records = _records(spec, client, response, header, body, request.year, (first, last))
            progress(f"{spec.code} {first}..{last}: {len(records)} records")
            yield Batch(records, done if final else held)
        held = done


def _export(
    spec: PlatformSpec,
    client: PlatformClient,
    auth: httpx.BasicAuth,
    window: tuple[date, date],
    progress: Progress,
    sleep: Callable[[float], None],
) -> httpx.Response:
    """The finished export's file; a failed job is created again, a bounded number of times."""
    options = spec.options
    jobs = options["jobs_path"]
    first, last = window
    for attempt in range(1, options["job_attempts"] + 1):
        created = decode.fetch(
            client,
            "POST",
            jobs,
            json={"from": first.isoformat(), "to": last.isoformat()},
            auth=auth,
            accept=frozenset({200, 201, 202}),
        )
        job = decode.json_body(client, created)
        job_id = job.get("jobId") if isinstance(job, dict) else None
        if not isinstance(job_id, str | int) or not str(job_id):
            raise client.fail(created, "no jobId in the job created")
        status = _await(spec, client, auth, f"{jobs}/{job_id}", sleep)
        progress(f"{spec.code} job {attempt} for {first}..{last}: {status}")
        if status == "done":
            return decode.fetch(client, "GET", f"{jobs}/{job_id}/file", auth=auth)
    raise ConnectorError(
        spec.code,
        f"{client.settings.base_url}{jobs}",
        f"export {first}..{last} failed {options['job_attempts']} times",
    )


def _await(
    spec: PlatformSpec,
    client: PlatformClient,
    auth: httpx.BasicAuth,
    url: str,
    sleep: Callable[[float], None],
) -> str:
    """Poll a job with exponential backoff until it is done or failed, within a bounded wait.

    The bound is on the time spent waiting, so it holds however slow each poll is.
    """
    options = spec.options

    def status() -> str:
        response = decode.fetch(client, "GET", url, auth=auth)
        body = decode.json_body(client, response)
        value = body.get("status") if isinstance(body, dict) else None
        if value not in STATUSES:
            raise client.fail(response, f"unknown job status {value!r}")
        return str(value)

    polling = Retrying(
        retry=retry_if_result(lambda value: value in UNFINISHED),
        wait=wait_exponential(multiplier=options["poll_initial"], max=options["poll_max"]),
        stop=lambda state: state.idle_for >= options["poll_timeout"],
        sleep=sleep,
    )
    try:
        return polling(status)
    except RetryError as exc:
        raise ConnectorError(
            spec.code,
            f"{client.settings.base_url}{url}",
            f"job not finished after waiting {options['poll_timeout']} s",
        ) from exc


def _records(
    spec: PlatformSpec,
    client: PlatformClient,
    response: httpx.Response,
    header: list[str],
    body: list[list[Any]],
    pull_year: int,
    window: tuple[date, date],
) -> pd.DataFrame:
    options = spec.options
    cells = pd.DataFrame(body, columns=header, dtype="object")
    id_column = options["id_column"]
    time_column = options["time_column"]
    wire = pd.DataFrame(
        {
            name: _times(cells[name], options["time_format"])
            if name == time_column
            else frames.cell_texts(cells[name], is_id=name == id_column)
            for name in header
        }
    )
    columns = decode.map_fields(wire, options)
    decode.check_dates(client, response, columns["completed_at"], *window)
    records = [dict(zip(header, row, strict=True)) for row in body]
    return decode.raw_records(
        spec,
        wire,
        columns,
        pulled_at=pd.Timestamp.now(tz=TZ),
        pull_year=pull_year,
        payload=frames.payloads(records),
    )


def _sheet(
    client: PlatformClient, response: httpx.Response, name: str
) -> tuple[list[str], Iterator[list[Any]]]:
    """The sheet's header and its other rows, read one at a time from the top left cell (the
    sheet's leading empty columns put back)."""
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(response.content))
    except (CalamineError, ValueError, OSError) as exc:
        raise client.fail(response, f"not a readable workbook ({exc})") from exc
    if name not in workbook.sheet_names:
        raise client.fail(response, f"no sheet {name!r}; sheets {workbook.sheet_names}")
    sheet = workbook.get_sheet_by_name(name)
    pad = [""] * (sheet.start[1] if sheet.start else 0)
    rows = (pad + row for row in sheet.iter_rows())
    header = next(rows, None)
    if header is None:
        raise client.fail(response, f"sheet {name!r} has no header")
    return [str(cell) for cell in header], rows


def _bodies(rows: Iterator[list[Any]]) -> Iterator[tuple[list[list[Any]], bool]]:
    """The non-blank rows in lists of at most `SHEET_ROWS`, each flagged when it is the last;
    at least one list, empty when the sheet has no rows."""
    body: list[list[Any]] = []
    for row in rows:
        if not any(cell != "" for cell in row):
            continue
        if len(body) == SHEET_ROWS:
            yield body, False
            body = []
        body.append(row)
    yield body, True


def _times(cells: pd.Series, fmt: str) -> pd.Series:
    """Date-time cells as they are, a date cell as midnight, a text cell parsed; else NaT."""
    stamps = pd.Series(
        [
            cell
            if isinstance(cell, datetime)
            else datetime(cell.year, cell.month, cell.day)
            if isinstance(cell, date)
            else None
            for cell in cells
        ],
        dtype="object",
    )
    typed = pd.to_datetime(stamps).dt.tz_localize(TZ).astype(TIMESTAMP)
    texts = pd.Series([cell if isinstance(cell, str) else None for cell in cells], dtype="str")
    return typed.fillna(frames.local_times(texts, fmt))
