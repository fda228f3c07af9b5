"""The ten simulated platforms on one loopback port: the ASGI app, the in-process runner, `serve`.

Each platform is mounted at `/<code>` behind its own fault middleware, so its base URL is
`http://127.0.0.1:<port>/<code>` (docs/decisions.md). Data come from the generator's Dataset,
served at the sandbox's current epoch; `advance()` moves to the next one.
"""

from __future__ import annotations

import logging
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType, TracebackType

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount, Route, Router

from connectors.core import SANDBOX_HOST, SANDBOX_PORT, Settings, sandbox_settings, settings_prefix
from sandbox.families import (
    Context,
    Options,
    Source,
    huaxue,
    lllnet,
    spa,
    treewises,
    tyjrp,
    yx,
    zjp,
)
from sandbox.faults import FaultMiddleware, FaultPlan, Faults, QuietResets
from sandbox.malformed import MalformedMiddleware
from sandbox.profiles import PRODUCTION, Catalogue
from schemas.platforms import PlatformSpec

FAMILIES: MappingProxyType[str, Callable[[Context], list[Route]]] = MappingProxyType(
    {
        "yx": yx.routes,
        "zjp": zjp.routes,
        "tyjrp": tyjrp.routes,
        "treewises": treewises.routes,
        "lllnet": lllnet.routes,
        "spa": spa.routes,
        "huaxue": huaxue.routes,
    }
)
STARTUP_SECONDS = 10.0


def build_app(contexts: Iterable[Context], malformed: dict[str, str] | None = None) -> Starlette:
    """One Starlette app with each platform's routes mounted at `/<code>` behind its faults
    (and, outermost, the malformed answers `malformed` switches on per platform)."""
    malformed = {} if malformed is None else malformed
    mounts = [
        Mount(
            f"/{ctx.code}",
            app=MalformedMiddleware(
                FaultMiddleware(Router(FAMILIES[ctx.profile.family](ctx)), ctx.plan),
                ctx.code,
                ctx.profile.family,
                malformed,
            ),
        )
        for ctx in contexts
    ]
    return Starlette(routes=mounts)


class Sandbox:
    """The simulated platforms served by uvicorn, in a background thread or in the foreground.

    `port=0` picks a free port (tests); `clock` (seconds since the epoch) drives token expiry,
    lllnet's ts check, tyjrp job timing and the treewises rate limit, so tests can move time.
    `platforms` is the catalogue served (production's by default; the dataset's, when a test
    generated it for its own).
    """

    def __init__(
        self,
        dataset: Source,
        port: int = SANDBOX_PORT,
        faults: Faults | str = "none",
        seed: int = 0,
        *,
        host: str = SANDBOX_HOST,
        options: Options | None = None,
        clock: Callable[[], float] = time.time,
        platforms: Mapping[str, PlatformSpec] | None = None,
    ) -> None:
        served = PRODUCTION if platforms is None else Catalogue(platforms)
        self.host = host
        self.requested_port = port
        self.faults = Faults.parse(faults, served) if isinstance(faults, str) else faults
        self.seed = seed
        self.epoch = 0
        options = options or Options()
        self.contexts = {
            code: Context(
                served[code],
                dataset,
                lambda: self.epoch,
                FaultPlan(self.faults, code, seed),
                options,
                clock,
                seed,
            )
            for code in served.codes
        }
        self._malformed: dict[str, str] = {}
        self.app = build_app(self.contexts.values(), self._malformed)
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def _listening(self) -> socket.socket:
        """The listening socket, bound on first use (so the port is known before serving)."""
        if self._socket is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.requested_port))
            self._socket = sock
        return self._socket

    @property
    def port(self) -> int:
        return self._listening().getsockname()[1]

    def _make_server(self) -> uvicorn.Server:
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        logging.getLogger("uvicorn.error").addFilter(QuietResets())
        self._server = uvicorn.Server(config)
        return self._server

    def start(self) -> Sandbox:
        """Serve in a daemon thread; returns once the server accepts connections."""
        if self._thread is not None:
            return self
        sock = self._listening()
        server = self._make_server()
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="xueshi-sandbox", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_SECONDS
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (Ctrl-C)."""
        self._make_server().run(sockets=[self._listening()])

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=STARTUP_SECONDS)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- what clients and tests need ----------------------------------------------------------

    def base_url(self, code: str) -> str:
        return self.settings(code).base_url

    def settings(self, code: str) -> Settings:
        if code not in self.contexts:
            raise KeyError(f"no platform {code!r} in the sandbox")
        return sandbox_settings(code, self.host, self.port)

    def env(self) -> dict[str, str]:
        """`XUESHI_<CODE>_BASE_URL/_KEY/_SECRET` for every platform."""
        env: dict[str, str] = {}
        for code in self.contexts:
            settings, prefix = self.settings(code), settings_prefix(code)
            env[f"{prefix}_BASE_URL"] = settings.base_url
            env[f"{prefix}_KEY"] = settings.key
            env[f"{prefix}_SECRET"] = settings.secret
        return env

    def exports(self) -> str:
        """`export NAME=value` lines a shell can source or eval."""
        return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in self.env().items())

    def malform(self, code: str, kind: str | None) -> None:
        """Answer `code`'s data requests with malformed class `kind` (sandbox/malformed.py);
        None restores its real answers."""
        if kind is None:
            self._malformed.pop(code, None)
        else:
            self._malformed[code] = kind

    def advance(self) -> int:
        """Move every platform to the dataset's next epoch; returns it."""
        self.epoch += 1
        return self.epoch

    def served_log(self, code: str) -> list[list[str]]:
        """The source keys served to clients, one list per pull, oldest pull first.

        A pull begins with a listing's first request: yx `pageNo=1`, treewises without a cursor,
        spa `offset=0`, lllnet `page=1`; each zjp CSV, tyjrp job file and huaxue snapshot is one.
        """
        return self.contexts[code].log.pulls()

    def injected(self, code: str) -> dict[str, int]:
        """How many faults of each kind platform `code` has shown so far."""
        return dict(self.contexts[code].plan.injected)


def serve(records: int, seed: int, port: int = SANDBOX_PORT, faults: str = "none") -> None:
    """Generate a dataset, print settings to `eval`, serve until Ctrl-C (`xueshi sandbox`)."""
    from sandbox.generator import generate

    sandbox = Sandbox(generate(records=records, seed=seed), port=port, faults=faults, seed=seed)
    print(sandbox.exports(), flush=True)
    sandbox.serve_forever()
