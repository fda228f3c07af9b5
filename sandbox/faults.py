"""Faults the sandbox injects, per platform, deterministic under a seed.

PLATFORMS.md lists what every connector must survive (5xx, resets, timeouts, 429, expired
credentials) plus family-specific in-band signals. The sandbox decides per request from a hash of
(seed, platform, request counter), so a run with a seed is reproducible, and it never fails more
than `max_streak` requests of a platform in a row, so a client with a sane retry budget gets
through.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from sandbox.profiles import PRODUCTION, Catalogue

GENERIC_KINDS: tuple[str, ...] = ("5xx", "reset", "429", "slow")
"""Faults any platform can show, injected before the platform's own endpoint runs."""

KINDS: tuple[str, ...] = (*GENERIC_KINDS, "expiry", "busy", "job", "ts")
"""Every fault kind; those beyond GENERIC_KINDS a family signals inside its own protocol
(`FamilyProfile.in_band_faults`), and its endpoints apply them."""
SERVER_ERRORS: tuple[int, ...] = (500, 502, 503)
_OPTIONS = {
    "rate": "rate",
    "retry_after": "retry_after",
    "slow": "slow_delay",
    "streak": "max_streak",
}


def kinds_for(code: str, platforms: Catalogue = PRODUCTION) -> frozenset[str]:
    """The faults platform `code` can show: the generic ones plus its family's in-band ones."""
    return frozenset(GENERIC_KINDS + platforms[code].facts.in_band_faults)


@dataclass(frozen=True)
class Faults:
    """Which faults each platform shows, how often, and how hard.

    `retry_after` is the Retry-After of injected 429s (seconds); `slow_delay` how long a slow
    response stalls (longer than the connectors' fast read timeout of 5 s by default).
    """

    enabled: Mapping[str, frozenset[str]] = field(default_factory=dict)
    rate: float = 0.15
    retry_after: float = 1.0
    slow_delay: float = 6.0
    max_streak: int = 2

    @classmethod
    def parse(cls, text: str, platforms: Catalogue = PRODUCTION) -> Faults:
        """Parse `"all"`, `"none"`, `"ta_yx:5xx,429;yt_ytu:reset"`, `"all:5xx;rate=0.3"`.

        Segments are separated by `;`. A target is `all` or a platform code, optionally followed
        by `:` and a comma-separated list of kinds (default: every kind the platform can show);
        `all:<kinds>` enables each kind where the platform's family has it. Options:
        `rate=`, `retry_after=`, `slow=` (seconds), `streak=` (most faults in a row).
        `platforms` is the catalogue the sandbox serves.
        """
        enabled: dict[str, set[str]] = {}
        options: dict[str, Any] = {}
        for segment in filter(None, (s.strip() for s in text.split(";"))):
            if "=" in segment:
                name, _, value = segment.partition("=")
                if name.strip() not in _OPTIONS:
                    raise ValueError(f"unknown fault option {name.strip()!r}")
                attribute = _OPTIONS[name.strip()]
                options[attribute] = int(value) if attribute == "max_streak" else float(value)
                continue
            if segment == "none":
                continue
            target, _, listed = segment.partition(":")
            target = target.strip()
            codes = list(platforms.codes) if target == "all" else [target]
            if target != "all" and target not in platforms.specs:
                raise ValueError(f"unknown platform {target!r} in faults {text!r}")
            wanted = {k.strip() for k in listed.split(",") if k.strip()} if listed else set(KINDS)
            unknown = wanted - set(KINDS)
            if unknown:
                raise ValueError(f"unknown fault kinds {sorted(unknown)} in faults {text!r}")
            for code in codes:
                possible = kinds_for(code, platforms)
                if listed and target != "all" and not wanted <= possible:
                    raise ValueError(f"{code} cannot show {sorted(wanted - possible)}")
                enabled.setdefault(code, set()).update(wanted & possible)
        frozen = {code: frozenset(kinds) for code, kinds in enabled.items() if kinds}
        return replace(cls(enabled=MappingProxyType(frozen)), **options)

    def for_platform(self, code: str) -> frozenset[str]:
        return self.enabled.get(code, frozenset())


def _unit(seed: int, code: str, counter: int) -> tuple[float, int]:
    """A uniform number in [0, 1) and a spare integer for choices, from the request's identity."""
    digest = hashlib.blake2b(f"{seed}:{code}:{counter}".encode(), digest_size=16).digest()
    return int.from_bytes(digest[:8], "big") / 2**64, int.from_bytes(digest[8:], "big")


class FaultPlan:
    """One platform's fault decisions, request by request; counts faults in a row."""

    def __init__(self, faults: Faults, code: str, seed: int) -> None:
        self.faults = faults
        self.code = code
        self.seed = seed
        self.kinds: tuple[str, ...] = tuple(sorted(faults.for_platform(code)))
        self.counter = 0
        self.streak = 0
        self.job_streak = 0
        self.injected: dict[str, int] = dict.fromkeys(self.kinds, 0)

    def draw(self) -> tuple[str | None, int]:
        """The fault for the next request (None for none) and a number to pick variants with."""
        self.counter += 1
        if not self.kinds or self.streak >= self.faults.max_streak:
            return None, 0
        unit, spare = _unit(self.seed, self.code, self.counter)
        if unit >= self.faults.rate:
            return None, 0
        return self.kinds[spare % len(self.kinds)], spare // len(self.kinds)

    def settle(self, kind: str | None) -> None:
        """Record how the request ended: `kind` is the fault it really showed, or None."""
        if kind is None:
            self.streak = 0
            return
        self.streak += 1
        self.injected[kind] += 1

    def fail_job(self) -> bool:
        """Whether a job whose creation drew `job` may fail: never more than a few in a row."""
        if self.job_streak >= self.faults.max_streak:
            self.job_streak = 0
            return False
        self.job_streak += 1
        return True

    def job_succeeded(self) -> None:
        self.job_streak = 0


class SimulatedReset(Exception):
    """Raised after the response started, so that uvicorn drops the connection mid-response."""


@dataclass
class InBandFault:
    """A drawn fault the platform's endpoint must apply itself; it marks it when it does."""

    kind: str
    applied: bool = False


SCOPE_KEY = "xueshi.sandbox.fault"


def take_fault(scope: Mapping[str, Any], kind: str) -> bool:
    """True (once) when this request drew the in-band fault `kind`: the endpoint applies it."""
    fault = scope.get(SCOPE_KEY)
    if isinstance(fault, InBandFault) and fault.kind == kind and not fault.applied:
        fault.applied = True
        return True
    return False


Scope = dict[str, Any]
Message = dict[str, Any]


class FaultMiddleware:
    """ASGI middleware in front of one platform: injects generic faults, hands on in-band ones."""

    def __init__(self, app: Any, plan: FaultPlan) -> None:
        self.app = app
        self.plan = plan

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind, variant = self.plan.draw()
        if kind == "5xx":
            self.plan.settle(kind)
            status = SERVER_ERRORS[variant % len(SERVER_ERRORS)]
            await _plain(send, status, b"server error (simulated)", [])
            return
        if kind == "429":
            self.plan.settle(kind)
            wait = f"{self.plan.faults.retry_after:g}".encode()
            await _plain(send, 429, b"too many requests (simulated)", [(b"retry-after", wait)])
            return
        if kind == "reset":
            self.plan.settle(kind)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"4096")],
                }
            )
            raise SimulatedReset(self.plan.code)
        if kind == "slow":
            await asyncio.sleep(self.plan.faults.slow_delay)
        in_band = InBandFault(kind) if kind is not None and kind not in GENERIC_KINDS else None
        scope[SCOPE_KEY] = in_band
        await self.app(scope, receive, send)
        applied = kind == "slow" or (in_band is not None and in_band.applied)
        self.plan.settle(kind if applied else None)


async def _plain(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class QuietResets(logging.Filter):
    """Drops uvicorn's traceback for simulated resets: they are the point, not a bug."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], SimulatedReset))
