"""The routes: HTTP onto ``maskgate.steps`` and the stores, one function per route."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import FastAPI, Header, Path, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from maskgate import clients
from maskgate.api.auth import Credentials, Tenant, tenant_of
from maskgate.api.openapi import (
    CREATE_SCHEMA,
    DRY_RUN_RESPONSE,
    ENDPOINT_CREATE_SCHEMA,
    ENDPOINT_UPDATE_SCHEMA,
    PROBLEMS,
    UPLOAD_SCHEMA,
)
from maskgate.api.views import (
    Health,
    JobPage,
    JobPublic,
    PresignedPost,
    Redelivery,
    UploadPublic,
    WebhookEndpointCreated,
    WebhookEndpointDetail,
    WebhookEndpointList,
    WebhookEndpointPublic,
    WebhookEndpointSecret,
    WebhookSecret,
    endpoint_created,
    endpoint_public,
    endpoint_secret,
    job_public,
)
from maskgate.contracts.endpoints import Endpoint, EndpointCreate, EndpointUpdate
from maskgate.contracts.job import Job, JobStatus, utcnow
from maskgate.contracts.limits import Usage, month_of
from maskgate.contracts.prompts import SegmentationCreate, UploadCreate, request_error, strict_json
from maskgate.errors import (
    Conflict,
    EndpointNotFound,
    InvalidTransition,
    JobNotFound,
    MalformedJson,
    NotFound,
)
from maskgate.settings import get_settings
from maskgate.stores.admission import Place
from maskgate.webhooks.signing import mask_token_valid, result_token_valid

IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=255,
        description="Any string of yours: the same key and body within 24 hours answer the same job "
        "(nothing is sent twice); the same key with another body is a 409 conflict.",
    ),
]
JobIdPath = Annotated[str, Path(description="The job's id (seg_…).")]
EndpointIdPath = Annotated[str, Path(description="The webhook endpoint's id (ep_…).")]
ENDPOINT_ID = re.compile(r"ep_[0-9a-f]{16}")
ModelT = TypeVar("ModelT", bound=BaseModel)
EndpointT = TypeVar("EndpointT", bound=Callable[..., Any])


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise MalformedJson("the request needs a JSON body")
    try:
        return strict_json(raw)
    except ValueError as exc:
        raise MalformedJson(f"the request body is not valid JSON: {exc}") from exc


class Routes:
    """The routes, declared here and added by ``create_app`` to the app itself, as ``@app.get`` would.

    Not an ``APIRouter``: that builds each route (dependencies, models) when it is declared and, once
    included in an app, builds it again on the app's first request (FastAPI resolves an included
    router's routes lazily, per inclusion), a cost every cold start paid twice. Added
    directly, they are also what ``app.routes`` lists, which the 405 handler reads for ``Allow``."""

    def __init__(self) -> None:
        self.declared: list[tuple[str, Callable[..., Any], dict[str, Any]]] = []

    def get(self, path: str, **options: Any) -> Callable[[EndpointT], EndpointT]:
        return self._declare(path, "GET", options)

    def post(self, path: str, **options: Any) -> Callable[[EndpointT], EndpointT]:
        return self._declare(path, "POST", options)

    def patch(self, path: str, **options: Any) -> Callable[[EndpointT], EndpointT]:
        return self._declare(path, "PATCH", options)

    def delete(self, path: str, **options: Any) -> Callable[[EndpointT], EndpointT]:
        return self._declare(path, "DELETE", options)

    def _declare(self, path: str, method: str, options: dict[str, Any]) -> Callable[[EndpointT], EndpointT]:
        def declare(endpoint: EndpointT) -> EndpointT:
            self.declared.append((path, endpoint, {"methods": [method], **options}))
            return endpoint

        return declare

    def add_to(self, app: FastAPI) -> None:
        for path, endpoint, options in self.declared:
            app.add_api_route(path, endpoint, **options)


router = Routes()


@router.get("/v1/health", response_model=Health, tags=["service"])
def health() -> Health:
    """Liveness: the API answers (no API key needed)."""
    return Health(status="ok")


@router.post(
    "/v1/segmentations",
    status_code=202,
    response_model=JobPublic,
    openapi_extra=CREATE_SCHEMA,
    responses={200: DRY_RUN_RESPONSE, **PROBLEMS},
    tags=["segmentations"],
)
async def create_segmentation(
    request: Request,
    owner: Tenant,
    idempotency_key: IdempotencyKey = None,
    dry_run: Annotated[
        bool,
        Query(
            description="true: validate the request and answer 200 with its price and whether the "
            "tenant's quotas and spend cap would let it through now; no job is created, nothing is spent."
        ),
    ] = False,
) -> JSONResponse:
    """Accept a segmentation job: the image as an https URL or a data URI, and at least one prompt.

    With an ``Idempotency-Key`` header the same key and body within 24 hours return the same job;
    the same key with another body is 409. Over a quota: 429 ``quota_exceeded`` (with Retry-After);
    over the monthly spend cap: 402 ``spend_cap_reached``."""
    if dry_run:
        body = parse(SegmentationCreate, await json_body(request))
        return JSONResponse(clients.request_intake().preview(body, tenant=owner).model_dump(mode="json"))

    def create(payload: Any) -> dict[str, Any]:
        job = clients.request_intake().accept_request(parse(SegmentationCreate, payload), tenant=owner)
        return job_public(job, bucket=clients.bucket()).model_dump(mode="json")

    return await created(request, owner, idempotency_key, create, name="segmentations", status=202)


@router.post(
    "/v1/uploads",
    status_code=201,
    response_model=UploadPublic,
    responses=PROBLEMS,
    openapi_extra=UPLOAD_SCHEMA,
    tags=["uploads"],
)
async def create_upload(
    request: Request, owner: Tenant, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Register a job whose image you upload straight to S3 (up to 20 MB): POST the file with the
    returned form fields to ``upload.url``; the job starts when it lands, or expires."""

    def register(payload: Any) -> dict[str, Any]:
        body = parse(UploadCreate, payload)
        job, post = clients.request_intake().register_upload(
            body, tenant=owner, expiries=clients.upload_expiries()
        )
        public = job_public(job, bucket=clients.bucket())
        return UploadPublic(**public.model_dump(), upload=PresignedPost(**post)).model_dump(mode="json")

    return await created(request, owner, idempotency_key, register, name="uploads", status=201)


def parse(model: type[ModelT], payload: Any) -> ModelT:
    """The payload as ``model``, or the typed request error (missing_prompt / invalid_request)."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise request_error(exc) from exc


async def created(
    request: Request,
    owner: str,
    key: str | None,
    create: Callable[[Any], dict[str, Any]],
    *,
    name: str,
    status: int,
) -> JSONResponse:
    """Run ``create`` on the JSON body, at most once per (tenant, Idempotency-Key) when a key is given."""
    raw = await json_body(request)
    if key is None or not isinstance(raw, dict):
        return JSONResponse(create(raw), status)
    once = clients.idempotent(create, name=name)
    context = request.scope.get("aws.context")  # set by Mangum
    first = once(tenant=owner, key=key, body=raw, lambda_context=context)
    return JSONResponse(_current(first), status)


def _current(answer: dict[str, Any]) -> dict[str, Any]:
    """A replayed create shows the job as it is now (the upload form only while it still waits)."""
    job = clients.job_store().get(str(answer["id"]))
    now = job_public(job, bucket=clients.bucket()).model_dump(mode="json")
    if "upload" in answer:
        now["upload"] = answer["upload"] if job.status is JobStatus.AWAITING_UPLOAD else None
    return now


@router.get("/v1/usage", response_model=Usage, responses=PROBLEMS, tags=["usage"])
def get_usage(
    owner: Tenant,
    month: Annotated[
        str | None,
        Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="The UTC month, YYYY-MM; default: this one."),
    ] = None,
) -> Usage:
    """The tenant's usage in a month: jobs by outcome, WaveSpeed dollars spent and reserved, estimated
    AWS dollars, cache hits and the dollars they saved, the spend cap and what remains of it."""
    return clients.gate().usage(owner, month or month_of(utcnow()))


@router.get("/v1/segmentations", response_model=JobPage, responses=PROBLEMS, tags=["segmentations"])
def list_segmentations(
    owner: Tenant,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Jobs per page, 1 to 100.")] = 20,
    cursor: Annotated[
        str | None, Query(max_length=2048, description="The next_cursor of the page before.")
    ] = None,
) -> JobPage:
    """The tenant's jobs, newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    jobs, after = clients.job_store().page(owner, status=status, limit=limit, cursor=cursor)
    places = _places(jobs)
    return JobPage(
        data=[job_public(j, bucket=clients.bucket(), place=places.get(j.id)) for j in jobs],
        next_cursor=after,
    )


def _places(jobs: list[Job]) -> dict[str, Place]:
    """The places in line of those jobs that wait for a WaveSpeed slot (one read, none if none may)."""
    queued = [job.id for job in jobs if job.status is JobStatus.QUEUED and job.submit_attempt is None]
    return clients.admission().places(queued) if queued else {}


@router.delete(
    "/v1/segmentations/{job_id}", response_model=JobPublic, responses=PROBLEMS, tags=["segmentations"]
)
def cancel_segmentation(job_id: JobIdPath, owner: Tenant, request: Request) -> JobPublic:
    """Cancel an unfinished job (409 if it already finished); sends ``segmentation.canceled``."""
    from maskgate.steps.cancel import cancel  # not at import: it brings the webhook sender (httpx)

    job = _own_job(job_id, owner)
    try:
        canceled = cancel(
            job,
            notifier=clients.notifier(),
            workflow=clients.workflow(),
            admission=clients.admission(),
            api_url=str(request.base_url),
        )
    except InvalidTransition as exc:
        raise Conflict(f"job {job_id} already finished ({job.status.value}); it cannot be canceled") from exc
    return job_public(canceled, bucket=clients.bucket())


def _own_job(job_id: str, owner: str) -> Job:
    job = clients.job_store().get(job_id)
    if job.tenant != owner:
        raise NotFound(f"no job {job_id}")
    return job


@router.get(
    "/v1/segmentations/{job_id}", response_model=JobPublic, responses=PROBLEMS, tags=["segmentations"]
)
def get_segmentation(job_id: JobIdPath, owner: Tenant) -> JobPublic:
    """The job: status, request, masks (fresh presigned URLs), what it found, error and webhook deliveries."""
    job = _own_job(job_id, owner)
    return job_public(job, bucket=clients.bucket(), place=_places([job]).get(job.id), with_instances=True)


@router.post(
    "/v1/segmentations/{job_id}/deliveries",
    status_code=202,
    response_model=Redelivery,
    responses=PROBLEMS,
    tags=["segmentations"],
)
def redeliver(job_id: JobIdPath, owner: Tenant) -> Redelivery:
    """Send the job's final webhook again now (same webhook-id and body), e.g. after a dead letter."""
    from maskgate.steps.redeliver import redeliver as redeliver_job  # not at import, as cancel

    job = _own_job(job_id, owner)
    msg_id = redeliver_job(job, notifier=clients.notifier())
    return Redelivery(webhook_id=msg_id, status="scheduled")


@router.post("/v1/webhook-secret/rotate", response_model=WebhookSecret, responses=PROBLEMS, tags=["webhooks"])
def rotate_webhook_secret(owner: Tenant) -> WebhookSecret:
    """A new webhook signing secret, shown once; the old one keeps signing alongside for 24 hours."""
    secret, until = clients.tenant_store().rotate_secret(owner)
    return WebhookSecret(webhook_secret=secret, previous_secret_valid_until=until)


@router.post(
    "/v1/webhook-endpoints",
    status_code=201,
    response_model=WebhookEndpointCreated,
    response_description="The endpoint, registered, with its signing secret",
    openapi_extra=ENDPOINT_CREATE_SCHEMA,
    responses=PROBLEMS,
    tags=["webhook endpoints"],
)
async def create_webhook_endpoint(request: Request, owner: Tenant) -> JSONResponse:
    """Register an endpoint that receives the events of every job of the tenant (those its
    ``event_types`` name; none: every type), signed with a key of its own: v1, a secret shown in this
    answer; v1a, an Ed25519 key pair whose ``public_key`` is shown (the private key never is).
    A tenant may have up to 20; the URL is checked as a job's ``webhook_url`` is."""
    body = parse(EndpointCreate, await json_body(request))
    _check_endpoint_url(body.url)
    endpoint = clients.endpoint_store().create(owner, body)
    return JSONResponse(endpoint_created(endpoint).model_dump(mode="json"), 201)


@router.get(
    "/v1/webhook-endpoints",
    response_model=WebhookEndpointList,
    response_description="Every webhook endpoint of the tenant, oldest first",
    responses=PROBLEMS,
    tags=["webhook endpoints"],
)
def list_webhook_endpoints(owner: Tenant) -> WebhookEndpointList:
    """The tenant's webhook endpoints, oldest first (at most 20: one page), without their secrets."""
    return WebhookEndpointList(data=[endpoint_public(e) for e in clients.endpoint_store().list(owner)])


@router.get(
    "/v1/webhook-endpoints/{endpoint_id}",
    response_model=WebhookEndpointDetail,
    response_description="The webhook endpoint and its last 24 hours",
    responses=PROBLEMS,
    tags=["webhook endpoints"],
)
def get_webhook_endpoint(endpoint_id: EndpointIdPath, owner: Tenant) -> WebhookEndpointDetail:
    """The webhook endpoint, without its secret (see its ``/secret``), and its ``stats``: attempts,
    success rate, latency percentiles and last error over the last 24 hours, and its state."""
    from maskgate.stores.attempt_log import endpoint_stats

    endpoint = clients.endpoint_store().get(owner, endpoint_id_of(endpoint_id))
    stats = endpoint_stats(clients.attempt_log(), endpoint.id, enabled=endpoint.enabled, now=utcnow())
    return WebhookEndpointDetail(**endpoint_public(endpoint).model_dump(), stats=stats)


@router.patch(
    "/v1/webhook-endpoints/{endpoint_id}",
    response_model=WebhookEndpointPublic,
    response_description="The webhook endpoint, changed",
    openapi_extra=ENDPOINT_UPDATE_SCHEMA,
    responses=PROBLEMS,
    tags=["webhook endpoints"],
)
async def update_webhook_endpoint(
    endpoint_id: EndpointIdPath, request: Request, owner: Tenant
) -> WebhookEndpointPublic:
    """Change the fields sent, and only those; a new ``url`` is checked again. ``enabled: true``
    re-enables an endpoint maskgate disabled and clears ``disabled_at`` and ``disabled_reason``."""
    change = parse(EndpointUpdate, await json_body(request))
    store = clients.endpoint_store()
    store.get(owner, endpoint_id_of(endpoint_id))  # another tenant's, or none: 404 before the URL check
    if "url" in change.model_fields_set:
        _check_endpoint_url(change.url)
    return endpoint_public(store.update(owner, endpoint_id, change))


@router.delete(
    "/v1/webhook-endpoints/{endpoint_id}",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "Deleted: the endpoint receives nothing from now on"}, **PROBLEMS},
    tags=["webhook endpoints"],
)
def delete_webhook_endpoint(endpoint_id: EndpointIdPath, owner: Tenant) -> Response:
    """Delete the webhook endpoint: it receives nothing from now on."""
    clients.endpoint_store().delete(owner, endpoint_id_of(endpoint_id))
    return Response(status_code=204)


@router.get(
    "/v1/webhook-endpoints/{endpoint_id}/secret",
    response_model=WebhookEndpointSecret,
    response_description="The endpoint's signing secret (v1) or public keys (v1a)",
    responses=PROBLEMS,
    tags=["webhook endpoints"],
)
def get_webhook_endpoint_secret(endpoint_id: EndpointIdPath, owner: Tenant) -> WebhookEndpointSecret:
    """The endpoint's signing secret (v1) or its public key (v1a: the private key is never shown), and
    until when a rotated-out one still signs alongside (v1a: with its public key)."""
    endpoint = clients.endpoint_store().get(owner, endpoint_id_of(endpoint_id))
    return _secret_of(endpoint)


@router.post(
    "/v1/webhook-endpoints/{endpoint_id}/secret/rotate",
    response_model=WebhookEndpointSecret,
    response_description="The new signing secret (v1) or public key (v1a), and until when the old one "
    "still signs",
    responses=PROBLEMS,
    tags=["webhook endpoints"],
)
def rotate_webhook_endpoint_secret(endpoint_id: EndpointIdPath, owner: Tenant) -> WebhookEndpointSecret:
    """A new signing secret for the endpoint (v1a: a new key pair, its public key shown); the old one
    keeps signing alongside for 24 hours."""
    endpoint = clients.endpoint_store().rotate_secret(owner, endpoint_id_of(endpoint_id))
    return _secret_of(endpoint)


def endpoint_id_of(endpoint_id: str) -> str:
    """The id, if it can be an endpoint's (anything else names no endpoint: 404)."""
    if not ENDPOINT_ID.fullmatch(endpoint_id):
        raise EndpointNotFound(f"no webhook endpoint {endpoint_id}")
    return endpoint_id


def _check_endpoint_url(url: str) -> None:
    """url_not_allowed unless maskgate may send to the URL, as for a job's ``webhook_url``."""
    from maskgate.egress.url_check import check_outbound_url

    check_outbound_url(url, local=get_settings().is_local)


def _secret_of(endpoint: Endpoint) -> WebhookEndpointSecret:
    return endpoint_secret(endpoint, now=utcnow())


@router.get(
    "/v1/segmentations/{job_id}/masks/{index}",
    status_code=302,
    response_class=RedirectResponse,
    responses={
        302: {
            "description": "Redirect to a presigned URL of the mask",
            "headers": {
                "Location": {
                    "schema": {"type": "string"},
                    "description": "the presigned S3 URL (valid 5 min)",
                }
            },
        },
        **PROBLEMS,
    },
    tags=["segmentations"],
)
def get_mask(
    job_id: JobIdPath,
    index: Annotated[int, Path(description="The mask's index (masks[].index).")],
    credentials: Credentials = None,
    token: Annotated[
        str | None,
        Query(max_length=1024, description="A mask link's signed token (from a webhook) instead of the key."),
    ] = None,
) -> RedirectResponse:
    """302 to a freshly presigned mask URL; authorised by the API key or the webhook's signed token."""
    if token is None:
        owner = tenant_of(credentials)
        job = clients.job_store().get(job_id)
        if owner != job.tenant:
            raise NotFound(f"no job {job_id}")
    else:
        try:
            job = clients.job_store().get(job_id)
            allowed = clients.tenant_store().webhook_secrets(job.tenant)
        except JobNotFound:
            allowed = []
        if not mask_token_valid(token, allowed, job_id=job_id, index=index, now=time.time()):
            raise NotFound("no such mask link, or it has expired")
    found = [m for m in job.masks if m.index == index]
    if not found:
        raise NotFound(f"job {job_id} has no mask {index}")
    return RedirectResponse(clients.bucket().presigned_get(found[0].key, seconds=300), 302)


@router.get(
    "/v1/segmentations/{job_id}/results/{name}",
    status_code=302,
    response_class=RedirectResponse,
    responses={
        302: {
            "description": "Redirect to a presigned URL of the result file",
            "headers": {
                "Location": {
                    "schema": {"type": "string"},
                    "description": "the presigned S3 URL (valid 5 min)",
                }
            },
        },
        **PROBLEMS,
    },
    tags=["segmentations"],
)
def get_result_file(
    job_id: JobIdPath,
    name: Annotated[
        Literal["instances.json", "annotations.coco.json"],
        Path(description="instances.json (the instances) or annotations.coco.json (the COCO file)."),
    ],
    credentials: Credentials = None,
    token: Annotated[
        str | None,
        Query(
            max_length=1024, description="A result link's signed token (from a webhook) instead of the key."
        ),
    ] = None,
) -> RedirectResponse:
    """302 to a freshly presigned URL of one result file; authorised by the API key or a webhook's token."""
    if token is None:
        owner = tenant_of(credentials)
        job = clients.job_store().get(job_id)
        if owner != job.tenant:
            raise NotFound(f"no job {job_id}")
    else:
        try:
            job = clients.job_store().get(job_id)
            allowed = clients.tenant_store().webhook_secrets(job.tenant)
        except JobNotFound:
            allowed = []
        if not result_token_valid(token, allowed, job_id=job_id, name=name, now=time.time()):
            raise NotFound("no such result link, or it has expired")
    results = job.results
    keys = [results.instances_key, results.coco_key] if results else []
    found = [key for key in keys if key is not None and key.endswith("/" + name)]
    if not found:
        raise NotFound(f"job {job_id} has no {name}")
    return RedirectResponse(clients.bucket().presigned_get(found[0], seconds=300), 302)


@router.post(
    "/v1/callbacks/wavespeed",
    responses=PROBLEMS,
    summary="WaveSpeed's prediction webhook (v3-signed); not for API clients",
    tags=["service"],
)
async def wavespeed_callback(
    request: Request,
    job: Annotated[str, Query(description="The job the callback is for (maskgate put it in the URL).")],
    token: Annotated[
        str | None, Query(max_length=128, description="The job's own callback token (in the URL too).")
    ] = None,
) -> dict[str, str]:
    """Verify WaveSpeed's signature first, then the job's own token, then resume the job's waiting
    task with the prediction."""
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    outcome = clients.callback_receiver().receive(job, token=token, headers=headers, body=body)
    return {"outcome": outcome}
