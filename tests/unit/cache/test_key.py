"""The result cache's key: equal for requests WaveSpeed cannot tell apart, different for any that it can."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field

from maskgate.cache.key import job_key, request_key
from maskgate.cache.reuse import NOT_RESULTS, result_fields
from maskgate.contracts.job import ImageLocation, Job, JobStatus, Mask
from maskgate.contracts.prompts import Prompts

DIGEST = hashlib.sha256(b"an image").hexdigest()
pixels = st.integers(min_value=0, max_value=4000)
points = st.lists(
    st.fixed_dictionaries({"x": pixels, "y": pixels, "label": st.sampled_from([0, 1])}), max_size=4
)
boxes = st.lists(
    st.tuples(pixels, pixels, st.integers(1, 500), st.integers(1, 500)).map(
        lambda b: {"x_min": b[0], "y_min": b[1], "x_max": b[0] + b[2], "y_max": b[1] + b[3]}
    ),
    max_size=4,
)
texts = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40
).filter(lambda t: t.strip())


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """A valid request body as a caller might write it (some fields omitted, defaults implied)."""
    body: dict[str, Any] = {}
    text = draw(st.none() | texts)
    if text is not None:
        body["prompt"] = text
    body["point_prompts"] = draw(points)
    body["box_prompts"] = draw(boxes)
    if text is None and not body["point_prompts"] and not body["box_prompts"]:
        body["prompt"] = "the cat"
    for name, values in (
        ("apply_mask", st.booleans()),
        ("output_format", st.sampled_from(["png", "jpeg", "webp"])),
    ):
        if draw(st.booleans()):
            body[name] = draw(values)
    return body


def key_of(body: dict[str, Any], digest: str = DIGEST) -> str:
    return request_key(Prompts.model_validate(body), image_sha256=digest)


def respelled(body: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The same request written differently: other field order, defaults explicit, numbers as floats,
    blanks around the text, and everything WaveSpeed never sees changed."""
    same: dict[str, Any] = {"apply_mask": False, "output_format": "png", **body}
    same["point_prompts"] = [
        {k: float(v) if k != "label" else v for k, v in p.items()} for p in body["point_prompts"]
    ]
    same["box_prompts"] = [{k: float(v) for k, v in b.items()} for b in body["box_prompts"]]
    if "prompt" in same:
        same["prompt"] = f"  {same['prompt'].strip()}\n"
    same |= {
        "webhook_url": "https://example.com/hook",
        "metadata": {"order": "9"},
        "cache": rng.random() < 0.5,
    }
    items = list(same.items())
    rng.shuffle(items)
    return json.loads(json.dumps(dict(items)))


@settings(max_examples=200)
@given(requests(), st.randoms(use_true_random=False))
def test_request_key_is_the_same_for_the_same_request_however_it_is_written(
    body: dict[str, Any], rng: random.Random
) -> None:
    assert key_of(respelled(body, rng)) == key_of(body)


def changes(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Requests that differ from ``body`` in one thing WaveSpeed sees."""
    out = [
        {**body, "apply_mask": not body.get("apply_mask", False)},
        {**body, "output_format": "webp" if body.get("output_format", "png") != "webp" else "png"},
        {**body, "prompt": (body.get("prompt") or "the cat").strip() + " and the dog"},
        {**body, "box_prompts": [*body["box_prompts"], {"x_min": 1, "y_min": 2, "x_max": 3, "y_max": 4}]},
        {**body, "point_prompts": [*body["point_prompts"], {"x": 5, "y": 6, "label": 0}]},
    ]
    if body["point_prompts"]:
        first = body["point_prompts"][0]
        moved = {**first, "x": first["x"] + 1}
        flipped = {**first, "label": 1 - first["label"]}
        out += [{**body, "point_prompts": [moved, *body["point_prompts"][1:]]}]
        out += [{**body, "point_prompts": [flipped, *body["point_prompts"][1:]]}]
    if body["box_prompts"] != body["box_prompts"][::-1]:  # WaveSpeed may read boxes in order
        out += [{**body, "box_prompts": body["box_prompts"][::-1]}]
    return out


@settings(max_examples=200)
@given(requests())
def test_request_key_changes_with_anything_that_changes_the_output(body: dict[str, Any]) -> None:
    keys = {key_of(changed) for changed in changes(body)}
    assert key_of(body) not in keys
    assert len(keys) == len(changes(body))


@given(requests(), st.binary(min_size=1, max_size=64))
def test_request_key_changes_with_the_image_bytes(body: dict[str, Any], data: bytes) -> None:
    other = hashlib.sha256(data + b"!").hexdigest()
    assert key_of(body, hashlib.sha256(data).hexdigest()) != key_of(body, other)


def job(image: ImageLocation, request: Prompts | None = None, **fields: Any) -> Job:
    at = datetime(2026, 12, 7, tzinfo=UTC)
    return Job(
        id="seg_01M9703JXKQ7QEQEC3Y5G4KPMJ",
        tenant="t",
        status=JobStatus.QUEUED,
        source="api",
        request=request or Prompts(prompt="the cat"),
        image=image,
        created_at=at,
        updated_at=at,
        **fields,
    )


def test_job_key_is_none_where_the_cache_does_not_apply() -> None:
    held = ImageLocation(bucket="b", key="inputs/x/image.png", sha256=DIGEST)
    assert job_key(job(held)) == request_key(Prompts(prompt="the cat"), image_sha256=DIGEST)
    assert job_key(job(ImageLocation(url="https://example.com/cat.png"))) is None
    assert job_key(job(held, Prompts(prompt="the cat", cache=False))) is None


class LaterJob(Job):
    """A job as a later step might extend it, with a result field this module has never heard of."""

    instances: list[dict[str, Any]] = Field(default_factory=list)
    found: bool | None = None


def test_result_fields_take_every_result_and_move_its_keys_to_the_new_job() -> None:
    source_id, new_id = "seg_01M9703JXKQ7QEQEC3Y5G4KPMJ", "seg_01M9703JXKQ7QEQEC3Y5G4KPMK"
    mask = Mask(
        index=0, key=f"results/{source_id}/mask_0.png", format="png", content_type="image/png", size=9
    )
    source = LaterJob.model_validate(
        {
            **job(ImageLocation(bucket="b", key=f"inputs/{source_id}/image.png", sha256=DIGEST)).model_dump(),
            "status": JobStatus.SUCCEEDED,
            "masks": [mask],
            "prediction_id": "p1",
            "cache": "miss",
            "price_micros": 5000,
            "charge": "spent",
            "quota_taken": True,
            "instances": [{"index": 0, "mask_index": 0, "area": 12}],
            "found": True,
        }
    )
    fields = result_fields(source, new_id)
    assert set(fields) == {"masks", "instances", "found"}
    assert fields["masks"][0]["key"] == f"results/{new_id}/mask_0.png"
    assert fields["instances"] == [{"index": 0, "mask_index": 0, "area": 12}] and fields["found"] is True
    assert not NOT_RESULTS & set(fields)
