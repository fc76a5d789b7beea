"""``maskgate reconcile``: run the reconcile sweep now, on the local stack or on a deployed one.

The sweep is the stack's own ReconcileFunction (the one its schedule runs), invoked through Lambda:
on the local stack through its AWS endpoint (the ready file's ``aws_endpoint_url``), on a deployed
stack by the name in its ``ReconcileFunctionName`` output. It prints a one-line summary and a line per
repair. Operator mistakes (no ready file, a stack that cannot be reached or has no such function)
print one line and exit 2; a sweep that ran exits 0, whatever it found.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from maskgate_local.cli.targets import (
    DEFAULT_READY_FILE,
    SAMCONFIG,
    Stop,
    aws_call,
    local_client,
    read_ready,
    stack_output,
)

if TYPE_CHECKING:
    from botocore.config import Config
    from mypy_boto3_lambda.client import LambdaClient

FUNCTION_OUTPUT = "ReconcileFunctionName"
LOGICAL_ID = "ReconcileFunction"  # the local stack names functions <stack>-<logical id>
INVOKE_TIMEOUT_S = 330  # the function's timeout (300 s) and some slack
PROG = "maskgate reconcile"
T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """Where the reconcile function is: a Lambda client and the function's name."""

    client: LambdaClient
    function_name: str
    where: str


def add_reconcile_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``reconcile`` to the ``maskgate`` subcommands."""
    command = commands.add_parser(
        "reconcile",
        help="find and repair stalled jobs, orphaned WaveSpeed slots and undelivered webhooks now",
        description=(
            "Run the reconcile sweep now: restart jobs whose workflow stopped, fail the ones that cannot "
            "run, release WaveSpeed slots of finished jobs, and recover webhooks that nothing delivers. "
            "Targets the local stack of ./ready.json unless --stack names a deployed one."
        ),
    )
    command.add_argument(
        "--dry-run", action="store_true", help="report what would be repaired; repair nothing"
    )
    command.add_argument(
        "--ready-file", metavar="PATH", help=f"the local stack's ready file (default ./{DEFAULT_READY_FILE})"
    )
    command.add_argument(
        "--stack",
        nargs="?",
        const="",
        metavar="NAME",
        help=f"a deployed stack (no NAME: the stack_name in ./{SAMCONFIG}); uses the usual AWS_* environment",
    )
    command.add_argument(
        "--grace-seconds",
        type=int,
        metavar="S",
        help="also repair jobs updated less than S seconds ago (default: the stack's ReconcileGraceSeconds)",
    )
    command.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        if args.grace_seconds is not None and args.grace_seconds < 0:
            raise Stop(2, f"{PROG}: --grace-seconds must be 0 or more, not {args.grace_seconds}")
        target = _deployed(args.stack) if args.stack is not None else _local(args.ready_file)
        request: dict[str, Any] = {"dry_run": bool(args.dry_run)}
        if args.grace_seconds is not None:
            request["grace_seconds"] = args.grace_seconds
        report = _invoke(target, request)
    except Stop as stop:
        _err(stop.message)
        return stop.code
    for line in summary(report):
        _out(line)
    return 0


def summary(report: dict[str, Any]) -> list[str]:
    """The summary line, then a line per repair."""
    counts, dry = report["counts"], report["dry_run"]
    head = f"{PROG}{' --dry-run' if dry else ''}: checked {report['checked']} jobs, found {counts['found']}"
    if dry:
        head += ", repaired nothing"
    else:
        head += (
            f": restarted {counts['restarted']}, failed {counts['failed']}, "
            f"slots released {counts['slots_released']}, webhooks recovered {counts['webhooks_recovered']}"
        )
        if counts.get("webhooks_dead_lettered"):
            head += f", webhooks dead-lettered {counts['webhooks_dead_lettered']}"
        if counts["errors"]:
            head += f"; {counts['errors']} could not be repaired (the function's log says why)"
    lines = [head]
    for repair in report["repairs"]:
        action = ("would " if dry and repair["action"] != "error" else "") + repair["action"].replace(
            "_", " "
        )
        # a job, a tenant event's webhook-id, or none (the tenant events could not be listed)
        subject = repair.get("job_id") or repair.get("message_id") or "-"
        lines.append(f"  {action:<16} {repair['kind']:<15} {subject}  {repair['detail']}".rstrip())
    return lines


def _local(ready_file: str | None) -> Target:
    ready, path = read_ready(ready_file, prog=PROG, otherwise="name a deployed stack with --stack")
    client = local_client(ready, path, "lambda", prog=PROG, config=_config())
    endpoint = str(client.meta.endpoint_url)
    names = _call(lambda: _function_names(client), f"the local stack at {endpoint}", stale=(path, endpoint))
    found = [name for name in names if name == LOGICAL_ID or name.endswith(f"-{LOGICAL_ID}")]
    if len(found) != 1:
        raise Stop(
            2, f"{PROG}: the local stack at {endpoint} has no {LOGICAL_ID} (restart it with this version)"
        )
    return Target(client=client, function_name=found[0], where=f"the local stack at {endpoint}")


def _deployed(stack: str) -> Target:
    name = stack_output(stack, FUNCTION_OUTPUT, prog=PROG)
    import boto3

    client = _call(lambda: boto3.client("lambda", config=_config()), f"function {name}")
    return Target(client=client, function_name=name, where=f"function {name}")


def _invoke(target: Target, request: dict[str, Any]) -> dict[str, Any]:
    answer = _call(
        lambda: target.client.invoke(FunctionName=target.function_name, Payload=json.dumps(request).encode()),
        target.where,
    )
    payload = answer["Payload"].read()
    if answer.get("FunctionError"):
        try:
            error = json.loads(payload)
            why = f"{error.get('errorType')}: {error.get('errorMessage')}"
        except ValueError:
            why = payload[:300].decode(errors="replace")
        raise Stop(1, f"{PROG}: the sweep failed in {target.function_name}: {why}")
    report: dict[str, Any] = json.loads(payload)
    return report


def _config() -> Config:
    from botocore.config import Config

    return Config(
        connect_timeout=5, read_timeout=INVOKE_TIMEOUT_S, retries={"mode": "standard", "max_attempts": 1}
    )


def _function_names(client: LambdaClient) -> list[str]:
    pages = client.get_paginator("list_functions").paginate()
    return [function["FunctionName"] for page in pages for function in page["Functions"]]


def _call(call: Callable[[], T], where: str, *, stale: tuple[Path, str] | None = None) -> T:
    return aws_call(call, where, prog=PROG, stale=stale)


def _out(text: str) -> None:
    print(text, flush=True)  # noqa: T201 (a command talking to a person)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)  # noqa: T201


def main(argv: list[str] | None = None) -> int:
    """``python -m maskgate_local.cli.reconcile [options]``: the same command on its own."""
    parser = argparse.ArgumentParser(prog="maskgate")
    add_reconcile_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["reconcile", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
