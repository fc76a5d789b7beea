"""A finished job's event fans out on moto: the job's own webhook_url and every registered endpoint
whose filter takes the event, each signed with its own secret, one delivery unit per failing target."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from maskgate import clients
from maskgate.api.views import endpoint_public
from maskgate.contracts.endpoints import Endpoint, EndpointCreate, EndpointUpdate
from maskgate.contracts.job import JobError, JobStatus
from maskgate.contracts.prompts import Prompts
from maskgate.errors import InvalidRequest, NotFound
from maskgate.stores.rate_limit import Throttle
from maskgate.webhooks.sender import WebhookSender
from tests.integration.conftest import Aws
from tests.integration.seeds import WEBHOOK, queued_job
from tests.support.artefacts import LambdaContext, load_handler
from tests.support.fakes import Recording

FAILED = JobError(type="timeout", message="slow")


@dataclass
class Receivers:
    """Every receiver on one host, by path: the status each answers (204 unless set)."""

    status: dict[str, int] = field(default_factory=dict)
    text: dict[str, str] = field(default_factory=dict)
    recording: Recording | None = None
    most_at_once: dict[str, int] = field(default_factory=dict)  # by path, its digits left out
    # a group's requests held until this many are in at once (at most HOLD_S): attempts sent side by
    # side then overlap however slowly a loaded machine starts them; one after another they cannot
    together: dict[str, int] = field(default_factory=dict)
    _busy: dict[str, int] = field(default_factory=dict)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    HOLD_S = 3.0

    def answer(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        group = path.rstrip("0123456789")
        with self._changed:
            self._busy[group] = self._busy.get(group, 0) + 1
            self.most_at_once[group] = max(self.most_at_once.get(group, 0), self._busy[group])
            self._changed.notify_all()
        try:
            wanted = self.together.get(group)
            if wanted is None:
                time.sleep(0.2)  # the time a receiver takes
            else:
                with self._changed:
                    self._changed.wait_for(lambda: self.most_at_once[group] >= wanted, self.HOLD_S)
            return httpx.Response(self.status.get(path, 204), text=self.text.get(path, ""))
        finally:
            with self._changed:
                self._busy[group] -= 1

    def to(self, path: str) -> list[httpx.Request]:
        assert self.recording is not None
        return [r for r in self.recording.requests if r.url.path == path]


@pytest.fixture
def hosts(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Receivers:
    receivers = Receivers()
    receivers.recording = Recording(receivers.answer)
    sender = WebhookSender(local=True, transport=httpx.MockTransport(receivers.recording))
    monkeypatch.setattr(clients, "webhook_sender", lambda: sender)
    return receivers


def endpoint(aws: Aws, path: str, **fields: object) -> Endpoint:
    return clients.endpoint_store().create(
        aws.tenant,
        EndpointCreate(url=f"http://127.0.0.1:8765{path}", **fields),  # type: ignore[arg-type]
    )


def notify(job_id: str) -> str:
    return str(load_handler("notify").handler({"job_id": job_id}, LambdaContext())["outcome"])


def test_each_endpoint_gets_the_events_its_filter_takes_signed_with_its_own_secret(
    aws: Aws, hosts: Receivers
) -> None:
    failures = endpoint(aws, "/failures", event_types=["segmentation.failed"])
    everything = endpoint(aws, "/everything")
    successes = endpoint(aws, "/successes", event_types=["segmentation.succeeded"])
    job = queued_job(aws, status=JobStatus.FAILED, error=FAILED)

    assert notify(job.id) == "delivered"

    [own] = hosts.to("/hooks")
    assert Webhook(aws.secret).verify(own.content, dict(own.headers))["type"] == "segmentation.failed"
    for target, path in ((failures, "/failures"), (everything, "/everything")):
        [request] = hosts.to(path)
        Webhook(target.secret).verify(request.content, dict(request.headers))
        with pytest.raises(Exception, match="No matching signature"):
            Webhook(aws.secret).verify(request.content, dict(request.headers))
        assert request.content == own.content  # one body for every target
        assert request.headers["webhook-id"] == own.headers["webhook-id"]
    assert hosts.to("/successes") == [] and successes.id
    deliveries = clients.job_store().get(job.id).deliveries
    assert sorted((d.endpoint_id or "", d.outcome, d.attempt) for d in deliveries) == sorted(
        [("", "delivered", 1), (failures.id, "delivered", 1), (everything.id, "delivered", 1)]
    )


def test_first_attempts_run_at_once(aws: Aws, hosts: Receivers) -> None:
    for n in range(5):
        endpoint(aws, f"/e{n}")
    hosts.together["/e"] = 5
    job = queued_job(aws, status=JobStatus.FAILED, error=FAILED)
    notify(job.id)
    assert hosts.recording is not None and len(hosts.recording.requests) == 6
    assert hosts.most_at_once["/e"] == 5  # the attempts overlapped


def test_a_failing_endpoint_gets_its_own_unit_and_the_others_are_done(aws: Aws, hosts: Receivers) -> None:
    down = endpoint(aws, "/down")
    endpoint(aws, "/up")
    hosts.status["/down"] = 503
    job = queued_job(aws, status=JobStatus.SUCCEEDED)

    assert notify(job.id) == "delivered"  # the job's own webhook's outcome

    [unit] = aws.delivery_units()
    msg_id = hosts.to("/down")[0].headers["webhook-id"]
    assert unit["name"] == f"{msg_id}_{down.id}"
    assert (unit["endpoint_id"], unit["step"], unit["done"]) == (down.id, 0, False)

    hosts.status["/down"] = 204
    deliver = load_handler("deliver").handler
    out = deliver(
        {"job_id": job.id, "event": unit["event"], "step": 0, "endpoint_id": down.id}, LambdaContext()
    )
    assert out["done"] is True and out["endpoint_id"] == down.id
    [first, retry] = hosts.to("/down")
    Webhook(down.secret).verify(retry.content, dict(retry.headers))
    assert retry.content == first.content
    down_attempts = [d for d in clients.job_store().get(job.id).deliveries if d.endpoint_id == down.id]
    assert [(d.attempt, d.outcome) for d in down_attempts] == [(1, "retrying"), (2, "delivered")]
    assert len(hosts.to("/hooks")) == 1 and len(hosts.to("/up")) == 1  # nobody else got it twice


def test_an_endpoint_disabled_or_deleted_meanwhile_gets_nothing_more(aws: Aws, hosts: Receivers) -> None:
    paused = endpoint(aws, "/paused")
    gone = endpoint(aws, "/gone")
    hosts.status["/paused"] = hosts.status["/gone"] = 503
    job = queued_job(aws, status=JobStatus.SUCCEEDED)
    notify(job.id)
    clients.endpoint_store().update(aws.tenant, paused.id, EndpointUpdate(enabled=False))
    clients.endpoint_store().delete(aws.tenant, gone.id)
    deliver: Callable[..., dict[str, object]] = load_handler("deliver").handler
    for target in (paused, gone):
        out = deliver(
            {"job_id": job.id, "event": "segmentation.succeeded", "step": 0, "endpoint_id": target.id},
            LambdaContext(),
        )
        assert out["done"] is True
    assert len(hosts.to("/paused")) == 1 and len(hosts.to("/gone")) == 1


def test_a_job_without_a_webhook_url_still_reaches_the_endpoints(aws: Aws, hosts: Receivers) -> None:
    only = endpoint(aws, "/only")
    request = Prompts(prompt="the square")
    job = queued_job(aws, status=JobStatus.FAILED, error=FAILED, webhook_url=None, request=request)
    assert notify(job.id) == "delivered"
    [request] = hosts.to("/only")
    Webhook(only.secret).verify(request.content, dict(request.headers))
    assert hosts.to("/hooks") == [] and WEBHOOK.endswith("/hooks")  # the job's own URL, had it one


def test_a_rotated_endpoint_signs_with_both_secrets_during_the_overlap(aws: Aws, hosts: Receivers) -> None:
    before = endpoint(aws, "/rotating")
    after = clients.endpoint_store().rotate_secret(aws.tenant, before.id)
    job = queued_job(aws, status=JobStatus.FAILED, error=FAILED)
    notify(job.id)
    [request] = hosts.to("/rotating")
    for secret in (before.secret, after.secret):
        Webhook(secret).verify(request.content, dict(request.headers))


def test_cancel_and_redelivery_start_one_unit_per_target(aws: Aws, hosts: Receivers) -> None:
    target = endpoint(aws, "/e")
    endpoint(aws, "/only-successes", event_types=["segmentation.succeeded"])
    job = queued_job(aws, status=JobStatus.FAILED, error=FAILED)
    notify(job.id)
    from maskgate.steps.redeliver import redeliver

    msg_id = redeliver(clients.job_store().get(job.id), notifier=clients.notifier())
    names = sorted(u["name"] for u in aws.delivery_units())
    assert names == sorted([f"{msg_id}-r3", f"{msg_id}_{target.id}-r3"])  # after two attempts
    assert {u["endpoint_id"] for u in aws.delivery_units()} == {None, target.id}


def test_every_attempt_to_an_endpoint_is_in_its_attempt_log_newest_first(aws: Aws, hosts: Receivers) -> None:
    flaky = endpoint(aws, "/flaky")
    hosts.status["/flaky"] = 503
    hosts.text["/flaky"] = "down\n\x1b[2Jfor now"
    jobs = [queued_job(aws, status=JobStatus.FAILED, error=FAILED) for _ in range(3)]
    for job in jobs:
        notify(job.id)
    log = clients.attempt_log()
    first, cursor = log.page(flaky.id, limit=2)
    rest, end = log.page(flaky.id, limit=2, cursor=cursor)
    assert end is None and len(first) == 2 and len(rest) == 1
    logged = first + rest
    assert [a.at for a in logged] == sorted((a.at for a in logged), reverse=True)
    assert {a.job_id for a in logged} == {j.id for j in jobs}
    newest = logged[0]
    assert (newest.status, newest.status_code, newest.attempt) == ("failed", 503, 1)
    assert newest.response == "down\\n\\x1b[2Jfor now" and newest.next_attempt_at is not None
    assert log.page(flaky.id, status="succeeded")[0] == []
    with pytest.raises(InvalidRequest, match="cursor"):
        log.page(endpoint(aws, "/other").id, cursor=cursor)  # another endpoint's cursor
    job_record = clients.job_store().get(jobs[0].id).model_dump_json()
    assert "for now" not in job_record  # the answer is kept in the attempt log only


def test_an_endpoint_that_answers_410_is_disabled_and_the_others_are_told(aws: Aws, hosts: Receivers) -> None:
    gone = endpoint(aws, "/gone")
    watcher = endpoint(aws, "/watcher", event_types=["endpoint.disabled"])
    endpoint(aws, "/jobs-only", event_types=["segmentation.failed"])
    hosts.status["/gone"] = 410
    job = queued_job(aws, status=JobStatus.FAILED, error=FAILED)
    notify(job.id)

    stored = clients.endpoint_store().get(aws.tenant, gone.id)
    assert not stored.enabled and stored.disabled_reason == "the endpoint answered 410 Gone"
    [told] = hosts.to("/watcher")
    payload = Webhook(watcher.secret).verify(told.content, dict(told.headers))
    assert payload["type"] == "endpoint.disabled"
    assert payload["data"]["endpoint_id"] == gone.id and payload["data"]["reason"] == stored.disabled_reason
    assert [r.content for r in hosts.to("/jobs-only")] != [] and len(hosts.to("/jobs-only")) == 1
    assert clients.attempt_log().page(watcher.id)[0][0].event == "endpoint.disabled"

    later = queued_job(aws, status=JobStatus.FAILED, error=FAILED)
    notify(later.id)
    assert len(hosts.to("/gone")) == 1  # disabled: nothing more
    enabled = clients.endpoint_store().update(aws.tenant, gone.id, EndpointUpdate(enabled=True))
    assert enabled.enabled and enabled.disabled_reason is None and enabled.disabled_at is None


def test_the_endpoints_told_of_a_disabling_are_told_at_once(aws: Aws, hosts: Receivers) -> None:
    """Up to 19 other endpoints may take endpoint.disabled: told one after another, a few slow ones
    would outlast the invocation's 30 s; side by side they take one attempt's budget."""
    endpoint(aws, "/gone", event_types=["segmentation.failed"])
    for n in range(5):
        endpoint(aws, f"/watcher{n}", event_types=["endpoint.disabled"])
    hosts.status["/gone"] = 410
    hosts.together["/watcher"] = 5
    job = queued_job(aws, status=JobStatus.FAILED, error=FAILED)
    notify(job.id)
    assert all(len(hosts.to(f"/watcher{n}")) == 1 for n in range(5))
    assert hosts.most_at_once["/watcher"] == 5  # the five notices overlap


def test_an_endpoint_failing_longer_than_the_window_is_disabled(
    aws: Aws, hosts: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MASKGATE_ENDPOINT_DISABLE_AFTER_SECONDS", "60")
    clients.reset()
    failing = endpoint(aws, "/failing")
    hosts.status["/failing"] = 500
    notify(queued_job(aws, status=JobStatus.FAILED, error=FAILED).id)
    assert clients.endpoint_store().get(aws.tenant, failing.id).enabled  # failing, not for long yet
    long_ago = (datetime.now(UTC) - timedelta(seconds=61)).isoformat()
    aws.client("dynamodb").update_item(
        TableName=aws.table,
        Key={"pk": {"S": f"HEALTH#{failing.id}"}},
        UpdateExpression="SET failing_since = :t",
        ExpressionAttributeValues={":t": {"S": long_ago}},
    )
    notify(queued_job(aws, status=JobStatus.FAILED, error=FAILED).id)
    stored = clients.endpoint_store().get(aws.tenant, failing.id)
    assert not stored.enabled and stored.disabled_reason is not None
    assert stored.disabled_reason.startswith("every delivery failed since ")
    clients.endpoint_store().update(aws.tenant, failing.id, EndpointUpdate(enabled=True))
    notify(queued_job(aws, status=JobStatus.FAILED, error=FAILED).id)  # fails again: a new streak
    assert clients.endpoint_store().get(aws.tenant, failing.id).enabled


@pytest.mark.usefixtures("atomic_dynamodb")
def test_a_throttled_endpoint_is_never_sent_more_than_its_rate_and_loses_nothing(
    aws: Aws, hosts: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = endpoint(aws, "/slow", rate_limit_per_second=2)
    arrivals: list[float] = []
    taken: list[float] = []
    take = Throttle.take

    def recorded(self: Throttle, key: str, *, per_second: int) -> float | None:
        asked = time.time()  # the turn is taken at the time take() reads, just after this
        wait = take(self, key, per_second=per_second)
        if wait is None:
            taken.append(asked)
        return wait

    monkeypatch.setattr(Throttle, "take", recorded)
    answer = hosts.answer

    def timed(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/slow":
            arrivals.append(time.time())
        return answer(request)

    assert hosts.recording is not None
    hosts.recording.answer = timed
    jobs = [queued_job(aws, status=JobStatus.FAILED, error=FAILED) for _ in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(notify, [j.id for j in jobs]))
    assert set(outcomes) == {"delivered"}  # each job's own webhook
    deliver = load_handler("deliver").handler
    pending = [u for u in aws.delivery_units() if u["endpoint_id"] == slow.id]
    assert pending, "some sends had to wait for the endpoint's turn"
    assert all(u["step"] == 0 for u in pending)  # waiting is not a failed attempt
    while pending:
        unit = pending.pop(0)
        time.sleep(min(unit["wait_seconds"], 1))
        step = {k: unit[k] for k in ("job_id", "event", "step", "endpoint_id")}
        out = deliver(step, LambdaContext())
        if not out["done"]:
            assert out["step"] == unit["step"]
            pending.append(out)
    assert len(arrivals) == 8  # every job's event reached it
    assert (len(arrivals) - 1) / (max(arrivals) - min(arrivals)) <= 2.0
    delivered = [
        d for j in jobs for d in clients.job_store().get(j.id).deliveries if d.endpoint_id == slow.id
    ]
    assert sorted((d.attempt, d.outcome) for d in delivered) == [(1, "delivered")] * 8
    # each send took its turn at least 1/rate after the one before (0.05 s allows for the thread being
    # switched out between reading the time here and in take(); what reaches a receiver can bunch by
    # the scheduling and network jitter between taking a turn and the bytes arriving)
    taken.sort()
    assert len(taken) == 8
    for first in taken:
        assert sum(1 for t in taken if first <= t < first + 0.95) <= 2


def test_the_api_lists_attempts_recovers_what_failed_and_resends_one(aws: Aws, hosts: Receivers) -> None:
    from tests.integration.test_webhook_endpoints import answer, call

    def get(path: str, query: str = "") -> dict[str, object]:
        return dict(answer(call(api, "GET", path, key=aws.api_key, query=query), 200))

    api = load_handler("api")
    down = endpoint(aws, "/down")
    hosts.status["/down"] = 503
    jobs = [queued_job(aws, status=JobStatus.FAILED, error=FAILED) for _ in range(3)]
    since = datetime.now(UTC) - timedelta(seconds=1)
    for job in jobs:
        notify(job.id)
    base = f"/v1/webhook-endpoints/{down.id}"

    page: dict[str, Any] = get(f"{base}/attempts", "status=failed&limit=2")
    assert len(page["data"]) == 2 and page["next_cursor"]
    assert {a["status_code"] for a in page["data"]} == {503}
    rest = get(f"{base}/attempts", f"status=failed&cursor={page['next_cursor']}")
    assert len(rest["data"]) == 1 and rest["next_cursor"] is None
    assert get(f"{base}/attempts", "status=succeeded")["data"] == []
    shown = answer(call(api, "GET", base, key=aws.api_key), 200)
    assert shown["stats"]["attempts"] == 3 and shown["stats"]["success_rate"] == 0.0
    assert shown["stats"]["last_error"] == "503" and shown["stats"]["state"] == "failing"

    units_before = {u["name"] for u in aws.delivery_units()}
    recovered = answer(
        call(api, "POST", f"{base}/recover", {"since": since.isoformat()}, key=aws.api_key), 202
    )
    assert recovered["messages"] == 3 and recovered["status"] == "scheduled"
    started = [u for u in aws.delivery_units() if u["name"] not in units_before]
    assert sorted(u["job_id"] for u in started) == sorted(j.id for j in jobs)
    assert {u["endpoint_id"] for u in started} == {down.id}

    msg_id = page["data"][0]["webhook_id"]
    units_before = {u["name"] for u in aws.delivery_units()}
    resent = answer(call(api, "POST", f"{base}/messages/{msg_id}/resend", key=aws.api_key), 202)
    assert resent == {"webhook_id": msg_id, "endpoint_id": down.id, "status": "scheduled"}
    [unit] = [u for u in aws.delivery_units() if u["name"] not in units_before]
    assert unit["endpoint_id"] == down.id and unit["name"].startswith(f"{msg_id}_{down.id}-x")

    hosts.status["/down"] = 204
    deliver = load_handler("deliver").handler
    deliver({k: unit[k] for k in ("job_id", "event", "step", "endpoint_id")}, LambdaContext())
    assert answer(call(api, "GET", base, key=aws.api_key), 200)["stats"]["state"] == "healthy"
    # a message that is no job event, or another tenant's, is not found; a bad since is a 422
    missing = call(api, "POST", f"{base}/messages/msg_nope/resend", key=aws.api_key)
    assert missing["statusCode"] == 404
    bad = call(api, "POST", f"{base}/recover", {"since": "yesterday"}, key=aws.api_key)
    assert bad["statusCode"] == 422
    naive = call(api, "POST", f"{base}/recover", {"since": "2026-12-06T00:00:00"}, key=aws.api_key)
    assert naive["statusCode"] == 422


def test_recovery_resends_only_messages_whose_last_attempt_failed(aws: Aws, hosts: Receivers) -> None:
    from maskgate.steps.recover import recover

    flaky = endpoint(aws, "/flaky")
    since = datetime.now(UTC) - timedelta(seconds=1)
    hosts.status["/flaky"] = 503
    failed_then_fixed, still_failed = (
        queued_job(aws, status=JobStatus.FAILED, error=FAILED) for _ in range(2)
    )
    notify(failed_then_fixed.id)
    notify(still_failed.id)
    hosts.status["/flaky"] = 204
    fixed = [u for u in aws.delivery_units() if u["job_id"] == failed_then_fixed.id and u["endpoint_id"]]
    load_handler("deliver").handler(
        {k: fixed[0][k] for k in ("job_id", "event", "step", "endpoint_id")}, LambdaContext()
    )
    before = {u["name"] for u in aws.delivery_units()}
    stored = clients.endpoint_store().get(aws.tenant, flaky.id)
    assert recover(stored, since=since, notifier=clients.notifier()) == 1
    [again] = [u for u in aws.delivery_units() if u["name"] not in before]
    assert again["job_id"] == still_failed.id


def test_events_while_disabled_are_logged_as_missed_and_recovered_after_enabling(
    aws: Aws, hosts: Receivers
) -> None:
    from maskgate.steps.recover import recover
    from maskgate.stores.attempt_log import endpoint_stats

    paused = endpoint(aws, "/paused", event_types=["segmentation.failed"])
    since = datetime.now(UTC) - timedelta(seconds=1)
    clients.endpoint_store().update(aws.tenant, paused.id, EndpointUpdate(enabled=False))
    missed = queued_job(aws, status=JobStatus.FAILED, error=FAILED)
    notify(missed.id)
    notify(missed.id)  # a Notify run twice (a retried step) keeps one entry
    notify(queued_job(aws, status=JobStatus.SUCCEEDED).id)  # its filter never takes this one

    assert hosts.to("/paused") == []
    [logged], _ = clients.notifier().log.page(paused.id)
    assert (logged.job_id, logged.event, logged.attempt) == (missed.id, "segmentation.failed", 0)
    assert (logged.status, logged.error, logged.status_code) == ("failed", "EndpointDisabled", None)
    stats = endpoint_stats(clients.notifier().log, paused.id, enabled=False, now=datetime.now(UTC))
    assert stats.attempts == 0 and stats.last_error is None  # nothing was sent

    enabled = clients.endpoint_store().update(aws.tenant, paused.id, EndpointUpdate(enabled=True))
    assert recover(enabled, since=since, notifier=clients.notifier()) == 1
    [unit] = [u for u in aws.delivery_units() if u["endpoint_id"] == paused.id]
    load_handler("deliver").handler(
        {k: unit[k] for k in ("job_id", "event", "step", "endpoint_id")}, LambdaContext()
    )
    [request] = hosts.to("/paused")
    assert request.headers["webhook-id"] == logged.webhook_id


def deliver_unit(unit: dict[str, Any]) -> dict[str, Any]:
    fields = ("job_id", "message_id", "event", "step", "endpoint_id")
    out: dict[str, Any] = load_handler("deliver").handler({k: unit[k] for k in fields}, LambdaContext())
    return out


def test_an_endpoint_disabled_notice_that_fails_is_retried_in_a_unit_with_the_same_bytes(
    aws: Aws, hosts: Receivers
) -> None:
    gone = endpoint(aws, "/gone", event_types=["segmentation.failed"])
    watcher = endpoint(aws, "/watcher", event_types=["endpoint.disabled"])
    hosts.status["/gone"], hosts.status["/watcher"] = 410, 503
    notify(queued_job(aws, status=JobStatus.FAILED, error=FAILED).id)

    [unit] = [u for u in aws.delivery_units() if u["endpoint_id"] == watcher.id]
    [first] = hosts.to("/watcher")
    msg_id = first.headers["webhook-id"]
    assert unit["name"] == f"{msg_id}_{watcher.id}" and unit["job_id"] is None
    assert (unit["message_id"], unit["event"], unit["step"]) == (msg_id, "endpoint.disabled", 0)
    assert unit["wait_seconds"] >= 1
    hosts.status["/watcher"] = 204
    assert deliver_unit(unit)["done"] is True

    [_, again] = hosts.to("/watcher")
    assert again.content == first.content and again.headers["webhook-id"] == msg_id
    assert (
        Webhook(watcher.secret).verify(again.content, dict(again.headers))["data"]["endpoint_id"] == gone.id
    )
    newest, before = clients.attempt_log().page(watcher.id)[0][:2]
    assert (newest.attempt, newest.status, newest.job_id) == (2, "succeeded", None)
    assert (before.attempt, before.status, before.next_attempt_at is not None) == (1, "failed", True)


def test_a_tenant_event_whose_retries_run_out_is_dead_lettered_with_its_resend_route(
    aws: Aws, hosts: Receivers
) -> None:
    endpoint(aws, "/gone", event_types=["segmentation.failed"])
    watcher = endpoint(aws, "/watcher", event_types=["endpoint.disabled"])
    hosts.status["/gone"], hosts.status["/watcher"] = 410, 503
    notify(queued_job(aws, status=JobStatus.FAILED, error=FAILED).id)
    [unit] = [u for u in aws.delivery_units() if u["endpoint_id"] == watcher.id]
    last = len(clients.get_settings().webhook_schedule)

    assert deliver_unit(unit | {"step": last})["done"] is True

    [letter] = aws.dead_letters()
    msg_id = unit["message_id"]
    assert letter["job_id"] is None and letter["webhook_id"] == msg_id
    assert letter["redeliver"] == f"POST /v1/webhook-endpoints/{watcher.id}/messages/{msg_id}/resend"


def test_endpoints_disabled_together_are_all_told_in_one_round(aws: Aws, hosts: Receivers) -> None:
    gone = [endpoint(aws, f"/gone{n}", event_types=["segmentation.failed"]) for n in range(3)]
    endpoint(aws, "/watcher", event_types=["endpoint.disabled"])
    for n in range(3):
        hosts.status[f"/gone{n}"] = 410
    hosts.together["/watcher"] = 3
    notify(queued_job(aws, status=JobStatus.FAILED, error=FAILED).id)

    told = hosts.to("/watcher")
    assert sorted(json.loads(r.content)["data"]["endpoint_id"] for r in told) == sorted(e.id for e in gone)
    assert len({r.headers["webhook-id"] for r in told}) == 3
    assert hosts.most_at_once["/watcher"] == 3  # side by side, not one disabling after another


def test_an_endpoint_disabled_notice_can_be_resent_and_is_recovered(aws: Aws, hosts: Receivers) -> None:
    from maskgate.steps.recover import recover, resend

    endpoint(aws, "/gone", event_types=["segmentation.failed"])
    watcher = endpoint(aws, "/watcher", event_types=["endpoint.disabled"])
    since = datetime.now(UTC) - timedelta(seconds=1)
    hosts.status["/gone"], hosts.status["/watcher"] = 410, 503
    notify(queued_job(aws, status=JobStatus.FAILED, error=FAILED).id)
    msg_id = hosts.to("/watcher")[0].headers["webhook-id"]
    stored = clients.endpoint_store().get(aws.tenant, watcher.id)

    assert recover(stored, since=since, notifier=clients.notifier()) == 1
    assert resend(stored, msg_id, notifier=clients.notifier()) == msg_id
    resent = [u for u in aws.delivery_units() if "-x" in u["name"]]
    assert len(resent) == 2 and {u["message_id"] for u in resent} == {msg_id}
    other = clients.endpoint_store().create("other", EndpointCreate(url="http://127.0.0.1:8765/x"))
    with pytest.raises(NotFound):
        resend(other, msg_id, notifier=clients.notifier())  # another tenant's message is none of its own


def test_a_disabling_whose_invocation_died_before_telling_is_told_at_the_next_event(
    aws: Aws, hosts: Receivers
) -> None:
    gone = endpoint(aws, "/gone", event_types=["segmentation.failed"])
    watcher = endpoint(aws, "/watcher", event_types=["endpoint.disabled"])
    # what a Lambda killed right after the disabling write leaves: disabled, nobody told
    disabled = clients.endpoint_store().disable(aws.tenant, gone.id, reason="the endpoint answered 410 Gone")
    assert disabled is not None and disabled.disabled_notice_pending
    assert "disabled_notice_pending" not in endpoint_public(disabled).model_dump()

    notify(queued_job(aws, status=JobStatus.SUCCEEDED).id)  # any event of the tenant's
    [told] = hosts.to("/watcher")
    assert Webhook(watcher.secret).verify(told.content, dict(told.headers))["data"]["endpoint_id"] == gone.id
    assert not clients.endpoint_store().get(aws.tenant, gone.id).disabled_notice_pending
    notify(queued_job(aws, status=JobStatus.SUCCEEDED).id)
    assert len(hosts.to("/watcher")) == 1  # told once

    again = clients.notifier()
    again.tell_disabled(aws.tenant, [disabled])  # told again (a retried step): the same message
    [_, repeated] = hosts.to("/watcher")
    assert repeated.content == told.content and repeated.headers["webhook-id"] == told.headers["webhook-id"]
