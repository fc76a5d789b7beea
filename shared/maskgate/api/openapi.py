"""The OpenAPI document: FastAPI's schema, completed so that it can drive a generated client.

Built once, on the first ``GET /openapi.json`` (never at import): the request bodies the create routes
parse themselves, the bearer security scheme (and the mask links' ``token``), a problem response of
every status with an example of every error type, the error types enumerated, and tags.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from maskgate.api import problems
from maskgate.api.examples import (
    ATTEMPT_EXAMPLE,
    DRY_RUN_EXAMPLE,
    ENDPOINT_CREATE_EXAMPLE,
    ENDPOINT_EXAMPLE,
    ENDPOINT_ID,
    ENDPOINT_STATS_EXAMPLE,
    ENDPOINT_UPDATE_EXAMPLE,
    ENDPOINT_WHPK,
    ENDPOINT_WHSEC,
    JOB_EXAMPLE,
    PROBLEM_EXAMPLES,
    PROBLEM_EXTENSIONS,
    USAGE_EXAMPLE,
)
from maskgate.contracts.endpoints import EndpointCreate, EndpointUpdate
from maskgate.contracts.examples import CREATE_EXAMPLE, UPLOAD_EXAMPLE
from maskgate.contracts.limits import DryRun
from maskgate.contracts.prompts import SegmentationCreate, UploadCreate
from maskgate.errors import ERRORS_BY_NAME, MaskgateError

DESCRIPTION = """SAM3 segmentation (WaveSpeedAI `wavespeed-ai/sam3-image`) as an event-driven service.

Send an image and prompts (text, points, boxes) with `POST /v1/segmentations`, or register a direct
upload with `POST /v1/uploads`; the job runs in the background and ends `succeeded` (masks stored),
`failed` or `canceled`. Poll `GET /v1/segmentations/{job_id}` or give a `webhook_url`: maskgate then
sends a [Standard Webhooks](https://www.standardwebhooks.com/) v1 signed event when the job ends.
Endpoints registered with `POST /v1/webhook-endpoints` receive the events of every job, each signed
with the endpoint's own secret (v1), or with its own Ed25519 key pair and verified with its public key
(`signature: "v1a"`, Standard Webhooks' asymmetric scheme).

Every call but `/v1/health` needs an API key: `Authorization: Bearer mg_…`. Errors are RFC 9457
`application/problem+json` documents whose `type` is a stable error name."""
TAGS = [
    {"name": "segmentations", "description": "Jobs: create, read, list, cancel, masks, redelivery."},
    {"name": "uploads", "description": "Direct uploads of images up to 20 MB to S3."},
    {"name": "webhooks", "description": "The tenant's webhook signing secret."},
    {
        "name": "webhook endpoints",
        "description": "Registered endpoints that receive every job's events: create, read, list, "
        "change, delete, and their own signing secrets.",
    },
    {
        "name": "usage",
        "description": "The tenant's monthly usage: jobs, dollars spent and reserved, the spend cap.",
    },
    {"name": "service", "description": "Liveness, and the callback WaveSpeed calls (not for clients)."},
]
PROBLEM_CODES = {
    400: "Malformed JSON",
    401: "No, unknown, revoked or expired API key",
    402: "The job's price does not fit under the tenant's monthly spend cap (the body carries the cap, "
    "the month and what it has spent and reserved)",
    404: "No such resource (or another tenant's)",
    405: "Method not allowed on this path (the Allow header lists the ones that are)",
    409: "Conflict: a finished job, or an Idempotency-Key reused with another body",
    413: "Body over 5 MB: send the image with POST /v1/uploads",
    422: "Invalid request: the error type says which rule",
    429: "Over the tenant's rate limit or one of its quotas; Retry-After says when to come back",
    500: "An internal error (logged)",
}
# the job error types a failed or canceled job can carry (JobError.type)
JOB_ERROR_TYPES = [
    "invalid_request",
    "missing_prompt",
    "invalid_image",
    "image_too_large",
    "url_not_allowed",
    "upload_expired",
    "quota_exceeded",
    "spend_cap_reached",
    "upstream_rejected",
    "upstream_unavailable",
    "upstream_failed",
    "upstream_outcome_unknown",
    "timeout",
    "output_invalid",
    "canceled",
    "internal_error",
]
TITLES = {cls.type: cls.title for cls in ERRORS_BY_NAME.values() if cls.status < 500 or cls is MaskgateError}
PROBLEM_TYPES = sorted({kind for examples in PROBLEM_EXAMPLES.values() for kind, _, _ in examples})


def _problem_response(status: int) -> dict[str, Any]:
    examples = {
        kind: {
            "summary": kind,
            "value": {
                "type": kind,
                "title": TITLES[kind],
                "status": status,
                "detail": detail,
                "errors": errors,
                **PROBLEM_EXTENSIONS.get(kind, {}),
            },
        }
        for kind, detail, errors in PROBLEM_EXAMPLES[status]
    }
    return {
        "description": PROBLEM_CODES[status],
        "content": {
            problems.PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}, "examples": examples}
        },
    }


PROBLEMS: dict[int | str, dict[str, Any]] = {status: _problem_response(status) for status in PROBLEM_CODES}


def _body(schema: str, example: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}, "example": example}
            },
        }
    }


DRY_RUN_RESPONSE: dict[str, Any] = {
    "model": DryRun,
    "description": "dry_run=true: the request is valid; its price and what it would meet now (no job)",
}
CREATE_SCHEMA = _body("SegmentationCreate", CREATE_EXAMPLE)
UPLOAD_SCHEMA = _body("UploadCreate", UPLOAD_EXAMPLE)
ENDPOINT_CREATE_SCHEMA = _body("EndpointCreate", ENDPOINT_CREATE_EXAMPLE)
ENDPOINT_UPDATE_SCHEMA = _body("EndpointUpdate", ENDPOINT_UPDATE_EXAMPLE)
RECOVER_SCHEMA = _body("RecoverRequest", {"since": "2026-12-06T00:00:00Z"})
QUEUED_EXAMPLE = {
    **JOB_EXAMPLE,
    "status": "queued",
    "prediction_id": None,
    "masks": [],
    "deliveries": [],
    "finished_at": None,
}
# success answers' examples, by operation id
EXAMPLES: dict[str, Any] = {
    "create_segmentation": QUEUED_EXAMPLE,
    # a data: URI job answered from the result cache: its masks are copies, WaveSpeed was not called
    "get_segmentation": {
        **JOB_EXAMPLE,
        "request": {**JOB_EXAMPLE["request"], "cache": True},
        "image": {"key": "inputs/seg_01M9703JXKQ7QEQEC3Y5G4KPMJ/image.png", "format": "png"},
        "prediction_id": None,
        "cache": "hit",
    },
    "list_segmentations": {"object": "list", "data": [JOB_EXAMPLE], "next_cursor": None},
    "cancel_segmentation": {
        **QUEUED_EXAMPLE,
        "status": "canceled",
        "error": {"type": "canceled", "message": "canceled by the API client"},
        "finished_at": "2026-12-07T01:02:04Z",
    },
    "create_upload": {
        **QUEUED_EXAMPLE,
        "status": "awaiting_upload",
        "source": "upload",
        "image": {"filename": "cat.png"},
        "upload": {
            "url": "https://maskgate-123456789012-us-east-1.s3.amazonaws.com/",
            "fields": {"key": "uploads/default/seg_…/image", "Content-Type": "image/png", "policy": "…"},
        },
    },
    "redeliver": {"webhook_id": "msg_01M9703JXKQ7QEQEC3Y5G4KPMJ_succeeded", "status": "scheduled"},
    "rotate_webhook_secret": {
        "webhook_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "previous_secret_valid_until": "2026-12-08T01:02:03Z",
    },
    "health": {"status": "ok"},
    "get_usage": USAGE_EXAMPLE,
    "create_webhook_endpoint": {**ENDPOINT_EXAMPLE, "secret": ENDPOINT_WHSEC},
    "list_webhook_endpoints": {"object": "list", "data": [ENDPOINT_EXAMPLE]},
    "get_webhook_endpoint": {**ENDPOINT_EXAMPLE, "stats": ENDPOINT_STATS_EXAMPLE},
    "list_webhook_endpoint_attempts": {
        "object": "list",
        "data": [ATTEMPT_EXAMPLE],
        "next_cursor": None,
    },
    "recover_webhook_endpoint": {
        "endpoint_id": ENDPOINT_ID,
        "since": "2026-12-06T00:00:00Z",
        "messages": 12,
        "status": "scheduled",
    },
    "resend_webhook_message": {
        "webhook_id": ATTEMPT_EXAMPLE["webhook_id"],
        "endpoint_id": ENDPOINT_ID,
        "status": "scheduled",
    },
    "update_webhook_endpoint": {
        **ENDPOINT_EXAMPLE,
        **ENDPOINT_UPDATE_EXAMPLE,
        "updated_at": "2026-12-07T02:00:00Z",
    },
    "get_webhook_endpoint_secret": {
        "secret": ENDPOINT_WHSEC,
        "public_key": None,
        "previous_public_key": None,
        "previous_secret_valid_until": None,
    },
    # a v1a endpoint's: its private key is never shown, the public keys verify
    "rotate_webhook_endpoint_secret": {
        "secret": None,
        "public_key": ENDPOINT_WHPK,
        "previous_public_key": "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
        "previous_secret_valid_until": "2026-12-08T02:00:00Z",
    },
}


def openapi(app: FastAPI) -> dict[str, Any]:
    """The completed schema (built once per container)."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=DESCRIPTION,
            routes=app.routes,
            tags=TAGS,
        )
        _complete(schema)
        app.openapi_schema = schema
    return app.openapi_schema


def _complete(schema: dict[str, Any]) -> None:
    from maskgate.api.views import RecoverRequest  # a body the route parses itself, as the others

    components = schema.setdefault("components", {})
    models = components.setdefault("schemas", {})
    bodies = (
        SegmentationCreate,
        UploadCreate,
        EndpointCreate,
        EndpointUpdate,
        RecoverRequest,
        problems.Problem,
    )
    for model in bodies:
        body = model.model_json_schema(ref_template="#/components/schemas/{model}")
        models.update(body.pop("$defs", {}))
        models[model.__name__] = body
    models["Problem"]["properties"]["type"]["enum"] = PROBLEM_TYPES
    models["JobError"]["properties"]["type"]["enum"] = JOB_ERROR_TYPES
    components.setdefault("securitySchemes", {})["maskToken"] = {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "The signed, expiring token of a mask or result-file link in a webhook (instead of "
        "the API key).",
    }
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            _complete_operation(path, operation)


def _complete_operation(path: str, operation: dict[str, Any]) -> None:
    example = EXAMPLES.get(operation.get("operationId", ""))
    for status, answer in operation.get("responses", {}).items():
        content = answer.get("content", {}).get("application/json")
        if operation.get("operationId") == "create_segmentation" and status == "200" and content is not None:
            content["example"] = DRY_RUN_EXAMPLE  # the dry run's answer
        if (
            example is not None
            and status.startswith("2")
            and content is not None
            and "example" not in content
        ):
            content["example"] = example
    if path.endswith(("/masks/{index}", "/results/{name}")):  # the API key, or the webhook link's token
        operation["security"] = [{"bearer": []}, {"maskToken": []}]
    if path in ("/v1/health", "/v1/callbacks/wavespeed"):  # no API key: the callback is signed instead
        operation["security"] = []
    if path == "/v1/health":
        operation["responses"].pop("401", None)
