"""The store step on moto: the checked masks in results/, the job succeeded, its webhook's first attempt."""

from __future__ import annotations

import pytest
from standardwebhooks import Webhook

from maskgate import clients
from maskgate.contracts.job import JobStatus
from maskgate.errors import OutputInvalid
from tests.integration.conftest import Aws
from tests.integration.seeds import submitted
from tests.support.artefacts import LambdaContext, event, load_handler
from tests.support.fakes import FakeWaveSpeed, Receiver, image_bytes


def test_store_copies_masks_succeeds_and_sends_the_webhook(
    aws: Aws, wavespeed: FakeWaveSpeed, receiver: Receiver
) -> None:
    job, pid = submitted(aws, wavespeed, "completed")
    out = load_handler("store").handler(
        {**event("store"), "job_id": job.id, "prediction_id": pid}, LambdaContext()
    )
    stored = clients.job_store().get(job.id)
    assert out == {"job_id": job.id, "masks": 1, "webhook": "delivered"}
    assert stored.status is JobStatus.SUCCEEDED
    [request] = receiver.requests
    payload = Webhook(aws.secret).verify(request.content, dict(request.headers))
    assert payload["type"] == "segmentation.succeeded" and len(payload["data"]["masks"]) == 1
    assert [d.outcome for d in stored.deliveries] == ["delivered"]
    [mask] = stored.masks
    assert mask.key == f"results/{job.id}/mask_0.png" and (mask.width, mask.height) == (64, 48)
    body = aws.client("s3").get_object(Bucket=aws.bucket, Key=mask.key)["Body"].read()
    assert body == image_bytes("png")


def test_store_output_in_the_wrong_format_is_output_invalid(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    wavespeed.output_format = "jpeg"
    job, pid = submitted(aws, wavespeed, "completed")
    with pytest.raises(OutputInvalid, match="png was asked for"):
        load_handler("store").handler({"job_id": job.id, "prediction_id": pid}, LambdaContext())


def test_store_keeps_the_webhook_body_in_its_succeeded_write(
    aws: Aws, wavespeed: FakeWaveSpeed, receiver: Receiver
) -> None:
    """One write of the job finishes it and keeps the body the first attempt sends; the job and the
    tenant are not read again for the attempt."""
    job, pid = submitted(aws, wavespeed, "completed")
    calls: list[str] = []
    for name in ("GetItem", "UpdateItem", "PutItem"):
        clients.dynamodb().meta.events.register(
            f"before-parameter-build.dynamodb.{name}",
            lambda params, model, **_: (
                calls.append(f"{model.name} {params['Key']['pk']['S'].split('#')[0]}")
                if "Key" in params
                else None
            ),
        )
    load_handler("store").handler({**event("store"), "job_id": job.id, "prediction_id": pid}, LambdaContext())
    made = calls[:]  # the Store invocation's calls, not the reads below
    stored = clients.job_store().get(job.id)
    [request] = receiver.requests
    assert stored.webhook_body is not None and request.content.decode() == stored.webhook_body
    assert stored.webhook_pending is None and [d.outcome for d in stored.deliveries] == ["delivered"]
    # read the job, write it succeeded with the body, record the attempt: two writes, one read
    assert [c for c in made if c.endswith(" JOB")] == ["GetItem JOB", "UpdateItem JOB", "UpdateItem JOB"]
    assert [c for c in made if c.endswith(" TENANT")] == ["GetItem TENANT"]


def test_a_retried_store_sends_the_body_its_first_invocation_kept(
    aws: Aws, wavespeed: FakeWaveSpeed, receiver: Receiver
) -> None:
    job, pid = submitted(aws, wavespeed, "completed")
    handler = load_handler("store").handler
    receiver.status = 500  # the first attempt fails: its delivery unit would retry it
    handler({**event("store"), "job_id": job.id, "prediction_id": pid}, LambdaContext())
    kept = clients.job_store().get(job.id).webhook_body
    receiver.status = 204
    handler({**event("store"), "job_id": job.id, "prediction_id": pid}, LambdaContext())
    assert kept is not None and [r.content.decode() for r in receiver.requests] == [kept, kept]
