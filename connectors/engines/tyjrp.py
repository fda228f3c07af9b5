"""Family tyjrp: asynchronous XLSX exports by completion date, HTTP Basic auth.

One export job per calendar month: create it, poll its status with backoff (bounded), create it
again when it fails (a bounded number of times), then download and read the sheet with
python-calamine. Cell types matter: a numeric ID cell has lost its digits and must reach the
rules as the float it is (`repr(float(cell))`), never as a guessed string of digits.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime
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


def pull(
    spec: PlatformSpec,
    client: PlatformClient,
    request: PullRequest,
    progress: Progress,
    *,
    today: date | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Batch]:
    """One batch per export job (`job_months` a job); its watermark is its last completion date.

    `sleep` waits between status polls (tests pass a recorder).
    """
    lookback = spec.options["lookback_days"]
    window = decode.pull_window(request, lookback, today or today_in_shanghai())
    if window is None:
        return
    auth = httpx.BasicAuth(client.settings.key, client.settings.secret)
    logged: set[str] = set()
    for first, last in decode.month_windows(*window, spec.options["job_months"]):
        response = _export(spec, client, auth, (first, last), progress, sleep)
        records = _records(spec, client, response, request.year, first, last, logged)
        progress(f"{spec.code} {first}..{last}: {len(records)} records")
        yield Batch(records, decode.through_watermark(last))


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
    pull_year: int,
    first: date,
    last: date,
    logged: set[str],
) -> pd.DataFrame:
    options = spec.options
    rows = _sheet(client, response, options["sheet"])
    header = [str(cell) for cell in rows[0]]
    decode.check_columns(client, response, header, list(options["fields"]), logged)
    body = [row for row in rows[1:] if any(cell != "" for cell in row)]
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
    decode.check_dates(client, response, columns["completed_at"], first, last)
    records = [dict(zip(header, row, strict=True)) for row in body]
    return decode.raw_records(
        spec,
        wire,
        columns,
        pulled_at=pd.Timestamp.now(tz=TZ),
        pull_year=pull_year,
        payload=frames.payloads(records),
    )


def _sheet(client: PlatformClient, response: httpx.Response, name: str) -> list[list[Any]]:
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(response.content))
    except (CalamineError, ValueError, OSError) as exc:
        raise client.fail(response, f"not a readable workbook ({exc})") from exc
    if name not in workbook.sheet_names:
        raise client.fail(response, f"no sheet {name!r}; sheets {workbook.sheet_names}")
    rows = workbook.get_sheet_by_name(name).to_python(skip_empty_area=False)
    if not rows:
        raise client.fail(response, f"sheet {name!r} has no header")
    return rows


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
