"""Per-tenant rate limit on moto: a one-minute window, 429 with Retry-After, other tenants untouched."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from maskgate import clients
from maskgate.errors import RateLimited
from maskgate.stores.rate_limit import RateLimiter, Throttle
from tests.integration.conftest import REGION, Aws, problem
from tests.support.artefacts import LambdaContext, event, load_handler


def limiter(aws: Aws, clock: list[float], per_minute: int = 3) -> RateLimiter:
    client = boto3.client("dynamodb", region_name=REGION)
    return RateLimiter(table=aws.table, client=client, per_minute=per_minute, clock=lambda: clock[0])


def test_requests_over_the_limit_wait_for_the_next_window(aws: Aws) -> None:
    clock = [1_795_791_840.0 + 15]  # 15 s into a minute
    limit = limiter(aws, clock)
    for _ in range(3):
        limit.hit("acme")
    with pytest.raises(RateLimited) as refused:
        limit.hit("acme")
    assert refused.value.retry_after == 46
    clock[0] += 46
    limit.hit("acme")


def test_tenants_are_counted_apart(aws: Aws) -> None:
    clock = [1_795_791_840.0]
    limit = limiter(aws, clock, per_minute=1)
    limit.hit("acme")
    limit.hit("other")
    with pytest.raises(RateLimited):
        limit.hit("acme")


def test_api_answers_429_problem_with_retry_after(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1_795_791_840.0]
    monkeypatch.setattr(clients, "rate_limiter", lambda: limiter(aws, clock, per_minute=2))
    api = load_handler("api")
    sample = event("api_get_segmentation")
    sample["rawPath"] = sample["requestContext"]["http"]["path"] = "/v1/segmentations"
    sample["headers"]["authorization"] = f"Bearer {aws.api_key}"
    answers: list[dict[str, Any]] = [api.handler(sample, LambdaContext()) for _ in range(3)]
    assert [a["statusCode"] for a in answers] == [200, 200, 429]
    assert answers[2]["headers"]["retry-after"] == "61"
    assert problem(answers[2])["type"] == "rate_limited"
    assert json.loads(answers[0]["body"])["object"] == "list"


def test_a_throttled_send_learns_its_wait_from_the_refused_write_alone(aws: Aws) -> None:
    client = boto3.client("dynamodb", region_name=REGION)
    reads: list[str] = []
    client.meta.events.register("before-call.dynamodb.GetItem", lambda **_: reads.append("GetItem"))
    clock = [1_795_791_840.0]
    throttle = Throttle(table=aws.table, client=client, clock=lambda: clock[0])
    assert throttle.take("ep_1", per_second=4) is None
    clock[0] += 0.1
    assert throttle.take("ep_1", per_second=4) == pytest.approx(0.15)
    assert throttle.take("ep_2", per_second=4) is None  # each key is spaced on its own
    clock[0] += 0.15
    assert throttle.take("ep_1", per_second=4) is None
    assert reads == []
