"""Run the app on uvicorn inside the caller's event loop (next to a worker, in tests, in bench).

The composition root owns the process signals, so uvicorn's own signal capture is turned
off: `stop()` is what a SIGTERM handler calls.
"""

import asyncio
import contextlib
import gc
import logging
import socket
from collections.abc import Callable, Iterator

import uvicorn
from fastapi import FastAPI

from aoer.errors import AoerError

logger = logging.getLogger(__name__)

GRACEFUL_SHUTDOWN_S = 5  # open SSE streams get this long before they are cut
START_TIMEOUT_S = 30.0


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ApiServer:
    """`reuse_port=True` binds with SO_REUSEPORT: several `aoer serve` processes then share
    one port and the kernel spreads connections across them (one per core)."""

    def __init__(
        self,
        app: FastAPI,
        host: str,
        port: int,
        *,
        reuse_port: bool = False,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,  # keep the process's logging set-up
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            server_header=False,
        )
        self._on_stop = on_stop
        self._reuse_port = reuse_port
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Serve in the background; returns the bound port once requests are accepted."""
        self._task = asyncio.create_task(self._serve(), name="aoer-api")
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
        while not self._server.started:
            if self._task.done():
                await self._task  # raises why it stopped
                raise AoerError("the API server stopped while starting")
            if asyncio.get_running_loop().time() > deadline:
                raise AoerError("the API server did not start in time")
            await asyncio.sleep(0.02)
        # What start-up built (modules, the app, its routes and schemas) lives as long as the
        # process. Frozen, it is no longer walked by every full collection, each of which
        # otherwise stopped the event loop for ~50 ms under load (the API's p99 tail).
        gc.freeze()
        return self.port

    def _socket(self) -> socket.socket:
        """The listening socket, bound here so that a taken address is one clear error
        naming it and what to change (uvicorn only logs it and exits)."""
        config = self._server.config
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self._reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((config.host, config.port))
        except OSError as exc:
            sock.close()
            raise AoerError(
                f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}; "
                "choose a free one (AOER_PORT and AOER_HOST, or `aoer up --port` and"
                " `aoer serve --port`)"
            ) from None
        return sock

    async def _serve(self) -> None:
        try:
            await self._server.serve(sockets=[self._socket()])
        except SystemExit as exc:  # uvicorn exits on a failed startup (port taken, lifespan)
            raise AoerError(f"the API server could not start (exit {exc.code})") from None

    @property
    def port(self) -> int:
        for server in self._server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return self._server.config.port

    def stop(self) -> None:
        self._server.should_exit = True
        # Open SSE streams would hold the graceful shutdown until its timeout: the caller's
        # `on_stop` (the event hub's `release_subscribers`) ends them now.
        if self._on_stop is not None:
            self._on_stop()

    async def wait(self) -> None:
        """Until the server has stopped (after `stop()` or a failure)."""
        if self._task is not None:
            await self._task

    @property
    def task(self) -> "asyncio.Task[None] | None":
        return self._task
