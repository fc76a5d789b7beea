"""What the fault run saw, and its checks: every job terminal, none lost, at most one WaveSpeed
submission per job, no upload or Idempotency-Key with two jobs, no completed prediction whose job did
not succeed (but for invalid outputs), exactly one final webhook-id per job, no admission slot held at
the end, no delivery lost (each delivered, refused or in the dead-letter queue); and each job's terminal
outcome against the faults the emulator drew for its prediction. ``breaches`` lists what failed."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import boto3

from benchmarks.faults.receivers import DELIVERY, Hook
from benchmarks.stats import summary_ms
from maskgate.contracts.job import Job
from maskgate.stores.jobs import JobStore
from maskgate.webhooks.body import event_type
from maskgate_local.emulator.models import FaultPlan, image_key

if TYPE_CHECKING:
    from benchmarks.faults.receivers import CallerSide
    from benchmarks.faults.uploads import UploadEvents
    from maskgate_local.stack.dev import DevStack, Ready

TERMINAL_WAIT_S = 60.0  # after the callers gave up: how long jobs still get to become terminal
MAX_EVIDENCE = 40
BUDGET = (
    "100 % terminal, 0 lost, <= 1 submission per job, 0 duplicate jobs, 0 paid results lost, "
    "1 final webhook-id per job, 0 slots held, 0 deliveries lost"
)
SWEEP_EVERY_S = 5.0  # while waiting for jobs to be terminal: the reconcile sweep's period
# why a job whose submit answer was lost ended upstream_outcome_unknown although its prediction ran: the
# prediction's every callback was dropped too, and nothing else proves which prediction is the job's
UNPROVABLE = "answer and callbacks lost"


@dataclass(frozen=True)
class Spec:
    tag: str  # unique per job; in the request's metadata, the upload key and the image URL
    kind: str  # api | api_url | s3 | upload
    extra: str  # "" | idem_once | idem_seq | idem_race | redeliver_now | redeliver_late
    receiver: str = "ok"  # the behaviour of its webhook's receiver (benchmarks.receivers.BEHAVIOURS)


@dataclass
class Accepted:
    """What the caller did for one spec and what it was answered."""

    spec: Spec
    key: str | None = None  # the S3 key of an upload
    job_ids: list[str] = field(default_factory=list)  # ids in the API's answers
    answers: list[int | str] = field(default_factory=list)  # POST /v1/segmentations: statuses or errors
    error: str | None = None  # the way in refused the job
    started_at: float = 0.0
    finished_at: float | None = None
    webhook: bool = False


@dataclass(frozen=True)
class PredictionSeen:
    id: str
    job_id: str  # from its callback URL (?job=)
    image: str  # the emulator's stats key of its image
    plan: FaultPlan
    status: str


@dataclass
class Observed:
    jobs: list[Job]
    predictions: list[PredictionSeen]
    stats: dict[str, Any]
    executions: Counter[str]  # execution name -> how many executions carry it
    hooks: list[Hook]
    unverified: int
    image_reads: Counter[str]
    redelivered: Counter[str]
    seen: Counter[str]
    redelivery_errors: list[str]
    callback_answers: dict[str, list[str]]  # job id -> maskgate's answers to WaveSpeed's callbacks
    slots_held: dict[str, float]  # WaveSpeed admission slots still taken at the end (job id -> since)
    histories: dict[str, list[str]]  # job id -> compact execution history
    dead_letters: Counter[str] = field(default_factory=Counter)  # job id -> webhook DLQ messages
    crashes: dict[str, int] = field(default_factory=dict)  # crash point -> crashes injected
    reconcile: dict[str, Any] = field(default_factory=dict)  # the sweeps' summed counts and repairs
    cuts: list[float | None] = field(default_factory=list)  # trickled answers: when the sender hung up


def observe(
    stack: DevStack,
    ready: Ready,
    caller: CallerSide,
    events: UploadEvents,
    callbacks: dict[str, list[str]],
    *,
    sweep: Callable[[], None] | None = None,
) -> Observed:
    """Read the end state: jobs (waiting up to TERMINAL_WAIT_S for them to be terminal, running ``sweep``
    every SWEEP_EVERY_S meanwhile), predictions, executions and their histories, admission slots,
    webhooks and the webhook dead-letter queue."""
    if stack.aws is None or stack.emulator is None:
        raise RuntimeError("the local stack is not running")
    store = JobStore(table=ready.table, client=stack.aws.client("dynamodb"))
    jobs = _jobs(stack, ready, store)
    until = time.monotonic() + TERMINAL_WAIT_S
    swept = time.monotonic()
    while _unsettled(jobs) and time.monotonic() < until:
        time.sleep(1.0)
        if sweep is not None and time.monotonic() - swept >= SWEEP_EVERY_S:
            sweep()
            swept = time.monotonic()
        jobs = [store.get(j.id) if _unsettled([j]) else j for j in jobs]
    receivers = caller.receivers
    emulator = stack.emulator
    with emulator._lock:  # the records hold each prediction's drawn faults; no public reader exposes them
        records = list(emulator._predictions.values())
    predictions = [
        PredictionSeen(
            id=r.id,
            job_id=parse_qs(urlsplit(r.webhook or "").query).get("job", [""])[0],
            image=image_key(r.body.image),
            plan=r.plan,
            status=r.status,
        )
        for r in records
    ]
    sfn = _sfn(ready)
    names: Counter[str] = Counter()
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=ready.state_machine_arn):
        names.update(e["name"] for e in page["executions"])
    return Observed(
        jobs=jobs,
        predictions=predictions,
        stats=emulator.stats(),
        executions=names,
        hooks=list(receivers.hooks),
        unverified=receivers.unverified,
        image_reads=Counter(receivers.image_reads),
        redelivered=Counter(events.redelivered),
        seen=Counter(events.seen),
        redelivery_errors=list(events.errors),
        callback_answers=dict(callbacks),
        slots_held=_slots(stack, ready),
        histories={j.id: history(sfn, ready.state_machine_arn, j.id) for j in jobs},
        dead_letters=_dead_letters(stack),
        crashes=_injected(stack),
        cuts=[c.after_s for c in receivers.cuts],
    )


def _injected(stack: DevStack) -> dict[str, int]:
    """Crash point -> crashes injected so far."""
    if stack.crashes is None:
        return {}
    return {point: int(v["injected"]) for point, v in stack.crashes.listing()["points"].items()}


def _unsettled(jobs: list[Job]) -> bool:
    """A job not terminal yet, or whose final webhook is still on its way (no attempt, or retrying)."""
    return any(
        not j.status.terminal or (j.webhook_url is not None and _last_attempt(j) in (None, "retrying"))
        for j in jobs
    )


def _last_attempt(job: Job) -> str | None:
    """The outcome of the last recorded attempt of the job's final webhook (None: no attempt recorded)."""
    final = [d for d in job.deliveries if d.event == event_type(job.status)]
    return max(final, key=lambda d: d.attempt).outcome if final else None


def _dead_letters(stack: DevStack) -> Counter[str]:
    """Job id -> messages in the webhook dead-letter queue (read, not deleted)."""
    if stack.aws is None or stack.provisioned is None:
        raise RuntimeError("the local stack is not running")
    sqs, url = stack.aws.client("sqs"), stack.provisioned.queues["WebhookDeadLetterQueue"]
    found: Counter[str] = Counter()
    seen: set[str] = set()
    for _ in range(1000):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600).get(
            "Messages", []
        )
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            break
        for message in fresh:
            seen.add(message["MessageId"])
            found[str(json.loads(message["Body"]).get("job_id", ""))] += 1
    return found


def _slots(stack: DevStack, ready: Ready) -> dict[str, float]:
    """The admission slots map (maskgate.stores.admission, ``LIMIT#wavespeed``) as the table holds it,
    with the jobs still in its line (a place in line left behind is a leak too)."""
    if stack.aws is None:
        raise RuntimeError("the local stack is not running")
    item = stack.aws.client("dynamodb").get_item(
        TableName=ready.table, Key={"pk": {"S": "LIMIT#wavespeed"}}, ConsistentRead=True
    )
    slots = item.get("Item", {}).get("slots", {}).get("M", {})
    waiting = item.get("Item", {}).get("waiting", {}).get("M", {})
    return {**dict.fromkeys(waiting, 0.0), **{job: float(value["N"]) for job, value in slots.items()}}


def _sfn(ready: Ready) -> Any:
    return boto3.client(
        "stepfunctions",
        endpoint_url=ready.aws_endpoint_url,
        region_name=ready.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # moto's placeholder credentials
    )


def _jobs(stack: DevStack, ready: Ready, store: JobStore) -> list[Job]:
    if stack.aws is None:
        raise RuntimeError("the local stack is not running")
    ids = []
    pages = stack.aws.client("dynamodb").get_paginator("scan")
    for page in pages.paginate(
        TableName=ready.table,
        FilterExpression="begins_with(pk, :job)",
        ExpressionAttributeValues={":job": {"S": "JOB#"}},
        ProjectionExpression="pk",
    ):
        ids += [item["pk"]["S"].removeprefix("JOB#") for item in page["Items"]]
    return [store.get(job_id) for job_id in ids]


def history(sfn: Any, state_machine_arn: str, job_id: str) -> list[str]:
    """The job's execution as its states and errors: ``Submit !States.Timeout Backoff Poll ...``."""
    arn = state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{job_id}"
    try:
        described = sfn.describe_execution(executionArn=arn)
        events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    except sfn.exceptions.ExecutionDoesNotExist:
        return ["(no execution)"]
    steps = []
    for event in events:
        details = next(
            (v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {}
        )
        if event["type"].endswith("StateEntered"):
            steps.append(str(details.get("name")))
        elif "error" in details:
            steps.append(f"!{details['error']}")
    return [*steps, f"={described['status']}"]


def expected_outcome(plan: FaultPlan | None, *, answer_lost: bool = False) -> str:
    """What maskgate should make of a prediction with these faults (stuck wins, then failure, then output).

    ``answer_lost``: the job's submit intent is written and WaveSpeed took the prediction, but its answer
    never reached the job (a crash right after the POST). Then only a callback can tell maskgate which
    prediction is the job's: with every callback dropped (or none ever sent, for a stuck prediction) the
    job ends ``upstream_outcome_unknown`` at its deadline instead of paying twice."""
    if plan is None:
        return "no prediction"
    if answer_lost and (plan.drop_callback or plan.stuck):
        return "failed/upstream_outcome_unknown"
    if plan.stuck:
        return "failed/timeout"
    if plan.fail:
        return "failed/upstream_failed"
    if plan.bad_output:
        return "failed/output_invalid"
    return "succeeded"


def actual_outcome(job: Job) -> str:
    if job.status.value == "succeeded" or job.error is None:
        return job.status.value
    return f"{job.status.value}/{job.error.type}"


@dataclass
class Tally:
    """Counts across jobs, and the problems of each spec by tag."""

    problems: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    outcomes: Counter[str] = field(default_factory=Counter)
    breakdown: Counter[str] = field(default_factory=Counter)
    finals: Counter[int] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    delivered: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))


def evaluate(specs: list[Spec], accepted: list[Accepted], seen: Observed) -> dict[str, Any]:
    """Check every spec; the report (figures, breakdowns, and evidence for every violation)."""
    tags = {s.tag for s in specs}
    jobs_by_tag: dict[str, list[Job]] = defaultdict(list)
    for job in seen.jobs:
        if job.metadata.get("tag") in tags:
            jobs_by_tag[job.metadata["tag"]].append(job)
    predictions: dict[str, list[PredictionSeen]] = defaultdict(list)
    for prediction in seen.predictions:
        predictions[prediction.job_id].append(prediction)
    hooks: dict[str, list[Hook]] = defaultdict(list)
    for hook in seen.hooks:
        hooks[hook.tag].append(hook)
    tally = Tally()
    for acc in accepted:
        found = jobs_by_tag.get(acc.spec.tag, [])
        _check(acc, found, predictions, hooks.get(acc.spec.tag, []), tally, seen)
    ours = {j.id for found in jobs_by_tag.values() for j in found}
    per_job = Counter(p.job_id for p in seen.predictions if p.job_id in ours)
    images_twice = sum(1 for n in seen.stats["submissions_by_image"].values() if n > 1)
    c = tally.counts
    return {
        "budget": BUDGET,
        "ways_in": dict(Counter(f"{s.kind}{'+' + s.extra if s.extra else ''}" for s in specs)),
        "accepted": len(specs) - c["refused"],
        "refused": c["refused"],
        "job_records": len(ours),
        "terminal": c["terminal"],
        "terminal_pct": 100.0 * c["terminal"] / len(ours) if ours else 0.0,
        "lost": c["lost"],
        "duplicate_submissions": c["duplicate_submissions"],
        "most_submissions_for_one_job": max(per_job.values(), default=0),
        "images_submitted_twice": images_twice,
        "paid_results_lost": c["paid_results_lost"],
        "answer_and_callbacks_lost": c["unprovable"],
        "duplicate_jobs": c["duplicate_jobs"],
        "duplicate_executions": sum(n - 1 for n in seen.executions.values() if n > 1),
        "unattributed_predictions": sum(1 for p in seen.predictions if p.job_id not in ours),
        "webhooks": {
            "deliveries": sum(len(v) for v in hooks.values()),
            "final_events_per_job": {str(k): v for k, v in sorted(tally.finals.items())},
            "duplicate_deliveries": c["duplicate_deliveries"],
            "status_differs_from_job": c["hook_status_mismatch"],
            "unverified": seen.unverified,
        },
        "outcomes": dict(tally.outcomes.most_common()),
        "breakdown": dict(sorted(tally.breakdown.items())),
        "mismatched_outcomes": c["mismatch"],
        "redeliveries": {
            "s3_events_redelivered": sum(seen.redelivered.values()),
            "keys_seen_twice_or_more": sum(1 for n in seen.seen.values() if n > 1),
            "errors": seen.redelivery_errors[:10],
        },
        "idempotency": {
            "posts": c["posts"],
            "answered_409": c["answered_409"],
            "transport_errors": c["post_transport_errors"],
        },
        "emulator": {k: v for k, v in seen.stats.items() if k != "submissions_by_image"},
        "callback_answers": dict(Counter(a for answers in seen.callback_answers.values() for a in answers)),
        "admission_slots_held_at_end": len(seen.slots_held),
        "deliveries": {
            "lost": c["deliveries_lost"],
            "unlike_the_receiver": c["delivery_mismatch"],
            "by_receiver": {k: dict(v) for k, v in sorted(tally.delivered.items())},
            "dead_letter_messages": sum(seen.dead_letters.values()),
            "trickled_attempts_cut_after_s": _cut_summary(seen.cuts),
        },
        "crashes_injected": dict(sorted(seen.crashes.items())),
        "reconcile": seen.reconcile,
        "execution_errors": dict(_errors(seen.histories, ours).most_common()),
        "execution_paths": {" ".join(k): v for k, v in _paths(seen.histories, ours).most_common(8)},
        "execution_error_examples": _error_examples(seen.histories, ours),
        "send_to_webhook": {k: summary_ms(v) for k, v in sorted(tally.latency.items())},
        "violations": _evidence(accepted, tally, jobs_by_tag, predictions, hooks, seen),
    }


def _errors(histories: dict[str, list[str]], ours: set[str]) -> Counter[str]:
    """How often each error name appears in our jobs' executions (a retried one counts each time)."""
    return Counter(
        step[1:] for job, steps in histories.items() if job in ours for step in steps if step[:1] == "!"
    )


def _error_examples(histories: dict[str, list[str]], ours: set[str]) -> dict[str, str]:
    """For each error name, the first of our jobs whose execution shows it, with that execution."""
    examples: dict[str, str] = {}
    for job, steps in sorted(histories.items()):
        for step in steps:
            if job in ours and step[:1] == "!" and step[1:] not in examples:
                examples[step[1:]] = f"{job}: {' '.join(steps)}"
    return examples


def _paths(histories: dict[str, list[str]], ours: set[str]) -> Counter[tuple[str, ...]]:
    """Our jobs' sequences of states, repeated Backoff/Poll pairs folded into one ``(Backoff Poll)xN``."""
    paths: Counter[tuple[str, ...]] = Counter()
    for job, steps in histories.items():
        if job not in ours:
            continue
        states = [s for s in steps if s[:1] not in ("!", "=")]
        polls = sum(1 for s in states if s == "Poll")
        folded = [s for s in states if s not in ("Backoff", "Poll")]
        if polls:
            folded.insert(1, f"(Backoff Poll)x{polls}")
        paths[tuple(folded)] += 1
    return paths


def _check(
    acc: Accepted,
    found: list[Job],
    predictions: dict[str, list[PredictionSeen]],
    hooks: list[Hook],
    tally: Tally,
    seen: Observed,
) -> None:
    problems, c = tally.problems[acc.spec.tag], tally.counts
    c["posts"] += len(acc.answers)
    c["answered_409"] += acc.answers.count(409)
    c["post_transport_errors"] += sum(1 for a in acc.answers if isinstance(a, str))
    if acc.error is not None:
        c["refused"] += 1
        problems.append(f"refused at the way in: {acc.error}")
        if not found:
            return
    ids = {j.id for j in found}
    if len(found) > 1 or len(set(acc.job_ids)) > 1:
        c["duplicate_jobs"] += max(len(found), len(set(acc.job_ids))) - 1
        problems.append(f"duplicate job: {sorted(ids | set(acc.job_ids))}")
    if set(acc.job_ids) - ids:
        problems.append(f"answered ids not in the table: {sorted(set(acc.job_ids) - ids)}")
    final_ids = {h.webhook_id for h in hooks}
    tally.finals[len(final_ids)] += 1
    c["duplicate_deliveries"] += len(hooks) - len(final_ids)
    if len(final_ids) > 1:
        problems.append(f"{len(final_ids)} different final events: {sorted(final_ids)}")
    terminal = [j for j in found if j.status.terminal]
    c["terminal"] += len(terminal)
    if not found or len(terminal) < len(found) or not final_ids:
        c["lost"] += 1
        why = "no job" if not found else "not terminal" if len(terminal) < len(found) else "no final webhook"
        problems.append(f"lost: {why}")
    for job in found:
        _check_job(job, predictions.get(job.id, []), hooks, tally, problems)
        _check_delivery(job, acc.spec.receiver, seen.dead_letters, tally, problems)
        if job.id in seen.slots_held and job.status.terminal:
            c["slot_leaks"] += 1
            problems.append(f"admission slot still held by {job.id}, which is {job.status.value}")
    if acc.finished_at is not None and acc.webhook and found:
        tally.latency[_expected(found[0], predictions.get(found[0].id, []))].append(
            acc.finished_at - acc.started_at
        )


def _check_job(
    job: Job, predictions: list[PredictionSeen], hooks: list[Hook], tally: Tally, problems: list[str]
) -> None:
    c = tally.counts
    if len(predictions) > 1:
        c["duplicate_submissions"] += len(predictions) - 1
        problems.append(f"duplicate submission: {len(predictions)} predictions for {job.id}")
    actual = actual_outcome(job)
    expected = _expected(job, predictions)
    tally.outcomes[actual] += 1
    if expected == "failed/upstream_outcome_unknown" and actual == expected:
        c["unprovable"] += 1
    paid = [p for p in predictions if p.status == "completed"]
    if paid and actual != "succeeded" and expected not in ("failed/output_invalid", actual):
        c["paid_results_lost"] += 1
        problems.append(f"paid result lost: prediction {paid[0].id} completed, the job is {actual}")
    tally.breakdown[f"{expected} -> {actual}"] += 1
    if expected != actual:
        c["mismatch"] += 1
        problems.append(f"outcome {actual}, faults drawn say {expected}")
    mine = [h for h in hooks if h.job_id == job.id]
    if any(h.status != job.status.value for h in mine):
        c["hook_status_mismatch"] += 1
        problems.append(f"webhook says {sorted({h.status for h in mine})}, job is {job.status.value}")


def _expected(job: Job, predictions: list[PredictionSeen]) -> str:
    """The outcome the faults drawn for the job's (first) prediction call for."""
    plan = predictions[0].plan if predictions else None
    return expected_outcome(plan, answer_lost=bool(predictions) and job.prediction_id is None)


def _check_delivery(
    job: Job, receiver: str, dead_letters: Counter[str], tally: Tally, problems: list[str]
) -> None:
    """The job's final webhook ended as its receiver's behaviour calls for, and never without trace:
    delivered, refused by the receiver (410: ``gave_up``), or dead-lettered with a message in the queue."""
    if job.webhook_url is None or not job.status.terminal:
        return
    c, last = tally.counts, _last_attempt(job) or "no attempt recorded"
    tally.delivered[receiver][last] += 1
    kept = last in ("delivered", "gave_up", "refused") or (last == "dead_lettered" and dead_letters[job.id])
    if not kept:
        c["deliveries_lost"] += 1
        problems.append(f"delivery lost: last attempt {last}, {dead_letters[job.id]} dead-letter messages")
    elif last != DELIVERY[receiver]:
        c["delivery_mismatch"] += 1
        problems.append(f"delivery {last}, the {receiver} receiver calls for {DELIVERY[receiver]}")


def _cut_summary(cuts: list[float | None]) -> dict[str, Any]:
    """How long trickled answers ran before the sender hung up (never: it read the trickle to its end)."""
    cut = [c for c in cuts if c is not None]
    return {"n": len(cuts), "never_cut": len(cuts) - len(cut), "max_s": round(max(cut), 2) if cut else None}


def breaches(report: dict[str, Any]) -> list[str]:
    """The fault run's budget, one line per figure that misses it (empty: every invariant held)."""
    w, d = report["webhooks"], report["deliveries"]
    checks = {
        "jobs not terminal": report["job_records"] - report["terminal"],
        "jobs lost": report["lost"],
        "refused at the way in": report["refused"],
        "jobs with more than one WaveSpeed submission": report["duplicate_submissions"],
        "duplicate jobs": report["duplicate_jobs"],
        "paid results lost": report["paid_results_lost"],
        "jobs without exactly one final webhook-id": sum(
            n for k, n in w["final_events_per_job"].items() if k != "1"
        ),
        "unverified webhooks": w["unverified"],
        "webhooks whose status differs from their job": w["status_differs_from_job"],
        "admission slots held at the end": report["admission_slots_held_at_end"],
        "deliveries lost": d["lost"],
        "trickled attempts never cut": d["trickled_attempts_cut_after_s"]["never_cut"],
    }
    return [f"{name}: {n}" for name, n in checks.items() if n]


def _evidence(
    accepted: list[Accepted],
    tally: Tally,
    jobs_by_tag: dict[str, list[Job]],
    predictions: dict[str, list[PredictionSeen]],
    hooks: dict[str, list[Hook]],
    seen: Observed,
) -> list[dict[str, Any]]:
    """For every spec with a problem (budget violations first), what each part saw."""
    flagged = [a for a in accepted if tally.problems.get(a.spec.tag)]
    flagged.sort(key=lambda a: all(_minor(p) for p in tally.problems[a.spec.tag]))
    evidence = []
    for acc in flagged[:MAX_EVIDENCE]:
        found = jobs_by_tag.get(acc.spec.tag, [])
        evidence.append(
            {
                "tag": acc.spec.tag,
                "way_in": f"{acc.spec.kind}{'+' + acc.spec.extra if acc.spec.extra else ''}",
                "problems": tally.problems[acc.spec.tag],
                "answers": acc.answers,
                "answered_ids": acc.job_ids,
                "s3_event_deliveries": seen.seen.get(acc.key or "", 0),
                "jobs": [_job_evidence(j, predictions.get(j.id, []), seen) for j in found],
                "webhooks": [f"{h.webhook_id} {h.event} {h.status}" for h in hooks.get(acc.spec.tag, [])],
            }
        )
    return evidence


def _minor(problem: str) -> bool:
    """An outcome or delivery unlike what the faults call for, which no invariant forbids."""
    return problem.startswith(("outcome ", "delivery ")) and not problem.startswith("delivery lost")


def _job_evidence(job: Job, predictions: list[PredictionSeen], seen: Observed) -> dict[str, Any]:
    return {
        "id": job.id,
        "status": job.status.value,
        "error": job.error.model_dump() if job.error else None,
        "prediction_id": job.prediction_id,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "delivery_attempts": [f"{d.attempt}:{d.outcome}:{d.status_code}" for d in job.deliveries],
        "predictions": [
            {"id": p.id, "status": p.status, "faults": {k: v for k, v in asdict(p.plan).items() if v}}
            for p in predictions
        ],
        "executions_named_after_it": seen.executions.get(job.id, 0),
        "history": seen.histories.get(job.id, []),
        "callback_answers": seen.callback_answers.get(job.id, []),
    }


def attach_log_lines(violations: list[dict[str, Any]], log: str, limit: int = 8) -> None:
    """Add the stack's log lines naming each violation's jobs (warnings and errors at the default level)."""
    lines = log.splitlines()
    for violation in violations:
        ids = [j["id"] for j in violation["jobs"]] + [violation["tag"]]
        violation["log"] = [line[:400] for line in lines if any(i in line for i in ids)][:limit]


def _pct(rates: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.0%}" for k, v in rates.items() if k != "latency_s")


def render(report: dict[str, Any]) -> str:
    """The fault part as a few lines (and the evidence of each violation)."""
    p, w, e, d = report["parameters"], report["webhooks"], report["emulator"], report["deliveries"]
    cuts, rec = d["trickled_attempts_cut_after_s"], report["reconcile"]
    ok = {True: "ok", False: "VIOLATED"}
    lo, hi = report["faults"]["latency_s"]
    lines = [
        f"  faults ({report['budget']})",
        f"  {report['jobs']} jobs, {report['concurrency']} in flight, seed {report['seed']}: "
        f"{report['jobs'] / report['phases_s']['send']:.1f} jobs/s; wall {report['wall_s']:.0f} s = "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in report["phases_s"].items()),
        f"  emulator faults: {_pct(report['faults'])}; latency {lo}-{hi} s",
        "  crash points (rate, injected): "
        + (
            ", ".join(
                f"{k} {rate:.0%} {report['crashes_injected'].get(k, 0)}"
                for k, rate in sorted(report["crash_rates"].items())
            )
            or "none"
        ),
        f"  timings: PollInitialSeconds {p['PollInitialSeconds']}, PollMaxSeconds {p['PollMaxSeconds']}, "
        f"JobDeadlineSeconds {p['JobDeadlineSeconds']}",
        "  ways in: " + ", ".join(f"{k} {v}" for k, v in sorted(report["ways_in"].items())),
        f"  terminal {report['terminal_pct']:.1f} % ({report['terminal']}/{report['job_records']} jobs; "
        f"{report['accepted']} accepted, {report['refused']} refused)  "
        f"{ok[report['terminal'] == report['job_records']]}",
        f"  lost (no job, not terminal, or no final webhook) {report['lost']}  {ok[report['lost'] == 0]}",
        f"  duplicate submissions {report['duplicate_submissions']} (images submitted twice "
        f"{report['images_submitted_twice']}; {e['submissions']} submitted for {report['job_records']} jobs; "
        f"unattributed {report['unattributed_predictions']})  {ok[report['duplicate_submissions'] == 0]}",
        f"  paid results lost {report['paid_results_lost']} (completed predictions whose job did not "
        f"succeed, invalid outputs aside; answer and every callback lost, so unknown: "
        f"{report['answer_and_callbacks_lost']})  {ok[report['paid_results_lost'] == 0]}",
        f"  duplicate jobs {report['duplicate_jobs']} (executions sharing a name "
        f"{report['duplicate_executions']})  {ok[report['duplicate_jobs'] == 0]}",
        f"  webhooks: {w['deliveries']} deliveries; final events per job {w['final_events_per_job']}; "
        f"duplicate deliveries (same webhook-id) {w['duplicate_deliveries']}; status differs from the job "
        f"{w['status_differs_from_job']}; unverified {w['unverified']}",
        f"  S3 events redelivered {report['redeliveries']['s3_events_redelivered']}; Idempotency-Key POSTs "
        f"{report['idempotency']['posts']} ({report['idempotency']['answered_409']} answered 409, "
        f"{report['idempotency']['transport_errors']} transport errors; retried)",
        f"  emulator: refused 429 {e['refused_429']}, 503 {e['refused_503']}; polls {e['polls']} "
        f"(5xx {e['result_5xx']}); callbacks sent {e['callbacks_sent']}, dropped {e['callbacks_dropped']}, "
        f"failed {e['callbacks_failed']}",
        "  maskgate's answers to WaveSpeed callbacks: "
        + ", ".join(f"{k} {v}" for k, v in sorted(report["callback_answers"].items())),
        f"  WaveSpeed admission slots still held at the end {report['admission_slots_held_at_end']}  "
        f"{ok[report['admission_slots_held_at_end'] == 0]}",
        f"  deliveries lost {d['lost']} (each delivered, refused or dead-lettered; dead-letter messages "
        f"{d['dead_letter_messages']})  {ok[d['lost'] == 0]}",
        "  final delivery by receiver: "
        + "; ".join(
            f"{r} " + ", ".join(f"{k} {n}" for k, n in o.items()) for r, o in d["by_receiver"].items()
        ),
        f"  trickled attempts: {cuts['n']}, cut after at most {cuts['max_s']} s, "
        f"never cut {cuts['never_cut']}",
        f"  reconcile sweeps {rec.get('runs', 0)}: repairs "
        + (", ".join(f"{k} {v}" for k, v in sorted(rec.get("repairs", {}).items())) or "none")
        + (f"; errors {rec['errors']}" if rec.get("errors") else ""),
        "  errors in the executions (each retry counts): "
        + ", ".join(f"{k} {v}" for k, v in report["execution_errors"].items()),
        "  commonest paths: " + "; ".join(f"{k} {v}" for k, v in report["execution_paths"].items()),
        f"  outcome by the faults drawn for the job's prediction ({report['mismatched_outcomes']} differ):",
        *[f"    {k:<52} {v:>5}" for k, v in report["breakdown"].items()],
        "  sent -> final webhook, by expected outcome:   n     p50 ms   p95 ms   max ms",
        *[
            f"    {k:<40} {s['n']:>5} {s['p50_ms']:>8.0f} {s['p95_ms']:>8.0f} {s['max_ms']:>8.0f}"
            for k, s in report["send_to_webhook"].items()
        ],
    ]
    missed = breaches(report)
    lines.append("  budget: " + ("every invariant held" if not missed else "MISSED: " + "; ".join(missed)))
    for v in report["violations"]:
        lines.append(f"  ! {v['tag']} ({v['way_in']}): {'; '.join(v['problems'])}")
        for job in v["jobs"]:
            lines.append(f"      {job['id']} {job['status']} {job['error']} {' '.join(job['history'])}")
    if report.get("log_file"):
        lines.append(f"  the stack's log: {report['log_file']}")
    return "\n".join(lines)
