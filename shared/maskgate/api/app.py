"""The FastAPI application: the routes, problem+json for every error, the body size limit, the schema."""

from __future__ import annotations

from fastapi import FastAPI

from maskgate.api import problems
from maskgate.api.body_limit import BodySizeLimit
from maskgate.api.openapi import openapi
from maskgate.api.routes import router
from maskgate.settings import get_settings


def create_app() -> FastAPI:
    """The API application (built once per container by the ``api`` function)."""
    app = FastAPI(
        title="maskgate",
        version="1",
        summary="SAM3 segmentation as an event-driven, pay-per-use AWS service.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.add_middleware(BodySizeLimit, limit_bytes=lambda: get_settings().max_body_bytes)
    problems.install(app)
    router.add_to(app)
    app.openapi = lambda: openapi(app)  # type: ignore[method-assign]
    return app
