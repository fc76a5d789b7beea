"""Property-based tests of the HTTP API: schemathesis against the running local stack's ``/openapi.json``.

Every operation the served schema documents is called with the schema's examples, schemathesis'
coverage cases and fuzzed valid and invalid data. Each response must be no server error and have a
documented status code, content type, headers and body; every error must be an RFC 9457
``application/problem+json`` document.

The requests use API keys of tenants of their own, so rotating a webhook secret or filling a job list
does not touch the tenant the other end-to-end tests use, and one key per operation keeps each well
under the per-tenant rate limit. ``job_id`` and ``index`` are drawn now and then from jobs of the
tenant the job operations share (one succeeded with mask 0, one failed), so those operations answer
more than 404. Repeatable: a fixed seed, derandomized generation, no example database, 25 examples.
Requests with bodies schemathesis never generates (deep nesting, lone surrogates) are sent as well.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from schemathesis import Case, CheckContext, Response
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.modes import GenerationMode

from maskgate.stores.tenants import TenantStore
from maskgate_local.demo.sample import PANEL
from tests.e2e.conftest import aws_client
from tests.support.images import unique_scene

pytestmark = pytest.mark.e2e

Ready = tuple[dict[str, Any], Path]
KeyFor = Callable[[str], str]

SEED = 20260501
MAX_EXAMPLES = 25
TIMEOUT_S = 15.0
JOBS_TENANT = "schemathesis-jobs"
UNREACHABLE_IMAGE = "http://127.0.0.1:9/missing.png"  # loopback, nothing listens: such a job fails fast
PROBLEM_JSON = "application/problem+json"
PROBLEM_MEMBERS = {"type": str, "title": str, "status": int, "detail": str}
TERMINAL = {"succeeded", "failed", "canceled"}
# positive_data_acceptance expects a 2xx for every schema-valid request, but these operations validate
# beyond JSON Schema by design, so schema-valid data may rightly get a 422:
SEMANTIC_422 = [
    # the URL policy (loopback only on the local stack), at least one prompt, x_min < x_max, a prompt of
    # 1..1000 characters after trimming, coordinates inside the image
    "POST /v1/segmentations",
    "POST /v1/uploads",
    # ``cursor`` is an opaque token only the API issues; any other string is refused
    "GET /v1/segmentations",
    # the URL policy again (a webhook endpoint's url), at most 20 endpoints a tenant, v1 signatures only
    "POST /v1/webhook-endpoints",
    "PATCH /v1/webhook-endpoints/{endpoint_id}",
    # ``cursor`` again: only the attempt log issues its cursors, each for one endpoint
    "GET /v1/webhook-endpoints/{endpoint_id}/attempts",
]
ODD_BODIES = {
    "deeply nested array": b"[" * 10_000 + b"]" * 10_000,
    "deeply nested object": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "lone surrogate in a string": f'{{"image": "{UNREACHABLE_IMAGE}", "prompt": "\\ud800"}}'.encode(),
}


def problem_document(ctx: CheckContext, response: Response, case: Case) -> None:
    """Every 4xx and 5xx is ``application/problem+json``: type, title, status (the HTTP one), detail."""
    if response.status_code < 400:
        return
    media_type = (response.headers.get("content-type") or [""])[0].split(";")[0].strip().lower()
    assert media_type == PROBLEM_JSON, f"error {response.status_code} is {media_type!r}, not {PROBLEM_JSON}"
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"error {response.status_code} body is not JSON: {exc}") from exc
    assert isinstance(body, dict), f"the problem document is a {type(body).__name__}, not an object"
    for member, kind in PROBLEM_MEMBERS.items():
        assert isinstance(body.get(member), kind), (
            f"problem member {member!r} missing or not a {kind.__name__}"
        )
    assert body["status"] == response.status_code, (
        f"problem status {body['status']} != {response.status_code}"
    )
    for error in body.get("errors", []):
        assert isinstance(error, dict) and {type(error.get("loc")), type(error.get("msg"))} == {str}, (
            f"problem errors item {error!r} is not {{loc, msg}}"
        )


@pytest.fixture(scope="module")
def key_for(dev_process: Ready) -> KeyFor:
    """An API key of the named tenant, created on first use."""
    ready, _ = dev_process
    dynamodb = aws_client(ready, "dynamodb")
    store, keys = TenantStore(table=ready["table"], client=dynamodb), {}

    def key(tenant: str) -> str:
        if tenant not in keys:
            keys[tenant] = store.create_key(tenant).key
        return keys[tenant]

    return key


def tenant_of(case: Case) -> str:
    """The job operations share the tenant owning the known jobs; any other operation has its own."""
    if "{job_id}" in case.operation.path:
        return JOBS_TENANT
    return "schemathesis-" + re.sub(r"[^a-z0-9]+", "-", case.operation.label.lower()).strip("-")


def _finished_job(api_url: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    created = httpx.post(f"{api_url}/v1/segmentations", json=body, headers=headers, timeout=TIMEOUT_S)
    assert created.status_code == 202, created.text
    url = f"{api_url}/v1/segmentations/{created.json()['id']}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = httpx.get(url, headers=headers, timeout=TIMEOUT_S).json()
        if job["status"] in TERMINAL:
            return dict(job)
        time.sleep(0.2)  # polling a condition with a deadline
    raise TimeoutError(f"{url} did not finish")


@pytest.fixture(scope="module")
def known_jobs(dev_process: Ready, key_for: KeyFor) -> list[str]:
    """Jobs of the job operations' tenant: one succeeded with mask 0, one failed (unreachable image)."""
    ready, _ = dev_process
    key = key_for(JOBS_TENANT)
    image = "data:image/png;base64," + base64.b64encode(unique_scene()).decode()
    box = {"x_min": PANEL[0], "y_min": PANEL[1], "x_max": PANEL[2] + 1, "y_max": PANEL[3] + 1}
    succeeded = _finished_job(ready["api_url"], key, {"image": image, "box_prompts": [box]})
    assert succeeded["status"] == "succeeded" and succeeded["masks"], succeeded
    failed = _finished_job(ready["api_url"], key, {"image": UNREACHABLE_IMAGE, "prompt": "anything"})
    assert failed["status"] == "failed", failed
    return [succeeded["id"], failed["id"]]


@pytest.fixture(scope="module")
def api_schema(dev_process: Ready, known_jobs: list[str]) -> schemathesis.BaseSchema:
    ready, _ = dev_process
    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "base-url": ready["api_url"],
            "request-timeout": TIMEOUT_S,
            "suppress-health-check": ["too_slow"],  # timing-based: would make a slow CI runner flaky
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            "dictionaries": {
                "jobs": {"values": known_jobs},
                "masks": {"values": [0]},
                "images": {"values": [UNREACHABLE_IMAGE]},
                "idempotency_keys": {"values": ["schemathesis-idempotency-key"]},
            },
            "parameters": {
                "path.job_id": {"dictionary": "jobs", "probability": 0.5},
                "path.index": {"dictionary": "masks", "probability": 0.5},
                # an image the local stack accepts makes more generated bodies acceptable, and a
                # shared Idempotency-Key then meets a second, different body
                "body.image": {"dictionary": "images", "probability": 0.5},
                "header.idempotency-key": {"dictionary": "idempotency_keys", "probability": 0.5},
            },
            "operations": [
                *(
                    {"include-name": name, "checks": {"positive_data_acceptance": {"enabled": False}}}
                    for name in SEMANTIC_422
                ),
                # runtime: its coverage cases (~190 requests) repeat the prompt fields that
                # POST /v1/segmentations' coverage cases already send (the same Prompts model)
                {"include-name": "POST /v1/uploads", "phases": {"coverage": {"enabled": False}}},
            ],
        }
    )
    return schemathesis.openapi.from_url(f"{ready['api_url']}/openapi.json", config=config, timeout=30)


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    """One connection pool for the run (a new connection per request costs the local stack ~13 ms)."""
    with requests.Session() as pooled:
        yield pooled


@pytest.fixture
def schemathesis_node_id(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32's lazy schemas read ``request.node._nodeid``, which pytest 9.2 no longer has."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@pytest.mark.usefixtures("schemathesis_node_id")
def test_api_conforms_to_its_openapi_schema(case: Case, key_for: KeyFor, session: requests.Session) -> None:
    # a case whose headers are generated to break the schema may be one without the API key the bearer
    # scheme requires: it goes as generated, and must be refused
    broken_headers = case.meta is not None and any(
        location is ParameterLocation.HEADER and info.mode is GenerationMode.NEGATIVE
        for location, info in case.meta.components.items()
    )
    key = {} if broken_headers else {"Authorization": f"Bearer {key_for(tenant_of(case))}"}
    case.call_and_validate(
        session=session,
        headers=key,
        additional_checks=[problem_document],
        timeout=TIMEOUT_S,
    )


@pytest.mark.parametrize("body", ODD_BODIES.values(), ids=ODD_BODIES.keys())
def test_odd_json_is_a_problem_not_a_server_error(dev_process: Ready, key_for: KeyFor, body: bytes) -> None:
    ready, _ = dev_process
    headers = {
        "Authorization": f"Bearer {key_for('schemathesis-odd-json')}",
        "Content-Type": "application/json",
    }
    response = httpx.post(
        f"{ready['api_url']}/v1/segmentations", content=body, headers=headers, timeout=TIMEOUT_S
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
