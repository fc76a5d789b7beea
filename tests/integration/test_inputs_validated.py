"""Inputs are what was validated, on moto: uploads are read whole and copied to inputs/ pinned to
the ETag that was read, registered keys are the server's, a key naming a job it was not registered
for is refused, S3's test event is ignored, and crash points leave re-runs that finish the job."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from maskgate import clients, crashpoints
from maskgate.contracts.job import JobStatus
from maskgate.observability import metrics
from maskgate.settings import get_settings
from tests.integration.conftest import Aws, problem
from tests.integration.test_api import create_event, sample_body
from tests.integration.test_uploads import register, uploaded
from tests.support import iam
from tests.support.artefacts import LambdaContext, event, load_handler
from tests.support.fakes import image_bytes
from tests.support.images import png_header

REQUEST = {"maskgate": json.dumps({"prompt": "the cat"})}


class Killed(BaseException):
    """What the runtime does to an invocation at a crash point: nothing after it runs."""


@pytest.fixture
def crash_once() -> Iterator[Callable[[str], list[str]]]:
    """Arm one crash point: the first invocation that reaches it is killed there."""
    reached: list[str] = []

    def arm(point: str) -> list[str]:
        def hook(name: str) -> None:
            reached.append(name)
            if name == point and reached.count(point) == 1:
                raise Killed(point)

        crashpoints.install(hook)
        return reached

    yield arm
    crashpoints.install(None)


def s3_event(aws: Aws, key: str, size: int = 0) -> dict[str, Any]:
    sample = event("on_upload")
    record = sample["Records"][0]["s3"]
    record["bucket"]["name"] = aws.bucket
    record["object"].update({"key": key.replace(" ", "+"), "size": size})
    return sample


def on_upload(sample: dict[str, Any]) -> dict[str, Any]:
    return dict(load_handler("on_upload").handler(sample, LambdaContext()))


def jobs_in_table(aws: Aws) -> list[str]:
    items = aws.client("dynamodb").scan(TableName=aws.table)["Items"]
    return sorted(i["pk"]["S"].removeprefix("JOB#") for i in items if i["pk"]["S"].startswith("JOB#"))


def s3_body(aws: Aws, key: str) -> bytes:
    return bytes(aws.client("s3").get_object(Bucket=aws.bucket, Key=key)["Body"].read())


# --- the validated copy --------------------------------------------------------------------------


def test_a_registered_upload_runs_on_a_pinned_copy_under_inputs(api: Any, aws: Aws) -> None:
    job = json.loads(register(api, aws)["body"])
    original = image_bytes()
    uploaded(aws, job["upload"]["fields"]["key"], original)
    stored = clients.job_store().get(job["id"])
    assert stored.image is not None
    assert (stored.image.key, stored.image.filename) == (f"inputs/{job['id']}/image.png", "my cat é.png")
    # the key is written again after acceptance: what WaveSpeed is sent does not change
    aws.client("s3").put_object(Bucket=aws.bucket, Key=job["upload"]["fields"]["key"], Body=b"swapped")
    assert s3_body(aws, stored.image.key) == original


def test_the_read_and_the_copy_are_conditional_on_the_heads_etag(aws: Aws) -> None:
    aws.client("s3").put_object(
        Bucket=aws.bucket, Key="uploads/cat.png", Body=image_bytes(), Metadata=REQUEST
    )
    etag = aws.client("s3").head_object(Bucket=aws.bucket, Key="uploads/cat.png")["ETag"]
    sent: list[dict[str, Any]] = []
    events = clients.s3().meta.events
    for operation in ("GetObject", "CopyObject"):
        events.register(f"provide-client-params.s3.{operation}", lambda params, **kw: sent.append(params))
    on_upload(s3_event(aws, "uploads/cat.png"))
    get, copy = sent
    assert get["IfMatch"] == etag
    # moto 5.2.5 ignores CopySourceIfMatch on CopyObject (it checks only ...IfNoneMatch); AWS honours it
    assert copy["CopySourceIfMatch"] == etag and str(copy["CopySource"]).endswith("uploads/cat.png")


def _rewrite_before_first_get(aws: Aws, key: str, body: bytes) -> None:
    """Write ``key`` again between the handler's HEAD and its GET (once)."""
    done: list[bool] = []

    def rewrite(**_: Any) -> None:
        if not done:
            done.append(True)
            token = iam.current_function.set(None)  # another writer, not the handler's role
            try:
                aws.client("s3").put_object(Bucket=aws.bucket, Key=key, Body=body, Metadata=REQUEST)
            finally:
                iam.current_function.reset(token)

    clients.s3().meta.events.register("before-call.s3.GetObject", rewrite)


def test_a_raw_upload_that_changes_while_it_is_read_fails_its_job(aws: Aws) -> None:
    aws.client("s3").put_object(
        Bucket=aws.bucket, Key="uploads/cat.png", Body=image_bytes(), Metadata=REQUEST
    )
    _rewrite_before_first_get(aws, "uploads/cat.png", image_bytes(size=(32, 32)))
    [found] = on_upload(s3_event(aws, "uploads/cat.png"))["jobs"]
    job = clients.job_store().get(found["id"])
    # the newer write has its own event, and so its own job: this one must not validate it
    assert job.status is JobStatus.FAILED and job.error is not None
    assert (job.error.type, "changed while it was validated" in job.error.message) == ("invalid_image", True)


def test_a_registered_upload_written_again_while_it_is_read_takes_the_newest(api: Any, aws: Aws) -> None:
    job = json.loads(register(api, aws)["body"])
    key = job["upload"]["fields"]["key"]
    aws.client("s3").put_object(Bucket=aws.bucket, Key=key, Body=image_bytes())
    newer = image_bytes(size=(32, 40))
    _rewrite_before_first_get(aws, key, newer)
    on_upload(s3_event(aws, key))
    stored = clients.job_store().get(job["id"])
    assert stored.status is JobStatus.QUEUED and stored.image is not None
    assert (stored.image.width, stored.image.height) == (32, 40)
    assert s3_body(aws, str(stored.image.key)) == newer


@pytest.mark.parametrize(
    ("body", "error"),
    [
        pytest.param(b"\x89PNG\r\n\x1a\n", "invalid_image", id="signature-only"),
        pytest.param(png_header(60_000, 60_000), "invalid_image", id="bomb-header"),
        pytest.param(image_bytes()[:-20], "invalid_image", id="truncated"),
        pytest.param(image_bytes() + b"PK\x03\x04zip", "invalid_image", id="polyglot"),
        pytest.param(image_bytes(size=(9000, 8)), "image_too_large", id="too-wide"),
        pytest.param(image_bytes(size=(4, 4)), "invalid_image", id="too-small"),
    ],
)
def test_an_upload_checked_only_by_its_header_before_is_now_refused(
    aws: Aws, body: bytes, error: str
) -> None:
    aws.client("s3").put_object(Bucket=aws.bucket, Key="uploads/x.png", Body=body, Metadata=REQUEST)
    [found] = on_upload(s3_event(aws, "uploads/x.png", len(body)))["jobs"]
    job = clients.job_store().get(found["id"])
    assert job.status is JobStatus.FAILED and job.error is not None and job.error.type == error
    listed = aws.client("s3").list_objects_v2(Bucket=aws.bucket, Prefix="inputs/")
    assert listed.get("KeyCount", 0) == 0  # nothing refused is ever copied where WaveSpeed reads


@pytest.mark.parametrize(
    ("image", "error"),
    [
        pytest.param(b"\x89PNG\r\n\x1a\n", "invalid_image", id="signature-only"),
        pytest.param(png_header(60_000, 60_000), "invalid_image", id="bomb-header"),
        pytest.param(image_bytes()[:-1], "invalid_image", id="truncated"),
        pytest.param(image_bytes(size=(8193, 8)), "image_too_large", id="too-wide"),
    ],
)
def test_a_data_uri_image_is_validated_whole(api: Any, aws: Aws, image: bytes, error: str) -> None:
    import base64

    body = {**sample_body(), "image": "data:image/png;base64," + base64.b64encode(image).decode()}
    response = api.handler(create_event(aws, body), LambdaContext())
    assert response["statusCode"] == 422 and problem(response)["type"] == error
    assert jobs_in_table(aws) == []


# --- registered keys -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["${filename}", "${key}.png", "a { b } $c.png"])
def test_a_filename_is_data_and_never_widens_the_post_policy(api: Any, aws: Aws, name: str) -> None:
    import base64

    body = {"filename": name, "content_type": "image/png", "prompt": "x"}
    job = json.loads(register(api, aws, body)["body"])
    policy = json.loads(base64.b64decode(job["upload"]["fields"]["policy"]))
    assert {"key": f"uploads/{aws.tenant}/{job['id']}/image"} in policy["conditions"]
    assert not any(
        isinstance(c, list) and c[0] == "starts-with" and c[1] == "$key" for c in policy["conditions"]
    )


@pytest.mark.parametrize(
    "name", ["a/b.png", "..\\x.png", "cat\n.png", "cat\x7f.png", "x\u202egnp.exe", " ", ""]
)
def test_a_filename_that_is_not_plain_text_is_refused(api: Any, aws: Aws, name: str) -> None:
    response = register(api, aws, {"filename": name, "content_type": "image/png", "prompt": "x"})
    assert response["statusCode"] == 422 and problem(response)["type"] == "invalid_request"
    assert problem(response)["errors"][0]["loc"] == "filename"


def test_the_content_type_stays_one_of_the_image_types(api: Any, aws: Aws) -> None:
    response = register(api, aws, {"filename": "x.html", "content_type": "text/html", "prompt": "x"})
    assert response["statusCode"] == 422 and problem(response)["errors"][0]["loc"] == "content_type"


@pytest.fixture
def refusals(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    original = metrics.add_metric

    def record(**kwargs: Any) -> None:
        if str(kwargs["name"]).endswith("Refused"):  # not the tenant's spend, counted when a job is made
            seen.append(str(kwargs["name"]))
        original(**kwargs)

    monkeypatch.setattr(metrics, "add_metric", record)
    return seen


@pytest.mark.parametrize(
    "key_for",
    [
        pytest.param(lambda tenant, job_id: f"uploads/{tenant}/{job_id}/other.png", id="other-name"),
        pytest.param(lambda tenant, job_id: f"uploads/intruder/{job_id}/image", id="other-tenant"),
        pytest.param(lambda tenant, job_id: f"uploads/{tenant}/{job_id}/image/x", id="deeper"),
    ],
)
def test_a_key_naming_a_registered_job_but_not_its_registration_is_refused(
    api: Any, aws: Aws, refusals: list[str], key_for: Callable[[str, str], str]
) -> None:
    job = json.loads(register(api, aws)["body"])
    key = key_for(aws.tenant, job["id"])
    aws.client("s3").put_object(Bucket=aws.bucket, Key=key, Body=image_bytes(), Metadata=REQUEST)
    assert on_upload(s3_event(aws, key))["jobs"] == []
    assert refusals == ["UploadRefused"]
    assert jobs_in_table(aws) == [job["id"]]  # no raw job for the default tenant either
    assert clients.job_store().get(job["id"]).status is JobStatus.AWAITING_UPLOAD
    assert aws.executions() == []


def test_a_key_naming_an_api_job_is_refused(api: Any, aws: Aws, refusals: list[str]) -> None:
    created = json.loads(api.handler(create_event(aws), LambdaContext())["body"])
    key = f"uploads/{aws.tenant}/{created['id']}/image"
    aws.client("s3").put_object(Bucket=aws.bucket, Key=key, Body=image_bytes(), Metadata=REQUEST)
    assert on_upload(s3_event(aws, key))["jobs"] == [] and "UploadRefused" in refusals
    assert jobs_in_table(aws) == [created["id"]]


def test_a_key_naming_no_job_stays_a_raw_upload(aws: Aws) -> None:
    key = "uploads/someone/seg_01JZZZZZZZZZZZZZZZZZZZZZZZ/image"
    aws.client("s3").put_object(Bucket=aws.bucket, Key=key, Body=image_bytes(), Metadata=REQUEST)
    [found] = on_upload(s3_event(aws, key))["jobs"]
    job = clients.job_store().get(found["id"])
    assert (job.status, job.tenant, job.source) == (JobStatus.QUEUED, "default", "upload")


# --- S3's test event -------------------------------------------------------------------------


def test_the_s3_test_event_is_ignored_not_raised(aws: Aws) -> None:
    result = on_upload(event("on_upload_test_event"))
    assert result == {"jobs": [], "ignored": "s3:TestEvent"}
    assert jobs_in_table(aws) == [] and aws.executions() == []


# --- crash points ------------------------------------------------------------------------------


def test_a_raw_upload_killed_after_its_job_is_written_is_started_by_the_retry(
    aws: Aws, crash_once: Callable[[str], list[str]]
) -> None:
    aws.client("s3").put_object(
        Bucket=aws.bucket, Key="uploads/cat.png", Body=image_bytes(), Metadata=REQUEST
    )
    sample = s3_event(aws, "uploads/cat.png")
    crash_once("on_upload.after_job")
    with pytest.raises(Killed):
        on_upload(sample)
    [job_id] = jobs_in_table(aws)
    assert aws.executions() == []
    # Lambda retries the asynchronous invoke with the same event
    assert on_upload(sample)["jobs"] == [{"id": job_id, "status": "queued"}]
    assert jobs_in_table(aws) == [job_id] and aws.executions() == [job_id]


def test_a_registered_upload_killed_after_its_job_moved_is_started_by_the_retry(
    api: Any, aws: Aws, crash_once: Callable[[str], list[str]]
) -> None:
    job = json.loads(register(api, aws)["body"])
    key = job["upload"]["fields"]["key"]
    aws.client("s3").put_object(Bucket=aws.bucket, Key=key, Body=image_bytes())
    crash_once("on_upload.after_job")
    with pytest.raises(Killed):
        on_upload(s3_event(aws, key))
    assert clients.job_store().get(job["id"]).status is JobStatus.QUEUED
    assert aws.executions() == []
    assert on_upload(s3_event(aws, key))["jobs"] == [{"id": job["id"], "status": "queued"}]
    assert aws.executions() == [job["id"]]


class ExpiredContext(LambdaContext):
    """A context whose invocation is past its deadline: an in-progress record it writes has expired."""

    def get_remaining_time_in_millis(self) -> int:
        return -1000


def killed(call: Callable[[], dict[str, Any]]) -> None:
    """Run an API call the crash point kills: Mangum turns what escapes the app into a 500 (in AWS
    the runtime ends the invocation and API Gateway answers 5xx); nothing of ours runs after it."""
    try:
        response = call()
    except Killed:
        return
    assert response["statusCode"] == 500


def post(api: Any, aws: Aws, body: dict[str, Any], key: str, context: Any = None) -> dict[str, Any]:
    sample = create_event(aws, body)
    sample["headers"]["idempotency-key"] = key
    return dict(api.handler(sample, context or LambdaContext()))


@pytest.mark.parametrize(
    "first_context",
    [
        pytest.param(LambdaContext, id="retry-while-the-record-is-in-progress"),
        pytest.param(ExpiredContext, id="retry-after-the-in-progress-record-expired"),
    ],
)
def test_an_api_request_killed_after_its_job_is_written_is_adopted_by_its_retry(
    api: Any, aws: Aws, crash_once: Callable[[str], list[str]], first_context: type[LambdaContext]
) -> None:
    reached = crash_once("api.after_job")
    killed(lambda: post(api, aws, sample_body(), "order-1", first_context()))
    assert reached == ["api.after_job"]
    [job_id] = jobs_in_table(aws)
    assert aws.executions() == []
    # the client saw a 5xx and retries with the same Idempotency-Key
    retried = post(api, aws, sample_body(), "order-1")
    assert retried["statusCode"] == 202 and json.loads(retried["body"])["id"] == job_id
    again = post(api, aws, sample_body(), "order-1")
    assert again["statusCode"] == 202 and json.loads(again["body"])["id"] == job_id
    assert jobs_in_table(aws) == [job_id] and aws.executions() == [job_id]
    run = aws.client("stepfunctions").describe_execution(
        executionArn=aws.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{job_id}"
    )
    created = clients.job_store().get(job_id).created_at
    deadline = int(created.timestamp()) + get_settings().job_deadline_seconds
    assert json.loads(run["input"])["deadline_at"] == deadline  # timed from the first attempt's job


def test_a_retry_with_another_body_after_a_killed_request_is_409(
    api: Any, aws: Aws, crash_once: Callable[[str], list[str]]
) -> None:
    crash_once("api.after_job")
    killed(lambda: post(api, aws, sample_body(), "order-2", ExpiredContext()))
    other = post(api, aws, {**sample_body(), "metadata": {"order": "other"}}, "order-2")
    assert other["statusCode"] == 409 and problem(other)["type"] == "conflict"
    assert len(jobs_in_table(aws)) == 1 and aws.executions() == []


def test_a_failed_request_frees_the_key_for_a_corrected_body(api: Any, aws: Aws) -> None:
    import base64

    bad = {
        **sample_body(),
        "image": "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n").decode(),
    }
    assert post(api, aws, bad, "order-3")["statusCode"] == 422
    fixed = post(api, aws, sample_body(), "order-3")
    assert fixed["statusCode"] == 202 and aws.executions() == [json.loads(fixed["body"])["id"]]


def test_a_registration_killed_after_its_job_is_written_is_adopted_by_its_retry(
    api: Any, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    from maskgate.workflow.executions import UploadExpiries

    original = UploadExpiries.start
    calls: list[str] = []

    def killed_once(self: UploadExpiries, job_id: str, *, seconds: int) -> None:
        calls.append(job_id)
        if len(calls) == 1:
            raise Killed("after the job, before its expiry timer")
        original(self, job_id, seconds=seconds)

    monkeypatch.setattr(UploadExpiries, "start", killed_once)
    sample = event("api_create_segmentation")
    sample["routeKey"] = "POST /v1/uploads"
    sample["rawPath"] = sample["requestContext"]["http"]["path"] = "/v1/uploads"
    sample["headers"].update({"authorization": f"Bearer {aws.api_key}", "idempotency-key": "upload-1"})
    sample["body"] = json.dumps({"filename": "cat.png", "content_type": "image/png", "prompt": "x"})
    sample["headers"]["content-length"] = str(len(sample["body"]))
    killed(lambda: dict(api.handler(json.loads(json.dumps(sample)), LambdaContext())))
    [job_id] = jobs_in_table(aws)
    retried = api.handler(json.loads(json.dumps(sample)), LambdaContext())
    assert retried["statusCode"] == 201 and json.loads(retried["body"])["id"] == job_id
    assert json.loads(retried["body"])["upload"]["fields"]["key"] == f"uploads/{aws.tenant}/{job_id}/image"
    assert calls == [job_id, job_id] and jobs_in_table(aws) == [job_id]
