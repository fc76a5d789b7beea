"""``--parameter-overrides`` as ``sam deploy`` and ``sam local`` take it, checked against the template.

Each item is ``Key=Value`` or ``ParameterKey=Key,ParameterValue=Value``; one item may hold several,
separated by spaces and quoted as a shell would (``"Key=Value Key2='a b'"``). A value may contain ``=``
and commas (``WaveSpeedOutputHosts=127.0.0.1,localhost``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path

from maskgate_local.template.sam import load_template

_LONG_FORM = re.compile(r"^ParameterKey=(?P<key>[^,=]+),ParameterValue=(?P<value>.*)$", re.DOTALL)
_SHORT_FORM = re.compile(r"^(?P<key>[A-Za-z0-9]+)=(?P<value>.*)$", re.DOTALL)


class ParameterOverrideError(ValueError):
    """A malformed item, or a name the template does not declare."""


def parse_parameter_overrides(items: Iterable[str]) -> dict[str, str]:
    """``{name: value}`` from the items; a later item for the same name wins, as with sam."""
    parsed: dict[str, str] = {}
    for item in items:
        try:
            tokens = shlex.split(item)
        except ValueError as exc:
            raise ParameterOverrideError(f"cannot read parameter override {item!r}: {exc}") from exc
        for token in tokens:
            found = _LONG_FORM.match(token) or _SHORT_FORM.match(token)
            if found is None:
                forms = "Key=Value or ParameterKey=Key,ParameterValue=Value"
                raise ParameterOverrideError(f"parameter override {token!r} is not {forms}")
            parsed[found["key"]] = found["value"]
    return parsed


def check_declared(overrides: Mapping[str, str], template: Path) -> None:
    """Raise unless every name in ``overrides`` is one of the template's Parameters."""
    declared = set(load_template(template).get("Parameters", {}))
    unknown = sorted(set(overrides) - declared)
    if unknown:
        noun = "parameter" if len(unknown) == 1 else "parameters"
        raise ParameterOverrideError(
            f"unknown template {noun} {', '.join(unknown)} (not among {template.name}'s Parameters)"
        )
