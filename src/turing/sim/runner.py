"""Run the simulator: in a background thread for tests (`Simulator`), or in the foreground
for the `turing sim-llm` command (`serve`)."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import socket
import threading
import weakref
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from turing.errors import ConfigError
from turing.sim.config import SimConfig
from turing.sim.engine import Engine
from turing.sim.responders import Responder

if TYPE_CHECKING:
    from starlette.applications import Starlette

_INSTALL_HINT = "pip install 'turing[sim]'"


def create_app(engine: Engine) -> Starlette:
    """The simulator's ASGI app for `engine` (needs the `turing[sim]` extra)."""
    try:
        from turing.sim.app import create_app as build
    except ImportError as exc:
        raise ConfigError(f"the LLM simulator needs starlette: {_INSTALL_HINT} ({exc})") from exc
    return build(engine)


def _uvicorn() -> Any:
    try:
        import uvicorn
    except ImportError as exc:
        raise ConfigError(f"the LLM simulator needs uvicorn: {_INSTALL_HINT} ({exc})") from exc
    return uvicorn


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets that say so, and
    # without it small responses wait ~40 ms for delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc}") from exc
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class Simulator:
    """The simulator on 127.0.0.1 in a background thread.

        with Simulator(SimConfig.profile("fast"), responder=...) as sim:
            client = ollama.AsyncClient(host=sim.url)

    `port=0` picks a free port. `stop()` (or leaving the `with`, or interpreter exit) shuts
    it down; requests still hanging are cut short. `clock` and `sleep`: the time modelled
    latencies pass on (see `Engine`; called on the server's thread).
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        responder: Responder | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.config = config or SimConfig.profile("fast")
        self.engine = Engine(self.config, responder, clock=clock, sleep=sleep)
        self.host = host
        self._port = port
        self._log_level = log_level
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._stopping = asyncio.Event()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT` (Ollama's base URL; OpenAI clients add `/v1`)."""
        if self._thread is None:
            raise RuntimeError("the simulator is not running: call start() first")
        return _url(self.host, self._port)

    @property
    def openai_url(self) -> str:
        return self.url + "/v1"

    def start(self, timeout: float = 10.0) -> Simulator:
        if self._thread is not None:
            return self
        uvicorn = _uvicorn()
        app = create_app(self.engine)
        self.engine.closing = False
        sock = _bind(self.host, self._port)
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_level=self._log_level,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        stopping = self._stopping = asyncio.Event()

        class Server(uvicorn.Server):  # type: ignore[misc,name-defined]
            async def main_loop(self) -> None:
                # uvicorn polls should_exit every 0.1 s; an event makes stop() immediate.
                counter = 0
                while not await self.on_tick(counter):
                    counter += 1
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stopping.wait(), timeout=1.0)

        self._server = Server(config)
        started = threading.Event()

        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            started.set()
            await self._server.serve(sockets=[sock])

        def run() -> None:
            try:
                asyncio.run(serve())
            except BaseException as exc:  # reported by start() or stop()
                self._error = exc
            finally:
                started.set()
                sock.close()

        self._thread = threading.Thread(target=run, name=f"turing-sim-{self._port}", daemon=True)
        self._thread.start()
        started.wait(timeout)
        deadline = threading.Event()
        for _ in range(int(timeout / 0.01)):
            if self._server.started or self._error is not None or not self._thread.is_alive():
                break
            deadline.wait(0.01)
        if not self._server.started:
            self.stop()
            raise ConfigError(f"the simulator did not start on {self.host}: {self._error}")
        _running.add(self)
        return self

    def stop(self, timeout: float = 10.0) -> bool:
        """Shut the server down, cutting hanging requests short; True once its thread ended
        (False if it is still running after `timeout` seconds)."""
        thread, self._thread = self._thread, None
        _running.discard(self)
        if thread is None:
            return True
        self.engine.closing = True
        if self._server is not None:
            self._server.should_exit = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._stopping.set)
        thread.join(timeout)
        return not thread.is_alive()

    def _on_loop(self, func: Any) -> Any:
        loop = self._loop
        if loop is None or self._thread is None:
            raise RuntimeError("the simulator is not running")

        async def call() -> Any:
            return func()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout=10)

    def stats(self) -> dict[str, Any]:
        """The `/sim/stats` counters (read on the server's loop, so consistent)."""
        result: dict[str, Any] = self._on_loop(self.engine.snapshot)
        return result

    def reset(self) -> None:
        """Zero the counters, forget seen requests and unload idle models (`/sim/reset`)."""
        self._on_loop(self.engine.reset)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


_running: weakref.WeakSet[Simulator] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for sim in list(_running):
        sim.stop(timeout=2.0)


def serve(
    config: SimConfig,
    *,
    responder: Responder | None = None,
    host: str = "127.0.0.1",
    port: int = 11434,
    log_level: str = "info",
    on_ready: Any = None,
) -> None:
    """Run the simulator in the foreground until interrupted (Ctrl-C)."""
    uvicorn = _uvicorn()
    engine = Engine(config, responder)
    app = create_app(engine)
    sock = _bind(host, port)
    if on_ready is not None:
        on_ready(_url(host, sock.getsockname()[1]))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level=log_level, lifespan="off", timeout_graceful_shutdown=1)
    )
    try:
        server.run(sockets=[sock])
    finally:
        engine.closing = True
        sock.close()
