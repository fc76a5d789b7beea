"""Examples for the OpenAPI document: a request, a finished job, a page, a webhook endpoint, and a
problem of every type."""

from __future__ import annotations

from typing import Any

from maskgate.contracts.examples import CREATE_EXAMPLE

JOB_ID = "seg_01M9703JXKQ7QEQEC3Y5G4KPMJ"
JOB_EXAMPLE: dict[str, Any] = {
    "id": JOB_ID,
    "object": "segmentation",
    "status": "succeeded",
    "source": "api",
    "request": {k: v for k, v in CREATE_EXAMPLE.items() if k != "image"},
    "image": {"url": "https://example.com/cat.png"},
    "prediction_id": "2b1f3c0e9a6d4c7e8f5a1b2c3d4e5f60",
    "masks": [
        {
            "index": 0,
            "url": "https://maskgate-123456789012-us-east-1.s3.amazonaws.com/results/…/mask_0.png?X-Amz-…",
            "format": "png",
            "content_type": "image/png",
            "size": 14241,
            "width": 320,
            "height": 240,
        }
    ],
    "found": True,
    "instances": [
        {
            "index": 0,
            "mask_index": 0,
            "bbox": [10, 20, 190, 160],
            "area": 30400,
            "centroid": [105.0, 100.0],
            "rle": {
                "size": [240, 320],
                "counts": "d[2P5`2" + "0" * 377 + "\\Sl0",
            },
            "polygons": [[10.0, 20.0, 200.0, 20.0, 200.0, 180.0, 10.0, 180.0]],
        }
    ],
    "results": {
        "outputs": ["masks", "instances", "coco"],
        "instance_count": 1,
        "instances_url": "https://maskgate-123456789012-us-east-1.s3.amazonaws.com/results/…/instances.json?X-Amz-…",
        "coco_url": "https://maskgate-123456789012-us-east-1.s3.amazonaws.com/results/…/annotations.coco.json?X-Amz-…",
        "unavailable": None,
    },
    "error": None,
    "deliveries": [
        {
            "webhook_id": f"msg_{JOB_ID[4:]}_succeeded",
            "event": "segmentation.succeeded",
            "attempt": 1,
            "at": "2026-12-07T01:02:05Z",
            "url": "https://example.com/hooks/maskgate",
            "status_code": 204,
            "latency_ms": 41,
            "outcome": "delivered",
        }
    ],
    "created_at": "2026-12-07T01:02:03Z",
    "updated_at": "2026-12-07T01:02:05Z",
    "finished_at": "2026-12-07T01:02:05Z",
}
ENDPOINT_ID = "ep_3f9a1c0e7b2d4a65"
ENDPOINT_CREATE_EXAMPLE: dict[str, Any] = {
    "url": "https://example.com/hooks/maskgate",
    "description": "order pipeline",
    "event_types": ["segmentation.succeeded", "segmentation.failed"],
    "rate_limit_per_second": 10,
    "metadata": {"team": "vision"},
}
ENDPOINT_UPDATE_EXAMPLE: dict[str, Any] = {"enabled": True, "event_types": []}
ENDPOINT_EXAMPLE: dict[str, Any] = {
    "id": ENDPOINT_ID,
    "object": "webhook_endpoint",
    **ENDPOINT_CREATE_EXAMPLE,
    "enabled": True,
    "signature": "v1",
    "public_key": None,
    "created_at": "2026-12-07T01:02:03Z",
    "updated_at": "2026-12-07T01:02:03Z",
    "disabled_at": None,
    "disabled_reason": None,
}
ENDPOINT_WHSEC = "whsec_9oLl9UUpdesc2og1TKGyvkoE/Co30IZCR6ecG9fHnDU="
ENDPOINT_WHPK = "whpk_A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="  # a v1a endpoint's public key
# status -> (type, detail, errors) of every problem the API answers with that status
PROBLEM_EXAMPLES: dict[int, list[tuple[str, str, list[dict[str, str]]]]] = {
    400: [
        (
            "malformed_json",
            "the request body is not valid JSON: Expecting value: line 1 column 1 (char 0)",
            [],
        )
    ],
    401: [("unauthorized", "send the API key as 'Authorization: Bearer <key>'", [])],
    404: [("not_found", f"no job {JOB_ID}", [])],
    405: [("method_not_allowed", "Method Not Allowed", [])],
    409: [
        ("conflict", f"job {JOB_ID} already finished (succeeded); it cannot be canceled", []),
    ],
    413: [
        (
            "payload_too_large",
            "request bodies are limited to 5,242,880 bytes; send a larger image with POST /v1/uploads "
            "(a presigned upload of up to 20 MB) or put it in the bucket under uploads/",
            [],
        )
    ],
    422: [
        (
            "invalid_request",
            "the request payload is invalid",
            [{"loc": "box_prompts.0", "msg": "a box needs x_min < x_max and y_min < y_max"}],
        ),
        ("missing_prompt", "give at least one of prompt, point_prompts or box_prompts", []),
        ("invalid_image", "the image is not a PNG, JPEG, WEBP, GIF, BMP or TIFF file", []),
        ("image_too_large", "the image is 31,457,280 bytes; images may be at most 20,971,520", []),
        ("url_not_allowed", "the webhook URL resolves to a private address", []),
    ],
    429: [("rate_limited", "tenant acme is over its 600 requests per minute", [])],
    500: [("internal_error", "an internal error occurred; it has been logged", [])],
}
ENDPOINT_STATS_EXAMPLE: dict[str, Any] = {
    "attempts": 140,
    "success_rate": 0.9857,
    "latency_p50_ms": 84,
    "latency_p95_ms": 310,
    "last_error": "503",
    "state": "healthy",
}
ATTEMPT_EXAMPLE: dict[str, Any] = {
    "at": "2026-12-07T01:02:05Z",
    "webhook_id": "msg_01M9703JXKQ7QEQEC3Y5G4KPMJ_succeeded",
    "event": "segmentation.succeeded",
    "job_id": "seg_01M9703JXKQ7QEQEC3Y5G4KPMJ",
    "attempt": 1,
    "status": "failed",
    "status_code": 503,
    "error": None,
    "latency_ms": 212,
    "response": "upstream unavailable\\n",
    "next_attempt_at": "2026-12-07T01:02:10Z",
}
