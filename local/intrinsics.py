"""Reading a CloudFormation template: YAML short tags and the few intrinsic functions maskgate uses."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

_SHORT_TAGS = (
    "Ref", "Condition", "Base64", "Cidr", "FindInMap", "GetAtt", "GetAZs", "ImportValue", "Join", "Select",
    "Split", "Sub", "Transform", "And", "Equals", "If", "Not", "Or",
)
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


class _TemplateLoader(yaml.SafeLoader):
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
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {key: value}

    return construct


for _tag in _SHORT_TAGS:
    _TemplateLoader.add_constructor(f"!{_tag}", _short_tag(_tag))


def load_template(path: Path) -> dict[str, Any]:
    """The template as plain data, short tags in their long form."""
    loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=_TemplateLoader)  # noqa: S506 (safe loader)
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} is not a CloudFormation template")
    return loaded


class UnresolvedError(ValueError):
    """An intrinsic names something the resolver does not know (yet)."""


class Resolver:
    """Resolves Ref, Fn::GetAtt, Fn::Sub, Fn::Join and Fn::Select against parameters and created resources."""

    def __init__(self, parameters: dict[str, str], *, region: str, account_id: str, stack_name: str) -> None:
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
            "AWS::NoValue": None,
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
        """`value` with every intrinsic replaced by its value."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key.startswith("Fn::"):
                return self._function(key, argument)
        return {key: self.resolve(item) for key, item in value.items()}

    def _function(self, key: str, argument: Any) -> Any:
        if key == "Fn::GetAtt":
            logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self.get_att(logical_id, attribute)
        if key == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            return self._sub(text, self.resolve(variables))
        if key == "Fn::Join":
            separator, items = argument
            return str(separator).join(str(item) for item in self.resolve(items))
        if key == "Fn::Select":
            index, items = self.resolve(argument)
            return items[int(index)]
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
