"""A client generated from the served ``/openapi.json`` runs jobs through the local stack.

The document is the contract: a valid OpenAPI 3.1 document, from which ``openapi-python-client``
generates (offline, once per module) a package that can create, get, list and cancel a job, follow a
mask's redirect and parse every problem into its typed model, with nothing but the generated code.
Operations are found by the names the generator gives the document's operations, so renaming an
``operationId`` or adding tags needs no change here.
"""

from __future__ import annotations

import importlib
import io
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from types import ModuleType
from typing import Any

import httpx
import pytest
from openapi_python_client.strings import PythonIdentifier
from openapi_spec_validator import validate
from PIL import Image

from tests.e2e.conftest import TIMEOUT, Stack
from tests.e2e.test_vertical_slice import BOX, box_pixels, data_uri, marker, white

pytestmark = pytest.mark.e2e

TERMINAL = {"succeeded", "failed", "canceled"}
JOB_TIMEOUT_S = 60.0
GENERATE_TIMEOUT_S = 120.0
# No post hooks: the generator would otherwise run ruff over its output, from PATH.
GENERATOR_CONFIG = {"post_hooks": []}


@dataclass
class Generated:
    """The generated package, the document it was generated from and what the generator printed."""

    package: ModuleType
    spec: dict[str, Any]
    output: str

    def operation(self, method: str, path: str) -> ModuleType:
        """The generated module of the document's ``method path``, named as the generator names it."""
        declared = self.spec["paths"][path][method]
        tag = PythonIdentifier((declared.get("tags") or ["default"])[0], prefix="tag")
        name = PythonIdentifier(declared["operationId"], prefix="field_")
        return importlib.import_module(f"{self.package.__name__}.api.{tag}.{name}")

    def model(self, name: str) -> Any:
        return getattr(importlib.import_module(f"{self.package.__name__}.models"), name)


@pytest.fixture(scope="module")
def spec(stack: Stack) -> dict[str, Any]:
    response = httpx.get(stack.ready["api_url"] + "/openapi.json", timeout=TIMEOUT).raise_for_status()
    return dict(response.json())


@pytest.fixture(scope="module")
def generated(spec: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    """A client package generated from ``spec`` under a name of its own, importable for the module."""
    root = tmp_path_factory.mktemp("generated")
    name = f"maskgate_client_{uuid.uuid4().hex[:8]}"
    (root / "spec.json").write_text(json.dumps(spec))
    (root / "config.json").write_text(json.dumps(GENERATOR_CONFIG))
    command = [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(root / "spec.json")]
    command += ["--output-path", str(root / name), "--meta", "none", "--config", str(root / "config.json")]
    ran = subprocess.run(  # noqa: S603
        command, capture_output=True, text=True, timeout=GENERATE_TIMEOUT_S, check=False, cwd=root
    )
    output = ran.stdout + ran.stderr
    assert ran.returncode == 0, f"openapi-python-client failed ({ran.returncode}):\n{output}"
    sys.path.insert(0, str(root))
    try:
        yield Generated(package=importlib.import_module(name), spec=spec, output=output)
    finally:
        sys.path.remove(str(root))
        for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
            del sys.modules[module]


@pytest.fixture(scope="module")
def client(generated: Generated, stack: Stack) -> Iterator[Any]:
    """The generated ``AuthenticatedClient`` with the stack's API key; it does not follow redirects."""
    authenticated = generated.package.AuthenticatedClient(
        base_url=stack.ready["api_url"],
        token=stack.ready["api_key"],
        timeout=TIMEOUT,
        follow_redirects=False,
        raise_on_unexpected_status=True,
    )
    with authenticated as opened:
        yield opened


def post(generated: Generated, client: Any, **body: Any) -> Any:
    """``POST /v1/segmentations`` of the sample image and ``body`` through the generated operation."""
    request = generated.model("SegmentationCreate").from_dict({"image": data_uri(), **body})
    return generated.operation("post", "/v1/segmentations").sync_detailed(client=client, body=request)


def create(generated: Generated, client: Any, **body: Any) -> Any:
    """The typed job of a 202 to ``POST /v1/segmentations``."""
    response = post(generated, client, **body)
    assert response.status_code == HTTPStatus.ACCEPTED, response.content
    return response.parsed


def finished(generated: Generated, client: Any, job_id: str) -> Any:
    """The job once its status is terminal, read with the generated get operation."""
    get = generated.operation("get", "/v1/segmentations/{job_id}")
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        job = get.sync(job_id=job_id, client=client)
        if str(job.status) in TERMINAL:
            return job
        time.sleep(0.2)  # polling a condition with a deadline, not waiting blindly
    raise TimeoutError(f"job {job_id} did not finish within {JOB_TIMEOUT_S}s")


def problem_type(parsed: Any) -> str:
    """The ``type`` of a problem the generated client parsed (a plain or an enumerated string)."""
    return str(parsed.type_)


@pytest.fixture(scope="module")
def tag() -> str:
    return marker()


@pytest.fixture(scope="module")
def succeeded(generated: Generated, client: Any, tag: str) -> Any:
    """A box job created and awaited through the generated client, tagged in its metadata."""
    job = create(generated, client, box_prompts=[BOX], metadata={"test": tag})
    return finished(generated, client, job.id)


def test_openapi_document_is_valid_openapi(spec: dict[str, Any]) -> None:
    validate(spec)


def test_openapi_document_generates_a_client_without_warnings(generated: Generated) -> None:
    assert "warning" not in generated.output.lower(), generated.output


def test_generated_client_creates_a_job_that_succeeds(succeeded: Any, tag: str) -> None:
    assert str(succeeded.status) == "succeeded", succeeded.to_dict()
    assert [mask.index for mask in succeeded.masks] == [0]
    assert succeeded.to_dict()["request"]["metadata"] == {"test": tag}


def test_generated_client_lists_the_job(generated: Generated, client: Any, succeeded: Any) -> None:
    listing = generated.operation("get", "/v1/segmentations")
    cursor, seen = None, []
    while True:  # newest first: a page or two at most, however many jobs other tests made
        page = listing.sync(client=client, limit=100, **({"cursor": cursor} if cursor else {}))
        seen += [job.id for job in page.data]
        cursor = page.next_cursor if isinstance(page.next_cursor, str) else None
        if succeeded.id in seen or cursor is None:
            break
    assert succeeded.id in seen


def test_generated_client_gets_the_mask_through_its_redirect(
    generated: Generated, client: Any, succeeded: Any
) -> None:
    mask = generated.operation("get", "/v1/segmentations/{job_id}/masks/{index}")
    response = mask.sync_detailed(job_id=succeeded.id, index=0, client=client)
    assert response.status_code == HTTPStatus.FOUND, response.content
    location = response.headers["location"]
    png = httpx.get(location, timeout=TIMEOUT).raise_for_status().content
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert white(Image.open(io.BytesIO(png))) == box_pixels(BOX)


def test_generated_client_cancels_a_job_and_a_second_cancel_is_a_conflict(
    generated: Generated, client: Any
) -> None:
    job = create(generated, client, box_prompts=[BOX])
    cancel = generated.operation("delete", "/v1/segmentations/{job_id}")
    first = cancel.sync_detailed(job_id=job.id, client=client)
    if first.status_code == HTTPStatus.CONFLICT:  # it finished before the cancel reached it
        assert problem_type(first.parsed) == "conflict", first.content
    else:
        assert first.status_code == HTTPStatus.OK and str(first.parsed.status) == "canceled", first.content
    again = cancel.sync_detailed(job_id=job.id, client=client)
    assert again.status_code == HTTPStatus.CONFLICT, again.content
    assert (problem_type(again.parsed), again.parsed.status) == ("conflict", 409)


def test_generated_client_parses_a_bad_box_into_its_typed_problem(generated: Generated, client: Any) -> None:
    response = post(generated, client, box_prompts=[{"x_min": 5, "y_min": 5, "x_max": 5, "y_max": 9}])
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY, response.content
    problem = response.parsed
    assert type(problem).__module__.startswith(f"{generated.package.__name__}.models."), type(problem)
    assert (problem_type(problem), problem.status) == ("invalid_request", 422)
    assert [error.loc for error in problem.errors] == ["box_prompts.0"]
