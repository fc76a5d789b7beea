"""The fault run: N jobs under every WaveSpeed emulator fault, every crash point and hostile receivers at
once must end 100 % terminal, with at most one WaveSpeed submission per job, no paid result thrown away,
one final webhook-id per job, no admission slot held and no delivery lost.

``run()`` starts a child (``python -m benchmarks.faults.run``) that runs ONE local stack in-process with short
timings, sets the emulator's fault mix and the crash rates, and sends the jobs through every way in at
``concurrency`` in flight: ``POST /v1/segmentations`` (image as a data URI, or as a unique loopback URL
the emulator fetches; with an ``Idempotency-Key``, some sent twice in sequence or at once; a 5xx is
retried with the key, as clients do), raw S3 puts under ``uploads/`` (request in the object metadata) and
direct uploads (``POST /v1/uploads`` + the presigned POST). Some S3 events are delivered twice, by
invoking ``on_upload`` again with the very event S3 sent: at once (racing the first) or after the job's
webhook. Each job's webhook goes to a receiver that answers at once, slowly, trickles its answer, is
down now and then, answers 410 or fails every time (``benchmarks.faults.receivers``). The stack's reconcile
function runs every few seconds, as its schedule would. Each job's image URL is unique, so the
emulator's per-image submission counts name the job. The child then waits for every job to be terminal
and checks what DynamoDB, Step Functions, SQS, the emulator and the receivers saw
(``benchmarks.faults.check``).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import httpx

from benchmarks.faults import check
from benchmarks.faults.check import Accepted, Spec
from benchmarks.faults.receivers import CallerSide, Receivers, start_caller_side
from benchmarks.faults.uploads import UploadEvents
from benchmarks.harness import tagged_png
from maskgate import crashpoints
from maskgate_local.demo.sample import PANEL, scene_png
from maskgate_local.emulator import app as wavespeed_emulator
from maskgate_local.emulator import edges as wavespeed_io
from maskgate_local.stack.dev import DevStack, Ready, StackPorts

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_JOBS = 1000
DEFAULT_CONCURRENCY = 8
DEFAULT_SEED = 11
# Moderate rates of all eight faults at once; a prediction's latency is drawn in [0.1, 1.5] s, so its
# callback comes sometimes inside Submit's first 1 s wait (Submit → Store → Notify) and sometimes after it
# (Backoff → Poll). submit_429/submit_5xx are refused before a prediction exists; result_5xx hits every
# read (Poll and Store); stuck never finishes; bad_output serves a broken file.
FAULT_RATES: dict[str, Any] = {
    "submit_429": 0.10,
    "submit_5xx": 0.05,
    "result_5xx": 0.10,
    "prediction_failed": 0.05,
    "stuck": 0.05,
    "drop_callback": 0.15,
    "duplicate_callback": 0.10,
    "bad_output": 0.05,
    "latency_s": [0.1, 1.5],
}
# Template parameters over the local stack's own (maskgate_local.stack.dev.LOCAL_PARAMETERS):
# - PollInitialSeconds 3 (the template's default): Submit's wait for the callback also times its own Lambda
#   run, which on this loaded one-process stack can pass the local 1 s; a Submit timed out while its Lambda
#   still runs makes Poll fail the job ("no prediction to poll") as the prediction lands anyway;
# - PollMaxSeconds 2 (the local value): a late callback costs at most 2 s of polling;
# - JobDeadlineSeconds 30 (not 900): a stuck prediction fails as `timeout` 30 s after its job was created,
#   while it holds one of the caller's slots (the template's minimum is 10; the smoke test uses it);
# - TenantRequestsPerMinute lifted: the caller's own request rate is not under test (600/min would 429);
# - WaveSpeed admission stays as the local stack sets it (64 in flight, 6,000 per minute): its code runs.
PARAMETERS = {
    "PollInitialSeconds": "3",
    "PollMaxSeconds": "2",
    "JobDeadlineSeconds": "30",
    "TenantRequestsPerMinute": "1000000",
    "WebhookRetrySchedule": "1,1,1,1,1,1,1",
}
# Every crash point of the layer at a rate in [0.2, 0.3], on top of the emulator's faults. A crash ends its
# invocation right after the point's side effect (Sandbox.Timedout); the workflow's retries, S3's async
# retries, the client's retry with its Idempotency-Key and the reconcile sweep must make it good.
CRASH_RATES: dict[str, float] = {
    point: (0.2, 0.25, 0.3)[index % 3] for index, point in enumerate(sorted(crashpoints.POINTS))
}
KINDS = (("api", 0.30), ("api_url", 0.20), ("s3", 0.35), ("upload", 0.15))
# the receiver each job's webhook goes to (benchmarks.receivers.BEHAVIOURS), with its share of jobs
RECEIVERS = (
    ("ok", 0.50),
    ("slow", 0.15),
    ("trickle", 0.10),
    ("down", 0.10),
    ("gone", 0.075),
    ("failing", 0.075),
)
BOX = {"x_min": PANEL[0], "y_min": PANEL[1], "x_max": PANEL[2] + 1, "y_max": PANEL[3] + 1}
TIMEOUT = httpx.Timeout(60.0, connect=5.0)
WEBHOOK_MARGIN_S = 60.0  # beyond the job deadline, how long a caller waits for a job's webhook
SETTLE_QUIET_S = 2.0  # after the last job: no new webhook for this long ends the watch for late duplicates
SETTLE_MAX_S = 20.0
RECONCILE_EVERY_S = 5.0  # the sweep's schedule during the run (15 min in the template; the grace is 2 s)
RETRIED_STATUSES = (409, 500, 502, 503, 504)  # retried with the same Idempotency-Key, as clients do


def plan_specs(jobs: int, seed: int) -> list[Spec]:
    """The jobs to send: a way in and a receiver each; every API request with an Idempotency-Key (sent
    twice for some, in sequence or at once), and for some S3 uploads the event delivered twice."""
    rng = random.Random(seed)  # a workload, not a secret
    run = f"{seed:x}{rng.getrandbits(24):06x}"
    specs = []
    for index in range(jobs):
        kind = rng.choices([k for k, _ in KINDS], weights=[w for _, w in KINDS])[0]
        roll = rng.random()
        if kind.startswith("api"):
            extra = "idem_seq" if roll < 0.15 else "idem_race" if roll < 0.30 else "idem_once"
        else:
            extra = "redeliver_now" if roll < 0.15 else "redeliver_late" if roll < 0.30 else ""
        receiver = rng.choices([r for r, _ in RECEIVERS], weights=[w for _, w in RECEIVERS])[0]
        specs.append(Spec(tag=f"f{run}-{index:05d}", kind=kind, extra=extra, receiver=receiver))
    return specs


class CallbackTap:
    """How maskgate answered each WaveSpeed callback (wraps the emulator's ``post_callback``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.answers: dict[str, list[str]] = {}  # job id -> "200" | "404" | exception name, in order

    def wrap(self, original: Callable[..., bool]) -> Callable[..., bool]:
        tap = self

        class Recording:
            def __init__(self, http: httpx.Client, job: str) -> None:
                self._http, self._job = http, job

            def post(self, url: str, **kwargs: Any) -> httpx.Response:
                try:
                    response = self._http.post(url, **kwargs)
                except httpx.HTTPError as exc:
                    tap.note(self._job, type(exc).__name__)
                    raise
                tap.note(self._job, str(response.status_code))
                return response

        def post_callback(http: httpx.Client, url: str, **kwargs: Any) -> bool:
            job = parse_qs(urlsplit(url).query).get("job", [""])[0]
            return original(Recording(http, job), url, **kwargs)

        return post_callback

    def reset(self) -> None:
        with self._lock:
            self.answers.clear()

    def note(self, job: str, answer: str) -> None:
        with self._lock:
            self.answers.setdefault(job, []).append(answer)


@dataclass
class Driver:
    """Sends one job per spec through its way in and waits for its webhook."""

    stack: DevStack
    ready: Ready
    caller: CallerSide
    events: UploadEvents
    http: httpx.Client
    image: bytes
    webhook_wait_s: float
    s3: Any = None

    @property
    def receivers(self) -> Receivers:
        return self.caller.receivers

    def request(self, spec: Spec) -> dict[str, Any]:
        return {
            "box_prompts": [BOX],
            "webhook_url": self.caller.hook_url(spec.receiver),
            "metadata": {"tag": spec.tag, "kind": spec.kind},
        }

    def image_of(self, spec: Spec) -> bytes:
        """The sample image made the job's own: every job is a result-cache miss (the cache's lookup
        and entry write run under every fault), and its WaveSpeed outcome is its own faults'."""
        return tagged_png(self.image, spec.tag)

    def one(self, spec: Spec) -> Accepted:
        started = time.time()
        try:
            accepted = self._send(spec)
        except Exception as exc:  # reported per job (a refused way in), never raised
            return Accepted(spec=spec, started_at=started, error=f"{type(exc).__name__}: {exc}"[:300])
        accepted.started_at = started
        accepted.webhook = self.receivers.wait(spec.tag, self.webhook_wait_s)
        accepted.finished_at = time.time()
        if spec.extra == "redeliver_late" and accepted.key:
            self.events.redeliver(accepted.key)
        return accepted

    def _send(self, spec: Spec) -> Accepted:
        if spec.kind == "s3":
            key = f"uploads/faults/{spec.tag}.png"
            metadata = {"maskgate": json.dumps(self.request(spec), ensure_ascii=True)}
            self.s3.put_object(Bucket=self.ready.bucket, Key=key, Body=self.image_of(spec), Metadata=metadata)
            return Accepted(spec=spec, key=key)
        if spec.kind == "upload":
            return self._direct_upload(spec)
        return self._api(spec)

    def _direct_upload(self, spec: Spec) -> Accepted:
        body = {**self.request(spec), "filename": f"{spec.tag}.png", "content_type": "image/png"}
        accepted = Accepted(spec=spec)
        answer = self._create("/v1/uploads", body, spec.tag, accepted, done=201)
        if answer is None:
            raise RuntimeError(f"POST /v1/uploads never answered 201 (answers {accepted.answers})")
        form = answer["upload"]
        posted = self.http.post(
            form["url"],
            data=form["fields"],
            files={"file": (f"{spec.tag}.png", self.image_of(spec), "image/png")},
        )
        if posted.status_code not in (200, 201, 204):
            raise RuntimeError(f"presigned POST -> {posted.status_code}: {posted.text[:200]}")
        accepted.key, accepted.job_ids = str(form["fields"]["key"]), [str(answer["id"])]
        return accepted

    def _api(self, spec: Spec) -> Accepted:
        if spec.kind == "api_url":
            image = self.caller.image_url(spec.tag)
        else:
            image = "data:image/png;base64," + base64.b64encode(self.image_of(spec)).decode()
        body = {**self.request(spec), "image": image}
        key = spec.tag if spec.extra else None
        accepted = Accepted(spec=spec)

        def create(_: int) -> str | None:
            answer = self._create("/v1/segmentations", body, key, accepted, done=202)
            return None if answer is None else str(answer["id"])

        if spec.extra == "idem_race":  # a client retrying before the first answer came
            with ThreadPoolExecutor(max_workers=2) as pair:
                answers = list(pair.map(create, range(2)))
        else:
            answers = [create(n) for n in range(2 if spec.extra == "idem_seq" else 1)]
        accepted.job_ids = [a for a in answers if a]
        if not accepted.job_ids:
            raise RuntimeError(f"POST /v1/segmentations never answered 202 (answers {accepted.answers})")
        return accepted

    def _create(
        self, path: str, body: dict[str, Any], key: str | None, accepted: Accepted, *, done: int
    ) -> dict[str, Any] | None:
        """POST until ``done``. With an Idempotency-Key a 409 'still being processed', a 5xx or a transport
        error is retried with the same key, as clients do; without one, none is (it could make a second
        job)."""
        for _ in range(100):
            try:
                answer = self._post(path, body, key=key)
            except httpx.TransportError as exc:
                accepted.answers.append(type(exc).__name__)
                if key is None:
                    return None
                time.sleep(0.1)
                continue
            accepted.answers.append(answer.status_code)
            if answer.status_code == done:
                return dict(answer.json())
            if answer.status_code not in RETRIED_STATUSES or key is None:
                return None
            time.sleep(0.1)
        return None

    def _post(self, path: str, body: dict[str, Any], *, key: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.ready.api_key}", "content-type": "application/json"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.http.post(f"{self.ready.api_url}{path}", content=json.dumps(body), headers=headers)


@contextlib.contextmanager
def running_stack(
    *, seed: int, parameters: dict[str, str], tap: CallbackTap
) -> Iterator[tuple[DevStack, Ready, CallerSide]]:
    """ONE in-process local stack with these parameters and the caller's side; all stopped at the end."""
    with contextlib.ExitStack() as cleanup:
        # the emulator calls post_callback by its own module's name: patched there, wrapping the original
        tapped = tap.wrap(wavespeed_io.post_callback)
        cleanup.enter_context(mock.patch.object(wavespeed_emulator, "post_callback", tapped))
        stack = DevStack(ports=StackPorts.free(), parameters=parameters, wavespeed_seed=seed)
        ready = stack.start()
        cleanup.callback(stack.stop)
        caller = start_caller_side(secret=ready.webhook_secret, image=scene_png(), flaky=True)
        cleanup.callback(caller.stop)
        yield stack, ready, caller


def _tap_uploads(stack: DevStack, specs: list[Spec]) -> tuple[UploadEvents, Callable[[], None]]:
    if stack.aws is None or stack.provisioned is None:
        raise RuntimeError("the local stack is not running")
    name = stack.provisioned.functions["OnUploadFunction"].function_name
    runner = stack.aws.runner(name)
    if runner is None:
        raise RuntimeError(f"no local handler for {name}")
    lambda_client = stack.aws.client("lambda")

    def invoke_again(event: dict[str, Any]) -> bool:
        response = lambda_client.invoke(FunctionName=name, Payload=json.dumps(event))
        response["Payload"].read()
        return not response.get("FunctionError")

    events = UploadEvents(invoke_again, {s.tag for s in specs if s.extra == "redeliver_now"})
    patcher = mock.patch.object(runner, "invoke", events.wrap(runner.invoke))
    patcher.start()
    return events, patcher.stop


class Sweeper:
    """The stack's reconcile function invoked every ``every_s`` (as its schedule would), counts summed."""

    def __init__(self, stack: DevStack, every_s: float = RECONCILE_EVERY_S) -> None:
        if stack.aws is None or stack.provisioned is None:
            raise RuntimeError("the local stack is not running")
        self._name = stack.provisioned.functions["ReconcileFunction"].function_name
        self._lambda = stack.aws.client("lambda")
        self._every_s = every_s
        self._stop = threading.Event()
        self.runs = 0
        self.crashed = 0  # sweeps an injected crash ended
        self.errors: list[str] = []  # sweeps that failed for a reason of their own
        self.counts: Counter[str] = Counter()
        self.repairs: Counter[str] = Counter()  # "<action> <kind>" -> how many
        self.details: list[str] = []  # the first repairs, whole
        self._thread = threading.Thread(target=self._loop, name="faults-reconcile", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._every_s):
            self.sweep()

    def sweep(self) -> None:
        response = self._lambda.invoke(FunctionName=self._name, Payload=b'{"dry_run": false}')
        payload = response["Payload"].read()
        self.runs += 1
        if response.get("FunctionError"):
            text = payload[:300].decode(errors="replace")
            if '"Sandbox.Timedout"' in text and "injected crash at" in text:
                self.crashed += (
                    1  # the run's own fault (a crash point fired in a repair): the next sweep goes on
                )
            else:
                self.errors.append(text)
            return
        report = json.loads(payload)
        self.counts.update({k: int(v) for k, v in report["counts"].items()})
        self.repairs.update(f"{r['action']} {r['kind']}" for r in report["repairs"])
        whole = [json.dumps(r, sort_keys=True)[:300] for r in report["repairs"]]
        self.details += whole[: max(0, 20 - len(self.details))]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(120.0)

    def summary(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "crashed": self.crashed,
            "counts": dict(self.counts),
            "repairs": dict(self.repairs),
            "repair_details": self.details,
            "errors": self.errors[:5],
        }


def measure(
    *,
    jobs: int,
    concurrency: int,
    seed: int,
    parameters: dict[str, str],
    faults: dict[str, Any],
    crashes: dict[str, float],
) -> dict[str, Any]:
    """In this process: the stack, the jobs, the checks; the report as a dict."""
    laps = Laps()
    specs = plan_specs(jobs, seed)
    deadline_s = float(parameters["JobDeadlineSeconds"])
    tap = CallbackTap()
    with running_stack(seed=seed, parameters=parameters, tap=tap) as (stack, ready, caller):
        laps.lap("stack")
        events, untap = _tap_uploads(stack, specs)
        # idle connections dropped before uvicorn's 5 s keep-alive ends them (a reuse race: resets)
        limits = httpx.Limits(max_connections=4 * concurrency, keepalive_expiry=2.0)
        http = httpx.Client(timeout=TIMEOUT, limits=limits)
        sweeper = Sweeper(stack)
        try:
            driver = Driver(stack, ready, caller, events, http, scene_png(), deadline_s + WEBHOOK_MARGIN_S)
            driver.s3 = stack.aws.client("s3") if stack.aws else None
            _warm_up(driver, seed)
            http.post(f"{ready.wavespeed_url}/_emulator/reset").raise_for_status()
            http.put(f"{ready.wavespeed_url}/_emulator/faults", json=faults).raise_for_status()
            _set_crashes(stack, crashes)
            caller.receivers.reset()
            tap.reset()
            laps.lap("warmup")
            sweeper.start()
            with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="faults") as pool:
                accepted = list(pool.map(driver.one, specs))
            laps.lap("send")
            for racer in list(events.threads):
                racer.join(60.0)
            _settle(caller.receivers)
            laps.lap("settle")
            observed = check.observe(stack, ready, caller, events, tap.answers, sweep=sweeper.sweep)
            sweeper.stop()
            observed.reconcile = sweeper.summary()
            report = check.evaluate(specs, accepted, observed)  # reads histories: stack still up
            laps.lap("check")
        finally:
            sweeper.stop()
            untap()
            http.close()
    report.update(
        jobs=jobs,
        concurrency=concurrency,
        seed=seed,
        faults=faults,
        crash_rates=crashes,
        parameters=parameters,
        phases_s=laps.laps,
    )
    report["wall_s"] = sum(laps.laps.values())
    return report


def _set_crashes(stack: DevStack, rates: dict[str, float]) -> None:
    if stack.crashes is None:
        raise RuntimeError("the local stack is not running")
    stack.crashes.reset()
    stack.crashes.set_rates(rates)


class Laps:
    """Seconds spent in each phase, in order."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.laps[name] = now - self._last
        self._last = now


def _warm_up(driver: Driver, seed: int) -> None:
    """One uncounted job per way in, without faults: every handler imported and its clients built, as in
    a warm container (first invokes, all at once, would otherwise queue behind each other's imports)."""
    warm = [Spec(tag=f"w{seed:x}-{kind}", kind=kind, extra="", receiver="ok") for kind, _ in KINDS]
    with ThreadPoolExecutor(max_workers=len(warm), thread_name_prefix="faults-warm") as pool:
        done = list(pool.map(driver.one, warm))
    failed = [f"{a.spec.kind}: {a.error or 'no webhook'}" for a in done if a.error or not a.webhook]
    if failed:
        raise RuntimeError(f"warm-up jobs failed without faults: {failed}")


def _settle(receivers: Receivers) -> None:
    """Watch for late duplicates (a duplicated callback, a retried delivery) until webhooks go quiet."""
    until = time.monotonic() + SETTLE_MAX_S
    while time.monotonic() < until and time.monotonic() - receivers.last_hook_at < SETTLE_QUIET_S:
        time.sleep(0.2)


def run(
    *,
    jobs: int = DEFAULT_JOBS,
    concurrency: int = DEFAULT_CONCURRENCY,
    seed: int = DEFAULT_SEED,
    deadline_s: int | None = None,
    crashes: bool = True,
) -> dict[str, Any]:
    """Run the fault benchmark in a fresh child (the in-process stack sets os.environ and patches moto);
    its log (the stack's warnings) is kept in a temporary file only when a check failed."""
    command = [sys.executable, "-m", "benchmarks.faults.run", "--jobs", str(jobs), "--seed", str(seed)]
    command += ["--concurrency", str(concurrency)]
    if deadline_s is not None:
        command += ["--deadline", str(deadline_s)]
    if not crashes:
        command.append("--no-crashes")
    with tempfile.TemporaryDirectory(prefix="maskgate-faults-") as tmp:
        out, log = Path(tmp) / "faults.json", Path(tmp) / "faults.log"
        with log.open("w") as sink:
            done = subprocess.run(
                [*command, "--json", str(out)], cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, check=False
            )
        text = log.read_text(errors="replace")
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"benchmarks.faults.run failed ({done.returncode}):\n{text[-3000:]}")
        report: dict[str, Any] = json.loads(out.read_text())
        report["log_lines"] = len(text.splitlines())
        if report["violations"]:
            kept = Path(tempfile.mkstemp(prefix="maskgate-faults-", suffix=".log")[1])
            kept.write_text(text)
            report["log_file"] = str(kept)
            check.attach_log_lines(report["violations"], text)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.faults.run", description=__doc__)
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="workload, emulator and crash draws")
    parser.add_argument("--deadline", type=int, help="JobDeadlineSeconds (default 30, at least 10)")
    parser.add_argument("--no-crashes", action="store_true", help="emulator faults and receivers only")
    parser.add_argument("--log-level", default="WARNING", help="the functions' LogLevel (INFO to debug)")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    parameters = {**PARAMETERS, "LogLevel": args.log_level}
    if args.deadline is not None:
        parameters["JobDeadlineSeconds"] = str(max(10, args.deadline))
    report = measure(
        jobs=args.jobs,
        concurrency=args.concurrency,
        seed=args.seed,
        parameters=parameters,
        faults=FAULT_RATES,
        crashes={} if args.no_crashes else CRASH_RATES,
    )
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
