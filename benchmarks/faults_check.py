"""What the fault benchmark saw, and its checks against DESIGN §11: every job terminal, none lost, no
prediction submitted twice, no upload or Idempotency-Key with two jobs, one final webhook per job; and
each job's terminal outcome against the faults the emulator drew for its prediction."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import boto3

from benchmarks.stats import summary_ms
from maskgate.contracts.job import Job
from maskgate.stores.jobs import JobStore
from maskgate_local.wavespeed_models import FaultPlan, image_key

if TYPE_CHECKING:
    from benchmarks.faults import Caller, UploadEvents
    from maskgate_local.stack import DevStack, Ready

TERMINAL_WAIT_S = 60.0  # after the callers gave up: how long jobs still get to become terminal
MAX_EVIDENCE = 40
BUDGET = "100 % terminal, 0 lost, 0 duplicate submissions, 0 duplicate jobs"


@dataclass(frozen=True)
class Spec:
    tag: str  # unique per job; in the request's metadata, the upload key and the image URL
    kind: str  # api | api_url | s3 | upload
    extra: str  # "" | idem_seq | idem_race | redeliver_now | redeliver_late


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
class Hook:
    tag: str
    job_id: str
    webhook_id: str
    event: str
    status: str
    error_type: str | None
    received_at: float


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


def observe(
    stack: DevStack, ready: Ready, caller: Caller, events: UploadEvents, callbacks: dict[str, list[str]]
) -> Observed:
    """Read the end state: jobs (waiting up to TERMINAL_WAIT_S for them to be terminal), predictions,
    executions and their histories, admission slots, webhooks."""
    if stack.aws is None or stack.emulator is None:
        raise RuntimeError("the local stack is not running")
    store = JobStore(table=ready.table, client=stack.aws.client("dynamodb"))
    jobs = _jobs(stack, ready, store)
    until = time.monotonic() + TERMINAL_WAIT_S
    while any(not j.status.terminal for j in jobs) and time.monotonic() < until:
        time.sleep(1.0)
        jobs = [j if j.status.terminal else store.get(j.id) for j in jobs]
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
        hooks=list(caller.hooks),
        unverified=caller.unverified,
        image_reads=Counter(caller.image_reads),
        redelivered=Counter(events.redelivered),
        seen=Counter(events.seen),
        redelivery_errors=list(events.errors),
        callback_answers=dict(callbacks),
        slots_held=_slots(stack, ready),
        histories={j.id: history(sfn, ready.state_machine_arn, j.id) for j in jobs},
    )


def _slots(stack: DevStack, ready: Ready) -> dict[str, float]:
    """The admission slots map (maskgate.admission, ``LIMIT#wavespeed``) as the table holds it."""
    if stack.aws is None:
        raise RuntimeError("the local stack is not running")
    item = stack.aws.client("dynamodb").get_item(
        TableName=ready.table, Key={"pk": {"S": "LIMIT#wavespeed"}}, ConsistentRead=True
    )
    slots = item.get("Item", {}).get("slots", {}).get("M", {})
    return {job: float(value["N"]) for job, value in slots.items()}


def _sfn(ready: Ready) -> Any:
    return boto3.client(
        "stepfunctions",
        endpoint_url=ready.aws_endpoint_url,
        region_name=ready.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 (moto's placeholder credentials)
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


def expected_outcome(plan: FaultPlan | None) -> str:
    """What maskgate should make of a prediction with these faults (stuck wins, then failure, then output)."""
    if plan is None:
        return "no prediction"
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
        _check(acc, found, predictions, hooks.get(acc.spec.tag, []), tally, seen.slots_held)
    ours = {j.id for found in jobs_by_tag.values() for j in found}
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
        "images_submitted_twice": images_twice,
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
    slots_held: dict[str, float],
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
        if job.id in slots_held and job.status.terminal:
            c["slot_leaks"] += 1
            problems.append(f"admission slot still held by {job.id}, which is {job.status.value}")
    if acc.finished_at is not None and acc.webhook and found:
        plan = predictions[found[0].id][0].plan if predictions.get(found[0].id) else None
        tally.latency[expected_outcome(plan)].append(acc.finished_at - acc.started_at)


def _check_job(
    job: Job, predictions: list[PredictionSeen], hooks: list[Hook], tally: Tally, problems: list[str]
) -> None:
    c = tally.counts
    if len(predictions) > 1:
        c["duplicate_submissions"] += len(predictions) - 1
        problems.append(f"duplicate submission: {len(predictions)} predictions for {job.id}")
    actual = actual_outcome(job)
    expected = expected_outcome(predictions[0].plan if predictions else None)
    tally.outcomes[actual] += 1
    tally.breakdown[f"{expected} -> {actual}"] += 1
    if expected != actual:
        c["mismatch"] += 1
        problems.append(f"outcome {actual}, faults drawn say {expected}")
    mine = [h for h in hooks if h.job_id == job.id]
    if any(h.status != job.status.value for h in mine):
        c["hook_status_mismatch"] += 1
        problems.append(f"webhook says {sorted({h.status for h in mine})}, job is {job.status.value}")


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
    flagged.sort(key=lambda a: all(p.startswith("outcome ") for p in tally.problems[a.spec.tag]))
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
    p, w, e = report["parameters"], report["webhooks"], report["emulator"]
    ok = {True: "ok", False: "VIOLATED"}
    lo, hi = report["faults"]["latency_s"]
    lines = [
        f"  faults (DESIGN §11: {report['budget']})",
        f"  {report['jobs']} jobs, {report['concurrency']} in flight, seed {report['seed']}: "
        f"{report['jobs'] / report['phases_s']['send']:.1f} jobs/s; wall {report['wall_s']:.0f} s = "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in report["phases_s"].items()),
        f"  emulator faults: {_pct(report['faults'])}; latency {lo}-{hi} s",
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
        f"  WaveSpeed admission slots still held at the end {report['admission_slots_held_at_end']}",
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
    for v in report["violations"]:
        lines.append(f"  ! {v['tag']} ({v['way_in']}): {'; '.join(v['problems'])}")
        for job in v["jobs"]:
            lines.append(f"      {job['id']} {job['status']} {job['error']} {' '.join(job['history'])}")
    if report.get("log_file"):
        lines.append(f"  the stack's log: {report['log_file']}")
    return "\n".join(lines)
