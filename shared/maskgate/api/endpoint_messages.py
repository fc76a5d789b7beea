"""The routes of a registered webhook endpoint's messages: its attempt log, recovery of what failed,
and resending one message."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Query, Request

from maskgate import clients
from maskgate.api.auth import Tenant
from maskgate.api.openapi import PROBLEMS, RECOVER_SCHEMA
from maskgate.api.routes import EndpointIdPath, Routes, endpoint_id_of, json_body, parse
from maskgate.api.views import AttemptPage, RecoverRequest, Recovery, Resend
from maskgate.stores.attempt_log import PAGE

router = Routes()
WebhookIdPath = Annotated[str, Path(description="The message's webhook-id (msg_…).")]


@router.get(
    "/v1/webhook-endpoints/{endpoint_id}/attempts",
    response_model=AttemptPage,
    response_description="The endpoint's delivery attempts, newest first",
    responses=PROBLEMS,
    tags=["webhook endpoints"],
)
def list_webhook_endpoint_attempts(
    endpoint_id: EndpointIdPath,
    owner: Tenant,
    status: Annotated[
        Literal["succeeded", "failed"] | None,
        Query(description="Only the attempts that succeeded (2xx) or failed."),
    ] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the page before.")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Attempts per page.")] = PAGE,
) -> AttemptPage:
    """Every delivery attempt to the endpoint, newest first: time, webhook-id, event type, status code
    or error, latency, the start of its answer and when it is tried again. Kept for
    ``WebhookAttemptRetentionDays`` (30 days unless set)."""
    endpoint = clients.endpoint_store().get(owner, endpoint_id_of(endpoint_id))
    found, next_cursor = clients.attempt_log().page(endpoint.id, status=status, cursor=cursor, limit=limit)
    return AttemptPage(data=found, next_cursor=next_cursor)


@router.post(
    "/v1/webhook-endpoints/{endpoint_id}/recover",
    status_code=202,
    response_model=Recovery,
    response_description="The messages being sent again",
    openapi_extra=RECOVER_SCHEMA,
    responses=PROBLEMS,
    tags=["webhook endpoints"],
)
async def recover_webhook_endpoint(endpoint_id: EndpointIdPath, request: Request, owner: Tenant) -> Recovery:
    """Send the endpoint, again, every event (a job's, or endpoint.disabled) whose last attempt to it
    failed since ``since`` (an endpoint back from an outage gets what it missed, and a re-enabled one
    what happened while it was disabled): the same webhook-ids and bodies, each through a delivery
    unit with the usual retries, started at most 10 a second apart (or at the endpoint's own rate)."""
    from maskgate.steps.recover import recover

    asked = parse(RecoverRequest, await json_body(request))
    endpoint = clients.endpoint_store().get(owner, endpoint_id_of(endpoint_id))
    count = recover(endpoint, since=asked.since, notifier=clients.notifier())
    return Recovery(endpoint_id=endpoint.id, since=asked.since, messages=count)


@router.post(
    "/v1/webhook-endpoints/{endpoint_id}/messages/{webhook_id}/resend",
    status_code=202,
    response_model=Resend,
    response_description="The message being sent again",
    responses=PROBLEMS,
    tags=["webhook endpoints"],
)
def resend_webhook_message(endpoint_id: EndpointIdPath, webhook_id: WebhookIdPath, owner: Tenant) -> Resend:
    """Send one event (a job's, or endpoint.disabled) to the endpoint again now, with its webhook-id
    and body, through a delivery unit with the usual retries."""
    from maskgate.steps.recover import resend

    endpoint = clients.endpoint_store().get(owner, endpoint_id_of(endpoint_id))
    resend(endpoint, webhook_id, notifier=clients.notifier())
    return Resend(webhook_id=webhook_id, endpoint_id=endpoint.id)
