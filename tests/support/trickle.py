"""A raw-socket HTTP server on a free loopback port whose answers are slow on purpose.

Each connection reads one request, then plays an ``Answer``: the head and body, each sent whole or
one byte at a time with a pause between bytes, or nothing at all (accept and never answer). The
pauses are the point of the server, so it waits between bytes; tests never wait on it, they measure.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

HEAD_END = b"\r\n\r\n"


@dataclass(frozen=True)
class Answer:
    """What the server sends back, and how slowly."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    trickle_head: float = 0.0  # seconds between bytes of the status line and headers
    trickle_body: float = 0.0  # seconds between bytes of the body
    silent: bool = False  # accept and read the request, never answer

    def head(self) -> bytes:
        return (
            f"HTTP/1.1 {self.status} X\r\ncontent-type: {self.content_type}\r\n"
            f"content-length: {len(self.body)}\r\nconnection: close\r\n\r\n"
        ).encode()


def fine(status: int = 204, body: bytes = b"") -> Answer:
    return Answer(status=status, body=body)


@dataclass
class SlowServer:
    """The listening socket and its connection threads; ``answer`` may be changed between requests."""

    answer: Answer
    sock: socket.socket = field(default_factory=lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    stop: threading.Event = field(default_factory=threading.Event)
    requests: list[bytes] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    @property
    def port(self) -> int:
        port: int = self.sock.getsockname()[1]
        return port

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)  # so the accept loop notices ``stop``
        self._spawn(self._accept_loop)

    def close(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(5)
        self.sock.close()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        answer = self.answer
        with conn, contextlib.suppress(OSError):
            conn.settimeout(5)
            self.requests.append(_read_request(conn))
            if answer.silent:
                self.stop.wait()
                return
            self._send(conn, answer.head(), answer.trickle_head)
            self._send(conn, answer.body, answer.trickle_body)

    def _send(self, conn: socket.socket, data: bytes, pause: float) -> None:
        if not pause:
            conn.sendall(data)
            return
        for i in range(len(data)):
            if self.stop.wait(pause):
                return
            conn.sendall(data[i : i + 1])


def _read_request(conn: socket.socket) -> bytes:
    """The head and as much of the body as its content-length announces."""
    data = b""
    while HEAD_END not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(HEAD_END)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + HEAD_END + body


@contextlib.contextmanager
def slow_server(answer: Answer) -> Iterator[SlowServer]:
    """A started ``SlowServer``, closed on exit."""
    server = SlowServer(answer)
    server.start()
    try:
        yield server
    finally:
        server.close()
