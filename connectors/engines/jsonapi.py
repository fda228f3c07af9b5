"""What the three JSON families (yx, treewises, spa) share: body parsing, the re-authenticate-once
session, the window's end, and the field-map decoder that turns wire records into raw columns, so
a platform's fields live in its spec and nowhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any, TypeVar

import httpx
import pandas as pd

from connectors import decode, frames
from connectors.core import (
    AuthError,
    ContractError,
    CredentialExpired,
    PlatformClient,
    PlatformSpec,
    PullRequest,
)
from schemas.raw import RAW_DTYPES, TIMESTAMP, TZ

log = logging.getLogger("xueshi.connectors")

T = TypeVar("T")
EPOCH_MILLIS = "epoch_ms"


def window_end(request: PullRequest, today: date | None = None) -> date:
    """The window's exclusive end, never past today in Asia/Shanghai."""
    return min(request.end, (today or decode.today_in_shanghai()) + timedelta(days=1))


def session_json(client: PlatformClient, response: httpx.Response) -> Any:
    """The parsed body of a 200 response; 401 means the session's token expired."""
    if response.status_code == 401:
        raise CredentialExpired(str(response.request.url))
    if response.status_code != 200:
        raise client.fail(response, f"unexpected HTTP {response.status_code}")
    return decode.json_body(client, response)


def expect(client: PlatformClient, response: httpx.Response, ok: bool, problem: str) -> None:
    """Raise a ContractError for `response` unless its shape is the contract's."""
    if not ok:
        raise client.fail(response, problem)


class Session:
    """A credential renewed once when refused; refused again right after renewal is final."""

    def __init__(self, client: PlatformClient, login: Callable[[], str]) -> None:
        self.client = client
        self._login = login
        self.token: str | None = None

    def call(self, send: Callable[[str], T]) -> T:
        if self.token is None:
            self.token = self._login()
        try:
            return send(self.token)
        except CredentialExpired:
            log.info("[%s] credential expired, authenticating again", self.client.platform)
            self.token = self._login()
        try:
            return send(self.token)
        except CredentialExpired as exc:
            raise AuthError(
                self.client.platform, str(exc), "credential refused right after re-authentication"
            ) from exc


def _only(values: pd.Series, kind: type, dtype: str) -> pd.Series:
    """The values of JSON type `kind`; any other is null (a bad value, not a bad response)."""
    if values.dtype == dtype:
        return values
    return values.where(values.map(lambda v: isinstance(v, kind)).astype(bool))


class RecordDecoder:
    """Wire records to typed raw columns by the spec's field map (`wire.path = "raw_column"`).

    Options read: `fields`, `time_format` (strptime format or "epoch_ms"), `extra_fields`
    (known wire fields that map to no column), `makeup_field` (makeup = that field not null),
    `value_maps` (raw column → {wire value: value}, e.g. spa's status labels for `passed`).
    A mapped field absent from a whole page fails the pull; absent from some records, or under
    a null parent object (treewises `certificate: null`), it is null. Unknown fields are logged
    once per decoder, by name, and stay in the payload.
    """

    def __init__(self, spec: PlatformSpec) -> None:
        options = spec.options
        self.platform = spec.code
        self.fields: Mapping[str, str] = options["fields"]
        self.time_format: str = options["time_format"]
        self.makeup_field: str | None = options.get("makeup_field")
        self.value_maps: Mapping[str, Mapping[str, Any]] = options.get("value_maps", {})
        known = {*self.fields, *options.get("extra_fields", ())}
        parents = {p.rsplit(".", n)[0] for p in known for n in range(1, p.count(".") + 1)}
        self.known = known | parents
        self.reported: set[str] = set()

    def columns(
        self, records: Sequence[Any], fail: Callable[[str], ContractError]
    ) -> dict[str, Any]:
        """Typed columns plus `makeup` and `payload`, from a non-empty page of records."""
        if not all(isinstance(r, dict) for r in records):
            raise fail("a record is not a JSON object")
        wire = pd.json_normalize(list(records))  # nested objects become dotted columns
        present = set(wire.columns)
        self._note_unknown(present)
        missing = [p for p in self.fields if p not in present and not self._null_parent(p, present)]
        if missing:
            raise fail(f"records lack required fields: {', '.join(missing)}")
        nulls = pd.Series([None] * len(wire), dtype="object")
        columns: dict[str, Any] = {
            column: self._convert(column, wire[path] if path in present else nulls)
            for path, column in self.fields.items()
        }
        if columns["source_key"].isna().any():
            raise fail("a record has no id")
        if self.makeup_field is not None:
            columns["makeup"] = wire[self.makeup_field].notna()
        columns["payload"] = frames.payloads(records)
        return columns

    @staticmethod
    def _null_parent(path: str, present: set[str]) -> bool:
        parts = path.split(".")
        return any(".".join(parts[:n]) in present for n in range(1, len(parts)))

    def _convert(self, column: str, values: pd.Series) -> pd.Series:
        if column in self.value_maps:
            values = _only(values, str, "str").map(self.value_maps[column])
        dtype = RAW_DTYPES[column]
        if dtype == "str":
            return frames.text(values)
        if dtype == "float64":
            return frames.numbers(values)
        if dtype in ("boolean", "bool"):
            flags = _only(values, bool, "bool").astype("boolean")
            return flags.fillna(False).astype("bool") if dtype == "bool" else flags
        if dtype == "Int64":
            parsed = frames.numbers(values)
            return parsed.where(parsed == parsed.round()).astype("Int64")
        if dtype == TIMESTAMP:
            if self.time_format == EPOCH_MILLIS:
                return frames.epoch_millis(values)
            return frames.local_times(_only(values, str, "str"), self.time_format)
        raise ValueError(f"spec {self.platform}: no conversion for raw column {column}")

    def _note_unknown(self, present: set[str]) -> None:
        new = sorted(present - self.known - self.reported)
        if new:
            self.reported.update(new)
            log.info("[%s] new fields kept in the payload only: %s", self.platform, ", ".join(new))


class Advance:
    """Checks that keyed pages advance: ordered by update time, each bringing a new version.

    Resuming and stopping rely on the order; a page of versions already seen (same key, same
    update time) means the paging went round in a loop, which must fail rather than spin.
    """

    def __init__(self, client: PlatformClient, since: pd.Timestamp) -> None:
        self.client = client
        self.last = since
        self.seen: set[tuple[str, pd.Timestamp]] = set()

    def check(self, response: httpx.Response, frame: pd.DataFrame) -> None:
        updated = frame["updated_at"]
        ordered = (
            updated.notna().all()
            and updated.is_monotonic_increasing
            and updated.iloc[0] >= self.last
        )
        expect(self.client, response, ordered, "records are not ordered by update time")
        versions = set(zip(frame["source_key"], updated, strict=True))
        expect(self.client, response, bool(versions - self.seen), "a page repeats versions seen")
        self.last = updated.iloc[-1]
        self.seen |= versions


def batch_frame(
    spec: PlatformSpec, request: PullRequest, columns: Mapping[str, Any]
) -> pd.DataFrame:
    """A raw-schema frame of decoded columns, pulled now for the request's year."""
    return frames.raw_frame(
        columns,
        platform=spec.code,
        pulled_at=pd.Timestamp.now(tz=TZ),
        pull_year=request.year,
    )
