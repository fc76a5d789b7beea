"""Limits and spend on the local stack, with two tenants of their own: the cap under 50 racing
requests, quotas, dry runs, usage, the threshold notice and the S3 path, through the API and the CLI."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from maskgate.stores.tenants import TenantStore
from maskgate_local.cli.main import main
from maskgate_local.demo.receiver import WebhookReceiver
from maskgate_local.demo.sample import scene_png
from maskgate_local.stack.servers import serve_in_thread
from tests.e2e.conftest import Stack, aws_client
from tests.e2e.test_vertical_slice import BOX
from tests.support.images import unique_scene

pytestmark = pytest.mark.e2e
Cli = Callable[..., tuple[int, str, str]]
IMAGE = "data:image/png;base64," + base64.b64encode(scene_png()).decode()


@pytest.fixture
def ready_file(dev_process: tuple[dict[str, Any], Path]) -> Path:
    return dev_process[1].parent / "ready.json"


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def tenants(stack: Stack) -> Iterator[Callable[[], tuple[str, str]]]:
    """New tenants of this test's own: (name, API key)."""
    store = TenantStore(table=stack.ready["table"], client=aws_client(stack.ready, "dynamodb"))

    def new() -> tuple[str, str]:
        name = f"t-{uuid.uuid4().hex[:10]}"
        return name, store.create_key(name).key

    yield new


def create(stack: Stack, key: str, *, query: str = "", marker: str = "", **fields: Any) -> httpx.Response:
    body = {"image": IMAGE, "box_prompts": [BOX], "metadata": {"test": marker or "limits"}, **fields}
    return stack.api("POST", f"/v1/segmentations{query}", key=key, json=body)


def test_fifty_racing_requests_at_a_cap_of_ten_jobs_make_ten_and_the_other_tenant_is_untouched(
    stack: Stack, tenants: Callable[[], tuple[str, str]], cli: Cli, ready_file: Path
) -> None:
    (capped, capped_key), (_, other_key) = tenants(), tenants()
    code, out, err = cli(
        "tenants", "set-limits", "--tenant", capped, "--spend-cap", "0.05", "--ready-file", str(ready_file)
    )
    assert code == 0, err
    assert "monthly spend cap    $0.05" in out
    with ThreadPoolExecutor(max_workers=50) as pool:
        # the same image and prompts: without "cache": false, nine of the ten would be answered from
        # the first one's results and give their reserved price back
        answers = list(pool.map(lambda _: create(stack, capped_key, cache=False), range(50)))
    codes = sorted(a.status_code for a in answers)
    assert (codes.count(202), codes.count(402)) == (10, 40)
    refused = next(a for a in answers if a.status_code == 402).json()
    assert refused["type"] == "spend_cap_reached" and refused["cap_usd"] == 0.05
    assert refused["month_spend_usd"] == 0.05
    assert create(stack, other_key).status_code == 202  # another tenant's cap is its own
    preview = create(stack, capped_key, query="?dry_run=true", cache=False).json()
    assert (preview["would_run"], preview["refused_by"], preview["remaining_usd"]) == (
        False,
        "spend_cap_reached",
        0.0,
    )
    accepted = [a.json()["id"] for a in answers if a.status_code == 202]
    for job_id in accepted:  # every accepted job runs to the end
        _wait_finished(stack, capped_key, job_id)
    code, out, err = cli("usage", "--api-url", stack.ready["api_url"], "--api-key", capped_key)
    assert code == 0, err
    assert "accepted           10" in out and "cap                $0.05; remaining $0.00" in out
    code, operator, err = cli("usage", "--tenant", capped, "--ready-file", str(ready_file))
    assert code == 0, err
    # the operator's view (read from the table) prints what the API's does, the same way, but the
    # AWS estimate (a deployment setting the API applies)
    assert [line for line in out.splitlines() if "aws (estimated)" not in line] == operator.splitlines()
    usage = stack.api("GET", "/v1/usage", key=capped_key).json()
    assert usage["jobs"]["submitted"] + usage["jobs"]["released"] == 10
    assert usage["wavespeed_usd"] + usage["reserved_usd"] == pytest.approx(0.05)
    assert usage["jobs"]["cap_rejections"] == 40
    assert stack.api("GET", "/v1/usage", key=other_key).json()["jobs"]["accepted"] == 1


def test_a_cache_hit_gives_its_reserved_price_back_and_counts_what_it_saved(
    stack: Stack, tenants: Callable[[], tuple[str, str]]
) -> None:
    _, key = tenants()
    image = "data:image/png;base64," + base64.b64encode(unique_scene()).decode()  # no other job's
    first = create(stack, key, image=image).json()
    assert _wait_finished(stack, key, first["id"])["cache"] == "miss"
    preview = create(stack, key, query="?dry_run=true", image=image).json()
    assert (preview["would_run"], preview["cache"]) == (True, "hit")
    again = _wait_finished(stack, key, create(stack, key, image=image).json()["id"])
    assert (again["status"], again["cache"], again["prediction_id"]) == ("succeeded", "hit", None)
    usage = stack.api("GET", "/v1/usage", key=key).json()
    assert (usage["jobs"]["accepted"], usage["jobs"]["submitted"], usage["jobs"]["released"]) == (2, 1, 1)
    assert (usage["jobs"]["cache_hits"], usage["cache_saved_usd"], usage["wavespeed_usd"]) == (
        1,
        0.005,
        0.005,
    )
    assert usage["reserved_usd"] == 0


def _wait_finished(stack: Stack, key: str, job_id: str, timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = stack.api("GET", f"/v1/segmentations/{job_id}", key=key).json()
        if job["status"] in ("succeeded", "failed", "canceled"):
            return dict(job)
        time.sleep(0.2)  # polling a condition with a deadline
    raise TimeoutError(f"{job_id} did not finish in {timeout} s")


def test_a_tenant_over_its_quota_gets_429_and_a_place_frees_when_a_job_ends(
    stack: Stack, tenants: Callable[[], tuple[str, str]], cli: Cli, ready_file: Path
) -> None:
    name, key = tenants()
    assert (
        cli(
            "tenants",
            "set-limits",
            "--tenant",
            name,
            "--max-in-flight",
            "1",
            "--images-per-day",
            "2",
            "--ready-file",
            str(ready_file),
        )[0]
        == 0
    )
    first = create(stack, key)
    assert first.status_code == 202
    refused = create(stack, key)
    assert refused.status_code == 429 and refused.json()["type"] == "quota_exceeded"
    assert int(refused.headers["retry-after"]) >= 1
    _wait_finished(stack, key, first.json()["id"])
    assert create(stack, key).status_code == 202
    # two jobs accepted today: the dry run is refused whether or not the second has finished
    code, out, _ = cli(
        "submit",
        "--api-url",
        stack.ready["api_url"],
        "--api-key",
        key,
        "--dry-run",
        "--box",
        "10,20,200,180",
        IMAGE,
    )
    assert code == 2 and "refused by     quota_exceeded" in out, out


def test_the_spend_threshold_reaches_the_tenants_endpoint_once(
    stack: Stack, tenants: Callable[[], tuple[str, str]], cli: Cli, ready_file: Path
) -> None:
    name, key = tenants()
    cli(
        "tenants",
        "set-limits",
        "--tenant",
        name,
        "--spend-cap",
        "0.02",
        "--spend-threshold",
        "0.5",
        "--ready-file",
        str(ready_file),
    )
    hooks = WebhookReceiver(secret="whsec_" + base64.b64encode(b"x" * 24).decode())
    server = serve_in_thread(hooks)
    try:
        endpoint = stack.api(
            "POST",
            "/v1/webhook-endpoints",
            key=key,
            json={"url": f"{server.url}/spend", "event_types": ["tenant.spend_threshold"]},
        ).json()
        hooks.secret = endpoint["secret"]
        for _ in range(4):
            assert create(stack, key).status_code == 202
        notice = hooks.wait_until(lambda p: p["type"] == "tenant.spend_threshold", timeout=30, what="notice")
        assert notice.payload is not None and notice.payload["data"]["month_spend_usd"] == 0.01
        assert notice.headers["webhook-id"].startswith("msg_spend_threshold_")
        assert len([d for d in hooks.deliveries if d.verified]) == 1
        assert stack.api("GET", "/v1/usage", key=key).json()["threshold_notified_at"] is not None
    finally:
        server.stop()


def test_an_s3_upload_over_the_default_tenants_cap_fails_spend_cap_reached_with_its_webhook(
    stack: Stack, cli: Cli, ready_file: Path
) -> None:
    marker = uuid.uuid4().hex[:12]
    assert (
        cli(
            "tenants",
            "set-limits",
            "--tenant",
            "default",
            "--spend-cap",
            "0",
            "--ready-file",
            str(ready_file),
        )[0]
        == 0
    )
    try:
        request = {"box_prompts": [BOX], "webhook_url": stack.hook_url, "metadata": {"test": marker}}
        stack.upload(f"uploads/limits-{marker}.png", scene_png(), request)
        delivery = stack.wait_marker(marker)
    finally:
        cli(
            "tenants",
            "set-limits",
            "--tenant",
            "default",
            "--spend-cap",
            "100",
            "--ready-file",
            str(ready_file),
        )
    assert delivery.payload is not None
    assert delivery.payload["type"] == "segmentation.failed"
    assert delivery.payload["data"]["error"]["type"] == "spend_cap_reached"
    code, out, _ = cli("tenants", "show", "--tenant", "default", "--ready-file", str(ready_file))
    assert code == 0 and "monthly spend cap    $100.00" in out


def test_usage_of_a_bad_month_is_refused(stack: Stack, tenants: Callable[[], tuple[str, str]]) -> None:
    _, key = tenants()
    answer = stack.api("GET", "/v1/usage?month=2026-13", key=key)
    assert answer.status_code == 422 and answer.json()["type"] == "invalid_request"
    assert json.loads(stack.api("GET", "/v1/usage?month=2020-01", key=key).text)["jobs"]["accepted"] == 0
