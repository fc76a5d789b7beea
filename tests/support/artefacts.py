"""The repo's real artefacts for tests: events, handlers, the template's table and bucket."""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

from maskgate_local.template import sam
from tests.support import iam

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
TEMPLATE = ROOT / "template.yaml"
ASL = ROOT / "statemachine" / "segmentation.asl.json"
STEPS = ("api", "on_upload", "submit", "poll", "store", "fail", "notify")


def event(name: str) -> Any:
    """A sample event from events/ (a fresh copy each call)."""
    return copy.deepcopy(json.loads((EVENTS / f"{name}.json").read_text()))


def load_handler(step: str) -> ModuleType:
    """Import functions/<step>/app.py under a unique module name, as Lambda would import app.py."""
    path = ROOT / "functions" / step / "app.py"
    spec = importlib.util.spec_from_file_location(f"maskgate_test_fn_{step}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.handler = iam.as_function(step, module.handler)  # its AWS calls are checked against its role
    return module


def template_resource(logical_id: str) -> dict[str, Any]:
    """The Properties of one resource of template.yaml (short tags in long form)."""
    template = sam.load_template(TEMPLATE)
    return dict(template["Resources"][logical_id]["Properties"])


@functools.cache
def template_variables() -> frozenset[str]:
    """Every environment variable template.yaml gives a function: Globals' and each function's own."""
    template = sam.load_template(TEMPLATE)
    found = set(template["Globals"]["Function"]["Environment"]["Variables"])
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            found |= set(resource["Properties"].get("Environment", {}).get("Variables", {}))
    return frozenset(found)


class LambdaContext:
    function_name = "maskgate-test"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:maskgate-test"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/maskgate-test"
    log_stream_name = "2026/11/25/[$LATEST]test"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000
