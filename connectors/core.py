"""What every family engine shares: settings, errors, the retrying HTTP client, the pull protocol.

A family engine (`connectors/engines/<family>.py`) implements auth, paging or job polling and
decoding for its protocol; a platform is a TOML spec (`schemas/specs/<code>.toml`). Engines
never retry by hand: transient faults (5xx, resets, timeouts, 429) are handled here, once.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import re
import ssl
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

import httpx
import pandas as pd
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
)

from schemas.platforms import PlatformSpec

log = logging.getLogger("xueshi.connectors")

SANDBOX_HOST = "127.0.0.1"
SANDBOX_PORT = 8765
RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
SNIPPET_CHARS = 200


# --- settings -------------------------------------------------------------------------------


def settings_prefix(code: str) -> str:
    """`XUESHI_TA_YX` for `ta_yx`: the environment prefix of a platform's settings."""
    return f"XUESHI_{code.upper()}"


@dataclass(frozen=True)
class Settings:
    """A platform's base URL and credentials (PLATFORMS.md), from `XUESHI_<CODE>_*`."""

    base_url: str
    key: str
    secret: str = field(repr=False)

    def __repr__(self) -> str:  # credentials never reach logs
        return f"Settings(base_url={self.base_url!r}, key=***, secret=***)"


def sandbox_settings(code: str, host: str = SANDBOX_HOST, port: int = SANDBOX_PORT) -> Settings:
    """The credentials the sandbox accepts for `code`, served under `/<code>` on one port."""
    return Settings(f"http://{host}:{port}/{code}", f"{code}-key", f"{code}-secret")


def settings_for(code: str, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment; unset ones mean the sandbox (PROVINCIAL.md)."""
    env = os.environ if env is None else env
    prefix = settings_prefix(code)
    default = sandbox_settings(code)
    return Settings(
        base_url=env.get(f"{prefix}_BASE_URL", default.base_url).rstrip("/"),
        key=env.get(f"{prefix}_KEY", default.key),
        secret=env.get(f"{prefix}_SECRET", default.secret),
    )


# --- errors ---------------------------------------------------------------------------------


class ConnectorError(RuntimeError):
    """A pull failed for good; the message names the platform, the URL and a snippet."""

    def __init__(self, platform: str, url: str, problem: str, body: bytes | str = b"") -> None:
        self.platform, self.url, self.problem = platform, _redact(url), mask_id_numbers(problem)
        if isinstance(body, bytes):
            body = body[:SNIPPET_CHARS].decode("utf-8", errors="replace")
        self.snippet = mask_id_numbers(body[:SNIPPET_CHARS])
        message = f"[{platform}] {self.problem} at {self.url}"
        if self.snippet:
            message += f": {self.snippet!r}"
        super().__init__(message)


class ContractError(ConnectorError):
    """The body does not parse, or its shape is not the contract's (never an empty page)."""


class AuthError(ConnectorError):
    """Credentials refused, or still refused after one re-authentication."""


class CredentialExpired(Exception):
    """Raised inside an engine when the platform says the token expired: re-auth once, retry."""


class TransientError(Exception):
    """A fault worth retrying that the platform signals in-band (e.g. yx `50001` 系统繁忙)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


ID_NUMBER = re.compile(r"(?<!\d)(\d{6})(?:\d{8}(\d{3}[\dXx])|\d{5}(\d{4}))(?![\dXx])")
"""An 18-digit ID number (last character may be X) or an old 15-digit one, in free text."""


def _mask_match(match: re.Match[str]) -> str:
    return f"{match[1]}********{match[2] or match[3]}"


def mask_id_numbers(text: str) -> str:
    """C6: every ID number in a message or snippet shows as `370921********123X`."""
    return ID_NUMBER.sub(_mask_match, text)


def _redact(url: str) -> str:
    """Drop signature and key query parameters from URLs that reach messages and logs."""
    parsed = httpx.URL(url)
    params = [
        (k, "***" if k.lower() in {"sign", "appsecret", "secret", "token", "password"} else v)
        for k, v in parsed.params.multi_items()
    ]
    return str(parsed.copy_with(params=params)) if params else str(parsed)


# --- HTTP with retries ----------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, capped by `max_wait`; a 429 waits its Retry-After as
    PLATFORMS.md says, up to `retry_after_ceiling` (a longer one fails the platform).
    `max_body_bytes` bounds one response body: a platform answering with far more than any
    page or export is refused before its body fills the memory."""

    attempts: int = 8
    initial_wait: float = 0.5
    max_wait: float = 30.0
    timeout: float = 30.0
    retry_after_ceiling: float = 300.0
    max_body_bytes: int = 256 * 2**20


FAST_RETRIES = RetryPolicy(attempts=8, initial_wait=0.01, max_wait=2.0, timeout=5.0)


class _RetryableResponse(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, httpx.TransportError | _RetryableResponse | TransientError)


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """One TLS context per process, as httpx would build it (certifi, or `SSL_CERT_FILE`/`_DIR`).

    Building one loads the CA bundle, which a client per platform and year would do each time.
    A context is safe to share between clients and threads.
    """
    return httpx.create_ssl_context()


class PlatformClient:
    """An httpx client bound to one platform, retrying transient faults with tenacity.

    `transport` lets unit tests inject `httpx.MockTransport`; the sandbox tests use real HTTP.
    """

    def __init__(
        self,
        platform: str,
        settings: Settings,
        *,
        retry: RetryPolicy = RetryPolicy(),
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.platform = platform
        self.settings = settings
        self.retry = retry
        self.requests = 0
        self.retries = 0
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=settings.base_url,
            timeout=retry.timeout,
            verify=ssl_context(),
            transport=transport,
            follow_redirects=False,
        )

    def __enter__(self) -> PlatformClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hinted = None
        if isinstance(exc, _RetryableResponse) and exc.response.status_code == 429:
            hinted = _retry_after(exc.response)
        elif isinstance(exc, TransientError):
            hinted = exc.retry_after
        if hinted is not None:
            if hinted > self.retry.retry_after_ceiling:
                url = self.settings.base_url
                if isinstance(exc, _RetryableResponse):
                    url = str(exc.response.request.url)
                raise ConnectorError(
                    self.platform,
                    url,
                    f"asked to wait {hinted:g} s before retrying (Retry-After), longer than the "
                    f"{self.retry.retry_after_ceiling:g} s ceiling (Platforms "
                    f"retry_after_ceiling_seconds)",
                )
            return hinted
        backoff = self.retry.initial_wait * 2 ** (state.attempt_number - 1)
        return min(self.retry.max_wait, backoff + random.uniform(0, self.retry.initial_wait))

    def _before_sleep(self, state: RetryCallState) -> None:
        self.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.info("[%s] retry %d after %s", self.platform, state.attempt_number, exc)

    def retrying(self) -> Retrying:
        """A tenacity controller with this client's policy, for engines that retry a whole step."""
        kwargs: dict[str, Any] = {}
        if self._sleep is not None:
            kwargs["sleep"] = self._sleep
        return Retrying(
            retry=retry_if_exception(_is_retryable),
            stop=stop_after_attempt(self.retry.attempts),
            wait=self._wait,
            before_sleep=self._before_sleep,
            reraise=True,
            **kwargs,
        )

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send with retries; returns any non-retryable response for the engine to judge."""

        def once() -> httpx.Response:
            self.requests += 1
            with self._http.stream(method, url, **kwargs) as response:
                self._read_bounded(response)
            if response.status_code in RETRYABLE_STATUS or response.status_code == 429:
                raise _RetryableResponse(response)
            return response

        try:
            return self.retrying()(once)
        except _RetryableResponse as exc:
            raise ConnectorError(
                self.platform,
                str(exc.response.request.url),
                f"HTTP {exc.response.status_code} after {self.retry.attempts} attempts",
                exc.response.content,
            ) from exc
        except httpx.TransportError as exc:
            raise ConnectorError(
                self.platform,
                str(exc.request.url) if exc.request else self.settings.base_url + url,
                f"{type(exc).__name__} after {self.retry.attempts} attempts ({exc})",
            ) from exc

    def _read_bounded(self, response: httpx.Response) -> None:
        """Read the body, refusing one longer than `max_body_bytes` before it is all in memory."""
        limit = self.retry.max_body_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise self._too_large(response, f"declares {int(declared)} bytes")
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > limit:
                raise self._too_large(response, f"ran past {limit} bytes")
        response._content = bytes(body)  # what `Response.read()` leaves, read within the bound

    def _too_large(self, response: httpx.Response, seen: str) -> ContractError:
        return ContractError(
            self.platform,
            str(response.request.url),
            f"response body {seen}, more than the {self.retry.max_body_bytes} bytes any page "
            f"or export may hold (Platforms max_body_megabytes)",
        )

    def fail(self, response: httpx.Response, problem: str) -> ContractError:
        """A ContractError for `response`, to raise from an engine."""
        return ContractError(self.platform, str(response.request.url), problem, response.content)


# --- the pull protocol ----------------------------------------------------------------------


@dataclass(frozen=True)
class PullRequest:
    """One pull: a window of dates and where the last one stopped.

    `start`/`end` are the partition's dates, half-open. `watermark` is the family's JSON state
    as the last committed batch left it (None: pull the whole window). `known_keys` are the
    source keys stored from the previous full snapshot (snapshot families emit withdrawals
    for the ones that vanished; None means no previous snapshot).
    """

    year: int
    start: date
    end: date
    watermark: Mapping[str, Any] | None = None
    known_keys: frozenset[str] | None = None

    @classmethod
    def for_year(cls, year: int, **kwargs: Any) -> PullRequest:
        return cls(year=year, start=date(year, 1, 1), end=date(year + 1, 1, 1), **kwargs)


@dataclass(frozen=True)
class Batch:
    """Records in the raw schema plus the watermark that holds once they are stored."""

    records: pd.DataFrame
    watermark: Mapping[str, Any]


Progress = Callable[[str], None]


class Engine(Protocol):
    """A family engine: yields batches; the caller stores each with its watermark atomically."""

    def __call__(
        self,
        spec: PlatformSpec,
        client: PlatformClient,
        request: PullRequest,
        progress: Progress,
    ) -> Iterator[Batch]: ...
