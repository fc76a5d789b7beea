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
    "cache": None,
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
    "queue_position": None,
    "estimated_start": None,
}
# A job waiting for a WaveSpeed slot: every slot of the tier is taken, two jobs go before it.
QUEUED_JOB_EXAMPLE: dict[str, Any] = {
    **JOB_EXAMPLE,
    "status": "queued",
    "prediction_id": None,
    "masks": [],
    "deliveries": [],
    "updated_at": "2026-12-07T01:02:03Z",
    "finished_at": None,
    "queue_position": 3,
    "estimated_start": "2026-12-07T01:02:18Z",
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
    402: [
        (
            "spend_cap_reached",
            "the job's price ($0.005) does not fit under the tenant's monthly spend cap of $50.0 "
            "($49.998 spent and reserved in 2026-12)",
            [],
        )
    ],
    429: [
        ("rate_limited", "tenant acme is over its 600 requests per minute", []),
        ("quota_exceeded", "over the tenant's quota of 10 jobs in flight", []),
    ],
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
# problem types that carry members of their own (RFC 9457 extensions), by type
PROBLEM_EXTENSIONS: dict[str, dict[str, Any]] = {
    "spend_cap_reached": {"cap_usd": 50.0, "month_spend_usd": 49.998, "month": "2026-12"},
}
USAGE_EXAMPLE: dict[str, Any] = {
    "object": "usage",
    "tenant": "acme",
    "month": "2026-12",
    "jobs": {
        "accepted": 1204,
        "submitted": 1180,
        "released": 24,
        "succeeded": 1171,
        "failed": 31,
        "canceled": 2,
        "cache_hits": 0,
        "quota_rejections": 3,
        "cap_rejections": 0,
    },
    "wavespeed_usd": 5.9,
    "reserved_usd": 0.0,
    "aws_estimated_usd": 0.1121,
    "cache_saved_usd": 0.0,
    "cap_usd": 50.0,
    "remaining_usd": 44.1,
    "spend_threshold": 0.8,
    "threshold_notified_at": None,
    "limits": {
        "max_jobs_in_flight": 10,
        "jobs_per_minute": 60,
        "images_per_day": 0,
        "monthly_spend_cap_usd": 50.0,
        "spend_threshold": 0.8,
        "cache_enabled": True,
    },
}
DRY_RUN_EXAMPLE: dict[str, Any] = {
    "object": "dry_run",
    "model": "wavespeed-ai/sam3-image",
    "price_usd": 0.005,
    "would_run": True,
    "refused_by": None,
    "detail": None,
    "retry_after": None,
    "cap_usd": 50.0,
    "month_spend_usd": 5.9,
    "remaining_usd": 44.1,
    "cache": "unknown",
}
