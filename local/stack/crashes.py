"""Injected crashes for the local stack: a rate per named crash point, drawn from a seeded RNG.

The layer calls ``maskgate.crashpoints.reached(point)`` right after each side effect a crash must not
lose or repeat. While the local stack runs, ``CrashRegistry.hook`` is installed there: at the point's
rate it raises ``InjectedCrash``, a ``BaseException`` so the layer's ``except Exception`` blocks cannot
swallow it (they could not catch the runtime ending an invocation either). The crash is also recorded on
the current invocation, because frameworks that catch everything (Mangum answers a 500 for any
``BaseException``) would otherwise turn it into a normal return: the handler runner reads the record and
reports the invocation as the runtime reports a timeout, whatever the handler went on to return.
"""

from __future__ import annotations

import contextvars
import json
import logging
import math
import random
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from maskgate import crashpoints

TIMED_OUT = "Sandbox.Timedout"  # the errorType Lambda reports when the runtime ends an invocation
# Mangum logs every exception it turns into a 500 with its stack trace: one line per crash is enough
_FRAMEWORK_LOGGERS = ("mangum.http",)


class InjectedCrash(BaseException):  # named as what happened, like KeyboardInterrupt
    """The local stack ended the invocation at a crash point, as the Lambda runtime ends one at a timeout."""

    def __init__(self, point: str) -> None:
        super().__init__(f"injected crash at {point}")
        self.point = point


class InvalidRates(ValueError):
    """A ``PUT /crashes`` body naming an unknown point or a rate that is not a number in [0, 1]."""


@dataclass
class Invocation:
    """One handler invocation; ``crashed_at`` is the point where a crash was injected into it, if any."""

    crashed_at: str | None = None


_current: contextvars.ContextVar[Invocation | None] = contextvars.ContextVar(
    "maskgate_local_invocation", default=None
)


@contextmanager
def invocation() -> Iterator[Invocation]:
    """Mark the code run inside as one invocation (threads started through anyio/asyncio share it)."""
    current = Invocation()
    token = _current.set(current)
    try:
        yield current
    finally:
        _current.reset(token)


def crash_point(exc: BaseException) -> str | None:
    """The point of the injected crash ``exc`` is, or carries in an exception group; else None."""
    if isinstance(exc, InjectedCrash):
        return exc.point
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            point = crash_point(inner)
            if point is not None:
                return point
    return None


def timed_out_payload(point: str, timeout_s: float) -> dict[str, Any]:
    """The runtime's error payload for an invocation ended at ``point``."""
    return {
        "errorType": TIMED_OUT,
        "errorMessage": f"Task timed out after {timeout_s:.2f} seconds (injected crash at {point})",
    }


class CrashRegistry:
    """Per crash point a rate in [0, 1] and the number of crashes injected there; thread-safe."""

    def __init__(self, *, seed: int | None = None, points: Mapping[str, str] | None = None) -> None:
        self._points = dict(crashpoints.POINTS if points is None else points)
        self._seed = seed
        self._lock = threading.Lock()
        self._rng = random.Random(seed)  # noqa: S311 (crash draws, not secrets)
        self._rates = dict.fromkeys(self._points, 0.0)
        self._injected = dict.fromkeys(self._points, 0)

    def listing(self) -> dict[str, Any]:
        """Every point with its description, rate and count: the control server's answer."""
        with self._lock:
            points = {
                name: {"description": text, "rate": self._rates[name], "injected": self._injected[name]}
                for name, text in self._points.items()
            }
        return {"points": points}

    def set_rates(self, rates: Any) -> None:
        """Set the rates of the points named; all or nothing (``InvalidRates`` changes none)."""
        checked = self._checked(rates)
        with self._lock:
            self._rates.update(checked)

    def reset(self) -> None:
        """Every rate back to 0, every count to 0, and the RNG reseeded (a rerun draws the same)."""
        with self._lock:
            self._rates = dict.fromkeys(self._points, 0.0)
            self._injected = dict.fromkeys(self._points, 0)
            self._rng = random.Random(self._seed)  # noqa: S311 (crash draws, not secrets)

    def injected(self, point: str) -> int:
        """How many crashes were injected at ``point`` since the start or the last reset."""
        with self._lock:
            return self._injected[point]

    def draw(self, point: str) -> bool:
        """Whether to crash at ``point`` now (counted when it does)."""
        with self._lock:
            rate = self._rates.get(point, 0.0)
            # no draw at rate 0, so setting one point leaves the others' sequence untouched
            crash = rate > 0.0 and self._rng.random() < rate
            if crash:
                self._injected[point] += 1
            return crash

    def hook(self, point: str) -> None:
        """The function installed in ``maskgate.crashpoints``: crash here at the point's rate."""
        if not self.draw(point):
            return
        current = _current.get()
        if current is not None and current.crashed_at is None:
            current.crashed_at = point
        raise InjectedCrash(point)

    def install(self) -> None:
        """Make every crash point of the layer in this process draw from this registry."""
        crashpoints.install(self.hook)
        for name in _FRAMEWORK_LOGGERS:
            logging.getLogger(name).addFilter(_not_injected)

    def uninstall(self) -> None:
        """Crash points do nothing again (as in AWS)."""
        crashpoints.install(None)
        for name in _FRAMEWORK_LOGGERS:
            logging.getLogger(name).removeFilter(_not_injected)

    def _checked(self, rates: Any) -> dict[str, float]:
        if not isinstance(rates, dict):
            raise InvalidRates('the body must be a JSON object: {"<function>.<point>": rate, ...}')
        unknown = sorted(name for name in rates if name not in self._points)
        if unknown:
            raise InvalidRates(f"unknown crash points: {', '.join(unknown)} (GET /crashes lists them)")
        checked: dict[str, float] = {}
        for name, rate in rates.items():
            if not _is_rate(rate):
                raise InvalidRates(f"the rate of {name} must be a number in [0, 1], not {json.dumps(rate)}")
            checked[name] = float(rate)
        return checked


def _not_injected(record: logging.LogRecord) -> bool:
    """A logging filter: drop records about an injected crash (the runner logs each one)."""
    return record.exc_info is None or record.exc_info[1] is None or crash_point(record.exc_info[1]) is None


def _is_rate(value: Any) -> bool:
    """A number (not a bool) in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and 0.0 <= value <= 1.0
