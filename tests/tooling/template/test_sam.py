"""The local provisioner's intrinsic resolver: Conditions, Fn::If and AWS::NoValue as CloudFormation
evaluates them (the template's optional properties depend on it)."""

from __future__ import annotations

from typing import Any

import pytest

from maskgate_local.template import sam
from maskgate_local.template.sam import Resolver, UnresolvedError, load_template
from tests.support.artefacts import ROOT

CONDITIONS: dict[str, Any] = {
    "HasTopic": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Topic"}, ""]}]},
    "HasReserved": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Reserved"}, 0]}]},
    "Both": {"Fn::And": [{"Condition": "HasTopic"}, {"Condition": "HasReserved"}]},
    "Either": {"Fn::Or": [{"Condition": "HasTopic"}, {"Condition": "HasReserved"}]},
}


def resolver(**parameters: str) -> Resolver:
    return Resolver(
        {"Topic": "", "Reserved": "0", **parameters},
        region="us-east-1",
        account_id="123456789012",
        stack_name="maskgate",
        conditions=CONDITIONS,
    )


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({}, {"HasTopic": False, "HasReserved": False, "Both": False, "Either": False}),
        ({"Reserved": "5"}, {"HasTopic": False, "HasReserved": True, "Both": False, "Either": True}),
        (
            {"Topic": "arn:t", "Reserved": "5"},
            {"HasTopic": True, "HasReserved": True, "Both": True, "Either": True},
        ),
    ],
)
def test_conditions_evaluate_like_cloudformation(
    parameters: dict[str, str], expected: dict[str, bool]
) -> None:
    r = resolver(**parameters)
    assert {name: r.condition(name) for name in CONDITIONS} == expected


def test_fn_if_with_no_value_leaves_the_property_out() -> None:
    properties = {
        "Handler": "app.handler",
        "ReservedConcurrentExecutions": {
            "Fn::If": ["HasReserved", {"Ref": "Reserved"}, {"Ref": "AWS::NoValue"}]
        },
        "AlarmActions": [{"Fn::If": ["HasTopic", {"Ref": "Topic"}, {"Ref": "AWS::NoValue"}]}],
    }
    assert resolver().resolve(properties) == {"Handler": "app.handler", "AlarmActions": []}
    assert resolver(Reserved="7", Topic="arn:t").resolve(properties) == {
        "Handler": "app.handler",
        "ReservedConcurrentExecutions": "7",
        "AlarmActions": ["arn:t"],
    }


def test_an_unknown_condition_is_an_error() -> None:
    with pytest.raises(UnresolvedError, match="Condition 'Nope'"):
        resolver().resolve({"Fn::If": ["Nope", 1, 2]})


def test_the_templates_own_conditions_resolve() -> None:
    template = load_template(ROOT / "template.yaml")
    conditions = template["Conditions"]
    defaults = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}
    r = Resolver(
        defaults, region="us-east-1", account_id="123456789012", stack_name="m", conditions=conditions
    )
    assert {name: r.condition(name) for name in conditions} == {
        "HasAlarmTopic": False,
        "HasSubmitReservedConcurrency": False,
    }


def test_the_template_reads_the_same_with_pyyaml_s_pure_python_parser() -> None:
    """libyaml's parser (when PyYAML has it) makes the same data as PyYAML's own, short tags included."""
    import yaml

    class PurePython(yaml.SafeLoader):  # type: ignore[misc,unused-ignore]
        pass

    for tag in sam._SHORT_TAGS:
        PurePython.add_constructor(f"!{tag}", sam._short_tag(tag))
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    assert sam.parse_template(text) == yaml.load(text, Loader=PurePython)  # noqa: S506 (safe loader)


def test_a_text_that_is_no_mapping_is_not_a_template() -> None:
    with pytest.raises(ValueError, match="is not a CloudFormation template"):
        sam.parse_template("- a list\n")
