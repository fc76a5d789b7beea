"""Example requests, shown in the OpenAPI document beside the models they fit."""

from __future__ import annotations

from typing import Any

CREATE_EXAMPLE: dict[str, Any] = {
    "image": "https://example.com/cat.png",
    "prompt": "the cat",
    "box_prompts": [{"x_min": 10, "y_min": 20, "x_max": 200, "y_max": 180}],
    "output_format": "png",
    "webhook_url": "https://example.com/hooks/maskgate",
    "metadata": {"order": "1234"},
}
UPLOAD_EXAMPLE: dict[str, Any] = {
    "filename": "cat.png",
    "content_type": "image/png",
    "prompt": "the cat",
    "webhook_url": "https://example.com/hooks/maskgate",
}
