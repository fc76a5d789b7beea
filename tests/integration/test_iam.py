"""The IAM check every integration test runs under (tests/support/iam.py) sees the handlers' calls
and would refuse one the template does not grant."""

from __future__ import annotations

from maskgate import clients
from tests.integration.conftest import Aws
from tests.integration.seeds import queued_job, submit_event
from tests.support import iam
from tests.support.artefacts import LambdaContext, load_handler
from tests.support.fakes import FakeWaveSpeed

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/jobs"


def test_a_handlers_calls_are_seen_as_its_function(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    job = queued_job(aws)
    with iam.recording() as recorder:
        load_handler("submit").handler(submit_event(job), LambdaContext())
        clients.job_store().get(job.id)  # the test's own call: not the function's
    seen = {str(call) for call in recorder.seen}
    assert f"submit: dynamodb:UpdateItem on {TABLE}" in seen
    assert f"submit: dynamodb:GetItem on {TABLE}" in seen
    assert {call.split(":")[0] for call in seen} == {"submit"}
    assert recorder.refused == []


def test_the_template_grants_each_function_only_what_it_uses() -> None:
    bucket = "arn:aws:s3:::maskgate-123456789012-us-east-1"
    assert iam.allowed("store", "s3:PutObject", f"{bucket}/results/seg_1/mask_0.png")
    assert not iam.allowed("store", "s3:PutObject", f"{bucket}/uploads/x.png")
    assert not iam.allowed("fail", "s3:PutObject", f"{bucket}/results/seg_1/mask_0.png")
    assert not any(
        iam.allowed(step, "s3:DeleteObject", f"{bucket}/uploads/x.png") for step in iam.statements_by_step()
    )
    assert iam.allowed("api", "dynamodb:Query", f"{TABLE}/index/tenant-created")
    assert not iam.allowed("poll", "dynamodb:Query", f"{TABLE}/index/tenant-created")
    assert not iam.allowed("notify", "dynamodb:DeleteItem", TABLE)
    assert not iam.allowed(
        "submit", "dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:123456789012:table/other"
    )
