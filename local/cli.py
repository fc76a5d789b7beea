"""The ``maskgate`` console command: the local stack (``dev``) and the end-to-end demo (``demo``)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from maskgate_local.stack import READY_LINE, DevStack, StackPorts, write_ready_file


def _dev(args: argparse.Namespace) -> int:
    ports = StackPorts(api=args.api_port, aws=args.aws_port, wavespeed=args.wavespeed_port)
    stack = DevStack(ports=ports, wavespeed_seed=args.wavespeed_seed)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    ready = stack.start()
    try:
        if args.ready_file:
            write_ready_file(Path(args.ready_file), ready)
        endpoints = f"api {ready.api_url}  aws {ready.aws_endpoint_url}  wavespeed {ready.wavespeed_url}"
        print(f"{READY_LINE}: {endpoints}")
        print(f"  bucket   {ready.bucket} (put images under {ready.upload_prefix} to start jobs)")
        print(f"  api key  {ready.api_key}   (tenant 'default'; local only)")
        print(f"  webhook  secret {ready.webhook_secret}")
        print("  Ctrl-C stops the stack.", flush=True)
        stop.wait()
    finally:
        stack.stop()
    print("maskgate dev stopped", flush=True)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from maskgate_local.demo import run_demo

    return run_demo(out_dir=Path(args.out))


def _keys_create(args: argparse.Namespace) -> int:
    import boto3

    from maskgate.tenants import TenantStore

    store = TenantStore(table=args.table, client=boto3.client("dynamodb"))
    key = store.create_key(args.tenant)
    print(f"api key         {key.key}   (shown once; only its SHA-256 is stored)")
    print(f"key id          {key.key_id}")
    print(f"tenant          {key.tenant}")
    print(f"webhook secret  {store.webhook_secrets(args.tenant)[0]}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="maskgate", description="maskgate tooling: the local stack and demo.")
    commands = root.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev", help="run the local stack in the foreground until Ctrl-C / SIGTERM")
    dev.add_argument("--api-port", type=int, default=3000)
    dev.add_argument("--aws-port", type=int, default=5000)
    dev.add_argument("--wavespeed-port", type=int, default=5100)
    dev.add_argument("--ready-file", help="write the endpoints and credentials here as JSON when ready")
    dev.add_argument("--wavespeed-seed", type=int, help="seed the emulator's fault draws (repeatable tests)")
    dev.set_defaults(run=_dev)
    demo = commands.add_parser("demo", help="start the stack, send an image through both ways in, show masks")
    demo.add_argument("--out", default="maskgate-demo", help="folder for the masks (default: maskgate-demo)")
    demo.set_defaults(run=_demo)
    keys = commands.add_parser("keys", help="API keys (uses the usual AWS_* environment and credentials)")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser(
        "create", help="create an API key for a tenant and show its webhook secret"
    )
    create.add_argument("--tenant", required=True)
    create.add_argument("--table", required=True, help="the stack's JobsTableName output")
    create.set_defaults(run=_keys_create)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
