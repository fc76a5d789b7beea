"""What ``maskgate dev`` prints while it runs: one line per job transition and per webhook attempt.

After every function invocation on the local stack, the jobs it named (a step's ``job_id``, the job in
an API path, callback query or answer, the jobs an upload started) are read back from the table, and
whatever changed since the last look is printed: the new status with the step that made it and how
long the job spent in the one before, and each new webhook attempt with its answer and latency. The
job is read right after the invocation, before the workflow's next step starts, so the step named is
the one that made the change (one read per invocation, on the local stack only).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from maskgate.contracts.job import DeliveryAttempt, Job
from maskgate.errors import MaskgateError
from maskgate.stores.jobs import JobStore

JOB_ID = re.compile(r"seg_[0-9A-HJKMNP-TV-Z]{26}")


@dataclass
class _Seen:
    status: str
    since: float  # monotonic time the status was first seen
    attempts: int  # webhook attempts printed


@dataclass(frozen=True)
class Invocation:
    """One finished invocation, as the activity needs it."""

    function: str  # the step's name: submit, on_upload, api, ...
    event: Any
    payload: str
    errored: bool
    seconds: float


def step_name(logical_id: str) -> str:
    """``OnUploadFunction`` -> ``on_upload``: the folder name under functions/."""
    name = logical_id.removesuffix("Function")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def job_ids(event: Any, payload: str) -> list[str]:
    """The jobs an invocation was about, in order, without repeats."""
    found: list[str] = []
    if isinstance(event, dict):
        if isinstance(event.get("job_id"), str):
            found.append(event["job_id"])
        found += JOB_ID.findall(str(event.get("rawPath", "")) + str(event.get("rawQueryString", "")))
    found += _answered(payload)
    return list(dict.fromkeys(found))


def _answered(payload: str) -> list[str]:
    """Job ids in an answer: an API response's ``id``, or the jobs an upload started."""
    try:
        answer = json.loads(payload)
        if isinstance(answer, dict) and isinstance(answer.get("body"), str):  # an HTTP API response
            answer = json.loads(answer["body"]) if answer["body"].startswith("{") else {}
    except ValueError:
        return []
    if not isinstance(answer, dict):
        return []
    ids = [answer["id"]] if isinstance(answer.get("id"), str) else []
    ids += [j["id"] for j in answer.get("jobs") or [] if isinstance(j, dict) and isinstance(j.get("id"), str)]
    return [i for i in ids if JOB_ID.fullmatch(i)]


class Activity:
    """Prints the local stack's job transitions and webhook attempts (``observe`` each invocation)."""

    def __init__(
        self,
        *,
        jobs: JobStore,
        say: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._jobs = jobs
        self._say = say
        self._clock = clock
        self._wall = wall
        self._seen: dict[str, _Seen] = {}
        self._lock = threading.Lock()

    def observe(self, invocation: Invocation) -> None:
        """Print what changed on the jobs a finished invocation named."""
        for job_id in job_ids(invocation.event, invocation.payload):
            try:
                job = self._jobs.get(job_id)
            except MaskgateError:  # not a job (yet): nothing to say
                continue
            with self._lock:
                lines = list(self.changes(job, invocation))
            for line in lines:
                self._say(line)

    def changes(self, job: Job, invocation: Invocation) -> Iterator[str]:
        """The lines for what changed on ``job`` since the last look."""
        job_id = job.id
        now, stamp = self._clock(), time.strftime("%H:%M:%S", time.localtime(self._wall()))
        took = f"({invocation.function} {invocation.seconds:.2f} s{_raised(invocation)})"
        seen = self._seen.get(job_id)
        if seen is None or seen.status != job.status.value:
            was = f"{seen.status} → " if seen else ""
            after = f" after {now - seen.since:.1f} s" if seen else ""
            yield f"{stamp}  {job_id}  {was}{job.status.value}{after}  {took}{_error(job)}"
            seen = self._seen[job_id] = _Seen(job.status.value, now, seen.attempts if seen else 0)
        for attempt in job.deliveries[seen.attempts :]:
            yield f"{stamp}  {job_id}  {_attempt(attempt)}"
        seen.attempts = len(job.deliveries)


def _raised(invocation: Invocation) -> str:
    """``, raised <errorType>`` for an invocation that ended in an error, ``""`` otherwise. Many are the
    workflow's routing, not a failure (``ResultReused``: a cache hit; ``AdmissionDeferred``: wait for a
    slot), so the type is named rather than the word "failed"."""
    if not invocation.errored:
        return ""
    try:
        error = json.loads(invocation.payload)
    except ValueError:
        error = None
    kind = error.get("errorType") if isinstance(error, dict) else None
    return f", raised {kind}" if isinstance(kind, str) and kind else ", raised an error"


def _error(job: Job) -> str:
    return f"  {job.error.type}: {job.error.message[:120]}" if job.error and job.status.terminal else ""


def _attempt(attempt: DeliveryAttempt) -> str:
    answer = str(attempt.status_code) if attempt.status_code is not None else (attempt.error or "no answer")
    latency = f" in {attempt.latency_ms} ms" if attempt.latency_ms is not None else ""
    return f"webhook {attempt.event} attempt {attempt.attempt}: {answer}{latency} → {attempt.outcome}"
