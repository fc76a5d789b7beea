"""The result cache on moto, through the Submit, Store and Notify handlers: a hit reuses an identical
earlier job's results without a WaveSpeed call; opt-outs, expiry, jobs in flight and crashed jobs."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks import Webhook

from maskgate import clients
from maskgate.cache.entries import MARGIN, CacheEntries
from maskgate.cache.key import job_key
from maskgate.cache.reuse import ResultCache
from maskgate.contracts.job import ImageLocation, Job, JobError, JobStatus
from maskgate.contracts.prompts import Prompts
from maskgate.errors import ResultPending, ResultReused
from tests.integration.conftest import Aws
from tests.integration.seeds import WEBHOOK, queued_job, submit_event
from tests.integration.test_api import create_event
from tests.integration.test_limits import with_query
from tests.support.artefacts import LambdaContext, load_handler
from tests.support.fakes import FakeWaveSpeed, Receiver, image_bytes

IMAGE = image_bytes()
DIGEST = hashlib.sha256(IMAGE).hexdigest()
SHARED_INPUT = "inputs/shared/image.png"


@pytest.fixture(autouse=True)
def no_tier_limit(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    """WaveSpeed's tier (2 submits a minute) is not what these tests count: submissions are."""
    monkeypatch.setenv("WAVESPEED_CONCURRENCY", "0")
    monkeypatch.setenv("WAVESPEED_SUBMITS_PER_MINUTE", "0")
    clients.reset()


def twin(
    aws: Aws, *, tenant: str | None = None, digest: str = DIGEST, key: str = SHARED_INPUT, **request: Any
) -> Job:
    """A queued job on the shared image bytes (as a data URI or an upload leaves it, under ``key``),
    request as given."""
    aws.client("s3").put_object(Bucket=aws.bucket, Key=key, Body=IMAGE)
    prompts = Prompts(**{"prompt": "the square", "webhook_url": WEBHOOK, **request})
    image = ImageLocation(bucket=aws.bucket, key=key, width=64, height=48, sha256=digest)
    return queued_job(aws, request=prompts, image=image, tenant=tenant or aws.tenant)


def submit(job: Job) -> dict[str, Any]:
    return dict(load_handler("submit").handler(submit_event(job), LambdaContext()))


def store(job: Job, prediction_id: str) -> dict[str, Any]:
    return dict(
        load_handler("store").handler({"job_id": job.id, "prediction_id": prediction_id}, LambdaContext())
    )


def computed(aws: Aws) -> Job:
    """A job that missed, was computed by WaveSpeed and succeeded (masks, instances.json, the COCO file),
    plus a result file a later version might add: every object under results/<job_id>/ is copied."""
    job = twin(aws)
    store(job, submit(job)["prediction_id"])
    aws.client("s3").put_object(Bucket=aws.bucket, Key=f"results/{job.id}/extra.json", Body=b"[]")
    return clients.job_store().get(job.id)


def objects(aws: Aws, job: Job) -> dict[str, bytes]:
    s3 = aws.client("s3")
    listed = s3.list_objects_v2(Bucket=aws.bucket, Prefix=f"results/{job.id}/").get("Contents", [])
    prefix = f"results/{job.id}/"
    return {
        o["Key"].removeprefix(prefix): s3.get_object(Bucket=aws.bucket, Key=o["Key"])["Body"].read()
        for o in listed
    }


def test_an_identical_request_is_a_hit_copies_every_result_and_sends_the_usual_webhook(
    aws: Aws, wavespeed: FakeWaveSpeed, receiver: Receiver
) -> None:
    first = computed(aws)
    assert first.cache == "miss"
    # given the same image (under another name) and prompts, with other metadata and a default made explicit
    second = twin(aws, key="inputs/other/photo.png", metadata={"order": "8"}, apply_mask=False)
    with pytest.raises(ResultReused):
        submit(second)
    load_handler("notify").handler({"job_id": second.id}, LambdaContext())  # the workflow's Catch
    hit = clients.job_store().get(second.id)
    assert hit.status is JobStatus.SUCCEEDED and hit.cache == "hit" and hit.prediction_id is None
    assert len(wavespeed.submissions) == 1
    assert [m.key for m in hit.masks] == [f"results/{second.id}/mask_0.png"]
    assert [m.model_dump(exclude={"key"}) for m in hit.masks] == [
        m.model_dump(exclude={"key"}) for m in first.masks
    ]
    copies, originals = objects(aws, hit), objects(aws, first)
    assert (
        set(copies)
        == set(originals)
        == {"mask_0.png", "instances.json", "annotations.coco.json", "extra.json"}
    )
    assert copies["mask_0.png"] == originals["mask_0.png"] and copies["extra.json"] == originals["extra.json"]
    # the two documents that name their job name this one, with the same instances
    assert json.loads(copies["instances.json"]) == {
        **json.loads(originals["instances.json"]),
        "id": second.id,
    }
    coco, computed_coco = (
        json.loads(copies["annotations.coco.json"]),
        json.loads(originals["annotations.coco.json"]),
    )
    assert coco["info"]["description"] == f"maskgate segmentation {second.id}"
    assert coco["info"]["date_created"] == second.created_at.isoformat()
    assert (
        computed_coco["images"][0]["file_name"] == "image.png"
        and coco["images"][0]["file_name"] == "photo.png"
    )
    for part in ("annotations", "categories", "licenses"):
        assert coco[part] == computed_coco[part]
    assert coco["images"][0]["width"] == computed_coco["images"][0]["width"]
    assert hit.results is not None and first.results is not None
    assert hit.results.instances_key == f"results/{second.id}/instances.json"
    assert hit.results.instances_bytes == len(copies["instances.json"])
    item = aws.client("dynamodb").get_item(TableName=aws.table, Key={"pk": {"S": f"JOB#{second.id}"}})["Item"]
    assert "instances_bytes" not in item  # it is one of the results', not a field of the job's own
    assert hit.results.model_dump(exclude={"instances_key", "coco_key"}) == first.results.model_dump(
        exclude={"instances_key", "coco_key"}
    )
    payload = Webhook(aws.secret).verify(receiver.requests[-1].content, dict(receiver.requests[-1].headers))
    assert payload["type"] == "segmentation.succeeded" and payload["data"]["id"] == second.id
    assert payload["data"]["metadata"] == {"order": "8"} and len(payload["data"]["masks"]) == 1


def test_a_request_that_differs_in_what_wavespeed_sees_is_a_miss(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    computed(aws)
    for other in (twin(aws, apply_mask=True), twin(aws, output_format="webp"), twin(aws, digest="0" * 64)):
        submit(other)
        assert clients.job_store().get(other.id).cache == "miss"
    assert len(wavespeed.submissions) == 4


def test_another_tenants_identical_request_is_a_miss(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    computed(aws)
    submit(twin(aws, tenant="other"))
    assert len(wavespeed.submissions) == 2


def test_a_request_with_cache_false_neither_reuses_nor_offers_its_results(
    aws: Aws, wavespeed: FakeWaveSpeed
) -> None:
    opted_out = twin(aws, cache=False)
    store(opted_out, submit(opted_out)["prediction_id"])
    assert clients.job_store().get(opted_out.id).cache is None
    later = twin(aws)  # nothing was offered: a miss
    submit(later)
    assert clients.job_store().get(later.id).cache == "miss"
    again = twin(aws, cache=False)  # now something is: still not reused
    submit(again)
    assert clients.job_store().get(again.id).cache is None
    assert len(wavespeed.submissions) == 3


def test_a_tenant_with_the_cache_turned_off_always_computes(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    computed(aws)
    aws.client("dynamodb").update_item(
        TableName=aws.table,
        Key={"pk": {"S": f"TENANT#{aws.tenant}"}},
        UpdateExpression="SET cache_enabled = :off",
        ExpressionAttributeValues={":off": {"BOOL": False}},
    )
    off = twin(aws)
    submit(off)
    assert clients.job_store().get(off.id).cache is None and len(wavespeed.submissions) == 2


def test_an_image_url_job_is_never_cached(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    url = ImageLocation(url="https://example.com/cat.png")
    for _ in range(2):
        job = queued_job(aws, image=url)
        submit(job)
        assert clients.job_store().get(job.id).cache is None
    assert len(wavespeed.submissions) == 2


def cache_at(clock: Callable[[], datetime]) -> ResultCache:
    """The deployment's result cache, its entries read and written at ``clock``'s time."""
    cache = clients.result_cache()
    entries = CacheEntries(table="jobs", client=clients.dynamodb(), results_days=30, now=clock)
    return ResultCache(jobs=cache.jobs, bucket=cache.bucket, entries=entries, stale_after=cache.stale_after)


def test_an_entry_expires_before_the_results_it_points_at(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    first = computed(aws)
    claimed = datetime.now(UTC)
    # the masks live at least 30 days after they were written, which is after the entry was taken
    last_hit = claimed + timedelta(days=30) - MARGIN - timedelta(minutes=1)
    with pytest.raises(ResultReused):
        cache_at(lambda: last_hit).consult(twin(aws))
    late = twin(aws)
    assert (
        cache_at(lambda: claimed + timedelta(days=30) - MARGIN + timedelta(minutes=1)).consult(late) == "miss"
    )
    entries = CacheEntries(table="jobs", client=clients.dynamodb(), results_days=30)
    assert entries.holder(aws.tenant, str(job_key(late))) == late.id != first.id


def test_results_that_are_gone_are_never_a_hit(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    first = computed(aws)
    aws.client("s3").delete_object(Bucket=aws.bucket, Key=first.masks[0].key)
    again = twin(aws)
    submit(again)
    stored = clients.job_store().get(again.id)
    assert stored.cache == "miss" and stored.status is JobStatus.SUBMITTED and len(wavespeed.submissions) == 2


@pytest.mark.parametrize(
    ("name", "body"), [("instances.json", b"not json"), ("annotations.coco.json", b"[1, 2]")]
)
def test_a_result_document_that_cannot_be_read_is_never_a_hit(
    aws: Aws, wavespeed: FakeWaveSpeed, name: str, body: bytes
) -> None:
    """Its copy could not name the new job: the job computes, as when the results are gone."""
    first = computed(aws)
    aws.client("s3").put_object(Bucket=aws.bucket, Key=f"results/{first.id}/{name}", Body=body)
    again = twin(aws)
    submit(again)
    stored = clients.job_store().get(again.id)
    assert stored.cache == "miss" and stored.status is JobStatus.SUBMITTED and len(wavespeed.submissions) == 2


def test_an_identical_job_in_flight_is_waited_for_then_reused(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    first = twin(aws)
    pid = submit(first)["prediction_id"]
    second = twin(aws)
    with pytest.raises(ResultPending):
        submit(second)  # the workflow retries it with a growing wait
    assert clients.job_store().get(second.id).status is JobStatus.QUEUED
    store(first, pid)
    with pytest.raises(ResultReused):
        submit(second)
    assert clients.job_store().get(second.id).cache == "hit" and len(wavespeed.submissions) == 1


def test_when_the_job_in_flight_fails_the_waiting_one_computes_itself(
    aws: Aws, wavespeed: FakeWaveSpeed
) -> None:
    first = twin(aws)
    submit(first)
    second = twin(aws)
    with pytest.raises(ResultPending):
        submit(second)
    error = JobError(type="upstream_failed", message="the prediction failed")
    clients.job_store().transition(first.id, JobStatus.FAILED, error=error)
    submit(second)
    assert clients.job_store().get(second.id).cache == "miss" and len(wavespeed.submissions) == 2


def test_a_crashed_job_holding_the_key_blocks_no_one_past_its_deadline(
    aws: Aws, wavespeed: FakeWaveSpeed
) -> None:
    # given a job that took the key, then its Submit died before the POST (and nothing ever ran it again)
    crashed = twin(aws)
    assert clients.result_cache().consult(crashed) == "miss"
    waiting = twin(aws)
    with pytest.raises(ResultPending):
        submit(waiting)
    later = datetime.now(UTC) + clients.result_cache().stale_after + timedelta(seconds=1)
    cache = cache_at(lambda: later)
    stale = ResultCache(
        jobs=cache.jobs,
        bucket=cache.bucket,
        entries=cache.entries,
        stale_after=cache.stale_after,
        now=lambda: later,
    )
    assert stale.consult(waiting) == "miss"
    assert len(wavespeed.submissions) == 0


def test_a_job_whose_submit_crashed_after_taking_the_key_still_submits_once(
    aws: Aws, wavespeed: FakeWaveSpeed
) -> None:
    job = twin(aws)
    assert clients.result_cache().consult(job) == "miss"  # the first Submit got this far, then died
    submit(job)  # the workflow's retry: the key is still its own
    submit(job)  # and another retry after the POST: never a second submission
    assert clients.job_store().get(job.id).cache == "miss" and len(wavespeed.submissions) == 1


@pytest.fixture
def atomic_dynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies a conditional write atomically; moto in this process, called from several
    threads at once, does not (the local stack serialises its DynamoDB requests for the same reason)."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.Lock()
    for name in ("put_item", "get_item", "update_item"):
        original = getattr(DynamoDBBackend, name)

        def serialised(
            *args: object, _original: Callable[..., object] = original, **kwargs: object
        ) -> object:
            with lock:
                return _original(*args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, serialised)


@pytest.mark.usefixtures("atomic_dynamodb")
def test_identical_requests_submitted_at_once_pay_once(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    jobs = [twin(aws) for _ in range(8)]
    outcomes: dict[str, str] = {}
    start = threading.Barrier(len(jobs))

    def run(job: Job) -> None:
        start.wait()
        try:
            submit(job)
            outcomes[job.id] = "submitted"
        except ResultPending:
            outcomes[job.id] = "waiting"

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()) == ["submitted"] + ["waiting"] * 7
    assert len(wavespeed.submissions) == 1


def test_preview_tells_a_dry_run_what_the_cache_would_answer_without_writing(
    aws: Aws, wavespeed: FakeWaveSpeed
) -> None:
    cache, same = clients.result_cache(), Prompts(prompt="the square", webhook_url=WEBHOOK)
    assert cache.preview(aws.tenant, same, image_sha256=DIGEST) == "miss"
    assert cache.entries.holder(aws.tenant, str(job_key(twin(aws)))) is None  # nothing was taken
    computed(aws)
    assert cache.preview(aws.tenant, same, image_sha256=DIGEST) == "hit"
    assert cache.preview("other", same, image_sha256=DIGEST) == "miss"
    assert cache.preview(aws.tenant, same.model_copy(update={"cache": False}), image_sha256=DIGEST) is None
    assert cache.preview(aws.tenant, same, image_sha256=None) is None  # an https image URL


def test_a_dry_run_says_whether_the_cache_would_answer(api: Any, aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    computed(aws)
    data_uri = "data:image/png;base64," + base64.b64encode(IMAGE).decode()
    same = {"image": data_uri, "prompt": "the square", "webhook_url": WEBHOOK}

    def dry_run(body: dict[str, Any]) -> str:
        sample = with_query(create_event(aws, body), "dry_run=true")
        answer = api.handler(sample, LambdaContext())
        assert answer["statusCode"] == 200, answer["body"]
        return str(json.loads(answer["body"])["cache"])

    assert dry_run(same) == "hit"
    assert dry_run({**same, "prompt": "the circle"}) == "miss"
    assert dry_run({**same, "cache": False}) == "off"
    assert dry_run({**same, "image": "http://127.0.0.1:9/a.png"}) == "unknown"
    clients.gate().limits.set(aws.tenant, {"cache_enabled": False})
    assert dry_run(same) == "off"
    assert len(wavespeed.submissions) == 1  # a dry run spends nothing
