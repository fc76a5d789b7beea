"""RFC 9457 problem documents: every error the API returns, built in one place."""

from __future__ import annotations

from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from maskgate.contracts.prompts import readable
from maskgate.errors import (
    InvalidRequest,
    MaskgateError,
    MethodNotAllowed,
    Missing,
    NotFound,
    QuotaExceeded,
    RateLimited,
    RequestError,
)
from maskgate.observability import logger

PROBLEM_JSON = "application/problem+json"


class ProblemDetail(BaseModel):
    """One field that broke a rule."""

    loc: str = Field(description="Where: the field's dotted path in the body (e.g. box_prompts.0.x_max).")
    msg: str = Field(description="What is wrong with it.")


class Problem(BaseModel):
    """An RFC 9457 problem document (``application/problem+json``), the body of every error answer."""

    type: str = Field(
        description="The stable error type, a bare name (a relative URI reference): branch on this."
    )
    title: str = Field(description="A short summary of the type.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong in this request, for people.")
    errors: list[ProblemDetail] = Field(default=[], description="The fields that broke a rule (422).")
    cap_usd: float | None = Field(
        default=None, description="spend_cap_reached only: the tenant's monthly spend cap, in USD."
    )
    month_spend_usd: float | None = Field(
        default=None,
        description="spend_cap_reached only: what the month's jobs have spent and reserved, in USD.",
    )
    month: str | None = Field(default=None, description="spend_cap_reached only: the UTC month, YYYY-MM.")


def problem_response(error: MaskgateError, headers: dict[str, str] | None = None) -> JSONResponse:
    body = Problem(
        type=error.type,
        title=error.title,
        status=error.status,
        detail=error.message,
        errors=[ProblemDetail(**e) for e in error.errors],
        **getattr(error, "extensions", {}),
    )
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=error.status, media_type=PROBLEM_JSON, headers=headers
    )


def _validation_error(exc: RequestValidationError) -> InvalidRequest:
    """Path and query parameter errors (bodies are parsed by the routes themselves)."""
    errors = [
        {"loc": ".".join(str(part) for part in err.get("loc", ())), "msg": readable(err)}
        for err in exc.errors()
    ]
    return InvalidRequest("the request is invalid", errors=errors)


def _methods_for(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.path_regex.match(request.url.path) and route.methods:
            methods |= route.methods
    return sorted(methods)


def install(app: FastAPI) -> None:
    """Route every error through problem+json."""

    @app.exception_handler(MaskgateError)
    async def _maskgate(_: Request, exc: MaskgateError) -> JSONResponse:
        if isinstance(exc, RequestError | NotFound | Missing) or exc.status < 500:
            logger.info("request refused", extra={"error_type": exc.type, "status": exc.status})
        else:
            logger.exception("request failed")
        headers = (
            {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited | QuotaExceeded) else None
        )
        return problem_response(exc, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(_validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return problem_response(NotFound("no such resource"))
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:  # every route on this path, not only the first one Starlette tried
            allowed = _methods_for(request)
            headers["Allow"] = ", ".join(allowed)
            refused = MethodNotAllowed(f"{request.method} is not allowed here; use {', '.join(allowed)}")
            return problem_response(refused, headers)
        body = Problem(
            type="invalid_request" if exc.status_code < 500 else MaskgateError.type,
            title=HTTPStatus(exc.status_code).phrase,
            status=exc.status_code,
            detail=str(exc.detail),
        )
        return JSONResponse(
            body.model_dump(),
            status_code=exc.status_code,
            media_type=PROBLEM_JSON,
            headers=headers or None,
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error", extra={"error_class": type(exc).__name__})
        return problem_response(MaskgateError("an internal error occurred; it has been logged"))
