"""Run an ASGI app with uvicorn in a daemon thread, on a loopback port (0 picks a free one)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Generator
from types import TracebackType
from typing import Any

import uvicorn

STARTUP_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (for callers that must name a port before starting)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``host:port`` can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


class PortBusy(RuntimeError):
    """A port asked for by number is taken: the message names it and, when known, the flag to change."""

    def __init__(self, port: int, flag: str | None = None) -> None:
        choose = f"choose another with {flag} N (0 picks a free port)" if flag else "choose another port"
        super().__init__(f"port {port} on 127.0.0.1 is in use by another program; {choose}")
        self.port = port
        self.flag = flag


class _ThreadServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the process that owns the main thread."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:  # uvicorn >= 0.29
        yield

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29
        return None


class RunningServer:
    """A started server: its port, its base URL and a graceful ``stop()``."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, host: str, port: int) -> None:
        self._server = server
        self._thread = thread
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def ask_to_stop(self) -> None:
        """Ask the server to finish its requests and exit, without waiting (``stop`` waits)."""
        self._server.should_exit = True

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Ask the server to finish its requests and exit; force it if it is still up at the deadline."""
        self.ask_to_stop()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve_in_thread(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, startup_timeout: float = STARTUP_TIMEOUT_S
) -> RunningServer:
    """Start ``app`` on ``host:port`` in a daemon thread and return once it accepts connections."""
    config = uvicorn.Config(
        app, host=host, port=port, interface="asgi3", log_level="warning", access_log=False, lifespan="auto"
    )
    server = _ThreadServer(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run()
        except BaseException as exc:  # uvicorn exits with SystemExit when it cannot bind
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"uvicorn-{host}:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive():
            if port and not port_free(port, host):
                raise PortBusy(port)
            raise RuntimeError(f"server on {host}:{port} failed to start: {failure[:1]!r}")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError(f"server on {host}:{port} did not start within {startup_timeout} s")
        thread.join(0.01)
    return RunningServer(server, thread, host, _bound_port(server))


def _bound_port(server: uvicorn.Server) -> int:
    for listener in server.servers:
        for sock in listener.sockets:
            port: int = sock.getsockname()[1]
            return port
    raise RuntimeError("the server has no listening socket")
