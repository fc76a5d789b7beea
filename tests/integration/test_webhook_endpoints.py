"""Registered webhook endpoints through the api function on moto: create, read, list, change, delete,
their secrets or (v1a) public keys, and the rules (tenant scope, URL policy, the limit)."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest

from maskgate import clients
from maskgate.contracts.endpoints import EndpointCreate
from maskgate.contracts.job import utcnow
from maskgate.errors import EndpointLimit
from maskgate.stores.endpoints import MAX_ENDPOINTS
from maskgate.webhooks.signing import public_key
from tests.integration.conftest import Aws, problem
from tests.support.artefacts import LambdaContext, event

HOOK = "http://127.0.0.1:8765/hooks/endpoint"
PUBLIC = {
    "id",
    "object",
    "url",
    "description",
    "event_types",
    "enabled",
    "rate_limit_per_second",
    "metadata",
    "signature",
    "public_key",
    "created_at",
    "updated_at",
    "disabled_at",
    "disabled_reason",
}


def call(api: Any, method: str, path: str, body: Any = None, *, key: str, query: str = "") -> dict[str, Any]:
    sample = event("api_get_segmentation")
    sample["rawPath"] = sample["requestContext"]["http"]["path"] = path
    if query:
        sample["rawQueryString"] = query
        sample["queryStringParameters"] = dict(pair.split("=", 1) for pair in query.split("&"))
    sample["requestContext"]["http"]["method"] = method
    sample["routeKey"] = f"{method} {path}"
    sample["headers"]["authorization"] = f"Bearer {key}"
    if body is not None:
        sample["body"] = json.dumps(body)
        sample["headers"]["content-type"] = "application/json"
        sample["headers"]["content-length"] = str(len(sample["body"]))
    return dict(api.handler(sample, LambdaContext()))


def answer(response: dict[str, Any], status: int) -> Any:
    assert response["statusCode"] == status, response.get("body")
    return json.loads(response["body"])


def create(api: Any, aws: Aws, key: str | None = None, **body: Any) -> dict[str, Any]:
    created: dict[str, Any] = answer(
        call(api, "POST", "/v1/webhook-endpoints", {"url": HOOK, **body}, key=key or aws.api_key), 201
    )
    return created


def test_create_answers_the_endpoint_with_its_secret_once(api: Any, aws: Aws) -> None:
    created = create(
        api,
        aws,
        description="orders",
        event_types=["segmentation.failed"],
        rate_limit_per_second=5,
        metadata={"team": "vision"},
    )
    assert set(created) == PUBLIC | {"secret"}
    assert created["id"].startswith("ep_") and created["secret"].startswith("whsec_")
    assert created["object"] == "webhook_endpoint" and created["signature"] == "v1"
    assert (created["url"], created["description"], created["event_types"]) == (
        HOOK,
        "orders",
        ["segmentation.failed"],
    )
    assert created["enabled"] is True and created["rate_limit_per_second"] == 5
    stored = clients.endpoint_store().get(aws.tenant, created["id"])
    assert stored.secret == created["secret"]
    detail = answer(call(api, "GET", f"/v1/webhook-endpoints/{created['id']}", key=aws.api_key), 200)
    shown = {k: v for k, v in detail.items() if k != "stats"}
    assert set(shown) == PUBLIC
    assert shown == {k: v for k, v in created.items() if k != "secret"}
    assert detail["stats"] == {
        "attempts": 0,
        "success_rate": None,
        "latency_p50_ms": None,
        "latency_p95_ms": None,
        "last_error": None,
        "state": "healthy",
    }
    listed = answer(call(api, "GET", "/v1/webhook-endpoints", key=aws.api_key), 200)
    assert listed == {"object": "list", "data": [shown]}
    assert created["secret"] not in json.dumps(listed)


def test_list_is_oldest_first(api: Any, aws: Aws) -> None:
    ids = [create(api, aws, description=str(n))["id"] for n in range(3)]
    listed = answer(call(api, "GET", "/v1/webhook-endpoints", key=aws.api_key), 200)
    assert [e["id"] for e in listed["data"]] == ids


def test_patch_changes_only_the_fields_sent(api: Any, aws: Aws) -> None:
    created = create(api, aws, description="before", metadata={"a": "1"}, rate_limit_per_second=5)
    path = f"/v1/webhook-endpoints/{created['id']}"
    change = {"description": "after", "event_types": ["segmentation.succeeded"]}
    change["rate_limit_per_second"] = None
    changed = answer(call(api, "PATCH", path, change, key=aws.api_key), 200)
    assert changed["description"] == "after" and changed["event_types"] == ["segmentation.succeeded"]
    assert changed["rate_limit_per_second"] is None
    assert changed["metadata"] == {"a": "1"} and changed["url"] == HOOK
    assert changed["updated_at"] >= created["updated_at"] and changed["created_at"] == created["created_at"]
    assert "secret" not in changed
    shown = answer(call(api, "GET", path, key=aws.api_key), 200)
    assert {k: v for k, v in shown.items() if k != "stats"} == changed


def test_patch_null_of_a_field_that_is_never_null_is_refused(api: Any, aws: Aws) -> None:
    created = create(api, aws)
    response = call(api, "PATCH", f"/v1/webhook-endpoints/{created['id']}", {"url": None}, key=aws.api_key)
    found = problem(response)
    assert response["statusCode"] == 422 and found["type"] == "invalid_request"
    assert [e["loc"] for e in found["errors"]] == ["url"]
    assert clients.endpoint_store().get(aws.tenant, created["id"]).url == HOOK


def test_patch_enabled_true_re_enables_and_clears_the_reason(api: Any, aws: Aws) -> None:
    created = create(api, aws)
    assert clients.endpoint_store().disable(aws.tenant, created["id"], reason="failing for 5 days")
    shown = answer(call(api, "GET", f"/v1/webhook-endpoints/{created['id']}", key=aws.api_key), 200)
    assert shown["enabled"] is False and shown["disabled_reason"] == "failing for 5 days"
    assert shown["disabled_at"] is not None
    enabled = answer(
        call(api, "PATCH", f"/v1/webhook-endpoints/{created['id']}", {"enabled": True}, key=aws.api_key), 200
    )
    assert enabled["enabled"] is True
    assert enabled["disabled_at"] is None and enabled["disabled_reason"] is None


def test_delete_is_204_and_then_404(api: Any, aws: Aws) -> None:
    created = create(api, aws)
    path = f"/v1/webhook-endpoints/{created['id']}"
    deleted = call(api, "DELETE", path, key=aws.api_key)
    assert deleted["statusCode"] == 204 and not deleted.get("body")
    for method in ("GET", "DELETE"):
        response = call(api, method, path, key=aws.api_key)
        assert response["statusCode"] == 404 and problem(response)["type"] == "not_found"
    assert answer(call(api, "GET", "/v1/webhook-endpoints", key=aws.api_key), 200)["data"] == []


def test_another_tenants_endpoint_is_404_everywhere(api: Any, aws: Aws) -> None:
    created = create(api, aws)
    other = clients.tenant_store().create_key("other").key
    path = f"/v1/webhook-endpoints/{created['id']}"
    for method, route, body in (
        ("GET", path, None),
        ("PATCH", path, {"description": "mine now"}),
        ("PATCH", path, {"url": "https://example.com/not-checked-before-the-404"}),
        ("DELETE", path, None),
        ("GET", path + "/secret", None),
        ("POST", path + "/secret/rotate", None),
    ):
        response = call(api, method, route, body, key=other)
        assert response["statusCode"] == 404, (method, route, response["body"])
        assert problem(response)["detail"] == f"no webhook endpoint {created['id']}"
    assert answer(call(api, "GET", "/v1/webhook-endpoints", key=other), 200)["data"] == []
    mine = answer(call(api, "GET", path, key=aws.api_key), 200)
    assert mine["description"] == "" and mine["updated_at"] == created["updated_at"]


@pytest.mark.parametrize("endpoint_id", ["seg_01M9703JXKQ7QEQEC3Y5G4KPMJ", "ep_" + "0" * 16, "ep_x"])
def test_an_id_of_no_endpoint_is_404(api: Any, aws: Aws, endpoint_id: str) -> None:
    response = call(api, "GET", f"/v1/webhook-endpoints/{endpoint_id}", key=aws.api_key)
    assert response["statusCode"] == 404
    assert problem(response) == {
        "type": "not_found",
        "title": "Not found",
        "status": 404,
        "detail": f"no webhook endpoint {endpoint_id}",
        "errors": [],
    }


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hook",  # the local stack sends to loopback only
        "http://10.0.0.1/hook",
        "ftp://127.0.0.1/hook",
        "http://user:pw@127.0.0.1/hook",
        "not a url",
    ],
)
def test_a_url_maskgate_may_not_call_is_422_url_not_allowed(api: Any, aws: Aws, url: str) -> None:
    response = call(api, "POST", "/v1/webhook-endpoints", {"url": url}, key=aws.api_key)
    assert response["statusCode"] == 422 and problem(response)["type"] == "url_not_allowed"
    created = create(api, aws)
    response = call(api, "PATCH", f"/v1/webhook-endpoints/{created['id']}", {"url": url}, key=aws.api_key)
    assert response["statusCode"] == 422 and problem(response)["type"] == "url_not_allowed"
    assert [e.url for e in clients.endpoint_store().list(aws.tenant)] == [HOOK]


def test_patch_to_another_allowed_url_is_kept(api: Any, aws: Aws) -> None:
    created = create(api, aws)
    url = "http://localhost:9999/other"
    changed = answer(
        call(api, "PATCH", f"/v1/webhook-endpoints/{created['id']}", {"url": url}, key=aws.api_key), 200
    )
    assert changed["url"] == url


def test_secret_is_read_again_only_from_its_route(api: Any, aws: Aws) -> None:
    created = create(api, aws)
    secret = answer(call(api, "GET", f"/v1/webhook-endpoints/{created['id']}/secret", key=aws.api_key), 200)
    assert secret == {
        "secret": created["secret"],
        "public_key": None,
        "previous_public_key": None,
        "previous_secret_valid_until": None,
    }


def test_rotate_gives_a_new_secret_and_the_old_one_signs_for_a_day(api: Any, aws: Aws) -> None:
    created = create(api, aws)
    path = f"/v1/webhook-endpoints/{created['id']}/secret"
    before = utcnow()
    rotated = answer(call(api, "POST", path + "/rotate", key=aws.api_key), 200)
    new, until = rotated["secret"], datetime.fromisoformat(rotated["previous_secret_valid_until"])
    assert new.startswith("whsec_") and new != created["secret"]
    assert rotated["public_key"] is None and rotated["previous_public_key"] is None
    assert before + timedelta(hours=24) <= until <= utcnow() + timedelta(hours=24)
    assert answer(call(api, "GET", path, key=aws.api_key), 200) == rotated
    stored = clients.endpoint_store().get(aws.tenant, created["id"])
    assert stored.secrets(utcnow()) == [new, created["secret"]]
    assert stored.secrets(until + timedelta(seconds=1)) == [new]
    shown = answer(call(api, "GET", f"/v1/webhook-endpoints/{created['id']}", key=aws.api_key), 200)
    assert new not in json.dumps(shown) and created["secret"] not in json.dumps(shown)


def test_a_tenant_may_register_at_most_20(api: Any, aws: Aws) -> None:
    for _ in range(MAX_ENDPOINTS):
        create(api, aws)
    response = call(api, "POST", "/v1/webhook-endpoints", {"url": HOOK}, key=aws.api_key)
    assert response["statusCode"] == 422
    found = problem(response)
    assert found["type"] == "invalid_request" and found["title"] == "Too many webhook endpoints"
    assert "at most 20" in found["detail"]
    other = clients.tenant_store().create_key("other").key
    create(api, aws, key=other)  # the limit is per tenant
    gone = answer(call(api, "GET", "/v1/webhook-endpoints", key=aws.api_key), 200)["data"][0]["id"]
    assert call(api, "DELETE", f"/v1/webhook-endpoints/{gone}", key=aws.api_key)["statusCode"] == 204
    create(api, aws)  # a deleted endpoint frees its place


@pytest.mark.usefixtures("atomic_dynamodb")
def test_creates_racing_each_other_never_pass_the_limit(aws: Aws) -> None:
    store = clients.endpoint_store()
    for _ in range(MAX_ENDPOINTS - 3):
        store.create(aws.tenant, EndpointCreate(url=HOOK))

    def one() -> bool:
        try:
            store.create(aws.tenant, EndpointCreate(url=HOOK))
        except EndpointLimit:
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(lambda _: one(), range(8)))
    assert made.count(True) == 3
    assert len(store.list(aws.tenant)) == MAX_ENDPOINTS


def test_a_v1a_endpoint_shows_its_public_key_and_never_its_private_key(api: Any, aws: Aws) -> None:
    created = create(api, aws, signature="v1a")
    assert set(created) == PUBLIC | {"secret"}
    assert created["signature"] == "v1a" and created["secret"] is None
    public = created["public_key"]
    assert public.startswith("whpk_") and len(base64.b64decode(public.removeprefix("whpk_"))) == 32
    stored = clients.endpoint_store().get(aws.tenant, created["id"])
    assert stored.secret.startswith("whsk_") and public_key(stored.secret) == public
    path = f"/v1/webhook-endpoints/{created['id']}"
    shown = answer(call(api, "GET", path, key=aws.api_key), 200)
    assert shown.pop("stats")["state"] == "healthy"
    assert shown == {k: v for k, v in created.items() if k != "secret"}
    secret = answer(call(api, "GET", path + "/secret", key=aws.api_key), 200)
    assert secret == {
        "secret": None,
        "public_key": public,
        "previous_public_key": None,
        "previous_secret_valid_until": None,
    }
    listed = answer(call(api, "GET", "/v1/webhook-endpoints", key=aws.api_key), 200)
    assert listed["data"] == [shown]
    private = stored.secret.removeprefix("whsk_")
    for body in (created, shown, secret, listed):
        assert "whsk_" not in json.dumps(body) and private not in json.dumps(body)


def test_rotating_a_v1a_endpoint_makes_a_new_key_pair_and_the_old_one_signs_for_a_day(
    api: Any, aws: Aws
) -> None:
    created = create(api, aws, signature="v1a")
    path = f"/v1/webhook-endpoints/{created['id']}"
    before = clients.endpoint_store().get(aws.tenant, created["id"])
    rotated = answer(call(api, "POST", path + "/secret/rotate", key=aws.api_key), 200)
    assert rotated["secret"] is None and rotated["previous_public_key"] == created["public_key"]
    new = rotated["public_key"]
    assert new.startswith("whpk_") and new != created["public_key"]
    until = datetime.fromisoformat(rotated["previous_secret_valid_until"])
    assert utcnow() + timedelta(hours=23) < until <= utcnow() + timedelta(hours=24)
    assert answer(call(api, "GET", path + "/secret", key=aws.api_key), 200) == rotated
    assert answer(call(api, "GET", path, key=aws.api_key), 200)["public_key"] == new
    stored = clients.endpoint_store().get(aws.tenant, created["id"])
    assert stored.secrets(utcnow()) == [stored.secret, before.secret]
    assert [public_key(k) for k in stored.secrets(utcnow())] == [new, created["public_key"]]
    assert stored.secrets(until + timedelta(seconds=1)) == [stored.secret]
    assert "whsk_" not in json.dumps(rotated)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"url": HOOK, "event_types": ["segmentation.started"]}, "event_types.0"),
        ({"url": HOOK, "rate_limit_per_second": 0}, "rate_limit_per_second"),
        ({"url": HOOK, "colour": "red"}, "colour"),
        ({"description": "no url"}, "url"),
    ],
)
def test_an_invalid_body_is_422_with_its_location(api: Any, aws: Aws, body: Any, loc: str) -> None:
    response = call(api, "POST", "/v1/webhook-endpoints", body, key=aws.api_key)
    found = problem(response)
    assert response["statusCode"] == 422 and found["type"] == "invalid_request"
    assert [e["loc"] for e in found["errors"]] == [loc]


def test_malformed_json_is_400_and_no_key_is_401(api: Any, aws: Aws) -> None:
    sample = event("api_get_segmentation")
    sample["rawPath"] = sample["requestContext"]["http"]["path"] = "/v1/webhook-endpoints"
    sample["requestContext"]["http"]["method"] = "POST"
    sample["headers"]["authorization"] = f"Bearer {aws.api_key}"
    sample["body"] = "{not json"
    response = api.handler(sample, LambdaContext())
    assert response["statusCode"] == 400 and problem(response)["type"] == "malformed_json"
    del sample["headers"]["authorization"]
    sample["requestContext"]["http"]["method"] = "GET"
    response = api.handler(sample, LambdaContext())
    assert response["statusCode"] == 401 and problem(response)["type"] == "unauthorized"


def test_openapi_documents_every_endpoint_operation(api: Any, aws: Aws) -> None:
    sample = event("api_get_segmentation")
    sample["rawPath"] = sample["requestContext"]["http"]["path"] = "/openapi.json"
    schema = json.loads(api.handler(sample, LambdaContext())["body"])
    operations = {
        (method, path): operation
        for path, methods in schema["paths"].items()
        if path.startswith("/v1/webhook-endpoints")
        for method, operation in methods.items()
    }
    assert {op["operationId"] for op in operations.values()} == {
        "create_webhook_endpoint",
        "list_webhook_endpoints",
        "get_webhook_endpoint",
        "update_webhook_endpoint",
        "delete_webhook_endpoint",
        "get_webhook_endpoint_secret",
        "rotate_webhook_endpoint_secret",
        "list_webhook_endpoint_attempts",
        "recover_webhook_endpoint",
        "resend_webhook_message",
    }
    for (method, path), operation in operations.items():
        assert operation["tags"] == ["webhook endpoints"] and operation["description"], (method, path)
        success = {s: a for s, a in operation["responses"].items() if s.startswith("2")}
        assert all(a["description"] != "Successful Response" for a in success.values()), (method, path)
        if method != "delete":
            [content] = [a["content"]["application/json"] for a in success.values()]
            assert "example" in content, (method, path)
        assert {"404", "422"} <= set(operation["responses"])
    create_body = operations[("post", "/v1/webhook-endpoints")]["requestBody"]["content"]["application/json"]
    assert create_body["schema"] == {"$ref": "#/components/schemas/EndpointCreate"} and create_body["example"]
    models = schema["components"]["schemas"]
    for name in ("EndpointCreate", "EndpointUpdate", "WebhookEndpointPublic", "WebhookEndpointSecret"):
        assert all(field.get("description") for field in models[name]["properties"].values()), name
    assert "secret" not in models["WebhookEndpointPublic"]["properties"]
    assert "secret" in models["WebhookEndpointCreated"]["properties"]
