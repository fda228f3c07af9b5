"""The peer: dlt's `rest_api` source ingesting the JSON families' exports into PostgreSQL.

yx (`ta_yx`, `yt_ldu`) with the page-number paginator, treewises (`ta_sdty`) with the JSON
cursor paginator and spa (`yt_naas`, `yt_samet`, one resource per year) with the offset
paginator: the same records our raw assets pull from those five platforms, loaded with dlt's
defaults (extract, normalize, load with `insert_values`). dlt does no cleaning and no rules, so
the fair comparison is with our pull and raw load of the same platforms; its records per second
are also set against the whole pipeline's.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx

from connectors.core import settings_for
from schemas.clock import today as today_in_shanghai
from schemas.platforms import load_specs

JSON_FAMILIES = ("yx", "treewises", "spa")


@dataclass(frozen=True)
class PeerResult:
    seconds: float
    records: int
    platforms: tuple[str, ...]
    rows_by_table: dict[str, int]


def _resources(code: str, family: str, years: range, env: Mapping[str, str]) -> dict[str, Any]:
    """A rest_api config for one platform over `years`."""
    spec = load_specs()[code]
    settings = settings_for(code, env)
    options = spec.options
    end = min(years.stop, today_in_shanghai().year + 1)
    resource: dict[str, Any]
    headers: dict[str, str]
    if family == "yx":
        token = httpx.post(
            settings.base_url + options["token_path"],
            data={
                "appKey": settings.key,
                "appSecret": settings.secret,
                "grant_type": "client_credentials",
            },
        ).json()["data"]["accessToken"]
        headers = {"Authorization": f"Bearer {token}"}
        last = min(date(years.stop, 1, 1), today_in_shanghai() + timedelta(days=1))
        resource = {
            "name": code,
            "endpoint": {
                "path": options["records_path"].lstrip("/"),
                "params": {
                    "updatedFrom": f"{years.start}-01-01 00:00:00",
                    "updatedTo": f"{last:%Y-%m-%d} 00:00:00",
                    "pageSize": int(options["page_size"]),
                },
                "data_selector": "data.list",
                "paginator": {
                    "type": "page_number",
                    "base_page": 1,
                    "page_param": "pageNo",
                    "total_path": None,
                },
            },
        }
        return {
            "client": {"base_url": settings.base_url + "/", "headers": headers},
            "resources": [resource],
        }
    if family == "treewises":
        headers = {"Authorization": f"Token {settings.key}", "X-Tenant": options["tenant"]}
        resource = {
            "name": code,
            "endpoint": {
                "path": options["records_path"].lstrip("/"),
                "params": {"since": f"{years.start}-01-01T00:00:00+08:00", "limit": 200},
                "data_selector": "items",
                "paginator": {
                    "type": "cursor",
                    "cursor_path": "next_cursor",
                    "cursor_param": "cursor",
                },
            },
        }
        return {
            "client": {"base_url": settings.base_url + "/", "headers": headers},
            "resources": [resource],
        }
    token = httpx.post(
        settings.base_url + options["login_path"],
        json={"username": settings.key, "password": settings.secret},
    ).json()["token"]
    limit = int(options["page_size"])
    resources = [
        {
            "name": f"{code}_{year}",
            "table_name": code,
            "endpoint": {
                "path": options["records_path"].lstrip("/"),
                "params": {"year": year},
                "data_selector": "rows",
                "paginator": {
                    "type": "offset",
                    "limit": limit,
                    "offset_param": "offset",
                    "limit_param": "limit",
                    "total_path": "total",
                },
            },
        }
        for year in range(years.start, end)
    ]
    return {
        "client": {"base_url": settings.base_url + "/", "headers": {"token": token}},
        "resources": resources,
    }


def ingest(years: range, env: Mapping[str, str], postgres_url: str) -> PeerResult:
    """Run dlt over the JSON families' exports into `postgres_url` (schema `peer`), timed."""
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    import dlt
    from dlt.sources.rest_api import rest_api_resources

    specs = load_specs()
    codes = tuple(code for code, spec in specs.items() if spec.family in JSON_FAMILIES)
    with tempfile.TemporaryDirectory(prefix="xueshi-dlt-") as folder:
        pipeline = dlt.pipeline(
            pipeline_name="xueshi_peer",
            pipelines_dir=folder,
            destination=dlt.destinations.postgres(credentials=postgres_url),
            dataset_name="peer",
            progress=None,
        )
        started = time.perf_counter()
        resources = [
            resource
            for code in codes
            for resource in rest_api_resources(_resources(code, specs[code].family, years, env))
        ]
        pipeline.run(resources)
        seconds = time.perf_counter() - started
        counts = dict(pipeline.last_trace.last_normalize_info.row_counts)
    tables = {name: n for name, n in counts.items() if name in codes}
    return PeerResult(seconds, sum(tables.values()), codes, counts)
