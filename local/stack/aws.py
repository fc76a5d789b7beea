"""AWS for the local stack: moto in server mode with every Lambda invoke run in this process.

Two hooks into moto 5.2.5 (pinned by `tests/contract/test_moto_canary.py`):
- `LambdaFunction._invoke_lambda` runs the registered handler instead of a Docker container.
- `moto.s3.notifications._invoke_awslambda` is how PutObject fires S3 → Lambda: inside the request,
  before metadata and Content-Type are set, with errors swallowed. The S3 events of one request are
  collected (deduplicated by key + ETag: a multipart upload notifies twice) and handed to a worker once
  the response is sent, as AWS invokes asynchronously: a failing handler is retried twice, then the event
  goes to the function's dead-letter queue.

What moto rebuilds on every request or execution is cached, and DynamoDB's items take a shorter
path through moto's response serializer: `maskgate_local.stack.moto_speed`.

moto's DynamoDB is not thread-safe: an UpdateItem reads, checks its condition and changes the stored
item in place, so two at once on one item (the admission slots, a job) can both pass a condition that
only one should, or fail with "dictionary changed size during iteration". DynamoDB makes each item write
atomic; here every DynamoDB request runs under one lock (moto is one process under the GIL: this costs
no parallelism, and no DynamoDB request calls back into moto).

`observe_requests` puts a WSGI middleware around moto (inside the S3-notification deferral): the
benchmarks count billable requests there.

Requests from this process skip HTTP. Every boto3 client here (the in-process Lambdas, Step Functions'
Lambda tasks, the gateway, the stack's own set-up) sends through botocore's ``before-send`` event, and a
handler there hands a request for moto's address straight to moto, in the calling thread: no socket, no
HTTP parsing, no thread per request (together about a quarter of the stack's CPU per job). It goes
through the same middleware as the server's requests, then to moto's handlers without Flask
(`maskgate_local.stack.moto_wsgi.FlasklessApp`, the same answers). Clients in other processes (the
CLI, the AWS CLI, tests' own processes) reach the same backends through the server on `port`. A Lambda
invoke made from a thread that is running an event loop still goes over HTTP: the function would run
its own loop inside that one (no other request runs a handler in the caller's thread: S3 notifications go to
workers, executions have threads of their own).

Nor are those requests signed: moto checks no signature, and SigV4 (a canonical request, its headers
sorted and hashed, four HMACs) was about 8% of the stack's CPU per job. A request for moto's address
signed by botocore's plain `SigV4Auth` (every service here but S3) gets the headers signing sets, and an
``Authorization`` header with the same credential scope (moto reads the service, region and access key
from it) and a placeholder signature. S3's signers, presigned URLs and requests elsewhere are signed
as botocore signs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.client
import io
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import botocore.handlers
from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest, AWSResponse, HTTPHeaders
from botocore.compat import get_current_datetime
from botocore.config import Config
from botocore.exceptions import NoCredentialsError

from maskgate_local.stack import moto_speed
from maskgate_local.stack.activity import Invocation, step_name
from maskgate_local.stack.handlers import FunctionSpec, HandlerRunner
from maskgate_local.stack.moto_wsgi import FlasklessApp, WsgiApp, moto_app

logger = logging.getLogger(__name__)

ASYNC_ATTEMPTS = 3  # Lambda's async invoke: the first try and two retries
SERVER_POLL_S = 0.05  # how often moto's server loop looks for a stop
_active: LocalAws | None = None
_S3Batch = dict[tuple[str, str, str, str], dict[str, Any]]


class LocalAws:
    """moto on 127.0.0.1:`port`, with registered functions dispatched in-process."""

    def __init__(self, *, port: int, region: str = "us-east-1") -> None:
        self.port = port
        self.region = region
        self._runners: dict[str, HandlerRunner] = {}
        self._server: Any = None
        self._restore: list[Callable[[], None]] = []
        self._request = threading.local()
        self._dynamodb = threading.Lock()  # one DynamoDB request at a time (see the module's docstring)
        self._idle = threading.Condition()
        self._pending = 0
        self._notifications_paused = False
        self._workers: ThreadPoolExecutor | None = None
        self._observer: Callable[[WsgiApp], WsgiApp] | None = None
        self._app: WsgiApp | None = None  # moto's WSGI app with this class's middleware
        self._direct: WsgiApp | None = None  # the same without Flask, for requests answered in-process
        self.invocations: list[Callable[[Invocation], None]] = []  # told of every finished invocation

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def register(self, specs: Iterable[FunctionSpec]) -> None:
        """Dispatch invokes of these functions (by function name) to their handlers."""
        for spec in specs:
            self._runners[spec.function_name] = HandlerRunner(spec)

    def runner(self, function_name: str) -> HandlerRunner | None:
        return self._runners.get(function_name)

    def observe_requests(self, middleware: Callable[[WsgiApp], WsgiApp] | None) -> None:
        """Route every later request to moto through ``middleware`` (None removes it); S3 notifications
        still wait until the response is sent."""
        self._observer = middleware

    def client(self, service: str, *, max_pool_connections: int | None = None) -> Any:
        """A new boto3 client for `service` against this endpoint (boto3's default configuration, but for
        the size of its connection pool when given)."""
        config = Config(max_pool_connections=max_pool_connections) if max_pool_connections else None
        # boto3-stubs types a client per literal service name; this serves any service by name
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 (moto's placeholder credentials)
            config=config,
        )

    def start(self) -> None:
        """Start moto; returns once it answers, with state machine execution switched on."""
        global _active
        if _active is not None:
            raise RuntimeError("a LocalAws is already running in this process")
        _active = self
        try:
            os.environ["MOTO_PORT"] = str(self.port)  # Step Functions calls Lambda at localhost:$MOTO_PORT
            logging.getLogger("werkzeug").setLevel(logging.ERROR)
            # moto logs every caught workflow error (a Catch is normal flow here) with its whole state
            logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
            self._workers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="maskgate-async-invoke")
            with _one_botocore_loader():  # the first start imports moto's EC2 models
                self._install_hooks()
            dispatcher = moto_app()
            self._app = self._defer_s3_notifications(dispatcher)
            self._direct = self._defer_s3_notifications(FlasklessApp(dispatcher))
            self._server = _server_class()(self._app, ip_address="127.0.0.1", port=self.port)
            self._server.start()
            _send_in_process.install()
            self._moto_api("/moto-api/config", {"stepfunctions": {"execute_state_machine": True}})
        except BaseException:
            self.stop(reset=False)
            raise

    def stop(self, *, reset: bool = True) -> None:
        """Stop moto, restore moto's own code, and (by default) empty its backends."""
        global _active
        if _active is self:
            _send_in_process.uninstall()
        if self._workers is not None:  # running async invokes finish while moto still answers them
            self._workers.shutdown(wait=True, cancel_futures=True)
            self._workers = None
            with self._idle:
                self._pending = 0
                self._idle.notify_all()
        if self._server is not None:
            if reset:
                self._moto_api("/moto-api/config", {"stepfunctions": {"execute_state_machine": False}})
                self._moto_api("/moto-api/reset", None)
            self._server.stop()
            self._server = None
        self._app = self._direct = None
        while self._restore:
            self._restore.pop()()
        if _active is self:
            _active = None

    @contextlib.contextmanager
    def notifications_paused(self) -> Iterator[None]:
        """S3 notifications raised inside are dropped (objects written back from a saved state)."""
        self._notifications_paused = True
        try:
            yield
        finally:
            self._notifications_paused = False

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued async invoke has finished; False if `timeout` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    # --- moto hooks -------------------------------------------------------------------------------------

    def _install_hooks(self) -> None:
        from moto.awslambda.models import LambdaFunction
        from moto.s3 import notifications

        def invoke_lambda(function: Any, event: Any = None) -> tuple[str, bool, str]:
            return self._invoke(function.function_name, event)

        def invoke_from_s3(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:  # noqa: ARG001
            self._on_s3_event(event_body, fn_arn)

        self._patch(LambdaFunction, "_invoke_lambda", invoke_lambda)
        self._patch(notifications, "_invoke_awslambda", invoke_from_s3)
        self._patch(SigV4Auth, "add_auth", _scope_only(SigV4Auth.__dict__["add_auth"]))
        moto_speed.install(self._patch)

    def answers(self, url: str) -> bool:
        """Whether `url` is moto's address here (requests for it are answered in this process)."""
        parts = urlsplit(url)
        return self._app is not None and parts.port == self.port and parts.hostname in _LOOPBACK_NAMES

    def _patch(self, owner: Any, name: str, replacement: Any) -> None:
        original = owner.__dict__[name]
        setattr(owner, name, replacement)
        self._restore.append(lambda: setattr(owner, name, original))

    def _invoke(self, function_name: str, event: Any) -> tuple[str, bool, str]:
        runner = self._runners.get(function_name)
        if runner is None:
            error = {
                "errorType": "LocalFunctionNotRegistered",
                "errorMessage": f"no local handler is registered for function {function_name!r}",
            }
            return json.dumps(error), True, ""
        payload, errored = self._run(runner, {} if event in (None, "{}") else event)
        return payload, errored, ""

    def _run(self, runner: HandlerRunner, event: Any) -> tuple[str, bool]:
        """One invocation, then every observer told of it."""
        started = time.monotonic()
        payload, errored = runner.invoke(event)
        if self.invocations:
            done = Invocation(
                step_name(runner.spec.logical_id), event, payload, errored, time.monotonic() - started
            )
            for observer in list(self.invocations):
                observer(done)
        return payload, errored

    def _on_s3_event(self, event: dict[str, Any], function_arn: str) -> None:
        if self._notifications_paused:
            return
        batch: _S3Batch | None = getattr(self._request, "batch", None)
        if batch is None:  # not inside a request (nothing to wait for): dispatch now
            self._submit([(function_arn, event)])
            return
        s3 = event["Records"][0]["s3"]
        key = (function_arn, s3["bucket"]["name"], s3["object"]["key"], s3["object"].get("eTag", ""))
        if key not in batch:
            self._add_pending(1)
        batch[key] = event  # the later event of a multipart pair is CompleteMultipartUpload, AWS's one

    def _defer_s3_notifications(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            outer: _S3Batch | None = getattr(self._request, "batch", None)  # a request within a request
            batch: _S3Batch = {}
            self._request.batch = batch
            observer = self._observer
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            try:
                with self._dynamodb if target.startswith("DynamoDB_") else contextlib.nullcontext():
                    body = (observer(app) if observer is not None else app)(environ, start_response)
            except BaseException:
                self._end_request(batch, outer)
                raise
            return _AfterResponse(body, lambda: self._end_request(batch, outer))

        return middleware

    def _end_request(self, batch: _S3Batch, outer: _S3Batch | None) -> None:
        self._request.batch = outer
        self._submit([(function_arn, event) for (function_arn, *_), event in batch.items()], counted=True)

    def _submit(self, invokes: list[tuple[str, dict[str, Any]]], *, counted: bool = False) -> None:
        if not counted:
            self._add_pending(len(invokes))
        for function_arn, event in invokes:
            try:
                if self._workers is None:
                    raise RuntimeError("stopped")
                self._workers.submit(self._run_async, function_arn, event)
            except RuntimeError:  # stopping: the invoke is dropped, as a deleted function's would be
                logger.warning("LocalAws is stopping; S3 notification for %s dropped", function_arn)
                self._add_pending(-1)

    def _add_pending(self, count: int) -> None:
        with self._idle:
            self._pending += count
            self._idle.notify_all()

    def _run_async(self, function_arn: str, event: dict[str, Any]) -> None:
        try:
            function_name = function_arn.split(":")[6]
            runner = self._runners.get(function_name)
            if runner is None:
                logger.error("S3 notification for %s, which has no local handler", function_name)
                return
            payload = ""
            for attempt in range(1, ASYNC_ATTEMPTS + 1):
                payload, errored = self._run(runner, event)
                if not errored:
                    return
                logger.warning(
                    "async invoke of %s failed (attempt %d): %s", function_name, attempt, payload[:500]
                )
            self._dead_letter(runner.spec, event, payload)
        except Exception:
            logger.exception("async invoke of %s could not be dispatched", function_arn)
        finally:
            self._add_pending(-1)

    def _dead_letter(self, spec: FunctionSpec, event: dict[str, Any], payload: str) -> None:
        if spec.dead_letter_queue_arn is None:
            logger.error(
                "async invoke of %s failed on every attempt and it has no dead-letter queue: %s",
                spec.function_name,
                payload[:500],
            )
            return
        sqs = self.client("sqs")
        queue_name = spec.dead_letter_queue_arn.rsplit(":", 1)[-1]
        error = json.loads(payload)
        sqs.send_message(
            QueueUrl=sqs.get_queue_url(QueueName=queue_name)["QueueUrl"],
            MessageBody=json.dumps(event),
            MessageAttributes={
                "RequestID": {"DataType": "String", "StringValue": "local"},
                "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                "ErrorMessage": {
                    "DataType": "String",
                    "StringValue": str(error.get("errorMessage", ""))[:1024],
                },
            },
        )

    def send(self, request: AWSPreparedRequest) -> AWSResponse | None:
        """Answer a botocore request for this moto from its WSGI app in the calling thread; None (send it
        over HTTP) for any other address, and for a Lambda invoke from a thread running an event loop."""
        app = self._direct
        if app is None or not self.answers(request.url):
            return None
        url = urlsplit(request.url)
        if url.path.startswith(_LAMBDA_INVOKE) and asyncio._get_running_loop() is not None:
            return None
        status: list[str] = []
        headers: list[tuple[str, str]] = []

        def start_response(status_line: str, response_headers: list[tuple[str, str]], *_: Any) -> None:
            status[:] = [status_line]
            headers[:] = response_headers

        body = app(_environ(request, url.netloc, self.port), start_response)
        try:
            content = b"".join(body)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()  # the S3 notifications of the request are handed on here
        response_headers = HTTPHeaders()
        for name, value in headers:
            response_headers[name] = value
        return AWSResponse(request.url, int(status[0].split(" ", 1)[0]), response_headers, _RawBody(content))

    def _moto_api(self, path: str, body: Any) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("POST", path, body=json.dumps(body) if body is not None else b"")
            response = connection.getresponse()
            response.read()
            if response.status >= 300:
                raise RuntimeError(f"moto {path} answered {response.status}")
        finally:
            connection.close()


_LAMBDA_INVOKE = "/2015-03-31/functions/"
_LOOPBACK_NAMES = ("127.0.0.1", "localhost")
_PLACEHOLDER_SIGNATURE = "0" * 64


def _scope_only(add_auth: Callable[[SigV4Auth, AWSRequest], None]) -> Callable[[SigV4Auth, AWSRequest], None]:
    """``SigV4Auth.add_auth`` that, for a request the running `LocalAws` answers, sets the headers signing
    sets and an ``Authorization`` with the request's credential scope but no signature computed."""

    @functools.wraps(add_auth)
    def scoped(auth: SigV4Auth, request: AWSRequest) -> None:
        aws = _active
        if type(auth) is not SigV4Auth or aws is None or not aws.answers(request.url or ""):
            add_auth(auth, request)
            return
        if auth.credentials is None:
            raise NoCredentialsError()
        request.context["timestamp"] = get_current_datetime().strftime(SIGV4_TIMESTAMP)
        auth._modify_request_before_signing(request)  # type: ignore[attr-defined]  # botocore's own step
        request.headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={auth.scope(request)}, SignedHeaders=host;x-amz-date, "
            f"Signature={_PLACEHOLDER_SIGNATURE}"
        )

    return scoped


class _InProcessSender:
    """botocore's ``before-send`` handler for every client of this process: the running `LocalAws`
    answers requests for its own address; nothing else is touched. Registered for sessions created
    later (botocore's built-in handlers) and on boto3's default session if it exists."""

    UNIQUE_ID = "maskgate-local-in-process"

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        aws = _active
        return aws.send(request) if aws is not None else None

    def install(self) -> None:
        entry = ("before-send", self)
        if entry not in botocore.handlers.BUILTIN_HANDLERS:
            botocore.handlers.BUILTIN_HANDLERS.append(entry)
        if boto3.DEFAULT_SESSION is not None:  # made before the handler was built in: told directly
            # botocore types handlers as returning None; a before-send handler's answer is the response
            boto3.DEFAULT_SESSION.events.register("before-send", self, unique_id=self.UNIQUE_ID)  # type: ignore[arg-type]

    def uninstall(self) -> None:
        with contextlib.suppress(ValueError):
            botocore.handlers.BUILTIN_HANDLERS.remove(("before-send", self))
        if boto3.DEFAULT_SESSION is not None:
            boto3.DEFAULT_SESSION.events.unregister("before-send", unique_id=self.UNIQUE_ID)


_send_in_process = _InProcessSender()


class _RawBody(io.BytesIO):
    """A response body as botocore reads one from urllib3 (``stream()`` for streaming outputs)."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        while chunk := self.read(65536):
            yield chunk


def _environ(request: AWSPreparedRequest, netloc: str, port: int) -> dict[str, Any]:
    """The WSGI environ moto's server (werkzeug with moto's request handler) builds for ``request``."""
    body = request.body
    if body is None:
        data = b""
    elif isinstance(body, bytes | bytearray):
        data = bytes(body)
    elif isinstance(body, str):
        data = body.encode()
    else:  # a file-like body (S3 PutObject): botocore rewinds it itself before a retry
        read: bytes | str = body.read()
        data = read.encode() if isinstance(read, str) else read
    target = request.url.split(netloc, 1)[1] or "/"
    path, _, query = target.partition("?")
    environ: dict[str, Any] = {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(data),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote(path).encode().decode("latin-1"),
        "QUERY_STRING": query.encode().decode("latin-1"),
        "REQUEST_URI": target,
        "RAW_URI": target,
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": 0,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": netloc,
        "CONTENT_LENGTH": str(len(data)),
    }
    preserved: dict[str, str] = {}
    for name, raw in request.headers.items():
        value = (raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)).replace("\r\n", "")
        key = name.upper().replace("-", "_")
        key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"
        if "_" in name:  # werkzeug drops these; moto keeps S3 metadata names as they were spelled
            if not name.lower().startswith("x-amz-meta-"):
                continue
            preserved.setdefault(key, name)
        if key == "CONTENT_LENGTH":
            continue
        environ[key] = f"{environ[key]},{value}" if key in environ and key.startswith("HTTP_") else value
    if preserved:
        environ["moto.preserved_header_names"] = preserved
    return environ


class _AfterResponse:
    """A WSGI body that runs `after` once the server has sent it and closed it."""

    def __init__(self, body: Iterable[bytes], after: Callable[[], None]) -> None:
        self._body = body
        self._after = after

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._after()


@contextlib.contextmanager
def _one_botocore_loader() -> Iterator[None]:
    """Every botocore session made meanwhile shares one data loader, so each service model is parsed
    once: moto's EC2 models, imported by Step Functions' interpreter (through AWS Batch), make three
    sessions at import to list regions, each parsing EC2's 3 MB model and the endpoints file (~0.5 s).
    Only for this while: boto3 adds its data path to a session's loader, once per session."""
    import botocore.session

    create_loader = botocore.session.__dict__["create_loader"]
    shared = functools.cache(create_loader)
    botocore.session.create_loader = shared
    try:
        yield
    finally:
        botocore.session.create_loader = create_loader


@functools.cache
def _server_class() -> type:
    """ThreadedMotoServer serving a given WSGI app (moto is imported here, late)."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    class _AppMotoServer(ThreadedMotoServer):
        def __init__(self, app: WsgiApp, **kwargs: Any) -> None:
            super().__init__(verbose=False, **kwargs)
            self._app = app
            self.failure: BaseException | None = None

        def _server_entry(self) -> None:
            try:
                self._server = make_server(
                    self._ip_address, self._port, self._app, True, request_handler=MotoRequestHandler
                )
            except BaseException as exc:  # e.g. the port is taken: let start() raise instead of hanging
                self.failure = exc
                self._server_ready_event.set()
                return
            self._server_ready_event.set()
            # werkzeug's default (0.5 s) is how long a stop waits for the loop to notice
            self._server.serve_forever(poll_interval=SERVER_POLL_S)

        def start(self) -> None:
            super().start()
            if self.failure is not None:
                raise RuntimeError(f"moto could not start on port {self._port}") from self.failure

    return _AppMotoServer
