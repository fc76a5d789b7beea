"""Property-based tests of the HTTP API: schemathesis against the running local stack's ``/openapi.json``.

Every operation the schema documents is called with generated requests (the schema's examples, valid
and invalid fuzzed data, and schemathesis' coverage cases), authenticated with an API key of a
tenant of its own, so rotating its webhook secret or filling its job list does not touch the tenant
the other end-to-end tests use. Each response must be no server error, have a documented status
code, content type and body, and every error must be an RFC 9457 problem document (DESIGN §5).
Repeatable: a fixed seed, derandomized generation, no example database, a bounded number of examples.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import schemathesis
from schemathesis import Case, CheckContext, Response
from schemathesis.config import SchemathesisConfig

from maskgate.tenants import TenantStore

pytestmark = pytest.mark.e2e

SEED = 20260501
MAX_EXAMPLES = 25
REQUEST_TIMEOUT_S = 15
PROBLEM_JSON = "application/problem+json"
PROBLEM_MEMBERS = {"type": str, "title": str, "status": int, "detail": str}


def problem_document(ctx: CheckContext, response: Response, case: Case) -> None:
    """Every 4xx and 5xx is ``application/problem+json`` with type, title, status (the HTTP one), detail."""
    if response.status_code < 400:
        return
    media_type = (response.headers.get("content-type") or [""])[0].split(";")[0].strip().lower()
    assert media_type == PROBLEM_JSON, f"error {response.status_code} is {media_type!r}, not {PROBLEM_JSON}"
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"error {response.status_code} body is not JSON: {exc}") from exc
    assert isinstance(body, dict), f"problem document is a {type(body).__name__}, not an object"
    for member, kind in PROBLEM_MEMBERS.items():
        assert isinstance(body.get(member), kind), f"problem member {member!r} missing or not {kind.__name__}"
    assert body["status"] == response.status_code, (
        f"problem status {body['status']} != {response.status_code}"
    )


@pytest.fixture(scope="module")
def fuzz_key(dev_process: tuple[dict[str, Any], Path]) -> str:
    """An API key of a tenant used only here (its own jobs, its own webhook secret to rotate)."""
    ready, _ = dev_process
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=ready["aws_endpoint_url"],
        region_name=ready["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return TenantStore(table=ready["table"], client=dynamodb).create_key("schemathesis").key


@pytest.fixture(scope="module")
def api_schema(dev_process: tuple[dict[str, Any], Path], fuzz_key: str) -> schemathesis.BaseSchema:
    ready, _ = dev_process
    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "base-url": ready["api_url"],
            "request-timeout": REQUEST_TIMEOUT_S,
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        }
    )
    return schemathesis.openapi.from_url(f"{ready['api_url']}/openapi.json", config=config, timeout=30)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def node_id_shim(request: pytest.FixtureRequest) -> None:
    request.node._nodeid = request.node.nodeid


@schema.parametrize()
def test_api_conforms_to_its_openapi_schema(case: Case, node_id_shim: None, fuzz_key: str) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {fuzz_key}"},
        additional_checks=[problem_document],
    )
