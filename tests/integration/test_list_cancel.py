"""Listing and cancel through the api function on moto."""

from __future__ import annotations

import json
from typing import Any

import pytest

from maskgate import clients
from maskgate.stores import batch
from tests.integration.conftest import Aws, FakeTasks, problem
from tests.integration.test_api import create_event
from tests.support.artefacts import LambdaContext, event


def call(api: Any, method: str, path: str, *, key: str, query: str = "") -> dict[str, Any]:
    sample = event("api_get_segmentation")
    sample["rawPath"] = sample["requestContext"]["http"]["path"] = path
    sample["requestContext"]["http"]["method"] = method
    sample["rawQueryString"] = query
    sample["headers"]["authorization"] = f"Bearer {key}"
    return dict(api.handler(sample, LambdaContext()))


def created(api: Any, aws: Aws, n: int) -> list[str]:
    return [json.loads(api.handler(create_event(aws), LambdaContext())["body"])["id"] for _ in range(n)]


def test_list_pages_newest_first_with_an_opaque_cursor(api: Any, aws: Aws) -> None:
    ids = created(api, aws, 3)
    first = json.loads(call(api, "GET", "/v1/segmentations", key=aws.api_key, query="limit=2")["body"])
    assert [j["id"] for j in first["data"]] == ids[::-1][:2]
    second = json.loads(
        call(
            api, "GET", "/v1/segmentations", key=aws.api_key, query=f"limit=2&cursor={first['next_cursor']}"
        )["body"]
    )
    assert [j["id"] for j in second["data"]] == ids[:1]


def test_list_filters_by_status(api: Any, aws: Aws, tasks: FakeTasks) -> None:
    ids = created(api, aws, 2)
    call(api, "DELETE", f"/v1/segmentations/{ids[0]}", key=aws.api_key)
    found = json.loads(
        call(api, "GET", "/v1/segmentations", key=aws.api_key, query="status=canceled")["body"]
    )
    assert [j["id"] for j in found["data"]] == [ids[0]]


def test_list_shows_another_tenant_nothing(api: Any, aws: Aws) -> None:
    created(api, aws, 2)
    other = clients.tenant_store().create_key("other").key
    found = json.loads(call(api, "GET", "/v1/segmentations", key=other)["body"])
    assert found == {"object": "list", "data": [], "next_cursor": None}


def test_list_refuses_a_cursor_made_for_another_tenant(api: Any, aws: Aws) -> None:
    created(api, aws, 2)
    cursor = json.loads(call(api, "GET", "/v1/segmentations", key=aws.api_key, query="limit=1")["body"])[
        "next_cursor"
    ]
    other = clients.tenant_store().create_key("other").key
    response = call(api, "GET", "/v1/segmentations", key=other, query=f"cursor={cursor}")
    assert response["statusCode"] == 422 and problem(response)["errors"][0]["loc"] == "cursor"


def test_cancel_marks_canceled_and_stops_the_execution(api: Any, aws: Aws) -> None:
    [job_id] = created(api, aws, 1)
    response = call(api, "DELETE", f"/v1/segmentations/{job_id}", key=aws.api_key)
    assert response["statusCode"] == 200
    job = clients.job_store().get(job_id)
    assert job.status.value == "canceled" and job.error is not None and job.error.type == "canceled"
    sfn = aws.client("stepfunctions")
    arn = aws.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{job_id}"
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
    [unit] = aws.delivery_units()
    assert (unit["event"], unit["wait_seconds"]) == ("segmentation.canceled", 0)
    assert json.loads(clients.job_store().get(job_id).webhook_body or "{}")["type"] == "segmentation.canceled"


def test_cancel_of_a_finished_job_is_409_and_changes_nothing(api: Any, aws: Aws) -> None:
    [job_id] = created(api, aws, 1)
    call(api, "DELETE", f"/v1/segmentations/{job_id}", key=aws.api_key)
    again = call(api, "DELETE", f"/v1/segmentations/{job_id}", key=aws.api_key)
    assert again["statusCode"] == 409 and problem(again)["type"] == "conflict"
    assert len(aws.delivery_units()) == 1


def test_cancel_of_another_tenants_job_is_404(api: Any, aws: Aws) -> None:
    [job_id] = created(api, aws, 1)
    other = clients.tenant_store().create_key("other").key
    assert call(api, "DELETE", f"/v1/segmentations/{job_id}", key=other)["statusCode"] == 404
    assert clients.job_store().get(job_id).status.value == "queued"


def test_list_refuses_a_forged_cursor_for_the_own_tenant(api: Any, aws: Aws) -> None:
    import base64

    forged = (
        base64.urlsafe_b64encode(json.dumps({"pk": "", "tenant": aws.tenant, "created_at": ""}).encode())
        .decode()
        .rstrip("=")
    )
    response = call(api, "GET", "/v1/segmentations", key=aws.api_key, query=f"cursor={forged}")
    assert response["statusCode"] == 422


def test_a_page_whose_jobs_dynamodb_keeps_unprocessed_is_an_error_not_a_shorter_page(
    api: Any, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its cursor is past those jobs: a page that left them out would lose them for the client."""
    created(api, aws, 2)
    client = clients.job_store()._client
    monkeypatch.setattr(batch, "TRIES", 2)
    monkeypatch.setattr(
        client,
        "batch_get_item",
        lambda **request: {"Responses": {}, "UnprocessedKeys": request["RequestItems"]},
    )
    answer = call(api, "GET", "/v1/segmentations", key=aws.api_key, query="limit=2")
    assert answer["statusCode"] == 500 and problem(answer)["type"].endswith("internal_error")
