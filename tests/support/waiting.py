"""Waiting for what another thread does: poll a condition until it holds or a deadline passes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` until it holds or the deadline passes."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        pause.wait(0.005)
