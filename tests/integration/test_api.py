"""The api function on moto: HTTP API payload 2.0 events from events/ through Mangum and FastAPI."""

from __future__ import annotations

import base64
import json
from typing import Any

from maskgate import clients
from tests.integration.conftest import Aws, problem
from tests.support.artefacts import LambdaContext, event, load_handler
from tests.support.fakes import image_bytes


def create_event(
    aws: Aws, body: Any = None, *, raw: str | None = None, key: str | None = None
) -> dict[str, Any]:
    sample = event("api_create_segmentation")
    sample["headers"]["authorization"] = f"Bearer {key or aws.api_key}"
    if body is not None or raw is not None:
        sample["body"] = raw if raw is not None else json.dumps(body)
        sample["headers"]["content-length"] = str(len(sample["body"]))
    return sample


def sample_body() -> dict[str, Any]:
    return dict(json.loads(event("api_create_segmentation")["body"]))


def test_api_create_accepts_sample_event_and_starts_the_job(api: Any, aws: Aws) -> None:
    response = api.handler(create_event(aws), LambdaContext())
    assert response["statusCode"] == 202
    job = json.loads(response["body"])
    assert job["status"] == "queued"
    assert job["image"]["key"] == f"inputs/{job['id']}/image.png"
    stored = aws.client("s3").get_object(Bucket=aws.bucket, Key=job["image"]["key"])
    assert stored["ContentType"] == "image/png"
    assert aws.executions() == [job["id"]]


def test_api_create_malformed_json_is_400(api: Any, aws: Aws) -> None:
    response = api.handler(create_event(aws, raw="{not json"), LambdaContext())
    assert response["statusCode"] == 400
    assert problem(response)["type"] == "malformed_json"


def test_api_create_without_key_is_401(api: Any, aws: Aws) -> None:
    sample = create_event(aws)
    del sample["headers"]["authorization"]
    response = api.handler(sample, LambdaContext())
    assert response["statusCode"] == 401
    assert problem(response)["type"] == "unauthorized"


def test_api_create_with_unknown_key_is_401(api: Any, aws: Aws) -> None:
    response = api.handler(create_event(aws, key="mg_" + "x" * 43), LambdaContext())
    assert response["statusCode"] == 401


def test_api_create_without_prompt_is_422_missing_prompt(api: Any, aws: Aws) -> None:
    body = sample_body()
    del body["box_prompts"]
    response = api.handler(create_event(aws, body), LambdaContext())
    assert response["statusCode"] == 422
    assert problem(response)["type"] == "missing_prompt"


def test_api_create_unknown_field_is_422_with_its_location(api: Any, aws: Aws) -> None:
    response = api.handler(create_event(aws, {**sample_body(), "colour": "red"}), LambdaContext())
    assert response["statusCode"] == 422
    found = problem(response)
    assert found["type"] == "invalid_request"
    assert found["errors"][0]["loc"] == "colour"


def test_api_create_non_image_data_uri_is_422_invalid_image(api: Any, aws: Aws) -> None:
    body = {**sample_body(), "image": "data:image/png;base64," + base64.b64encode(b"hello").decode()}
    response = api.handler(create_event(aws, body), LambdaContext())
    assert response["statusCode"] == 422
    assert problem(response)["type"] == "invalid_image"
    assert aws.executions() == []


def test_api_create_box_outside_the_image_is_422(api: Any, aws: Aws) -> None:
    body = {**sample_body(), "box_prompts": [{"x_min": 0, "y_min": 0, "x_max": 65, "y_max": 10}]}
    response = api.handler(create_event(aws, body), LambdaContext())
    assert response["statusCode"] == 422
    assert problem(response)["errors"][0]["loc"] == "box_prompts.0"


def test_api_create_public_webhook_url_on_local_stack_is_422_url_not_allowed(api: Any, aws: Aws) -> None:
    body = {**sample_body(), "webhook_url": "https://example.com/hook"}
    response = api.handler(create_event(aws, body), LambdaContext())
    assert response["statusCode"] == 422
    assert problem(response)["type"] == "url_not_allowed"


def test_api_create_body_over_5_mb_is_413(api: Any, aws: Aws) -> None:
    big = "data:image/png;base64," + base64.b64encode(image_bytes() + b"\0" * (5 * 1024 * 1024)).decode()
    response = api.handler(create_event(aws, {**sample_body(), "image": big}), LambdaContext())
    assert response["statusCode"] == 413
    assert "uploads/" in problem(response)["detail"]


def test_api_get_returns_own_job(api: Any, aws: Aws) -> None:
    created = json.loads(api.handler(create_event(aws), LambdaContext())["body"])
    sample = event("api_get_segmentation")
    sample["headers"]["authorization"] = f"Bearer {aws.api_key}"
    sample["rawPath"] = sample["requestContext"]["http"]["path"] = f"/v1/segmentations/{created['id']}"
    sample["pathParameters"] = {"id": created["id"]}
    response = api.handler(sample, LambdaContext())
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["id"] == created["id"]


def test_api_get_other_tenants_job_is_404(api: Any, aws: Aws) -> None:
    created = json.loads(api.handler(create_event(aws), LambdaContext())["body"])
    other = clients.tenant_store().create_key("other")
    sample = event("api_get_segmentation")
    sample["headers"]["authorization"] = f"Bearer {other.key}"
    sample["rawPath"] = sample["requestContext"]["http"]["path"] = f"/v1/segmentations/{created['id']}"
    response = api.handler(sample, LambdaContext())
    assert response["statusCode"] == 404
    assert problem(response)["type"] == "not_found"


def test_api_openapi_lists_the_create_body_schema(api: Any, aws: Aws) -> None:
    sample = event("api_get_segmentation")
    sample["rawPath"] = sample["requestContext"]["http"]["path"] = "/openapi.json"
    schema = json.loads(api.handler(sample, LambdaContext())["body"])
    assert schema["openapi"].startswith("3.1")
    body = schema["paths"]["/v1/segmentations"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/SegmentationCreate"}
    assert {"SegmentationCreate", "Point", "Box"} <= set(schema["components"]["schemas"])


def _mask_event(job_id: str, query: str = "", key: str | None = None) -> dict[str, Any]:
    sample = event("api_get_segmentation")
    path = f"/v1/segmentations/{job_id}/masks/0"
    sample["rawPath"] = sample["requestContext"]["http"]["path"] = path
    sample["rawQueryString"] = query
    if key is None:
        del sample["headers"]["authorization"]
    else:
        sample["headers"]["authorization"] = f"Bearer {key}"
    return sample


def test_api_mask_link_with_a_bad_token_looks_like_a_missing_job(api: Any, aws: Aws) -> None:
    created = json.loads(api.handler(create_event(aws), LambdaContext())["body"])
    existing = api.handler(_mask_event(created["id"], "token=1.x"), LambdaContext())
    missing = api.handler(_mask_event("seg_01KAXJ2N3Y8Z4Q6R7S9T0V1W2X", "token=1.x"), LambdaContext())
    assert existing["statusCode"] == missing["statusCode"] == 404
    assert problem(existing)["detail"] == problem(missing)["detail"]


def test_api_unknown_method_is_a_405_problem(api: Any, aws: Aws) -> None:
    sample = create_event(aws)
    sample["requestContext"]["http"]["method"] = "PUT"
    response = api.handler(sample, LambdaContext())
    assert response["statusCode"] == 405
    assert (
        problem(response)["type"] == "method_not_allowed"
        and problem(response)["title"] == "Method not allowed"
    )
    assert problem(response)["detail"] == "PUT is not allowed here; use GET, POST"
    headers = {k.lower(): v for k, v in response["headers"].items()}
    assert headers["allow"] == "GET, POST"


def test_api_rotate_secret_signs_with_both_secrets_for_a_day(api: Any, aws: Aws, receiver: Any) -> None:
    from standardwebhooks import Webhook

    from maskgate.contracts.job import JobStatus
    from tests.integration.seeds import queued_job

    old = aws.secret
    sample = event("api_get_segmentation")
    sample["rawPath"] = sample["requestContext"]["http"]["path"] = "/v1/webhook-secret/rotate"
    sample["requestContext"]["http"]["method"] = "POST"
    sample["headers"]["authorization"] = f"Bearer {aws.api_key}"
    rotated = json.loads(api.handler(sample, LambdaContext())["body"])
    new = rotated["webhook_secret"]
    assert new.startswith("whsec_") and new != old
    assert clients.tenant_store().webhook_secrets(aws.tenant) == [new, old]
    job = queued_job(aws, status=JobStatus.SUCCEEDED)
    load_handler("notify").handler({"job_id": job.id}, LambdaContext())
    [request] = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        Webhook(secret).verify(request.content, dict(request.headers))


def test_api_create_accepts_a_data_uri_far_longer_than_a_url(api: Any, aws: Aws) -> None:
    import io
    import os as _os

    from PIL import Image

    noisy = Image.frombytes("RGB", (160, 120), _os.urandom(160 * 120 * 3))
    buffer = io.BytesIO()
    noisy.save(buffer, "PNG")
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    assert len(uri) > 50_000
    response = api.handler(create_event(aws, {**sample_body(), "image": uri}), LambdaContext())
    assert response["statusCode"] == 202


def test_api_create_refuses_an_image_url_over_2048_characters(api: Any, aws: Aws) -> None:
    body = {**sample_body(), "image": "http://127.0.0.1/" + "a" * 2100}
    response = api.handler(create_event(aws, body), LambdaContext())
    assert response["statusCode"] == 422 and problem(response)["errors"][0]["loc"] == "image"
