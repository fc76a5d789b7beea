"""Hostile inputs, as properties, through the real handlers on moto.

The API: whatever the body of ``POST /v1/segmentations`` or ``POST /v1/uploads``, the answer is
never a 5xx, and every refusal is a problem document with a documented error type. The upload
function: whatever the records of a well-formed S3 event say, it never raises; each record is
ignored or ends as a job that is queued, or failed with a typed request error.
"""

from __future__ import annotations

import base64
import io
import json
import string
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote_plus

from hypothesis import HealthCheck, given, settings
from hypothesis import event as note_event
from hypothesis import strategies as st
from PIL import Image

from maskgate import clients
from maskgate.contracts.job import JobStatus
from maskgate.ids import new_job_id
from tests.integration.conftest import Aws
from tests.support.artefacts import LambdaContext, event, load_handler
from tests.support.fakes import image_bytes
from tests.support.images import png_header

MOTO = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
API_TYPES = {
    "invalid_request",
    "missing_prompt",
    "invalid_image",
    "image_too_large",
    "url_not_allowed",
    "malformed_json",
    "payload_too_large",
}
JOB_ERRORS = {"invalid_request", "missing_prompt", "invalid_image", "image_too_large", "url_not_allowed"}


def _encoded(fmt: str, size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buffer, fmt)
    return buffer.getvalue()


VALID = [image_bytes(), _encoded("JPEG", (40, 30)), _encoded("WEBP", (40, 30)), _encoded("GIF", (40, 30))]
image_files = st.one_of(
    st.sampled_from(VALID),
    st.sampled_from(VALID),
    st.sampled_from(VALID),
    st.sampled_from(VALID).flatmap(lambda d: st.integers(0, len(d) - 1).map(lambda cut: d[:cut])),
    st.sampled_from(VALID).flatmap(lambda d: st.binary(min_size=1, max_size=64).map(lambda tail: d + tail)),
    st.builds(png_header, st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1)),
    st.binary(max_size=256),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
numbers = st.one_of(
    st.integers(-10, 10_000), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3)
)
points = st.lists(
    st.fixed_dictionaries({"x": numbers, "y": numbers}, optional={"label": json_values | st.integers(-1, 2)}),
    max_size=3,
)
boxes = st.lists(
    st.fixed_dictionaries({"x_min": numbers, "y_min": numbers, "x_max": numbers, "y_max": numbers}),
    max_size=3,
)
urls = st.one_of(
    st.sampled_from(
        [
            "http://127.0.0.1:9/cat.png",
            "https://user:pw@127.0.0.1/cat.png",
            "https://10.0.0.1/x.png",
            "ftp://127.0.0.1/x",
            "https://0x7f.1/x.png",
            "javascript:alert(1)",
            "https://[::1]:99999/x",
        ]
    ),
    st.text(max_size=40),
)
data_uris = image_files.map(lambda data: "data:image/png;base64," + base64.b64encode(data).decode())
images = st.one_of(
    data_uris,
    data_uris,
    st.sampled_from(["data:image/png;base64,!!!", "data:,", "data:image/png,raw", "data:image/png;base64,"]),
    urls,
)
prompt_fields: dict[str, st.SearchStrategy[Any]] = {
    "prompt": st.one_of(st.text(max_size=30), st.text(min_size=1001, max_size=1010), json_values),
    "point_prompts": points | json_values,
    "box_prompts": boxes | json_values,
    "apply_mask": json_values,
    "output_format": st.sampled_from(["png", "jpeg", "webp", "gif", ""]) | json_values,
    "webhook_url": urls | json_values,
    "metadata": st.dictionaries(st.text(max_size=45), st.text(max_size=30) | json_values, max_size=18),
    "colour": json_values,  # an unknown field
}
# one hostile field at a time on an otherwise valid request, so the examples reach the image checks
one_field = st.sampled_from(sorted(prompt_fields)).flatmap(
    lambda name: prompt_fields[name].map(lambda v: {name: v})
)
near_valid = st.builds(
    lambda image, extra, drop: {
        k: v for k, v in {"prompt": "the cat", "image": image, **extra}.items() if k != drop
    },
    images,
    st.just({}) | one_field,
    st.sampled_from([None, None, "prompt"]),
)
segmentation_bodies = st.one_of(
    near_valid, st.fixed_dictionaries({}, optional={**prompt_fields, "image": images | json_values})
)
upload_fields = st.fixed_dictionaries(
    {},
    optional={
        **prompt_fields,
        "image": images,
        "filename": st.text(max_size=210) | json_values,
        "content_type": st.sampled_from(["image/png", "image/svg+xml", "text/html", ""]) | json_values,
    },
)
upload_near_valid = st.builds(
    lambda name, extra: {"prompt": "the cat", "filename": name, "content_type": "image/png", **extra},
    st.sampled_from(["cat.png", "my cat é.png", "${filename}", "a{b}$c"]) | st.text(max_size=210),
    st.just({}) | one_field,
)
upload_bodies = st.one_of(upload_near_valid, upload_fields)


def _raw(body: Any) -> str:
    return body if isinstance(body, str) else json.dumps(body)


raw_bodies = st.one_of(
    st.text(max_size=50),  # not JSON, mostly
    json_values.map(json.dumps),
    st.just('{"prompt": "' + "\\ud800" + '"}'),  # a lone surrogate
    st.just("[" * 5000 + "]" * 5000),  # deep nesting
)


def call_api(aws: Aws, path: str, body: str) -> dict[str, Any]:
    sample = event("api_create_segmentation")
    sample["routeKey"] = f"POST {path}"
    sample["rawPath"] = sample["requestContext"]["http"]["path"] = path
    sample["headers"]["authorization"] = f"Bearer {aws.api_key}"
    sample["body"] = body
    sample["headers"]["content-length"] = str(len(body.encode()))
    return dict(load_handler("api").handler(sample, LambdaContext()))


def assert_documented(response: dict[str, Any]) -> None:
    status = response["statusCode"]
    assert status < 500, response["body"]
    if status >= 400:
        assert response["headers"]["content-type"].startswith("application/problem+json")
        found = json.loads(response["body"])
        assert found["type"] in API_TYPES and found["status"] == status
        note_event(found["type"])  # --hypothesis-show-statistics shows what the examples reached
    else:
        note_event(str(status))
        assert status in (201, 202)


@MOTO
@given(body=st.one_of(segmentation_bodies.map(_raw), raw_bodies))
def test_create_segmentation_never_answers_5xx_or_an_undocumented_problem(aws: Aws, body: str) -> None:
    assert_documented(call_api(aws, "/v1/segmentations", body))


@MOTO
@given(body=st.one_of(upload_bodies.map(_raw), raw_bodies))
def test_create_upload_never_answers_5xx_or_an_undocumented_problem(aws: Aws, body: str) -> None:
    response = call_api(aws, "/v1/uploads", body)
    assert_documented(response)
    if response["statusCode"] == 201:
        job = json.loads(response["body"])
        assert job["upload"]["fields"]["key"] == f"uploads/{aws.tenant}/{job['id']}/image"


# --- S3 events -----------------------------------------------------------------------------------

key_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60).filter(
    lambda k: len(("uploads/" + k).encode()) <= 1024
)
metadata_json = st.one_of(
    st.just(json.dumps({"prompt": "the cat"})),
    st.just(json.dumps({"box_prompts": [{"x_min": 0, "y_min": 0, "x_max": 500, "y_max": 5}]})),
    st.just(json.dumps({"prompt": "x", "webhook_url": "https://example.com/h", "metadata": {"a": "b"}})),
    st.text(alphabet=string.printable.strip() + " ", max_size=60),
    json_values.map(lambda v: json.dumps(v, ensure_ascii=True)),
)
event_times = st.one_of(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(UTC)).map(
        lambda t: t.isoformat().replace("+00:00", "Z")
    ),
    st.datetimes().map(lambda t: t.isoformat()),  # no time zone
    st.text(max_size=10),
)


@st.composite
def uploads(draw: st.DrawFn, registered: str) -> tuple[str, bytes | None, dict[str, str]]:
    """A key (random, job-shaped, or the registered job's), maybe an object there, its metadata."""
    tail = draw(key_text)
    job_id = draw(st.sampled_from([registered, new_job_id(datetime.now(UTC))]))
    key = draw(
        st.sampled_from(
            [
                f"uploads/{tail}",
                f"uploads/{tail}/{job_id}/image",
                f"uploads/default/{job_id}/{tail}",
                f"uploads/default/{job_id}/image",
                f"elsewhere/{tail}",
            ]
        )
    )
    body = draw(st.none() | image_files | image_files)
    metadata = draw(
        st.just({"maskgate": json.dumps({"prompt": "the cat"})})
        | st.dictionaries(st.sampled_from(["maskgate", "other"]), metadata_json, max_size=2)
    )
    return key, body, metadata


def record_for(draw: st.DrawFn, aws: Aws, key: str) -> Any:
    encoded = draw(st.sampled_from([quote_plus(key, safe="/"), key, key + "%", key + "%zz"]))
    obj: dict[str, Any] = {"key": encoded}
    optional = {
        "size": st.integers(-1, 2**40) | json_values,
        "eTag": st.text(max_size=34),
        "sequencer": st.text(string.hexdigits, max_size=20),
        "versionId": st.text(max_size=10),
    }
    obj.update(draw(st.fixed_dictionaries({}, optional=optional)))
    record = {
        "eventVersion": "2.1",
        "eventSource": draw(st.sampled_from(["aws:s3", "aws:s3", "aws:sqs", ""])),
        "eventTime": draw(event_times),
        "eventName": draw(
            st.sampled_from(["ObjectCreated:Put", "ObjectCreated:Post", "ObjectRemoved:Delete"])
        ),
        "s3": {"bucket": {"name": aws.bucket}, "object": obj},
    }
    return draw(st.sampled_from([record, record, {**record, "s3": "broken"}]) | json_values)


@st.composite
def s3_events(draw: st.DrawFn, aws: Aws, registered: str) -> dict[str, Any]:
    records = []
    for _ in range(draw(st.integers(0, 3))):
        key, body, metadata = draw(uploads(registered))
        if body is not None and len(key.encode()) <= 1024:
            aws.client("s3").put_object(Bucket=aws.bucket, Key=key, Body=body, Metadata=metadata)
        records.append(record_for(draw, aws, key))
    if not records and draw(st.booleans()):
        return {"Service": "Amazon S3", "Event": draw(st.sampled_from(["s3:TestEvent", "other"]))}
    return {"Records": records}


@settings(MOTO, max_examples=60)
@given(data=st.data())
def test_on_upload_never_raises_for_a_well_formed_event(aws: Aws, data: st.DataObject) -> None:
    api = load_handler("api")
    reg = event("api_create_segmentation")
    reg["routeKey"] = "POST /v1/uploads"
    reg["rawPath"] = reg["requestContext"]["http"]["path"] = "/v1/uploads"
    reg["headers"]["authorization"] = f"Bearer {aws.api_key}"
    reg["body"] = json.dumps({"filename": "a.png", "content_type": "image/png", "prompt": "x"})
    reg["headers"]["content-length"] = str(len(reg["body"]))
    registered = json.loads(api.handler(reg, LambdaContext())["body"])["id"]

    sample = data.draw(s3_events(aws, registered))
    result = load_handler("on_upload").handler(sample, LambdaContext())

    assert isinstance(result["jobs"], list)
    if "ignored" in result:
        assert result["jobs"] == []
        note_event("ignored")
    for found in result["jobs"]:
        job = clients.job_store().get(found["id"])
        note_event(job.error.type if job.error else job.status.value)
        assert job.status in (JobStatus.QUEUED, JobStatus.FAILED)
        if job.status is JobStatus.FAILED:
            assert job.error is not None and job.error.type in JOB_ERRORS, job.error
        else:
            # a queued job runs on a validated copy of its image, never on the upload's key
            assert job.image is not None and str(job.image.key).startswith(f"inputs/{job.id}/")
            assert job.image.width and job.image.height


def test_a_redelivered_hostile_event_maps_to_the_same_jobs(aws: Aws) -> None:
    aws.client("s3").put_object(
        Bucket=aws.bucket, Key="uploads/x", Body=b"\x89PNG\r\n\x1a\n", Metadata={"maskgate": "{"}
    )
    sample = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "eventTime": (datetime.now(UTC) - timedelta(seconds=1)).isoformat(),
                "s3": {"bucket": {"name": aws.bucket}, "object": {"key": "uploads/x", "eTag": "e"}},
            },
            {"eventSource": "aws:s3"},
            7,
        ]
    }
    handler = load_handler("on_upload").handler
    first, second = handler(sample, LambdaContext()), handler(sample, LambdaContext())
    assert first["jobs"] == second["jobs"] and len(first["jobs"]) == 1
    assert aws.executions() == [first["jobs"][0]["id"]]
