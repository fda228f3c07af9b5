"""What every family's simulated endpoints share: platform context, tokens, served log, rendering.

A family module (`yx.py`, `zjp.py`, …) exposes `routes(ctx) -> list[Route]`. Rendering happens
once per epoch (`Context.view`): records are sorted, their wire fragments (a JSON object, a CSV
line, an XML element) built column-wise, and requests only slice and join.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd
from starlette.requests import Request
from starlette.responses import Response

from connectors.core import sandbox_settings
from sandbox.faults import FaultPlan, take_fault
from sandbox.profiles import Profile
from schemas.raw import TZ

SERVED_COLUMNS: tuple[str, ...] = (
    "platform",
    "source_key",
    "raw_id",
    "name",
    "employer",
    "course_code",
    "course_title",
    "category_label",
    "hours",
    "completed_at",
    "passed",
    "score",
    "certificate_no",
    "makeup",
    "makeup_year",
    "updated_at",
    "withdrawn",
    "pull_year",
    "record_key",
    "epoch",
    "wire_hours",
    "wire_id_numeric",
    "hidden_until_paged",
)
"""The columns of `Dataset.served(platform, epoch)` (sandbox/generator.py)."""

CSV_NEWLINE = "\r\n"
V = TypeVar("V")


class Source(Protocol):
    """The generator's Dataset, as far as the server needs it."""

    def served(self, platform: str, epoch: int) -> pd.DataFrame: ...


@dataclass(frozen=True)
class Options:
    """Knobs of the simulated platforms that the contracts leave open."""

    token_ttl: float = 7200.0  # yx expiresIn and spa token lifetime, seconds
    rate_limit: float = 5.0  # treewises requests per second per client; 0 means unlimited
    job_polls: int = 2  # tyjrp status polls before a job ends (pending, running, then done)
    job_seconds: float = 2.0  # ...or this many seconds after its creation, whichever comes first
    ts_tolerance: float = 300.0  # lllnet: an older ts is TS_EXPIRED
    lllnet_page_size: int = 100


class Tokens:
    """Issued tokens with expiry; deterministic under the seed so runs are reproducible."""

    def __init__(self, code: str, seed: int, clock: Callable[[], float]) -> None:
        self._prefix = f"{seed}:{code}"
        self._clock = clock
        self._issued = 0
        self._expires: dict[str, float] = {}
        self._used: set[str] = set()

    def issue(self, ttl: float) -> str:
        self._issued += 1
        material = f"{self._prefix}:{self._issued}".encode()
        token = hashlib.blake2b(material, digest_size=16).hexdigest()
        self._expires[token] = self._clock() + ttl
        return token

    def valid(self, token: str | None) -> bool:
        return token is not None and self._expires.get(token, float("-inf")) > self._clock()

    def used(self, token: str) -> bool:
        """Whether the token already served data (only such a token can 'expire mid-pull')."""
        return token in self._used

    def mark_used(self, token: str) -> None:
        self._used.add(token)

    def revoke(self, token: str) -> None:
        self._expires.pop(token, None)


class ServedLog:
    """The source keys served, one list per pull (a listing from its first page or file on)."""

    def __init__(self) -> None:
        self._pulls: list[list[np.ndarray]] = []

    def add(self, keys: np.ndarray, *, first: bool) -> None:
        if first or not self._pulls:
            self._pulls.append([])
        self._pulls[-1].append(keys)

    def pulls(self) -> list[list[str]]:
        return [[str(k) for part in pull for k in part] for pull in list(self._pulls)]


class Context:
    """One platform as its endpoints see it: credentials, current data, faults, tokens, log."""

    def __init__(
        self,
        profile: Profile,
        source: Source,
        epoch: Callable[[], int],
        plan: FaultPlan,
        options: Options,
        clock: Callable[[], float],
        seed: int,
    ) -> None:
        code = profile.code
        settings = sandbox_settings(code)
        self.code = code
        self.profile = profile
        self.key = settings.key
        self.secret = settings.secret
        self.source = source
        self.epoch = epoch
        self.plan = plan
        self.options = options
        self.clock = clock
        self.seed = seed
        self.tokens = Tokens(code, seed, clock)
        self.log = ServedLog()
        self._view: tuple[int, Any] | None = None

    def frame(self) -> pd.DataFrame:
        return self.source.served(self.code, self.epoch())

    def view(self, prepare: Callable[[pd.DataFrame], V]) -> V:
        """The family's prepared view of the current epoch, built once per epoch."""
        epoch = self.epoch()
        if self._view is None or self._view[0] != epoch:
            self._view = (epoch, prepare(self.source.served(self.code, epoch)))
        return self._view[1]

    def fault(self, request: Request, kind: str) -> bool:
        """Whether this request drew the in-band fault `kind` (the endpoint then applies it)."""
        return take_fault(request.scope, kind)

    def basic_auth(self, request: Request) -> bool:
        """HTTP Basic with the platform's KEY:SECRET."""
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return user == self.key and password == self.secret


# --- responses --------------------------------------------------------------------------------


def json_text(body: str, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response from an already encoded body."""
    return Response(body, status, headers=headers, media_type="application/json; charset=utf-8")


def basic_refusal(realm: str) -> Response:
    return Response(
        "unauthorized",
        401,
        headers={"WWW-Authenticate": f'Basic realm="{realm}"'},
        media_type="text/plain",
    )


# --- column rendering -------------------------------------------------------------------------


def live(frame: pd.DataFrame) -> pd.DataFrame:
    """The records a platform lists: withdrawn versions are gone (treewises keeps them)."""
    return frame.loc[~frame["withdrawn"].astype(bool)]


def instants(times: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch (UTC), for searchsorted windows; NaT must be dropped first."""
    return (
        times.dt.tz_convert("UTC")
        .dt.tz_localize(None)
        .astype("datetime64[ns]")
        .to_numpy(dtype="int64")
    )


def local_midnight(day: date) -> int:
    """Nanoseconds since the epoch of 00:00 Asia/Shanghai on `day`."""
    return pd.Timestamp(day).tz_localize(TZ).value


def inclusive_days(keys: np.ndarray, start: date, end: date) -> tuple[int, int]:
    """The slice of sorted completion instants whose local date lies in `[start, end]`."""
    low = local_midnight(start)
    high = local_midnight(end) + 86_400 * 10**9
    return int(np.searchsorted(keys, low, "left")), int(np.searchsorted(keys, high, "left"))


def local_text(times: pd.Series, unit: str) -> pd.Series:
    """Local times as `yyyy-MM-dd` (unit `D`) or `yyyy-MM-dd HH:mm:ss` (unit `s`); NaT → null."""
    naive = times.dt.tz_convert(TZ).dt.tz_localize(None).to_numpy(dtype=f"datetime64[{unit}]")
    text = pd.Series(np.datetime_as_string(naive, unit=unit), index=times.index, dtype="str")
    return text.str.replace("T", " ", regex=False).mask(times.isna())


def local_parts(times: pd.Series, year: str, month: str, day: str) -> pd.Series:
    """Local dates without zero padding, e.g. `2022/5/3` or `2022年5月3日`; NaT → ''."""
    local = times.dt.tz_convert(TZ)
    text = (
        local.dt.year.astype("Int64").astype("str")
        + year
        + local.dt.month.astype("Int64").astype("str")
        + month
        + local.dt.day.astype("Int64").astype("str")
        + day
    )
    return text.fillna("")


def numbers(text: pd.Series) -> pd.Series:
    """Wire text as numbers (NaN when it is not one)."""
    return pd.to_numeric(text, errors="coerce").astype("float64")


def optional_text(values: pd.Series) -> pd.Series:
    """Strings for a CSV cell: nulls empty."""
    return values.astype("str").fillna("")


def year_text(values: pd.Series) -> pd.Series:
    return values.astype("Int64").astype("str").fillna("")


def json_lines(frame: pd.DataFrame) -> list[str]:
    """Each row as a compact JSON object (nulls as null), in pandas' C encoder."""
    if frame.empty:
        return []
    return frame.to_json(orient="records", lines=True, force_ascii=False).splitlines()


def csv_cells(values: pd.Series) -> pd.Series:
    """CSV-quote the cells that need it (comma, quote, line break)."""
    text = values.astype("str").fillna("")
    needs = text.str.contains(r'[,"\r\n]', regex=True)
    quoted = '"' + text.str.replace('"', '""', regex=False) + '"'
    return text.where(~needs, quoted)


def csv_lines(frame: pd.DataFrame) -> list[str]:
    """Each row as one CSV line (without terminator)."""
    if frame.empty:
        return []
    cells = [csv_cells(frame[c]) for c in frame.columns]
    return cells[0].str.cat(cells[1:], sep=",").tolist()


def xml_escape(values: pd.Series) -> pd.Series:
    text = values.astype("str").fillna("")
    for raw, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        text = text.str.replace(raw, entity, regex=False)
    return text


def pick(seed: int, keys: pd.Series, buckets: int) -> np.ndarray:
    """A stable pseudo-random bucket per key, for quirks that should look arbitrary."""
    hashed = pd.util.hash_pandas_object(keys, index=False, hash_key=f"{seed:016d}"[-16:])
    return (hashed.to_numpy() % np.uint64(buckets)).astype("int64")


def parse_date(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


def parse_int(text: str | None, default: int | None = None) -> int | None:
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        return None
