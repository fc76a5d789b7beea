"""``maskgate dev --parameter-overrides``: sam's forms parsed, names checked against template.yaml,
the values laid over the local stack's defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from maskgate_local.cli.main import dev_stack, main, parser
from maskgate_local.stack.dev import LOCAL_PARAMETERS
from maskgate_local.template.parameter_overrides import (
    ParameterOverrideError,
    check_declared,
    parse_parameter_overrides,
)

TEMPLATE = Path(__file__).resolve().parents[3] / "template.yaml"


def test_overrides_read_separate_items() -> None:
    assert parse_parameter_overrides(["WaveSpeedConcurrency=2", "LogLevel=DEBUG"]) == {
        "WaveSpeedConcurrency": "2",
        "LogLevel": "DEBUG",
    }


def test_overrides_read_one_string_of_several_with_quotes() -> None:
    parsed = parse_parameter_overrides(["WaveSpeedConcurrency=2 DefaultRequest='{\"a\": 1}'"])

    assert parsed == {"WaveSpeedConcurrency": "2", "DefaultRequest": '{"a": 1}'}


def test_overrides_keep_commas_and_equals_in_values() -> None:
    parsed = parse_parameter_overrides(["WaveSpeedOutputHosts=127.0.0.1,localhost", "DefaultRequest=a=b"])

    assert parsed == {"WaveSpeedOutputHosts": "127.0.0.1,localhost", "DefaultRequest": "a=b"}


def test_overrides_read_the_long_form() -> None:
    parsed = parse_parameter_overrides(["ParameterKey=WaveSpeedConcurrency,ParameterValue=2"])

    assert parsed == {"WaveSpeedConcurrency": "2"}


@pytest.mark.parametrize("item", ["WaveSpeedConcurrency", "=2", "Wave Speed=2", "'unclosed=1"])
def test_overrides_refuse_a_malformed_item(item: str) -> None:
    with pytest.raises(ParameterOverrideError):
        parse_parameter_overrides([item])


def test_overrides_name_an_undeclared_parameter() -> None:
    with pytest.raises(ParameterOverrideError, match="unknown template parameter WaveSpeedConcurency"):
        check_declared({"WaveSpeedConcurrency": "2", "WaveSpeedConcurency": "2"}, TEMPLATE)


@pytest.mark.parametrize(
    ("item", "complaint"),
    [("Nope=1", "unknown template parameter Nope"), ("junk", "'junk' is not Key=Value")],
)
def test_dev_exits_2_with_one_line(item: str, complaint: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["dev", "--parameter-overrides", item])

    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert complaint in captured.err


def test_dev_lays_overrides_over_the_local_defaults() -> None:
    args = parser().parse_args(["dev", "--parameter-overrides", "WaveSpeedConcurrency=2 PollMaxSeconds=3"])

    parameters = dev_stack(args).template_parameters("http://127.0.0.1:9")

    assert parameters == LOCAL_PARAMETERS | {
        "WaveSpeedBaseUrl": "http://127.0.0.1:9",
        "WaveSpeedConcurrency": "2",
        "PollMaxSeconds": "3",
    }


def test_dev_adds_up_repeated_parameter_overrides() -> None:
    first, second = (
        ["--parameter-overrides", "PollMaxSeconds=3"],
        ["--parameter-overrides", "PollMaxSeconds=4 LogLevel=INFO"],
    )
    argv = ["dev", *first, *second]

    assert dev_stack(parser().parse_args(argv)).parameters == {"PollMaxSeconds": "4", "LogLevel": "INFO"}


def test_dev_takes_the_crash_seed() -> None:
    args = parser().parse_args(["dev", "--crash-seed", "5", "--wavespeed-seed", "7"])

    stack = dev_stack(args)

    assert (stack.crash_seed, stack.wavespeed_seed) == (5, 7)
