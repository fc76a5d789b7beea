"""Idempotency-Key on POST /v1/segmentations through the api function on moto."""

from __future__ import annotations

import json
from typing import Any

from maskgate import clients
from maskgate.contracts.job import JobStatus
from tests.integration.conftest import Aws, problem
from tests.integration.test_api import create_event, sample_body
from tests.support.artefacts import LambdaContext


def post(api: Any, aws: Aws, body: dict[str, Any], key: str, api_key: str | None = None) -> dict[str, Any]:
    sample = create_event(aws, body, key=api_key)
    sample["headers"]["idempotency-key"] = key
    return dict(api.handler(sample, LambdaContext()))


def test_same_key_and_body_return_the_same_job_once(api: Any, aws: Aws) -> None:
    first = post(api, aws, sample_body(), "order-1234")
    second = post(api, aws, sample_body(), "order-1234")
    assert first["statusCode"] == second["statusCode"] == 202
    assert json.loads(first["body"])["id"] == json.loads(second["body"])["id"]
    assert len(aws.executions()) == 1


def test_same_key_with_another_body_is_409(api: Any, aws: Aws) -> None:
    post(api, aws, sample_body(), "order-1234")
    other = {**sample_body(), "metadata": {"order": "9999"}}
    response = post(api, aws, other, "order-1234")
    assert response["statusCode"] == 409 and problem(response)["type"] == "conflict"
    assert len(aws.executions()) == 1


def test_a_failed_request_leaves_the_key_free(api: Any, aws: Aws) -> None:
    bad = {**sample_body(), "box_prompts": []}
    del bad["box_prompts"]
    assert post(api, aws, bad, "order-1")["statusCode"] == 422
    assert post(api, aws, sample_body(), "order-1")["statusCode"] == 202


def test_keys_are_per_tenant(api: Any, aws: Aws) -> None:
    other = clients.tenant_store().create_key("other").key
    mine = json.loads(post(api, aws, sample_body(), "same-key")["body"])
    theirs = json.loads(post(api, aws, sample_body(), "same-key", api_key=other)["body"])
    assert mine["id"] != theirs["id"]


def test_without_the_header_every_request_is_a_new_job(api: Any, aws: Aws) -> None:
    api.handler(create_event(aws), LambdaContext())
    api.handler(create_event(aws), LambdaContext())
    assert len(aws.executions()) == 2


def test_a_replay_shows_the_job_as_it_is_now(api: Any, aws: Aws) -> None:
    first = json.loads(post(api, aws, sample_body(), "order-77")["body"])
    clients.job_store().transition(first["id"], JobStatus.SUBMITTED, prediction_id="pred_1")
    again = json.loads(post(api, aws, sample_body(), "order-77")["body"])
    assert (again["id"], again["status"], first["status"]) == (first["id"], "submitted", "queued")
