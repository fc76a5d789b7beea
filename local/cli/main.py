"""The ``maskgate`` console command: the local stack (``dev``) and the end-to-end demo (``demo``)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from maskgate_local.cli.targets import DEFAULT_READY_FILE
from maskgate_local.stack.activity import Activity
from maskgate_local.stack.dev import (
    READY_LINE,
    TEMPLATE,
    DevStack,
    Ready,
    StackPorts,
    remove_ready_file,
    write_ready_file,
)
from maskgate_local.stack.servers import PortBusy, free_port, port_free
from maskgate_local.stack.state import StateDirError
from maskgate_local.template.parameter_overrides import (
    ParameterOverrideError,
    check_declared,
    parse_parameter_overrides,
)


def _dev(args: argparse.Namespace) -> int:
    try:
        stack = dev_stack(args)
        _check_ports_free(args)
    except (ParameterOverrideError, PortBusy) as exc:
        print(f"maskgate dev: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        ready = stack.start()
    except PortBusy as exc:  # taken between the check and the start
        print(f"maskgate dev: {PortBusy(exc.port, _flag_for(args, exc.port))}", file=sys.stderr)
        return 2
    except StateDirError as exc:
        print(f"maskgate dev: --state-dir: {exc}", file=sys.stderr)
        return 2
    ready_file = Path(args.ready_file) if args.ready_file else None
    if not args.quiet:
        _activity(stack, ready)
    try:
        if ready_file is not None:
            write_ready_file(ready_file, ready)
        _banner(ready, ready_file, stack)
        stop.wait()
    finally:
        stack.stop()
        if ready_file is not None:
            remove_ready_file(ready_file, ready)
    print("maskgate dev stopped", flush=True)
    return 0


PORT_FLAGS = (
    ("api_port", "--api-port"),
    ("aws_port", "--aws-port"),
    ("wavespeed_port", "--wavespeed-port"),
    ("control_port", "--control-port"),
)


def _activity(stack: DevStack, ready: Ready) -> Activity:
    """Print a line per job transition and webhook attempt while the stack runs (not with --quiet)."""
    from maskgate.stores.jobs import JobStore

    assert stack.aws is not None  # noqa: S101 (started)
    activity = Activity(jobs=JobStore(table=ready.table, client=stack.aws.client("dynamodb")), say=_say)
    stack.aws.invocations.append(activity.observe)
    return activity


def _say(line: str) -> None:
    print(line, flush=True)


def _flag_for(args: argparse.Namespace, port: int) -> str | None:
    return next((flag for attribute, flag in PORT_FLAGS if getattr(args, attribute) == port), None)


def _check_ports_free(args: argparse.Namespace) -> None:
    """Every port asked for by number is free on 127.0.0.1 (0 picks a free one): else PortBusy."""
    for attribute, flag in PORT_FLAGS:
        port = getattr(args, attribute)
        if port and not port_free(port):
            raise PortBusy(port, flag)


def dev_stack(args: argparse.Namespace) -> DevStack:
    """The stack ``maskgate dev`` runs, not started; a bad ``--parameter-overrides`` raises."""
    parameters = parse_parameter_overrides(args.parameter_overrides)
    check_declared(parameters, TEMPLATE)
    chosen = (args.api_port, args.aws_port, args.wavespeed_port)
    api, aws, wavespeed = (port or free_port() for port in chosen)  # 0 picks a free port
    ports = StackPorts(api=api, aws=aws, wavespeed=wavespeed, control=args.control_port)
    return DevStack(
        ports=ports,
        parameters=parameters,
        wavespeed_seed=args.wavespeed_seed,
        crash_seed=args.crash_seed,
        state_dir=Path(args.state_dir) if getattr(args, "state_dir", None) else None,
    )


def _banner(ready: Ready, ready_file: Path | None, stack: DevStack) -> None:
    endpoints = f"api {ready.api_url}  aws {ready.aws_endpoint_url}  wavespeed {ready.wavespeed_url}"
    print(f"{READY_LINE}: {endpoints}")
    print(f"  bucket   {ready.bucket} (put images under {ready.upload_prefix} to start jobs)")
    print(f"  api key  {ready.api_key}   (tenant 'default'; local only)")
    print(f"  webhook  secret {ready.webhook_secret}")
    print(f"  control  {ready.control_url}/crashes   (injected crashes: GET lists, PUT sets rates)")
    if ready_file is not None:
        print(f"  ready    {ready_file} (the maskgate commands read it; removed when the stack stops)")
    if stack.state_dir is not None:
        items, objects = (stack.restored.items, stack.restored.objects) if stack.restored else (0, 0)
        print(f"  state    {stack.state_dir} (restored {items} items, {objects} objects; saved at stop)")
    print("  Ctrl-C stops the stack. A line per job transition and webhook attempt follows.", flush=True)


def _demo(args: argparse.Namespace) -> int:
    from maskgate_local.demo.run import run_demo

    return run_demo(out_dir=Path(args.out))


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="maskgate", description="maskgate tooling: the local stack and demo.")
    commands = root.add_subparsers(dest="command", required=True)
    dev = commands.add_parser(
        "dev",
        help="run the local stack in the foreground until Ctrl-C / SIGTERM",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    dev.add_argument("--api-port", type=int, default=3000, help="the HTTP API (0: any free port)")
    dev.add_argument("--aws-port", type=int, default=5000, help="AWS, i.e. moto (0: any free port)")
    dev.add_argument("--wavespeed-port", type=int, default=5100, help="the WaveSpeed emulator (0: any free)")
    dev.add_argument(
        "--ready-file",
        default=DEFAULT_READY_FILE,
        help="write the endpoints and credentials here as JSON when ready; removed on exit ('' for none)",
    )
    dev.add_argument("--control-port", type=int, default=0, help="the control server (0: any free port)")
    dev.add_argument(
        "--quiet", action="store_true", help="print no line per job transition and webhook attempt"
    )
    dev.add_argument(
        "--state-dir",
        metavar="DIR",
        default=argparse.SUPPRESS,  # its default is said in words: "None" would say nothing
        help="keep tables and objects (jobs, keys, masks) in DIR across restarts: saved when the stack "
        "stops, restored when it starts (default: in memory only)",
    )
    dev.add_argument("--wavespeed-seed", type=int, help="seed the emulator's fault draws (repeatable tests)")
    dev.add_argument(
        "--crash-seed", type=int, help="seed the injected-crash draws (None: the --wavespeed-seed value)"
    )
    dev.add_argument(
        "--parameter-overrides",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="template parameters on top of the local defaults, as sam deploy takes them",
    )
    dev.set_defaults(run=_dev)
    demo = commands.add_parser("demo", help="start the stack, send an image through both ways in, show masks")
    demo.add_argument("--out", default="maskgate-demo", help="folder for the masks (default: maskgate-demo)")
    demo.set_defaults(run=_demo)
    from maskgate_local.cli.keys import add_keys_command

    add_keys_command(commands)
    from maskgate_local.cli.submit import add_submit_command

    add_submit_command(commands)
    from maskgate_local.cli.jobs import add_jobs_commands

    add_jobs_commands(commands)
    from maskgate_local.cli.show import add_show_command

    add_show_command(commands)
    from maskgate_local.cli.listen import add_listen_command

    add_listen_command(commands)
    from maskgate_local.cli.reconcile import add_reconcile_command

    add_reconcile_command(commands)
    from maskgate_local.cli.endpoints import add_endpoints_command

    add_endpoints_command(commands)
    from maskgate_local.cli.tenants import add_tenants_commands

    add_tenants_commands(commands)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
