"""The OpenAPI document: FastAPI's schema plus the request bodies the create routes parse themselves,
their examples, and the problem documents every route may answer with."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from maskgate.api import problems
from maskgate.contracts.prompts import SegmentationCreate, UploadCreate

CREATE_EXAMPLE = {
    "image": "https://example.com/cat.png",
    "prompt": "the cat",
    "box_prompts": [{"x_min": 10, "y_min": 20, "x_max": 200, "y_max": 180}],
    "output_format": "png",
    "webhook_url": "https://example.com/hooks/maskgate",
    "metadata": {"order": "1234"},
}


CREATE_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/SegmentationCreate"},
                "example": CREATE_EXAMPLE,
            }
        },
    }
}
UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/UploadCreate"},
                "example": {"filename": "cat.png", "content_type": "image/png", "prompt": "the cat"},
            }
        },
    }
}
PROBLEM_CODES = {
    400: "Malformed JSON",
    401: "No, unknown, revoked or expired API key",
    404: "No such resource (or another tenant's)",
    405: "Method not allowed",
    409: "Conflict: a finished job, or an Idempotency-Key reused with another body",
    413: "Body over 5 MB (use a direct upload)",
    422: "Invalid request: the error type says which rule",
    429: "Over the tenant's rate limit; see Retry-After",
}
PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {
        "description": text,
        "content": {problems.PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    for code, text in PROBLEM_CODES.items()
}


def openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the request body models the create route declares by reference."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (SegmentationCreate, UploadCreate, problems.Problem):
            body = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(body.pop("$defs", {}))
            components[model.__name__] = body
        app.openapi_schema = schema
    return app.openapi_schema
