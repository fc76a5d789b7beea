"""The reconcile sweep: find what a killed invocation, a stopped or failed execution or a lost
delivery unit left behind, and repair it. It runs on a schedule and on demand (``maskgate reconcile``).

What it finds (kind → repair; every repair is counted in a metric, ``dry_run`` only reports):

- ``stalled``: a job not finished whose execution is not running (there is none, or it ended). It
  is restarted as ``<job_id>-r<n>`` with the input its first start had; that is safe in any state,
  because a job whose submit intent is written is never submitted again. The new name is recorded on
  the job (attribute ``execution``) so that a cancel can stop it. A job that cannot run (no request
  or image, or restarted ``MAX_RESTARTS`` times) is failed ``internal_error``; one never submitted
  whose deadline has passed is failed ``timeout`` (a restart would pay for an answer nobody waits
  for). Both are notified.
- ``upload_expired``: a job still awaiting its upload after the upload time, whose expiry execution
  is not running: failed ``upload_expired`` and notified.
- ``slot``: a WaveSpeed admission slot (or a place in its line) whose job is finished or gone: released.
- ``charge``: a finished job whose price is still reserved (its step died between the job's last
  write and the ledger's): settled if it was submitted, else released, and its place in flight freed.
- ``webhook``: a finished job's final webhook that nothing is delivering: its first attempt was
  killed (``webhook_pending``), Notify never ran (no body, no attempt), or the last attempt said
  "retrying" and its time has passed while no unit runs. With no attempt and no unit yet it is
  notified again (the first attempt, then the unit on failure); otherwise a new delivery unit
  ``<webhook_id>-s<n>`` carries on with the schedule (recorded as ``delivery_unit``). The same holds
  for each registered endpoint the event went to: one whose last attempt said "retrying" and whose
  time has passed gets a new unit ``<webhook_id>_<endpoint id>-s<n>`` (unless it was disabled or
  deleted meanwhile). A delivery the sweep restarted ``MAX_UNIT_RESTARTS`` times, each stopped
  again, is dead-lettered (``dead_letter``) and its end recorded on the job.
- ``webhook`` of a tenant's own event (``endpoint.disabled``, ``tenant.spend_threshold``), kept with
  the endpoints it was sent to. An ``endpoint.disabled`` whose endpoint still waits for its notice to
  be marked sent (the telling died) is told again, as the next read of the tenant's targets would.
  Otherwise, for each endpoint it was sent to that still takes it: its last attempt said "retrying"
  and its time has passed, or it was never attempted and no unit ended well, while no unit runs. A
  unit under the first free name of ``<webhook_id>_<endpoint id>`` then ``…-s<n>`` carries on from
  the last attempt's number.

A job updated within the grace period is left to the normal flow. The sweep never scans the table:
it queries the ``created-day`` index (KEYS_ONLY) for the days its window overlaps (the longest a job
may rightly be unfinished, plus two sweep intervals and a margin), then BatchGets those jobs
(eventually consistent). A webhook's retries go on for a day and more after that window: each retry
marks its job anew (``RETRYING#<id>`` under ``retrying#<day>`` of the same index, as of that retry),
and the jobs marked within the longest wait before a next retry, plus a day, are read with the
window's. Tenant events are in the same index under partitions of their own, looked at over the
longest a delivery's retries can take (they are few: a disabled endpoint, a month's threshold).
Running executions come from ListExecutions (one call per 1,000; the delivery units' only when a
delivery is to be repaired). Each candidate is read again, consistently, and its execution described
right before it is repaired.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from maskgate.contracts.endpoints import Endpoint
from maskgate.contracts.job import DeliveryAttempt, Job, JobError, JobStatus, utcnow
from maskgate.contracts.steps import Action, JobRef, Kind, ReconcileInput, ReconcileReport, Repair
from maskgate.errors import InvalidTransition, MaskgateError
from maskgate.observability import logger, metrics
from maskgate.settings import Settings
from maskgate.steps.expire import expire
from maskgate.steps.notify import notify
from maskgate.stores.admission import Admission
from maskgate.stores.attempt_log import LoggedAttempt
from maskgate.stores.job_index import JobIndex, Seen
from maskgate.stores.jobs import JobStore
from maskgate.stores.tenant_events import TenantEvent
from maskgate.webhooks.body import event_type, webhook_id
from maskgate.webhooks.notifier import Notifier, unit_name
from maskgate.webhooks.schedule import JITTER, MAX_RETRY_AFTER_SECONDS
from maskgate.workflow.executions import UPLOAD_GRACE_SECONDS, Executions
from maskgate.workflow.timings import execution_input, timings_of

if TYPE_CHECKING:
    from maskgate.steps.limits import Gate

WINDOW_MARGIN = timedelta(minutes=10)
DISABLED_EVENT = "endpoint.disabled"
MAX_RESTARTS = 5
MAX_UNIT_RESTARTS = 5  # units the sweep starts for one delivery (each after one stopped) before it gives up
NAME_TRIES = 10  # names taken by runs that ended, skipped before giving up

COUNTED = {
    "restart": ("restarted", "ReconcileRestarted"),
    "fail": ("failed", "ReconcileFailed"),
    "expire": ("failed", "ReconcileFailed"),
    "release": ("slots_released", "ReconcileSlotReleased"),
    "notify": ("webhooks_recovered", "ReconcileWebhookRecovered"),
    "start_unit": ("webhooks_recovered", "ReconcileWebhookRecovered"),
    "dead_letter": ("webhooks_dead_lettered", "ReconcileWebhookDeadLettered"),
    "error": ("errors", "ReconcileErrored"),
}


class NoFreeName(MaskgateError):
    """Every execution name a repair may take is taken by a run that ended."""


@dataclass(frozen=True)
class Finding:
    kind: Kind
    action: Action
    error: JobError | None = None  # the failure to record (action "fail")


@dataclass(frozen=True)
class Policy:
    """The sweep's clock and durations, and the delivery units running (listed when first asked)."""

    now: datetime
    grace: timedelta
    deadline: timedelta
    upload_expiry: timedelta  # from registration until the expiry execution fails the job
    interval: timedelta
    units: RunningUnits | None = None  # the delivery state machine's running executions

    def unit_runs(self, base: str) -> bool:
        """Whether a unit of this delivery (``unit_name``) runs: the first, the sweep's (``-s<n>``), a
        redelivery's (``-r<n>``) or a recovery's (``-x<hex>``). Raises when they cannot be listed: no
        unit is started then (the next sweep tries again)."""
        return self.units is not None and base in self.units.bases()

    @property
    def window(self) -> timedelta:
        return max(self.deadline, self.upload_expiry) + 2 * self.interval + WINDOW_MARGIN

    def days(self) -> list[str]:
        first, last = (self.now - self.window).date(), (self.now - self.grace).date()
        return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]

    def bounds(self) -> tuple[str, str]:
        """created_at bounds: whole seconds without a zone sort before every stored time of that second."""
        low, high = (self.now - d for d in (self.window, self.grace))
        return low.strftime("%Y-%m-%dT%H:%M:%S"), high.strftime("%Y-%m-%dT%H:%M:%S")

    def settled(self, at: datetime) -> bool:
        """True when ``at`` is at least the grace period ago."""
        return self.now - at >= self.grace

    def over(self, span: timedelta) -> tuple[list[str], tuple[str, str]]:
        """The days and the ``created_at`` bounds of the last ``span`` (plus two sweep intervals and
        the margin) up to the grace period ago."""
        first = self.now - span - 2 * self.interval - WINDOW_MARGIN
        last = self.now - self.grace
        days = [
            (first.date() + timedelta(days=i)).isoformat()
            for i in range((last.date() - first.date()).days + 1)
        ]
        return days, (first.strftime("%Y-%m-%dT%H:%M:%S"), last.strftime("%Y-%m-%dT%H:%M:%S"))


class RunningUnits:
    """The delivery units running, listed once per sweep when a repair first asks (a sweep with no
    delivery to repair lists nothing); a listing that failed fails every later ask too."""

    SUFFIX = re.compile(r"-[srx][0-9a-f]+$")

    def __init__(self, listing: Callable[[], frozenset[str]]) -> None:
        self._listing = listing
        self._bases: frozenset[str] | None = None
        self._failed: Exception | None = None

    def bases(self) -> frozenset[str]:
        """The delivery each running unit carries on (its name without a unit's suffix)."""
        if self._failed is not None:
            raise self._failed
        if self._bases is None:
            try:
                names = self._listing()
            except Exception as exc:
                self._failed = exc
                raise
            self._bases = frozenset(self.SUFFIX.sub("", name) for name in names)
        return self._bases


def numbered(name: str | None, base: str, letter: str) -> int:
    """n of a recorded ``<base>-<letter><n>`` name; 0 for none."""
    found = re.fullmatch(rf"{re.escape(base)}-{letter}(\d+)", name or "")
    return int(found.group(1)) if found else 0


def stalled(seen: Seen, running: frozenset[str], policy: Policy) -> Finding | None:
    """What an unfinished job needs, if anything (``running``: the names of running executions)."""
    job = seen.job
    if job.status.terminal or not policy.settled(job.updated_at):
        return None
    if job.status is JobStatus.AWAITING_UPLOAD:
        over = policy.settled(job.created_at + policy.upload_expiry)
        return Finding("upload_expired", "expire") if over else None
    if seen.execution_name in running:
        return None
    if job.request is None or job.image is None:
        return Finding(
            "stalled", "fail", JobError(type="internal_error", message="the job has nothing to run")
        )
    if (
        job.prediction_id is None
        and job.submit_attempt is None
        and policy.now >= job.created_at + policy.deadline
    ):
        message = "the job was not submitted within the deadline (its workflow had stopped)"
        return Finding("stalled", "fail", JobError(type="timeout", message=message))
    restarts = numbered(seen.execution, job.id, "r")
    if restarts >= MAX_RESTARTS:
        message = f"the job's workflow stopped again after {restarts} restarts"
        return Finding("stalled", "fail", JobError(type="internal_error", message=message))
    return Finding("stalled", "restart")


def undelivered(seen: Seen, running: frozenset[str], policy: Policy) -> Finding | None:
    """A finished job's final webhook that nothing delivers (its own execution is not running)."""
    job = seen.job
    if not job.status.terminal or seen.execution_name in running:
        return None
    if job.webhook_url is None and job.webhook_pending is None:  # endpoints alone: see stopped_endpoints
        return None
    if not policy.settled(job.finished_at or job.updated_at):
        return None
    attempts = [d for d in job.deliveries if d.event == event_type(job.status) and d.endpoint_id is None]
    last = attempts[-1] if attempts else None
    overdue = (
        last is not None
        and last.outcome == "retrying"
        and (last.next_attempt_at is None or policy.settled(last.next_attempt_at))
    )
    if job.webhook_pending or overdue or (job.webhook_body is None and not attempts):
        return Finding("webhook", "start_unit" if attempts else "notify")
    return None


def stopped_endpoints(seen: Seen, policy: Policy) -> dict[str, int]:
    """The registered endpoints of a finished job whose delivery nothing carries on: their last
    attempt said "retrying" and its time, and the grace, have passed. Each with the retries made."""
    job = seen.job
    if not job.status.terminal:
        return {}
    event = event_type(job.status)
    last: dict[str, DeliveryAttempt] = {}
    made: Counter[str] = Counter()
    for attempt in job.deliveries:
        if attempt.event == event and attempt.endpoint_id is not None:
            last[attempt.endpoint_id] = attempt
            made[attempt.endpoint_id] += 1
    return {
        endpoint_id: made[endpoint_id] - 1
        for endpoint_id, attempt in last.items()
        if attempt.outcome == "retrying" and policy.settled(attempt.next_attempt_at or attempt.at)
    }


def _longest_waits(schedule: tuple[int, ...]) -> list[int]:
    """Each wait of the schedule at its jitter's top or at the longest ``Retry-After`` honoured,
    whichever is longer (seconds)."""
    return [max(round(wait * (1 + JITTER)), MAX_RETRY_AFTER_SECONDS) for wait in schedule]


def longest_delivery(schedule: tuple[int, ...]) -> timedelta:
    """The longest a delivery's retries can span, and a day for the repairs that restarted it."""
    return timedelta(seconds=sum(_longest_waits(schedule))) + timedelta(days=1)


def longest_after_a_retry(schedule: tuple[int, ...]) -> timedelta:
    """The longest a delivery can rightly go quiet after a retry (its next wait), and a day for the
    sweeps that could not repair it: a job is looked at for so long after its last retry's mark."""
    return timedelta(seconds=max(_longest_waits(schedule), default=0)) + timedelta(days=1)


def event_stopped(
    attempts: list[LoggedAttempt], units: list[str], kept_at: datetime | None, policy: Policy
) -> bool:
    """Whether nothing carries on a tenant event's delivery to one endpoint: no unit runs (``units``:
    the statuses of its units, in order), and its last attempt said "retrying" and its time and the
    grace have passed, or it was never attempted, kept before the grace period, and no unit ended
    well (one that did found the endpoint no longer takes the event)."""
    if "RUNNING" in units:
        return False
    if attempts:
        last = attempts[-1].next_attempt_at
        return last is not None and policy.settled(last)
    ended_well = bool(units) and units[-1] == "SUCCEEDED"
    return not ended_well and kept_at is not None and policy.settled(kept_at)


def failed(exc: Exception, kind: Kind, *, job_id: str | None = None, message_id: str | None = None) -> Repair:
    """A repair that raised, as the report lists it (the log has the traceback)."""
    detail = f"{type(exc).__name__}: {exc}"[:300]
    return Repair(job_id=job_id, message_id=message_id, kind=kind, action="error", detail=detail)


def orphaned(slots: dict[str, float], jobs: dict[str, Seen], policy: Policy) -> list[str]:
    """Slots taken before the grace period whose job is gone, or finished before the grace period: a
    job that has just ended may still be on its way to the step that gives its slot back (Fail)."""
    oldest = (policy.now - policy.grace).timestamp()

    def left_behind(job_id: str) -> bool:
        if job_id not in jobs:
            return True
        job = jobs[job_id].job
        ended = job.finished_at or job.updated_at
        return job.status.terminal and ended.timestamp() <= oldest

    return sorted(job_id for job_id, taken in slots.items() if taken <= oldest and left_behind(job_id))


@dataclass(frozen=True)
class Reconciler:
    index: JobIndex
    jobs: JobStore
    notifier: Notifier
    admission: Admission
    executions: Executions
    settings: Settings
    now: Callable[[], datetime] = utcnow
    gate: Gate | None = None  # the tenants' spend ledger and quotas

    def run(self, request: ReconcileInput) -> ReconcileReport:
        """One sweep: find, confirm and (unless a dry run) repair."""
        # listed before the jobs are read: an execution started after the listing is a young job's
        running = self.executions.running(self.settings.state_machine_arn)
        repairs: list[Repair | None] = []
        delivery = self.settings.delivery_state_machine_arn
        # the units running under any name (a unit of a known name is also described before a repair)
        units = RunningUnits(lambda: self.executions.running(delivery)) if delivery is not None else None
        policy = self._policy(request, units)
        ids = self.index.ids(policy.days(), policy.bounds())
        try:  # older jobs whose webhook is still retried (marked at each retry)
            ids += self.index.retrying(*policy.over(longest_after_a_retry(self.settings.webhook_schedule)))
        except Exception as exc:
            logger.exception("reconcile could not list the jobs whose webhook is retried")
            repairs.append(failed(exc, "webhook"))
        seen = self.index.read(ids)
        for one in seen.values():
            finding = stalled(one, running, policy) or undelivered(one, running, policy)
            if finding is not None:
                repairs.append(self._guarded(one.job.id, finding.kind, self._repair, policy, request.dry_run))
            if (
                one.job.status.terminal
                and one.job.charge == "reserved"
                and policy.settled(one.job.updated_at)
            ):
                repairs.append(self._guarded(one.job.id, "charge", self._charge, request.dry_run))
            for endpoint_id in stopped_endpoints(one, policy):
                repairs.append(
                    self._guarded(one.job.id, "webhook", self._endpoint, endpoint_id, policy, request.dry_run)
                )
        repairs += self._tenant_events(policy, request.dry_run)
        slots = {**self.admission.waiters(), **self.admission.in_flight()}  # a place in line, too
        owners = {**self.index.read(job_id for job_id in slots if job_id not in seen), **seen}
        for job_id in orphaned(slots, owners, policy):
            repairs.append(self._guarded(job_id, "slot", self._release, request.dry_run))
        done = [repair for repair in repairs if repair is not None]
        return self._report(request.dry_run, len(seen), done)

    def _policy(self, request: ReconcileInput, units: RunningUnits | None) -> Policy:
        settings = self.settings
        grace = settings.reconcile_grace_seconds if request.grace_seconds is None else request.grace_seconds
        return Policy(
            now=self.now(),
            grace=timedelta(seconds=grace),
            deadline=timedelta(seconds=settings.job_deadline_seconds),
            upload_expiry=timedelta(seconds=settings.upload_seconds + UPLOAD_GRACE_SECONDS),
            interval=timedelta(minutes=settings.reconcile_interval_minutes),
            units=units,
        )

    def _guarded(
        self,
        subject: str,
        kind: Kind,
        repair: Callable[..., Repair | None],
        *args: Any,
        event: bool = False,
    ) -> Repair | None:
        """One repair of a job (``subject`` its id) or, with ``event``, of a tenant event's delivery (its
        webhook-id); a failure is reported and logged, and the sweep goes on with the next."""
        named = {"message_id" if event else "job_id": subject}
        try:
            return repair(subject, *args)
        except Exception as exc:
            logger.exception("reconcile repair failed", extra={**named, "kind": kind})
            return failed(exc, kind, **named)

    def _repair(self, job_id: str, policy: Policy, dry_run: bool) -> Repair | None:
        fresh = self.index.get(job_id)
        if fresh is None:
            return None
        machine = self.settings.state_machine_arn
        status = self.executions.status(machine, fresh.execution_name)
        running = frozenset({fresh.execution_name} if status == "RUNNING" else ())
        finding = stalled(fresh, running, policy) or undelivered(fresh, running, policy)
        if finding is None:
            return None
        if finding.kind == "upload_expired":
            return self._expire(fresh, dry_run)
        if finding.kind == "webhook":
            return self._webhook(fresh, policy, dry_run)
        if finding.action == "fail" and finding.error is not None:
            return self._fail(fresh, finding.error, dry_run)
        return self._restart(fresh, dry_run)

    def _restart(self, seen: Seen, dry_run: bool) -> Repair | None:
        job, machine = seen.job, self.settings.state_machine_arn
        payload = json.dumps(
            execution_input(job.id, created_at=job.created_at, timings=timings_of(self.settings))
        )
        first = numbered(seen.execution, job.id, "r") + 1
        names = [f"{job.id}-r{n}" for n in range(first, first + NAME_TRIES)]
        if dry_run:
            return Repair(job_id=job.id, kind="stalled", action="restart", detail=names[0])
        name, started = self._start_first_free(
            machine, names, lambda n: self.executions.start(machine, n, payload)
        )
        recorded = self.index.record(job.id, "execution", name)
        if not started:  # a concurrent sweep restarted it under that name
            return None
        if not recorded:  # the job ended (a cancel) before it could know this name: its run is ours to stop
            self.executions.stop(machine, name)
            return None
        logger.info("job restarted", extra={"job_id": job.id, "execution": name})
        return Repair(job_id=job.id, kind="stalled", action="restart", detail=name)

    def _fail(self, seen: Seen, error: JobError, dry_run: bool) -> Repair | None:
        job_id = seen.job.id
        if dry_run:
            return Repair(job_id=job_id, kind="stalled", action="fail", detail=error.type)
        try:
            self.jobs.transition(job_id, JobStatus.FAILED, error=error)
        except InvalidTransition:
            return None  # it finished meanwhile
        self.admission.release(job_id)
        outcome = notify(JobRef(job_id=job_id), notifier=self.notifier).outcome
        return Repair(job_id=job_id, kind="stalled", action="fail", detail=f"{error.type}; webhook {outcome}")

    def _expire(self, seen: Seen, dry_run: bool) -> Repair | None:
        job_id, machine = seen.job.id, self.settings.require("upload_expiry_state_machine_arn")
        if self.executions.status(machine, job_id) == "RUNNING":
            return None
        if dry_run:
            return Repair(job_id=job_id, kind="upload_expired", action="expire", detail="upload_expired")
        outcome = expire(JobRef(job_id=job_id), notifier=self.notifier).outcome
        if outcome == "uploaded":
            return None  # the upload came meanwhile
        return Repair(
            job_id=job_id, kind="upload_expired", action="expire", detail=f"upload_expired; webhook {outcome}"
        )

    def _webhook(self, seen: Seen, policy: Policy, dry_run: bool) -> Repair | None:
        job, machine = seen.job, self.settings.require("delivery_state_machine_arn")
        event = event_type(job.status)
        msg_id = webhook_id(job.id, event)
        units = {name: self.executions.status(machine, name) for name in (msg_id, seen.delivery_unit) if name}
        if "RUNNING" in units.values() or policy.unit_runs(msg_id):
            return None
        attempts = sum(1 for d in job.deliveries if d.event == event and d.endpoint_id is None)
        if not attempts and units[msg_id] is None:  # nothing was ever tried: the first attempt, as Notify
            outcome = "" if dry_run else ": " + notify(JobRef(job_id=job.id), notifier=self.notifier).outcome
            return Repair(job_id=job.id, kind="webhook", action="notify", detail=msg_id + outcome)
        restarts = numbered(seen.delivery_unit, msg_id, "s")
        if restarts >= MAX_UNIT_RESTARTS and attempts:
            return self._dead_letter(job, None, restarts, dry_run)
        names = [f"{msg_id}-s{n}" for n in range(restarts + 1, restarts + 1 + NAME_TRIES)]
        if dry_run:
            return Repair(job_id=job.id, kind="webhook", action="start_unit", detail=names[0])
        step = max(0, attempts - 1)  # retries made so far: the unit carries on with the schedule

        def start(name: str) -> bool:
            return self.notifier.units.start(name=name, job_id=job.id, event=event, step=step, wait_seconds=0)

        name, started = self._start_first_free(machine, names, start)
        self.index.record(job.id, "delivery_unit", name)
        return Repair(job_id=job.id, kind="webhook", action="start_unit", detail=name) if started else None

    def _endpoint(self, job_id: str, endpoint_id: str, policy: Policy, dry_run: bool) -> Repair | None:
        """A new delivery unit for one endpoint whose delivery stopped, confirmed on a fresh read."""
        fresh = self.index.get(job_id)
        if fresh is None or endpoint_id not in (stopped := stopped_endpoints(fresh, policy)):
            return None
        job, machine = fresh.job, self.settings.require("delivery_state_machine_arn")
        event = event_type(job.status)
        base = unit_name(webhook_id(job.id, event), endpoint_id)
        if policy.unit_runs(base):
            return None
        if self.notifier.target(job, endpoint_id) is None:
            return None  # disabled or deleted meanwhile: it gets nothing more
        names = [f"{base}-s{n}" for n in range(1, MAX_UNIT_RESTARTS + 1)]
        if dry_run:
            taken = len(self._ran(machine, names))
            if taken == len(names):
                return self._dead_letter(job, endpoint_id, taken, dry_run)
            return Repair(job_id=job.id, kind="webhook", action="start_unit", detail=names[taken])

        def start(name: str) -> bool:
            return self.notifier.units.start(
                name=name,
                job_id=job.id,
                event=event,
                step=stopped[endpoint_id],
                wait_seconds=0,
                endpoint_id=endpoint_id,
            )

        try:
            name, started = self._start_first_free(machine, names, start)
        except NoFreeName:
            return self._dead_letter(job, endpoint_id, len(names), dry_run)
        return Repair(job_id=job.id, kind="webhook", action="start_unit", detail=name) if started else None

    def _ran(self, machine: str, names: list[str]) -> list[str]:
        """The statuses of the executions that took these names, in order, up to the first name free."""
        statuses: list[str] = []
        for name in names:
            status = self.executions.status(machine, name)
            if status is None:
                break
            statuses.append(status)
        return statuses

    def _dead_letter(self, job: Job, endpoint_id: str | None, restarts: int, dry_run: bool) -> Repair:
        """Give up a delivery the sweep restarted ``restarts`` times and that stopped each time: it goes
        to the dead-letter queue (with its resend route), then its end is recorded on the job, so no
        sweep takes it up again (one that dies between the two sends it there twice, never not)."""
        event = event_type(job.status)
        msg_id = webhook_id(job.id, event)
        target = unit_name(msg_id, endpoint_id)
        detail = f"{target}: stopped after {restarts} restarts"
        if dry_run:
            return Repair(job_id=job.id, kind="webhook", action="dead_letter", detail=detail)
        tried = [d for d in job.deliveries if d.event == event and d.endpoint_id == endpoint_id]
        last = tried[-1].model_copy(
            update={
                "outcome": "dead_lettered",
                "at": self.now(),
                "next_attempt_at": None,
                "error": f"its delivery stopped after {restarts} restarts by the reconcile sweep",
            }
        )
        self.notifier.units.dead_letter(job_id=job.id, event=event, webhook_id=msg_id, last=last)
        self.jobs.record_delivery(job.id, last)
        return Repair(job_id=job.id, kind="webhook", action="dead_letter", detail=detail)

    def _tenant_events(self, policy: Policy, dry_run: bool) -> list[Repair | None]:
        """The repairs of the tenant events kept over the longest a delivery can take: each one's own
        reads guarded, as each repair is."""
        try:
            kept = self.notifier.events.kept(*policy.over(longest_delivery(self.settings.webhook_schedule)))
        except Exception as exc:
            logger.exception("reconcile could not list tenant events")
            return [failed(exc, "webhook")]
        repairs: list[Repair | None] = []
        for event in kept:
            try:
                subject, endpoint_ids = self._event_targets(event)
            except Exception as exc:
                logger.exception("reconcile could not read a tenant event's endpoints")
                repairs.append(failed(exc, "webhook", message_id=event.webhook_id))
                continue
            if subject is not None:
                repairs.append(
                    self._guarded(
                        event.webhook_id, "webhook", self._retell, event, subject, policy, dry_run, event=True
                    )
                )
            for endpoint_id in endpoint_ids:
                repairs.append(
                    self._guarded(
                        event.webhook_id,
                        "webhook",
                        self._event_unit,
                        event,
                        endpoint_id,
                        policy,
                        dry_run,
                        event=True,
                    )
                )
        return repairs

    def _event_targets(self, event: TenantEvent) -> tuple[Endpoint | None, list[str]]:
        """An ``endpoint.disabled`` whose endpoint still waits for its notice to be sent: that endpoint,
        to tell the notice again (as the next read of the tenant's targets would). Otherwise the
        endpoints the event was sent to that still take it (enabled, their filter passing it)."""
        endpoints = {e.id: e for e in self.notifier.endpoints.list(event.tenant)}
        if event.type == DISABLED_EVENT:
            subject = endpoints.get(json.loads(event.body)["data"]["endpoint_id"])
            if subject is not None and subject.disabled_notice_pending:
                return subject, []
        return None, [i for i in event.told if i in endpoints and endpoints[i].receives(event.type)]

    def _retell(
        self, webhook_id: str, event: TenantEvent, subject: Endpoint, policy: Policy, dry_run: bool
    ) -> Repair | None:
        """Tell an ``endpoint.disabled`` notice again whose telling did not finish: the same bytes and
        webhook-id to the tenant's endpoints that take it now, and the notice marked sent."""
        if event.at is None or not policy.settled(event.at):
            return None
        if not dry_run:
            self.notifier.tell_disabled(event.tenant, [subject])
        return Repair(message_id=webhook_id, kind="webhook", action="notify", detail=f"{subject.id} disabled")

    def _event_unit(
        self, webhook_id: str, event: TenantEvent, endpoint_id: str, policy: Policy, dry_run: bool
    ) -> Repair | None:
        """A unit for one endpoint's delivery of a tenant event that nothing carries on."""
        # a unit numbers its attempt after the retries before it: at most one per step, plus the first
        attempts = self.notifier.log.of_message(
            endpoint_id, webhook_id, up_to=len(self.settings.webhook_schedule) + 2
        )
        machine = self.settings.require("delivery_state_machine_arn")
        base = unit_name(webhook_id, endpoint_id)
        if policy.unit_runs(base):
            return None
        names = [base] + [f"{base}-s{n}" for n in range(1, NAME_TRIES + 1)]
        units = self._ran(machine, names)
        if not event_stopped(attempts, units, event.at, policy):
            return None
        free = names[len(units) :]
        if not free:
            raise NoFreeName(f"no free execution name up to {names[-1]}")
        if dry_run:
            return Repair(message_id=webhook_id, kind="webhook", action="start_unit", detail=free[0])

        def start(name: str) -> bool:
            return self.notifier.units.start(
                name=name,
                message_id=webhook_id,
                event=event.type,
                # the retries made so far (its last attempt's number less one): it carries on the schedule
                step=attempts[-1].attempt - 1 if attempts else 0,
                wait_seconds=0,
                endpoint_id=endpoint_id,
            )

        name, started = self._start_first_free(machine, free, start)
        if not started:
            return None
        return Repair(message_id=webhook_id, kind="webhook", action="start_unit", detail=name)

    def _charge(self, job_id: str, dry_run: bool) -> Repair | None:
        job = self.jobs.get(job_id)
        if self.gate is None or job.charge != "reserved":
            return None
        if not dry_run:
            self.gate.finish(job)
        return Repair(
            job_id=job_id, kind="charge", action="release", detail="reserved price settled or released"
        )

    def _release(self, job_id: str, dry_run: bool) -> Repair | None:
        fresh = self.index.get(job_id)
        if fresh is not None and not fresh.job.status.terminal:
            return None
        detail = "job gone" if fresh is None else f"job {fresh.job.status.value}"
        if not dry_run:
            self.admission.release(job_id)
        return Repair(job_id=job_id, kind="slot", action="release", detail=detail)

    def _start_first_free(
        self, machine: str, names: list[str], start: Callable[[str], bool]
    ) -> tuple[str, bool]:
        """Start under the first name not taken: (name, True); (name, False) when a running execution
        holds it (another sweep's)."""
        for name in names:
            if start(name):
                return name, True
            if self.executions.status(machine, name) == "RUNNING":
                return name, False
        raise NoFreeName(f"no free execution name up to {names[-1]}")

    def _report(self, dry_run: bool, checked: int, repairs: list[Repair]) -> ReconcileReport:
        counts = dict.fromkeys(["found", *dict.fromkeys(c for c, _ in COUNTED.values())], 0)
        counts["found"] = len(repairs)
        for repair in repairs:
            counts[COUNTED[repair.action][0]] += 1
        if not dry_run:
            metrics.add_metric(name="ReconcileFound", unit="Count", value=len(repairs))
            for count, metric in dict(COUNTED.values()).items():
                metrics.add_metric(name=metric, unit="Count", value=counts[count])
        logger.info("reconcile sweep", extra={"dry_run": dry_run, "checked": checked, **counts})
        return ReconcileReport(dry_run=dry_run, checked=checked, repairs=repairs, counts=counts)
