"""The artefacts agree with each other: events ↔ input models, ASL ↔ template ↔ step models,
the layer's requirements ↔ pyproject, the handlers ↔ what mypy checks, and the webhook body ↔ its
golden file."""

from __future__ import annotations

import json
import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from maskgate.contracts.job import Job, JobStatus, Mask
from maskgate.contracts.prompts import Prompts, SegmentationCreate
from maskgate.contracts.results import Results
from maskgate.contracts.s3_events import UploadEvent
from maskgate.contracts.steps import DeliverInput, FailInput, JobRef, PollInput, StoreInput, SubmitInput
from maskgate.webhooks.body import build_body
from maskgate_local.template import sam
from tests.support.artefacts import ASL, EVENTS, ROOT, TEMPLATE, event

GOLDEN = Path(__file__).parent / "golden"
STEP_MODELS: dict[str, type[BaseModel]] = {
    "submit": SubmitInput,
    "poll": PollInput,
    "store": StoreInput,
    "fail": FailInput,
    "notify": JobRef,
    "deliver": DeliverInput,
    "expire": JobRef,
    "on_upload": UploadEvent,
}
ASL_TASK_STEP = {
    "Submit": "submit",
    "AwaitSlot": "submit",
    "Poll": "poll",
    "Store": "store",
    "Fail": "fail",
    "Notify": "notify",
}


def template() -> dict[str, Any]:
    return dict(sam.load_template(TEMPLATE))


def functions() -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template()["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


def asl() -> dict[str, Any]:
    return dict(json.loads(ASL.read_text()))


@pytest.mark.parametrize("name", sorted(STEP_MODELS))
def test_event_parses_into_its_functions_input_model(name: str) -> None:
    STEP_MODELS[name].model_validate(event(name))


@pytest.mark.parametrize(
    "name", ["api_create_segmentation", "api_get_segmentation", "api_wavespeed_callback"]
)
def test_api_event_route_is_a_template_route(name: str) -> None:
    sample = event(name)
    routes = {
        f"{e['Properties']['Method']} {e['Properties']['Path']}"
        for e in functions()["ApiFunction"]["Properties"]["Events"].values()
    }
    assert sample["routeKey"] in routes and sample["version"] == "2.0"


def test_api_create_event_body_is_a_valid_request() -> None:
    SegmentationCreate.model_validate_json(event("api_create_segmentation")["body"])


def test_every_function_folder_has_a_template_function_and_an_event() -> None:
    folders = {p.name for p in (ROOT / "functions").iterdir() if (p / "app.py").exists()}
    code_uris = {
        f["Properties"]["CodeUri"].strip("/").removeprefix("functions/") for f in functions().values()
    }
    assert folders == code_uris
    events = {p.stem for p in EVENTS.glob("*.json")}
    assert all(any(e == f or e.startswith(f + "_") for e in events) for f in folders)


def test_mypy_checks_every_handler_and_the_link_it_reads_local_through() -> None:
    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    folders = {p.name for p in (ROOT / "functions").iterdir() if (p / "app.py").exists()}
    assert set(mypy["modules"]) == {f"functions.{folder}.app" for folder in folders}
    assert (ROOT / ".mypy-path" / "maskgate_local").resolve() == (ROOT / "local").resolve()


def test_every_asl_task_names_a_template_function_by_substitution() -> None:
    machine = template()["Resources"]["SegmentationStateMachine"]["Properties"]
    substitutions = machine["DefinitionSubstitutions"]
    for name, state in asl()["States"].items():
        if state["Type"] != "Task":
            continue
        resource = state["Parameters"].get("FunctionName", state["Resource"])
        placeholder = re.fullmatch(r"\$\{(\w+)\}", resource)
        assert placeholder, f"{name} must take its function ARN from a substitution"
        target = substitutions[placeholder.group(1)]
        logical_id = (
            target["Fn::GetAtt"][0]
            if isinstance(target["Fn::GetAtt"], list)
            else target["Fn::GetAtt"].split(".")[0]
        )
        assert (
            functions()[logical_id]["Properties"]["CodeUri"].strip("/") == f"functions/{ASL_TASK_STEP[name]}"
        )


@pytest.mark.parametrize("state", ["Submit", "Poll"])
def test_waiting_tasks_pass_their_token_and_listen_for_the_input_window(state: str) -> None:
    task = asl()["States"][state]
    assert task["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert task["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
    assert task["TimeoutSecondsPath"] == "$.wait_seconds"
    assert task["Catch"][0] == {"ErrorEquals": ["States.Timeout"], "ResultPath": None, "Next": "Backoff"}


def test_execution_input_carries_what_the_workflow_reads() -> None:
    from maskgate.workflow.executions import Workflow
    from maskgate.workflow.timings import Timings

    class Capture:
        def __init__(self) -> None:
            self.inputs: list[dict[str, Any]] = []

        # boto3's parameter names
        def start_execution(self, *, stateMachineArn: str, name: str, input: str) -> None:
            self.inputs.append(json.loads(input))

    capture = Capture()
    Workflow(state_machine_arn="arn:sm", client=capture, timings=Timings()).start(  # type: ignore[arg-type]
        "seg_01KAXJ2N3Y8Z4Q6R7S9T0V1W2X", created_at=datetime(2026, 11, 25, tzinfo=UTC)
    )
    [sent] = capture.inputs
    backoff = {k.removesuffix(".$") for k in asl()["States"]["Backoff"]["Parameters"]}
    assert set(sent) == backoff  # Submit and Backoff read exactly what the starter sends
    assert asl()["States"]["Submit"]["TimeoutSecondsPath"] == "$.wait_seconds"
    assert all(isinstance(w, int) and w >= 1 for w in sent["schedule"])


def test_delivery_unit_waits_on_the_deliver_output_and_passes_exactly_its_input() -> None:
    from maskgate.contracts.steps import DeliverInput, DeliveryStep

    unit = json.loads((ROOT / "statemachine" / "webhook-delivery.asl.json").read_text())["States"]
    assert unit["Wait"]["SecondsPath"] == "$.wait_seconds"
    assert {k.removesuffix(".$") for k in unit["Deliver"]["Parameters"]} == set(DeliverInput.model_fields)
    assert set(DeliverInput.model_fields) < set(DeliveryStep.model_fields)
    assert unit["Again?"]["Choices"][0]["Variable"] == "$.done"


def test_every_asl_placeholder_has_a_substitution() -> None:
    used = set(re.findall(r"\$\{(\w+)\}", ASL.read_text()))
    given = set(template()["Resources"]["SegmentationStateMachine"]["Properties"]["DefinitionSubstitutions"])
    assert used == given


@pytest.mark.parametrize("state", sorted(ASL_TASK_STEP))
def test_asl_task_parameters_are_exactly_its_input_model(state: str) -> None:
    given = asl()["States"][state]["Parameters"]
    parameters = {k.removesuffix(".$") for k in given.get("Payload", given)}
    model = STEP_MODELS[ASL_TASK_STEP[state]]
    required = {n for n, f in model.model_fields.items() if f.is_required()}
    assert required <= parameters <= set(model.model_fields)


def test_layer_requirements_match_pyproject_runtime_dependencies() -> None:
    runtime = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lines = (ROOT / "shared" / "requirements.txt").read_text().splitlines()
    layer = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert sorted(layer) == sorted(runtime)


def test_layer_requirements_hold_no_dev_only_package() -> None:
    text = (ROOT / "shared" / "requirements.txt").read_text().lower()
    assert not any(
        dev in text for dev in ("moto", "pillow", "pytest", "boto3", "uvicorn", "standardwebhooks")
    )


def test_webhook_body_matches_the_golden_file() -> None:
    at = datetime(2026, 11, 25, 15, 4, 5, tzinfo=UTC)
    job = Job(
        id="seg_01KAXJ2N3Y8Z4Q6R7S9T0V1W2X",
        tenant="default",
        status=JobStatus.SUCCEEDED,
        source="api",
        request=Prompts(prompt="the cat", metadata={"order": "1234"}),
        masks=[
            Mask(
                index=0,
                key="results/seg_01KAXJ2N3Y8Z4Q6R7S9T0V1W2X/mask_0.png",
                format="png",
                content_type="image/png",
                size=1234,
                width=64,
                height=48,
            )
        ],
        results=Results(
            outputs=["masks", "instances", "coco"],
            found=True,
            instance_count=2,
            instances_key="results/seg_01KAXJ2N3Y8Z4Q6R7S9T0V1W2X/instances.json",
            coco_key="results/seg_01KAXJ2N3Y8Z4Q6R7S9T0V1W2X/annotations.coco.json",
        ),
        created_at=at,
        updated_at=at,
    )
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = build_body(job, api_url="https://api.example.com", secret=secret, now=at, link_seconds=3600)
    golden = GOLDEN / "webhook_succeeded.json"
    assert json.loads(body) == json.loads(golden.read_text())
