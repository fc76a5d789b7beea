"""Reading template.yaml: YAML short tags, the offline SAM translation, and the intrinsics maskgate uses."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]

_SHORT_TAGS = (
    "Ref",
    "Condition",
    "Base64",
    "Cidr",
    "FindInMap",
    "GetAtt",
    "GetAZs",
    "ImportValue",
    "Join",
    "Select",
    "Split",
    "Sub",
    "Transform",
    "And",
    "Equals",
    "If",
    "Not",
    "Or",
)
CODE_BUCKET = "maskgate-local-code"
_SQS_ATTRIBUTES = frozenset(
    "DelaySeconds MaximumMessageSize MessageRetentionPeriod ReceiveMessageWaitTimeSeconds VisibilityTimeout"
    " SqsManagedSseEnabled FifoQueue ContentBasedDeduplication".split()
)
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


# libyaml's parser when PyYAML was built with it (~10x faster on template.yaml), the same constructors
_SafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _TemplateLoader(_SafeLoader):  # type: ignore[misc,valid-type,unused-ignore]
    """SafeLoader that turns `!Ref X` into `{"Ref": "X"}` and `!Sub s` into `{"Fn::Sub": "s"}`."""


def _short_tag(tag: str) -> Any:
    key = tag if tag in ("Ref", "Condition") else f"Fn::{tag}"

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type,unused-ignore]
        return {key: value}

    return construct


for _tag in _SHORT_TAGS:
    _TemplateLoader.add_constructor(f"!{_tag}", _short_tag(_tag))


def load_template(path: Path) -> dict[str, Any]:
    """The template as plain data, short tags in their long form."""
    return parse_template(path.read_text(encoding="utf-8"), name=str(path))


def parse_template(text: str, *, name: str = "the template") -> dict[str, Any]:
    """A template's text as plain data, short tags in their long form."""
    loaded = yaml.load(text, Loader=_TemplateLoader)  # noqa: S506 (safe loader)
    if not isinstance(loaded, dict):
        raise ValueError(f"{name} is not a CloudFormation template")
    return loaded


def parameter_values(template: dict[str, Any], given: Mapping[str, str]) -> dict[str, str]:
    """The template's parameter defaults overlaid with `given`; unknown or missing names raise."""
    declared = template.get("Parameters", {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ValueError(f"parameters not declared in the template: {', '.join(unknown)}")
    values = {name: str(spec["Default"]) for name, spec in declared.items() if "Default" in spec}
    values.update({name: str(value) for name, value in given.items()})
    missing = sorted(set(declared) - set(values))
    if missing:
        raise ValueError(f"parameters without a value or default: {', '.join(missing)}")
    return values


def translate(
    template: dict[str, Any], template_dir: Path, values: dict[str, str], region: str
) -> tuple[dict[str, Any], dict[str, Path]]:
    """SAM → CloudFormation offline; returns it and the local path of each resource's code or ASL file.

    Local `CodeUri`/`ContentUri`/`DefinitionUri` paths become `s3://` URIs, as `sam deploy` uploads
    them; the caller reads the files. The ASL text is used as written (AWS substitutes it as text, so an
    unquoted `${Seconds}` placeholder works, though the file is then not JSON).
    """
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    from samtranslator.parser import parser
    from samtranslator.translator.translator import Translator

    local_paths: dict[str, Path] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        for uri_key in ("CodeUri", "ContentUri", "DefinitionUri"):
            uri = properties.get(uri_key)
            if isinstance(uri, str) and not uri.startswith("s3://"):
                local_paths[logical_id] = template_dir / uri
                properties[uri_key] = f"s3://{CODE_BUCKET}/{logical_id}"
    translator = Translator(managed_policy_map={}, sam_parser=parser.Parser())
    translated = translator.translate(
        sam_template=template, parameter_values=values, passthrough_metadata=True
    )
    return translated, local_paths


class UnresolvedError(ValueError):
    """An intrinsic names something the resolver does not know (yet)."""


class _NoValue:
    """``AWS::NoValue``: the property (or list item) it stands in is left out."""


_NO_VALUE = _NoValue()


class Resolver:
    """Resolves Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select and Fn::If (with the template's
    Conditions: Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition) against parameters and created
    resources."""

    def __init__(
        self,
        parameters: dict[str, str],
        *,
        region: str,
        account_id: str,
        stack_name: str,
        conditions: dict[str, Any] | None = None,
    ) -> None:
        self._conditions = dict(conditions or {})
        self._evaluated: dict[str, bool] = {}
        self.region = region
        self.account_id = account_id
        self._refs: dict[str, Any] = {
            **parameters,
            "AWS::AccountId": account_id,
            "AWS::Region": region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{account_id}:stack/{stack_name}/local",
            "AWS::NoValue": _NO_VALUE,
        }
        self._attributes: dict[str, dict[str, Any]] = {}

    def record(self, logical_id: str, *, ref: Any, **attributes: Any) -> None:
        """Remember a created resource's Ref value and attributes."""
        self._refs[logical_id] = ref
        self._attributes[logical_id] = attributes

    def ref(self, name: str) -> Any:
        if name not in self._refs:
            raise UnresolvedError(f"Ref to {name!r}, which is not a parameter or a created resource")
        return self._refs[name]

    def get_att(self, logical_id: str, attribute: str) -> Any:
        try:
            return self._attributes[logical_id][attribute]
        except KeyError:
            raise UnresolvedError(f"Fn::GetAtt {logical_id}.{attribute} is not known") from None

    def resolve(self, value: Any) -> Any:
        """`value` with every intrinsic replaced by its value (AWS::NoValue leaves a property out)."""
        resolved = self._resolve(value)
        return None if resolved is _NO_VALUE else resolved

    def condition(self, name: str) -> bool:
        """The value of one of the template's Conditions."""
        if name not in self._evaluated:
            if name not in self._conditions:
                raise UnresolvedError(f"Condition {name!r} is not in the template")
            self._evaluated[name] = self._truth(self._conditions[name])
        return self._evaluated[name]

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self._resolve(item) for item in value]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key.startswith("Fn::"):
                return self._function(key, argument)
        resolved = {key: self._resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def _truth(self, expression: Any) -> bool:
        if not isinstance(expression, dict) or len(expression) != 1:
            raise UnresolvedError(f"not a condition expression: {expression!r}")
        ((key, argument),) = expression.items()
        if key == "Condition":
            return self.condition(argument)
        if key == "Fn::Equals":
            left, right = (self._resolve(item) for item in argument)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self._truth(argument[0])
        if key == "Fn::And":
            return all(self._truth(item) for item in argument)
        if key == "Fn::Or":
            return any(self._truth(item) for item in argument)
        raise UnresolvedError(f"{key} is not a condition function the local stack supports")

    def _function(self, key: str, argument: Any) -> Any:
        if key == "Fn::GetAtt":
            logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self.get_att(logical_id, attribute)
        if key == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            return self._sub(text, self._resolve(variables))
        if key == "Fn::Join":
            separator, items = argument
            return str(separator).join(str(item) for item in self._resolve(items))
        if key == "Fn::Select":
            index, items = self._resolve(argument)
            return items[int(index)]
        if key == "Fn::If":
            name, when_true, when_false = argument
            return self._resolve(when_true if self.condition(name) else when_false)
        raise UnresolvedError(f"{key} is not supported by the local stack")

    def _sub(self, text: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return str(self.get_att(logical_id, attribute))
            return str(self.ref(name))

        # "${!Literal}" is CloudFormation's escape for a literal "${Literal}"
        return _SUB_VARIABLE.sub(replace, text).replace("${!", "${")


def queue_attributes(properties: dict[str, Any]) -> dict[str, str]:
    """An `AWS::SQS::Queue`'s properties → the `Attributes` of SQS CreateQueue."""
    return {
        key: json.dumps(value) if isinstance(value, bool) else str(value)
        for key, value in properties.items()
        if key in _SQS_ATTRIBUTES
    }


def lambda_notification(config: dict[str, Any]) -> dict[str, Any]:
    """A bucket's `LambdaConfigurations` item → the S3 API's `LambdaFunctionConfigurations` item."""
    mapped: dict[str, Any] = {"LambdaFunctionArn": config["Function"], "Events": [config["Event"]]}
    rules = config.get("Filter", {}).get("S3Key", {}).get("Rules")
    if rules:
        mapped["Filter"] = {"Key": {"FilterRules": rules}}
    return mapped
