"""The ``maskgate`` console command: the local stack (``dev``) and the end-to-end demo (``demo``)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from maskgate.stores.tenants import TenantStore
from maskgate_local.parameter_overrides import (
    ParameterOverrideError,
    check_declared,
    parse_parameter_overrides,
)
from maskgate_local.servers import free_port
from maskgate_local.stack import READY_LINE, TEMPLATE, DevStack, Ready, StackPorts, write_ready_file


def _dev(args: argparse.Namespace) -> int:
    try:
        stack = dev_stack(args)
    except ParameterOverrideError as exc:
        print(f"maskgate dev: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    ready = stack.start()
    try:
        if args.ready_file:
            write_ready_file(Path(args.ready_file), ready)
        _banner(ready)
        stop.wait()
    finally:
        stack.stop()
    print("maskgate dev stopped", flush=True)
    return 0


def dev_stack(args: argparse.Namespace) -> DevStack:
    """The stack ``maskgate dev`` runs, not started; a bad ``--parameter-overrides`` raises."""
    parameters = parse_parameter_overrides(args.parameter_overrides)
    check_declared(parameters, TEMPLATE)
    chosen = (args.api_port, args.aws_port, args.wavespeed_port)
    api, aws, wavespeed = (port or free_port() for port in chosen)  # 0 picks a free port
    ports = StackPorts(api=api, aws=aws, wavespeed=wavespeed, control=args.control_port)
    return DevStack(
        ports=ports, parameters=parameters, wavespeed_seed=args.wavespeed_seed, crash_seed=args.crash_seed
    )


def _banner(ready: Ready) -> None:
    endpoints = f"api {ready.api_url}  aws {ready.aws_endpoint_url}  wavespeed {ready.wavespeed_url}"
    print(f"{READY_LINE}: {endpoints}")
    print(f"  bucket   {ready.bucket} (put images under {ready.upload_prefix} to start jobs)")
    print(f"  api key  {ready.api_key}   (tenant 'default'; local only)")
    print(f"  webhook  secret {ready.webhook_secret}")
    print(f"  control  {ready.control_url}/crashes   (injected crashes: GET lists, PUT sets rates)")
    print("  Ctrl-C stops the stack.", flush=True)


def _demo(args: argparse.Namespace) -> int:
    from maskgate_local.demo import run_demo

    return run_demo(out_dir=Path(args.out))


def _tenant_store(args: argparse.Namespace) -> TenantStore:
    import boto3

    table = args.table or os.environ.get("MASKGATE_TABLE")
    if not table:
        raise SystemExit(
            "maskgate keys: name the jobs table with --table or MASKGATE_TABLE (output JobsTableName)"
        )
    from botocore.exceptions import NoRegionError

    try:
        return TenantStore(table=table, client=boto3.client("dynamodb"))
    except NoRegionError as exc:
        raise SystemExit("maskgate keys: set AWS_DEFAULT_REGION (or AWS_PROFILE) to the stack's") from exc


def _keys_create(args: argparse.Namespace) -> int:
    store = _tenant_store(args)
    expires = timedelta(days=args.expires_in_days) if args.expires_in_days else None
    key = store.create_key(args.tenant, expires_in=expires)
    print(f"api key         {key.key}   (shown once; only its SHA-256 is stored)")
    print(f"key id          {key.key_id}")
    print(f"tenant          {key.tenant}")
    print(f"webhook secret  {store.webhook_secrets(args.tenant)[0]}")
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    records = _tenant_store(args).list_keys(args.tenant)
    print(f"{'key id':<22} {'prefix':<10} {'created':<17} {'last used':<17} {'expires':<17} state")
    for r in records:
        state = "revoked" if r.revoked_at else "active"
        print(
            f"{r.key_id:<22} {r.prefix:<10} {_when(r.created_at):<17} {_when(r.last_used_at):<17} "
            f"{_when(r.expires_at):<17} {state}"
        )
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    revoked = _tenant_store(args).revoke_key(args.tenant, args.key_id)
    print(f"revoked {revoked.key_id} ({revoked.prefix}…) of tenant {args.tenant}")
    return 0


def _keys_rotate_secret(args: argparse.Namespace) -> int:
    secret, until = _tenant_store(args).rotate_secret(args.tenant)
    print(f"webhook secret  {secret}   (shown once)")
    print(f"the previous secret keeps signing alongside until {_when(until)} UTC")
    return 0


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M") if at else "-"


def _keys_parser(commands: Any) -> None:
    keys = commands.add_parser("keys", help="API keys and webhook secrets (uses the usual AWS_* environment)")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    for name, run, helptext in (
        ("create", _keys_create, "create an API key for a tenant and show the tenant's webhook secret"),
        ("list", _keys_list, "list a tenant's keys (ids, prefixes, times; never the keys)"),
        ("revoke", _keys_revoke, "revoke a key by its id"),
        ("rotate-secret", _keys_rotate_secret, "new webhook secret; the old one signs alongside for 24 h"),
    ):
        action = actions.add_parser(name, help=helptext)
        action.add_argument("--tenant", required=True)
        action.add_argument("--table", help="the jobs table (default: $MASKGATE_TABLE)")
        action.set_defaults(run=run)
        if name == "create":
            action.add_argument(
                "--expires-in-days", type=int, help="the key stops working after this many days"
            )
        if name == "revoke":
            action.add_argument("--key-id", required=True)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="maskgate", description="maskgate tooling: the local stack and demo.")
    commands = root.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev", help="run the local stack in the foreground until Ctrl-C / SIGTERM")
    dev.add_argument("--api-port", type=int, default=3000)
    dev.add_argument("--aws-port", type=int, default=5000)
    dev.add_argument("--wavespeed-port", type=int, default=5100)
    dev.add_argument("--ready-file", help="write the endpoints and credentials here as JSON when ready")
    dev.add_argument("--control-port", type=int, default=0, help="control server port (default: any free)")
    dev.add_argument("--wavespeed-seed", type=int, help="seed the emulator's fault draws (repeatable tests)")
    dev.add_argument(
        "--crash-seed", type=int, help="seed the injected-crash draws (default: the --wavespeed-seed value)"
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
    _keys_parser(commands)
    from maskgate_local.commands import add_client_commands

    add_client_commands(commands)
    from maskgate_local.reconcile_command import add_reconcile_command

    add_reconcile_command(commands)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
