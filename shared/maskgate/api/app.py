"""The FastAPI application: the routes, problem+json for every error, the body size limit, the schema."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from maskgate.api import endpoint_messages, problems
from maskgate.api.body_limit import BodySizeLimit
from maskgate.api.openapi import openapi
from maskgate.api.routes import router
from maskgate.settings import get_settings

UI_PARAMETERS = {"persistAuthorization": True}


def create_app() -> FastAPI:
    """The API application (built once per container by the ``api`` function)."""
    _probe_pydantic_v1_only_once_imported()
    app = FastAPI(
        title="maskgate",
        version="1",
        summary="SAM3 segmentation as an event-driven, pay-per-use AWS service.",
        openapi_url="/openapi.json",
        docs_url=None,  # served below: its assets come from settings
        redoc_url=None,
        generate_unique_id_function=lambda route: route.name,  # operation ids: create_segmentation, …
    )
    app.add_middleware(BodySizeLimit, limit_bytes=lambda: get_settings().max_body_bytes)
    problems.install(app)
    router.add_to(app)
    endpoint_messages.router.add_to(app)
    app.openapi = lambda: openapi(app)  # type: ignore[method-assign]
    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False, response_class=HTMLResponse)
    return app


def docs() -> HTMLResponse:
    """Swagger UI over /openapi.json. Its script and styles come from ``MASKGATE_DOCS_ASSETS_URL`` when
    set (the local stack serves them, so the page works offline), else from a CDN: the Lambda layer
    ships no UI assets, and a browser reading a deployed API's docs is online anyway."""
    from fastapi.openapi.docs import get_swagger_ui_html

    base = (get_settings().docs_assets_url or "").rstrip("/")
    if not base:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="maskgate API", swagger_ui_parameters=UI_PARAMETERS
        )
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="maskgate API",
        swagger_js_url=f"{base}/swagger-ui-bundle.js",
        swagger_css_url=f"{base}/swagger-ui.css",
        swagger_favicon_url=f"{base}/favicon-32x32.png",
        swagger_ui_parameters=UI_PARAMETERS,
    )


def _probe_pydantic_v1_only_once_imported() -> None:
    """FastAPI asks of every route model, and of every object it encodes, whether it is a pydantic v1
    model, importing ``pydantic.v1`` (about 70 ms of the api's cold start) to find out. No object can be a
    v1 model before ``pydantic.v1`` is imported, so until then the answer is no without importing it;
    after, FastAPI's own check runs. Where FastAPI has no such checks, nothing is changed."""
    from fastapi import encoders
    from fastapi._compat import shared

    def unless_unimported(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
        if getattr(check, "__wrapped_by_maskgate__", False):
            return check

        def guarded(value: Any) -> bool:
            return "pydantic.v1" in sys.modules and check(value)

        guarded.__wrapped_by_maskgate__ = True  # type: ignore[attr-defined]
        return guarded

    for module, name in (
        (shared, "is_pydantic_v1_model_class"),
        (shared, "is_pydantic_v1_model_instance"),
        (encoders, "is_pydantic_v1_model_instance"),
    ):
        if callable(getattr(module, name, None)):
            setattr(module, name, unless_unimported(getattr(module, name)))
