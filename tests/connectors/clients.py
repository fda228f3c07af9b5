"""A platform client whose requests a handler answers, for the MockTransport tests."""

from collections.abc import Callable

import httpx

from connectors.core import FAST_RETRIES, PlatformClient, sandbox_settings

Handler = Callable[[httpx.Request], httpx.Response]


def offline_client(
    code: str,
    handler: Handler,
    *,
    sleep: Callable[[float], None] = lambda seconds: None,
    **where: object,
) -> PlatformClient:
    """`where` (host, port) overrides the sandbox address in the client's settings."""
    return PlatformClient(
        code,
        sandbox_settings(code, **where),
        retry=FAST_RETRIES,
        transport=httpx.MockTransport(handler),
        sleep=sleep,
    )
