"""What the three JSON families (yx, treewises, spa) share: body parsing, the re-authenticate-once
session, the window's end, and the field-map decoder that turns wire records into raw columns, so
a platform's fields live in its spec and nowhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, timedelta
from typing import Any, TypeVar

import httpx
import pandas as pd
import pyarrow as pa

from connectors import decode, frames
from connectors.core import (
    AuthError,
    ContractError,
    CredentialExpired,
    PlatformClient,
    PullRequest,
)
from schemas.clock import today as today_in_shanghai
from schemas.platforms import PlatformSpec
from schemas.raw import RAW_DTYPES, TIMESTAMP, TZ

log = logging.getLogger("xueshi.connectors")

T = TypeVar("T")
EPOCH_MILLIS = "epoch_ms"


def window_end(request: PullRequest, today: date | None = None) -> date:
    """The window's exclusive end, never past today in Asia/Shanghai."""
    return min(request.end, (today or today_in_shanghai()) + timedelta(days=1))


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


def _only(values: frames.Values, kind: type[str] | type[bool]) -> pa.Array | pa.ChunkedArray:
    """The values of JSON type `kind`; any other is null (a bad value, not a bad response).

    A page's Arrow array of that type is taken as it is; otherwise values are sorted one by one.
    """
    arrow_type = pa.large_string() if kind is str else pa.bool_()
    if isinstance(values, pa.Array | pa.ChunkedArray):
        if pa.types.is_null(values.type) or (
            pa.types.is_boolean(values.type)
            if kind is bool
            else pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
        ):
            return values.cast(arrow_type)
        values = values.to_pylist()
    return pa.array([v if isinstance(v, kind) else None for v in values], type=arrow_type)


def _leaves(array: pa.StructArray, prefix: str = "") -> Iterator[tuple[str, pa.Array]]:
    """The fields of a page's struct array by dotted path, as `pd.json_normalize` names them.

    A nested object's fields are its leaves (null where the parent is null); the object's own
    path is a field too only when some record has no object there.
    """
    for field, child in zip(array.type, array.flatten(), strict=True):
        path = prefix + field.name
        if not pa.types.is_struct(child.type):
            yield path, child
            continue
        if child.null_count:
            yield path, child
        yield from _leaves(child, path + ".")


class RecordDecoder:
    """Wire records to typed raw columns by the spec's field map (`wire.path = "raw_column"`).

    Options read: `fields`, `time_format` (strptime format or "epoch_ms"), `extra_fields`
    (known wire fields that map to no column), `makeup_field` (makeup = that field not null),
    `value_maps` (raw column → {wire value: value}, e.g. spa's status labels for `passed`).
    A mapped field absent from a whole page fails the pull; absent from some records, or under
    a null parent object (treewises `certificate: null`), it is null. Unknown fields are logged
    once per decoder, by name, and stay in the payload.

    A page becomes one Arrow struct array (`pa.array` infers the types in C++), whose fields
    are the columns. A page whose fields mix JSON types (a number among strings) has no Arrow
    type: its fields are then read value by value, and each bad value becomes null as usual.
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
        wire = _wire(records)
        present = set(wire)
        self._note_unknown(present)
        missing = [p for p in self.fields if p not in present and not self._null_parent(p, present)]
        if missing:
            raise fail(f"records lack required fields: {', '.join(missing)}")
        nulls = pa.nulls(len(records))
        columns: dict[str, Any] = {
            column: self._convert(column, wire.get(path, nulls))
            for path, column in self.fields.items()
        }
        if columns["source_key"].isna().any():
            raise fail("a record has no id")
        if self.makeup_field is not None:
            makeup = wire[self.makeup_field]
            columns["makeup"] = (
                makeup.is_valid().to_numpy(zero_copy_only=False)
                if isinstance(makeup, pa.Array)
                else pd.notna(pd.Series(makeup, dtype="object")).to_numpy()
            )
        columns["payload"] = frames.payloads(records)
        return columns

    @staticmethod
    def _null_parent(path: str, present: set[str]) -> bool:
        parts = path.split(".")
        return any(".".join(parts[:n]) in present for n in range(1, len(parts)))

    def _convert(self, column: str, values: frames.Values) -> pd.Series:
        if column in self.value_maps:
            values = frames.text(_only(values, str)).map(self.value_maps[column])
        dtype = RAW_DTYPES[column]
        if dtype == "str":
            return frames.text(values)
        if dtype == "float64":
            return frames.numbers(values)
        if dtype in ("boolean", "bool"):
            flags = pd.Series(pd.BooleanDtype().__from_arrow__(_only(values, bool)))
            return flags.fillna(False).astype("bool") if dtype == "bool" else flags
        if dtype == "Int64":
            parsed = frames.numbers(values)
            return parsed.where(parsed == parsed.round()).astype("Int64")
        if dtype == TIMESTAMP:
            if self.time_format == EPOCH_MILLIS:
                return frames.epoch_millis(values)
            return frames.local_times(_only(values, str), self.time_format)
        raise ValueError(f"spec {self.platform}: no conversion for raw column {column}")

    def _note_unknown(self, present: set[str]) -> None:
        new = sorted(present - self.known - self.reported)
        if new:
            self.reported.update(new)
            log.info("[%s] new fields kept in the payload only: %s", self.platform, ", ".join(new))


def _wire(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each field of the page by dotted path: Arrow arrays, or lists where types are mixed."""
    try:
        return dict(_leaves(pa.array(records)))
    except (pa.ArrowException, OverflowError):
        return _mixed(records)


def _mixed(records: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """The page's fields value by value, for a page whose JSON types Arrow cannot unify.

    As `pd.json_normalize` would: nested objects become dotted paths, and a path is null in a
    record that lacks it or where a parent on the way is not an object.
    """
    paths: dict[str, None] = {}

    def walk(value: dict[str, Any], prefix: str) -> None:
        for key, child in value.items():
            if isinstance(child, dict):
                walk(child, f"{prefix}{key}.")
            else:
                paths[prefix + key] = None

    for record in records:
        walk(record, "")
    return {path: [_get(r, path.split(".")) for r in records] for path in paths}


def _get(record: Any, parts: list[str]) -> Any:
    for part in parts:
        if not isinstance(record, dict):
            return None
        record = record.get(part)
    return record


class Advance:
    """Checks that keyed pages advance: ordered by update time, each bringing a new version.

    Resuming and stopping rely on the order; a page of versions already seen (same key, same
    update time) means the paging went round in a loop, which must fail rather than spin.
    Since pages are ordered, a version seen before can only sit at the last update time seen:
    only the keys at that time are remembered.
    """

    def __init__(self, client: PlatformClient, since: pd.Timestamp) -> None:
        self.client = client
        self.last = since
        self.at_last: set[str] = set()

    def check(self, response: httpx.Response, frame: pd.DataFrame) -> None:
        updated = frame["updated_at"]
        ordered = (
            updated.notna().all()
            and updated.is_monotonic_increasing
            and updated.iloc[0] >= self.last
        )
        expect(self.client, response, ordered, "records are not ordered by update time")
        last = updated.iloc[-1]
        keys = frame["source_key"]
        if last == self.last:
            fresh = set(keys) - self.at_last
            expect(self.client, response, bool(fresh), "a page repeats versions seen")
            self.at_last |= fresh
        else:
            self.last = last
            self.at_last = set(keys[updated == last])


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
