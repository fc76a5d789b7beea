"""Fair admission on moto: the line of jobs waiting for a WaveSpeed slot, the hand-over of a freed
slot by the fair rule, the parked workflow (AwaitSlot) woken, and the place in line on the API."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from maskgate import clients
from maskgate.errors import AdmissionQueued, PredictionTimedOut
from maskgate.stores.admission import SLOTS_KEY, Admission
from tests.integration.conftest import REGION, Aws, FakeTasks
from tests.integration.seeds import queued_job, submit_event
from tests.support.artefacts import LambdaContext, event, load_handler
from tests.support.fakes import Clock, FakeWaveSpeed

NOW = 1_800_000_000.0


def line(aws: Aws, woken: list[str], *, concurrency: int = 2, clock: Clock[float] | None = None) -> Admission:
    return Admission(
        table=aws.table,
        client=boto3.client("dynamodb", region_name=REGION),
        concurrency=concurrency,
        per_minute=0,
        stale_after_seconds=900,
        clock=clock or Clock(NOW),
        wake=woken.append,
    )


def queue(gate: Admission, job_id: str, tenant: str) -> None:
    with pytest.raises(AdmissionQueued):
        gate.admit(job_id, tenant=tenant)


def test_a_freed_slot_goes_to_the_tenant_holding_the_fewest_not_to_the_oldest_job(aws: Aws) -> None:
    woken: list[str] = []
    gate = line(aws, woken)
    gate.admit("seg_a1", tenant="a")
    gate.admit("seg_a2", tenant="a")
    for n in range(3, 8):  # tenant a floods
        queue(gate, f"seg_a{n}", "a")
    queue(gate, "seg_b1", "b")
    gate.release("seg_a1")
    assert woken == ["seg_b1"]
    assert set(gate.in_flight()) == {"seg_a2", "seg_b1"}
    gate.release("seg_a2")  # a holds none now, b one: a's oldest goes next
    assert woken == ["seg_b1", "seg_a3"]
    assert set(gate.waiters()) == {"seg_a4", "seg_a5", "seg_a6", "seg_a7"}


def test_a_new_job_never_takes_a_free_slot_ahead_of_the_line(aws: Aws) -> None:
    woken: list[str] = []
    gate = line(aws, woken, concurrency=1)
    gate.admit("seg_a1", tenant="a")
    queue(gate, "seg_a2", "a")
    # the hand-over of seg_a1's slot to seg_a2 has not happened yet when seg_b1 arrives: simulate
    # a release that only removed the slot (a container killed right after its first write)
    boto3.client("dynamodb", region_name=REGION).update_item(
        TableName=aws.table,
        Key={"pk": {"S": SLOTS_KEY}},
        UpdateExpression="REMOVE slots.#job, held_by.#job ADD version :one",
        ExpressionAttributeNames={"#job": "seg_a1"},
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    queue(gate, "seg_a3", "a")  # a later job finds the slot free: the one waiting before it goes
    assert woken == ["seg_a2"] and set(gate.in_flight()) == {"seg_a2"}


def test_a_job_in_line_that_ends_leaves_the_line(aws: Aws) -> None:
    woken: list[str] = []
    gate = line(aws, woken, concurrency=1)
    gate.admit("seg_a1", tenant="a")
    queue(gate, "seg_a2", "a")
    queue(gate, "seg_b1", "b")
    gate.release("seg_b1")  # canceled while waiting
    gate.release("seg_a1")
    assert woken == ["seg_a2"] and gate.waiters() == {}


def test_places_in_line_follow_the_fair_order_with_an_estimated_start(aws: Aws) -> None:
    woken: list[str] = []
    gate = line(aws, woken)
    gate.admit("seg_a1", tenant="a")
    gate.admit("seg_a2", tenant="a")
    queue(gate, "seg_a3", "a")
    queue(gate, "seg_a4", "a")
    queue(gate, "seg_b1", "b")
    at = datetime.fromtimestamp(NOW, UTC)
    places = gate.places(["seg_a1", "seg_a3", "seg_a4", "seg_b1"], now=at)
    assert {job: p.queue_position for job, p in places.items()} == {"seg_b1": 1, "seg_a3": 2, "seg_a4": 3}
    # 2 slots, 10 s a job until a release measures it: one slot frees every 5 s
    assert places["seg_a4"].estimated_start == at + timedelta(seconds=15)
    assert gate.place("seg_a1") is None


def test_the_time_a_slot_is_held_is_measured_at_each_release_while_jobs_wait(aws: Aws) -> None:
    woken: list[str] = []
    clock = Clock(NOW)
    gate = line(aws, woken, concurrency=1, clock=clock)
    gate.admit("seg_a1", tenant="a")
    queue(gate, "seg_a2", "a")
    queue(gate, "seg_a3", "a")
    clock.now += 60
    gate.release("seg_a1")  # held 60 s: the mean moves a fifth of the way from 10 s
    at = datetime.fromtimestamp(clock.now, UTC)
    assert gate.place("seg_a3", now=at) == gate.places(["seg_a3"], now=at)["seg_a3"]
    assert gate.places(["seg_a3"], now=at)["seg_a3"].estimated_start == at + timedelta(seconds=20)


# the steps ---------------------------------------------------------------------------------------


@pytest.fixture
def one_slot(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAVESPEED_CONCURRENCY", "1")
    clients.reset()


def await_event(job_id: str, token: str) -> dict[str, Any]:
    return {**event("submit"), "job_id": job_id, "task_token": token, "waiting": True}


def test_a_job_in_line_parks_and_is_woken_when_the_slot_it_was_handed_frees(
    aws: Aws, wavespeed: FakeWaveSpeed, one_slot: None, tasks: FakeTasks
) -> None:
    wavespeed.next_status = "completed"
    submit = load_handler("submit").handler
    first, second = queued_job(aws), queued_job(aws, tenant="other")
    out = submit(submit_event(first), LambdaContext())
    with pytest.raises(AdmissionQueued):
        submit(submit_event(second), LambdaContext())
    submit(await_event(second.id, "await-token"), LambdaContext())  # AwaitSlot: parks
    assert tasks.calls == []
    load_handler("store").handler(
        {"job_id": first.id, "prediction_id": out["prediction_id"]}, LambdaContext()
    )
    assert tasks.calls[-1][:2] == ("success", "await-token")  # woken: back to Submit
    submit(submit_event(second), LambdaContext())
    assert len(wavespeed.submissions) == 2
    assert set(clients.admission().in_flight()) == {second.id}


def test_a_job_handed_a_slot_before_it_parked_wakes_itself(
    aws: Aws, wavespeed: FakeWaveSpeed, one_slot: None, tasks: FakeTasks
) -> None:
    submit = load_handler("submit").handler
    first, second = queued_job(aws), queued_job(aws)
    submit(submit_event(first), LambdaContext())
    with pytest.raises(AdmissionQueued):
        submit(submit_event(second), LambdaContext())
    load_handler("fail").handler({**event("fail"), "job_id": first.id}, LambdaContext())  # hands it over
    submit(await_event(second.id, "late-token"), LambdaContext())
    assert ("success", "late-token") in [call[:2] for call in tasks.calls]
    assert set(clients.admission().in_flight()) == {second.id}


def test_a_job_still_in_line_at_its_deadline_times_out_and_leaves_the_line(
    aws: Aws, wavespeed: FakeWaveSpeed, one_slot: None
) -> None:
    submit = load_handler("submit").handler
    submit(submit_event(queued_job(aws)), LambdaContext())
    old = datetime.now(UTC) - timedelta(hours=1)
    late = queued_job(aws, created_at=old, updated_at=old)
    with pytest.raises(PredictionTimedOut, match="past its deadline"):
        submit(submit_event(late), LambdaContext())
    assert clients.admission().waiters() == {}


def test_the_api_shows_a_waiting_jobs_place_in_line_and_null_otherwise(
    aws: Aws, wavespeed: FakeWaveSpeed, one_slot: None
) -> None:
    submit = load_handler("submit").handler
    running, waiting = queued_job(aws), queued_job(aws)
    submit(submit_event(running), LambdaContext())
    with pytest.raises(AdmissionQueued):
        submit(submit_event(waiting), LambdaContext())
    api = load_handler("api").handler

    def get(job_id: str) -> dict[str, Any]:
        sample = event("api_get_segmentation")
        sample["headers"]["authorization"] = f"Bearer {aws.api_key}"
        sample["rawPath"] = sample["requestContext"]["http"]["path"] = f"/v1/segmentations/{job_id}"
        return dict(json.loads(api(sample, LambdaContext())["body"]))

    shown = get(waiting.id)
    assert shown["queue_position"] == 1
    start = datetime.fromisoformat(shown["estimated_start"])
    assert start.tzinfo is not None and start >= datetime.now(UTC) - timedelta(seconds=5)
    assert get(running.id)["queue_position"] is None and get(running.id)["estimated_start"] is None


def test_a_slots_item_from_before_the_line_gets_its_maps_on_first_use(aws: Aws) -> None:
    """A deployment upgraded under a job that holds a slot: its release, the first write, works."""
    client = boto3.client("dynamodb", region_name=REGION)
    client.put_item(
        TableName=aws.table, Item={"pk": {"S": SLOTS_KEY}, "slots": {"M": {"seg_old": {"N": "1"}}}}
    )
    woken: list[str] = []
    gate = line(aws, woken, concurrency=1)
    gate.release("seg_old")
    gate.admit("seg_a1", tenant="a")
    queue(gate, "seg_b1", "b")
    assert set(gate.in_flight()) == {"seg_a1"} and set(gate.waiters()) == {"seg_b1"}
