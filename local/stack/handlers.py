"""Run a function's real handler in this process, as the Lambda runtime would.

A `HandlerRunner` is one warm container per function: it imports `<code_dir>/<module>.py` once under a
unique module name, then calls `handler(event, context)` with a Lambda-shaped context. Failures come
back as the runtime's error payload, `{"errorType", "errorMessage", "stackTrace"}`: Step Functions
`Retry`/`Catch` match on `errorType`, the exception's class name. A crash injected at a crash point
(`maskgate_local.stack.crashes`) comes back as the runtime reports a timeout, `Sandbox.Timedout`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from maskgate_local.stack.crashes import crash_point, invocation, timed_out_payload

logger = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class FunctionSpec:
    """One function of the template, as the local stack runs it."""

    logical_id: str
    function_name: str
    handler: str
    code_dir: Path
    environment: Mapping[str, str] = field(default_factory=dict)
    timeout: int = 3
    memory_mb: int = 128
    region: str = "us-east-1"
    account_id: str = "123456789012"
    dead_letter_queue_arn: str | None = None

    @property
    def arn(self) -> str:
        """The function's ARN, as moto reports it."""
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"


@dataclass(frozen=True)
class LambdaContext:
    """The attributes of the Python runtime's context object that handlers and Powertools read."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_monotonic: float
    client_context: Any = None
    identity: Any = None

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's configured timeout."""
        return max(0, int((self.deadline_monotonic - time.monotonic()) * 1000))


class HandlerImportError(Exception):
    """The handler's module failed to import; reported as the runtime does, `Runtime.ImportModuleError`."""

    error_type = "Runtime.ImportModuleError"


def error_payload(exc: BaseException) -> dict[str, Any]:
    """The runtime's error shape for an exception raised by a handler."""
    return {
        "errorType": HandlerImportError.error_type
        if isinstance(exc, HandlerImportError)
        else type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(type(exc), exc, exc.__traceback__),
    }


class HandlerRunner:
    """Imports a function's handler once and invokes it; safe to call from several threads."""

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        self._handler: Handler | None = None

    def _load(self) -> Handler:
        with self._lock:
            if self._handler is None:
                try:
                    self._handler = _import_handler(self.spec)
                except Exception as exc:  # a failed import is retried at the next invoke, as in Lambda
                    raise HandlerImportError(f"Unable to import {self.spec.handler!r}: {exc}") from exc
            return self._handler

    def context(self) -> LambdaContext:
        """A fresh context for one invocation."""
        request_id = str(uuid.uuid4())
        day = time.strftime("%Y/%m/%d", time.gmtime())
        return LambdaContext(
            function_name=self.spec.function_name,
            function_version="$LATEST",
            invoked_function_arn=self.spec.arn,
            memory_limit_in_mb=self.spec.memory_mb,
            aws_request_id=request_id,
            log_group_name=f"/aws/lambda/{self.spec.function_name}",
            log_stream_name=f"{day}/[$LATEST]{request_id.replace('-', '')}",
            deadline_monotonic=time.monotonic() + self.spec.timeout,
        )

    def invoke(self, event: Any) -> tuple[str, bool]:
        """Run the handler on `event`; returns (payload JSON, errored).

        An injected crash ends the invocation as the runtime's timeout does (`Sandbox.Timedout`), even
        when a framework inside the handler caught it and went on to return an answer.
        """
        context = self.context()
        with _event_loop(), invocation() as current:
            try:
                payload, errored = self._call(event, context)
            except BaseException as exc:
                point = current.crashed_at or crash_point(exc)
                if point is None:  # KeyboardInterrupt, SystemExit: not the handler's to report
                    raise
                return self._crashed(point), True
        if current.crashed_at is not None:  # caught inside (Mangum answers 500): the runtime still ended it
            return self._crashed(current.crashed_at), True
        if not errored and context.get_remaining_time_in_millis() == 0:
            logger.warning(
                "local function %s ran past its %s s timeout", self.spec.function_name, self.spec.timeout
            )
        return payload, errored

    def _call(self, event: Any, context: LambdaContext) -> tuple[str, bool]:
        try:
            handler = self._load()
            payload = json.dumps(handler(event, context))
        except Exception as exc:  # the runtime turns every handler failure into a payload
            logger.info("local function %s failed: %s: %s", self.spec.function_name, type(exc).__name__, exc)
            return json.dumps(error_payload(exc)), True
        return payload, False

    def _crashed(self, point: str) -> str:
        logger.warning("local function %s: injected crash at %s", self.spec.function_name, point)
        return json.dumps(timed_out_payload(point, self.spec.timeout))


@contextmanager
def _event_loop() -> Iterator[None]:
    """Lambda runs a handler on a thread that has an event loop (Mangum relies on it); moto's
    request threads have none, so such a thread gets one for the invocation, closed after it (a loop
    left to the garbage collector leaks its self-pipe sockets)."""
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            yield
        finally:
            asyncio.set_event_loop(None)
            loop.close()
    else:
        yield


def _import_handler(spec: FunctionSpec) -> Handler:
    module_path, _, attribute = spec.handler.rpartition(".")
    if not module_path or not attribute:
        raise ValueError(f"handler {spec.handler!r} of {spec.logical_id} is not <module>.<function>")
    source = spec.code_dir / (module_path.replace(".", "/") + ".py")
    module_name = f"maskgate_fn_{spec.logical_id}"
    module = _import_file(module_name, source)
    handler: Handler | None = getattr(module, attribute, None)
    if not callable(handler):
        raise ImportError(f"{source} has no callable {attribute!r}")
    return handler


def _import_file(module_name: str, source: Path) -> ModuleType:
    import_spec = importlib.util.spec_from_file_location(module_name, source)
    if import_spec is None or import_spec.loader is None:
        raise ImportError(f"cannot import {source}")
    module = importlib.util.module_from_spec(import_spec)
    sys.modules[module_name] = module
    try:
        import_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def merged_environment(specs: Iterable[FunctionSpec]) -> dict[str, str]:
    """The union of the functions' variables; a variable set differently by two functions is logged."""
    merged: dict[str, str] = {}
    owner: dict[str, str] = {}
    for spec in specs:
        for name, value in spec.environment.items():
            if name in merged and merged[name] != value:
                logger.warning(
                    "%s and %s disagree on %s; in this one process the value of %s wins",
                    owner[name],
                    spec.logical_id,
                    name,
                    owner[name],
                )
                continue
            merged.setdefault(name, value)
            owner.setdefault(name, spec.logical_id)
    return merged


def apply_environment(specs: Iterable[FunctionSpec], *, region: str, endpoint_url: str) -> dict[str, str]:
    """Set the functions' merged variables and the runtime's in `os.environ` (one process); returns them.

    The runtime's credentials are moto's placeholders and `AWS_ENDPOINT_URL` points every boto3 client
    of the process at moto, so nothing can reach a real AWS account.
    """
    merged = merged_environment(specs)
    merged.update(
        AWS_REGION=region,
        AWS_DEFAULT_REGION=region,
        AWS_ENDPOINT_URL=endpoint_url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106 (moto's placeholder credentials)
    )
    os.environ.update(merged)
    return merged
