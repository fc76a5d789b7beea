"""A small typed client for the maskgate HTTP API v1, used by the ``maskgate`` commands.

Every call has an explicit timeout; API errors arrive as ``ApiProblem`` (the RFC 9457 document),
transport failures as ``ApiUnreachable``. The API key is sent only to the API itself: presigned S3
URLs (mask downloads, the upload form) are fetched without it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NotRequired, TypedDict
from urllib.parse import quote, urljoin, urlsplit

import httpx

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
UPLOAD_TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=300.0, pool=5.0)  # up to 20 MB out
MAX_IMAGE_BYTES = 20 * 1024 * 1024
TERMINAL = frozenset({"succeeded", "failed", "canceled"})
OutputFormat = Literal["png", "jpeg", "webp"]

# The same magic bytes the API recognises (by content, never by name); the upload form needs a type.
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
    (b"BM", 0, "image/bmp"),
    (b"II*\x00", 0, "image/tiff"),
    (b"MM\x00*", 0, "image/tiff"),
)


class Point(TypedDict):
    x: float
    y: float
    label: int


class Box(TypedDict):
    x_min: float
    y_min: float
    x_max: float
    y_max: float


class Prompts(TypedDict, total=False):
    """The prompt payload (text, points, boxes, options) without ``image``."""

    prompt: str
    point_prompts: list[Point]
    box_prompts: list[Box]
    apply_mask: bool
    output_format: OutputFormat
    webhook_url: str
    metadata: dict[str, str]
    outputs: list[str]


class Mask(TypedDict):
    index: int
    url: str
    format: str
    content_type: str
    size: int
    width: NotRequired[int | None]
    height: NotRequired[int | None]


class JobError(TypedDict):
    type: str
    message: str


class JobImage(TypedDict, total=False):
    """Where a job's input image is (a field is left out when it is not known)."""

    key: str
    url: str
    format: str
    width: int
    height: int
    filename: str
    upload_key: str


class Instance(TypedDict):
    index: int
    mask_index: int
    bbox: list[int]
    area: int
    centroid: list[float]
    rle: dict[str, Any]
    polygons: list[list[float]]


class JobResults(TypedDict):
    outputs: list[str]
    instance_count: int | None
    instances_url: str | None
    coco_url: str | None
    unavailable: JobError | None


class Job(TypedDict):
    id: str
    status: str
    source: str
    masks: list[Mask]
    error: JobError | None
    created_at: str
    updated_at: str
    finished_at: str | None
    request: NotRequired[dict[str, Any] | None]
    image: NotRequired[JobImage | None]
    deliveries: NotRequired[list[dict[str, Any]]]
    found: NotRequired[bool | None]
    instances: NotRequired[list[Instance] | None]
    results: NotRequired[JobResults | None]


class UploadForm(TypedDict):
    url: str
    fields: dict[str, str]


class JobPage(TypedDict):
    data: list[Job]
    next_cursor: str | None


class EndpointStats(TypedDict):
    """An endpoint's last 24 hours, from its attempt log (``GET`` of one endpoint only)."""

    attempts: int
    success_rate: float | None
    latency_p50_ms: int | None
    latency_p95_ms: int | None
    last_error: str | None
    state: str  # healthy, failing or disabled


class Endpoint(TypedDict):
    """A registered webhook endpoint as the API shows it (never its secret)."""

    id: str
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    rate_limit_per_second: int | None
    metadata: dict[str, str]
    signature: str
    created_at: str
    updated_at: str
    disabled_at: str | None
    disabled_reason: str | None
    public_key: NotRequired[str | None]
    stats: NotRequired[EndpointStats]  # in the answer to a GET of one endpoint


class CreatedEndpoint(Endpoint):
    secret: str | None  # in the create answer only; None for v1a (its private key is never shown)


class EndpointSecret(TypedDict):
    secret: str | None  # None for v1a
    public_key: NotRequired[str | None]
    previous_public_key: NotRequired[str | None]
    previous_secret_valid_until: str | None


class Attempt(TypedDict):
    """One delivery attempt to an endpoint, from its attempt log."""

    at: str
    webhook_id: str
    event: str
    job_id: str | None
    attempt: int
    status: str  # succeeded (2xx) or failed
    status_code: int | None
    error: str | None
    latency_ms: int | None
    response: str | None
    next_attempt_at: str | None


class AttemptPage(TypedDict):
    data: list[Attempt]
    next_cursor: str | None


class Recovery(TypedDict):
    endpoint_id: str
    since: str
    messages: int
    status: str


class Resend(TypedDict):
    webhook_id: str
    endpoint_id: str
    status: str


@dataclass(frozen=True)
class Upload:
    job: Job
    content_type: str
    uploaded: bool  # False when an idempotent replay found the file already there


class ApiProblem(Exception):
    """An error answer: the API's problem+json, or the gateway's / S3's own error in the same shape."""

    def __init__(
        self,
        *,
        status: int,
        type: str,
        detail: str,
        title: str = "",
        errors: list[dict[str, str]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(f"{type}: {detail}")
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.retry_after = retry_after

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiProblem:
        retry = response.headers.get("retry-after", "")
        retry_after = int(retry) if retry.isdigit() else None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("type"), str):
            errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
            return cls(
                status=response.status_code,
                type=body["type"],
                title=str(body.get("title", "")),
                detail=str(body.get("detail", "")),
                errors=[{"loc": str(e.get("loc", "")), "msg": str(e.get("msg", ""))} for e in errors],
                retry_after=retry_after,
            )
        # Not ours: API Gateway's {"message": …}, an S3 XML error, or plain text.
        text = response.text
        code = re.search(r"<Code>([^<]*)</Code>", text)
        message = re.search(r"<Message>([^<]*)</Message>", text)
        if code:
            kind, detail = f"s3:{code.group(1)}", message.group(1) if message else text[:300]
        elif isinstance(body, dict) and "message" in body:
            kind, detail = f"http_{response.status_code}", str(body["message"])
        else:
            kind, detail = f"http_{response.status_code}", text.strip()[:300] or response.reason_phrase
        return cls(status=response.status_code, type=kind, detail=detail, retry_after=retry_after)


class ApiUnreachable(Exception):
    """The request never got an HTTP answer (connection refused, DNS, timeout, TLS). ``connect``: it
    could not even connect to ``url`` (nothing listens there)."""

    def __init__(self, message: str, *, url: str = "", connect: bool = False) -> None:
        super().__init__(message)
        self.url = url
        self.connect = connect


def redact(url: str) -> str:
    """``url`` without its query (presigned signatures and mask tokens stay out of messages)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + ("?…" if parts.query else "")


def sniff_content_type(head: bytes) -> str | None:
    """The image type the API will recognise from the first bytes of a file, if any."""
    for magic, offset, content_type in _MAGIC:
        if head[offset : offset + len(magic)] == magic and (offset == 0 or head[:4] == b"RIFF"):
            return content_type
    return None


class MaskgateClient:
    """The maskgate HTTP API for one tenant (its API key)."""

    def __init__(
        self,
        api_url: str,
        api_key: str,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._api = httpx.Client(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )
        # Presigned URLs carry their own authorisation; never send the API key there.
        self._plain = httpx.Client(timeout=timeout, transport=transport, follow_redirects=True)

    def close(self) -> None:
        self._api.close()
        self._plain.close()

    def __enter__(self) -> MaskgateClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the routes -----------------------------------------------------------------------------

    def create_job(self, image: str, prompts: Prompts, *, idempotency_key: str | None = None) -> Job:
        """``POST /v1/segmentations`` with ``image`` an https URL or a data URI (body ≤ 5 MB)."""
        body = {"image": image, **prompts}
        job: Job = self._call("POST", "/v1/segmentations", json=body, headers=_idempotency(idempotency_key))
        return job

    def dry_run(self, image: str, prompts: Prompts) -> dict[str, Any]:
        """``POST /v1/segmentations?dry_run=true``: the request checked, its price and what it would
        meet now; no job is created, nothing is spent."""
        answer: dict[str, Any] = self._call(
            "POST", "/v1/segmentations", params={"dry_run": "true"}, json={"image": image, **prompts}
        )
        return answer

    def usage(self, month: str | None = None) -> dict[str, Any]:
        """``GET /v1/usage``: the tenant's usage in a month (default: this one)."""
        answer: dict[str, Any] = self._call("GET", "/v1/usage", params={"month": month} if month else {})
        return answer

    def register_upload(
        self, filename: str, content_type: str, prompts: Prompts, *, idempotency_key: str | None = None
    ) -> tuple[Job, UploadForm]:
        """``POST /v1/uploads``: a job ``awaiting_upload`` and the presigned form to POST the file to."""
        body = {"filename": filename, "content_type": content_type, **prompts}
        answer = self._call("POST", "/v1/uploads", json=body, headers=_idempotency(idempotency_key))
        form: UploadForm = answer.pop("upload")
        job: Job = answer
        return job, form

    def post_upload(self, form: UploadForm, path: Path, content_type: str) -> None:
        """POST the file to the presigned form as multipart/form-data (the fields first, the file last)."""
        with path.open("rb") as file:
            try:
                response = self._plain.post(
                    form["url"],
                    data=form["fields"],
                    files={"file": (path.name, file, content_type)},
                    timeout=UPLOAD_TIMEOUT,
                )
            except httpx.HTTPError as exc:
                raise ApiUnreachable(f"upload to {redact(form['url'])} failed: {_describe(exc)}") from exc
        if response.status_code >= 300:
            raise ApiProblem.from_response(response)

    def upload_file(self, path: Path, prompts: Prompts, *, idempotency_key: str | None = None) -> Upload:
        """Register an upload for a local image and POST it to the presigned form. Files up to 20 MB
        (the API's image limit) go this way, whatever the 5 MB body limit. With an idempotency key a
        replayed registration whose file already landed is not uploaded again."""
        with path.open("rb") as file:
            head = file.read(16)
        content_type = sniff_content_type(head) or "application/octet-stream"  # the API says why not
        job, form = self.register_upload(path.name, content_type, prompts, idempotency_key=idempotency_key)
        if idempotency_key is not None:
            # A replay answers with the registration as it was then (awaiting_upload), so look now.
            current = self.get_job(job["id"])
            if current["status"] != "awaiting_upload":
                return Upload(current, content_type, uploaded=False)
        self.post_upload(form, path, content_type)
        return Upload(job, content_type, uploaded=True)

    def get_job(self, job_id: str) -> Job:
        job: Job = self._call("GET", f"/v1/segmentations/{job_id}")
        return job

    def list_jobs(self, *, status: str | None = None, limit: int = 20, cursor: str | None = None) -> JobPage:
        params: dict[str, str | int] = {"limit": limit}
        if status:
            params["status"] = status
        if cursor:
            params["cursor"] = cursor
        page: JobPage = self._call("GET", "/v1/segmentations", params=params)
        return page

    def pages(self, *, status: str | None = None, limit: int = 20, follow: bool = False) -> Iterator[JobPage]:
        """Pages of jobs, newest first; with ``follow`` every page to the end through ``next_cursor``.
        A page filtered by ``status`` may hold fewer than ``limit`` jobs (even none) and still go on."""
        cursor: str | None = None
        while True:
            page = self.list_jobs(status=status, limit=limit, cursor=cursor)
            yield page
            cursor = page["next_cursor"]
            if not follow or not cursor:
                return

    def cancel(self, job_id: str) -> Job:
        """``DELETE /v1/segmentations/{id}``; ``ApiProblem`` 409 ``conflict`` if it already finished."""
        job: Job = self._call("DELETE", f"/v1/segmentations/{job_id}")
        return job

    def create_endpoint(self, body: dict[str, Any]) -> CreatedEndpoint:
        """``POST /v1/webhook-endpoints``: the endpoint with its secret (shown in this answer only)."""
        endpoint: CreatedEndpoint = self._call("POST", "/v1/webhook-endpoints", json=body)
        return endpoint

    def list_endpoints(self) -> list[Endpoint]:
        found: list[Endpoint] = self._call("GET", "/v1/webhook-endpoints")["data"]
        return found

    def get_endpoint(self, endpoint_id: str) -> Endpoint:
        endpoint: Endpoint = self._call("GET", f"/v1/webhook-endpoints/{_segment(endpoint_id)}")
        return endpoint

    def update_endpoint(self, endpoint_id: str, change: dict[str, Any]) -> Endpoint:
        """``PATCH /v1/webhook-endpoints/{id}``: only the fields in ``change`` change."""
        path = f"/v1/webhook-endpoints/{_segment(endpoint_id)}"
        endpoint: Endpoint = self._call("PATCH", path, json=change)
        return endpoint

    def delete_endpoint(self, endpoint_id: str) -> None:
        response = self._send("DELETE", f"/v1/webhook-endpoints/{_segment(endpoint_id)}")
        if response.status_code >= 300:
            raise ApiProblem.from_response(response)

    def endpoint_secret(self, endpoint_id: str) -> EndpointSecret:
        secret: EndpointSecret = self._call("GET", f"/v1/webhook-endpoints/{_segment(endpoint_id)}/secret")
        return secret

    def rotate_endpoint_secret(self, endpoint_id: str) -> EndpointSecret:
        """A new secret; the answer says until when the old one signs alongside."""
        path = f"/v1/webhook-endpoints/{_segment(endpoint_id)}/secret/rotate"
        secret: EndpointSecret = self._call("POST", path)
        return secret

    def endpoint_attempts(
        self,
        endpoint_id: str,
        *,
        status: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> AttemptPage:
        """``GET /v1/webhook-endpoints/{id}/attempts``: its delivery attempts, newest first, one page."""
        params: dict[str, str | int] = {}
        if status:
            params["status"] = status
        if limit is not None:
            params["limit"] = limit
        if cursor:
            params["cursor"] = cursor
        path = f"/v1/webhook-endpoints/{_segment(endpoint_id)}/attempts"
        page: AttemptPage = self._call("GET", path, params=params)
        return page

    def recover_endpoint(self, endpoint_id: str, since: str) -> Recovery:
        """``POST /v1/webhook-endpoints/{id}/recover``: resend every message whose last attempt to it
        failed since ``since`` (RFC 3339); the answer counts them."""
        path = f"/v1/webhook-endpoints/{_segment(endpoint_id)}/recover"
        recovery: Recovery = self._call("POST", path, json={"since": since})
        return recovery

    def resend_message(self, endpoint_id: str, webhook_id: str) -> Resend:
        """``POST /v1/webhook-endpoints/{id}/messages/{webhook_id}/resend``: send one message again."""
        path = f"/v1/webhook-endpoints/{_segment(endpoint_id)}/messages/{_segment(webhook_id)}/resend"
        resent: Resend = self._call("POST", path)
        return resent

    def mask_location(self, job_id: str, index: int) -> str:
        """``GET /v1/segmentations/{id}/masks/{n}``: the fresh presigned URL its 302 points to."""
        response = self._send("GET", f"/v1/segmentations/{job_id}/masks/{index}")
        if response.status_code not in (301, 302, 303, 307, 308) or "location" not in response.headers:
            raise ApiProblem.from_response(response)
        return urljoin(self.api_url + "/", response.headers["location"])

    def download_mask(self, job_id: str, index: int) -> bytes:
        """A mask's bytes through the API's 302 (the key goes to the API, not to the storage URL)."""
        return self.download(self.mask_location(job_id, index))

    def download(self, url: str) -> bytes:
        """The bytes behind a presigned mask URL or a webhook's signed mask link (redirects followed)."""
        try:
            response = self._plain.get(url)
        except httpx.HTTPError as exc:
            raise ApiUnreachable(f"download from {redact(url)} failed: {_describe(exc)}") from exc
        if response.status_code != 200:
            raise ApiProblem.from_response(response)
        return response.content

    def wait(
        self,
        job_id: str,
        *,
        timeout: float,
        on_poll: Callable[[Job, float], None] | None = None,
        interval: float = 0.25,
        max_interval: float = 2.0,
    ) -> Job:
        """Poll the job until it ends (``TimeoutError`` after ``timeout`` s); 429s wait their Retry-After."""
        started = time.monotonic()
        while True:
            try:
                job = self.get_job(job_id)
            except ApiProblem as problem:
                if problem.status != 429:
                    raise
                time.sleep(min(problem.retry_after or 5, max(0.0, started + timeout - time.monotonic())))
            else:
                if on_poll is not None:
                    on_poll(job, time.monotonic() - started)
                if job["status"] in TERMINAL:
                    return job
            if time.monotonic() - started >= timeout:
                raise TimeoutError(f"job {job_id} still unfinished after {timeout:g} s")
            time.sleep(interval)
            interval = min(interval * 1.5, max_interval)

    # -- plumbing -------------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._api.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiUnreachable(
                f"{method} {self.api_url}{path} failed: {_describe(exc)}",
                url=self.api_url,
                connect=isinstance(exc, httpx.ConnectError),
            ) from exc

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        if response.status_code >= 300:
            raise ApiProblem.from_response(response)
        return response.json()


def _segment(value: str) -> str:
    """``value`` as one path segment (a ``/`` or ``?`` in an id the user typed stays in it)."""
    return quote(value, safe="")


def _idempotency(key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": key} if key else {}


def _describe(exc: httpx.HTTPError) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text
