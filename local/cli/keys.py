"""``maskgate keys``: API keys and webhook secrets of a tenant, in the stack's jobs table.

The table is found as every other operator command finds its stack: the local stack's from its ready
file (``./ready.json`` unless ``--ready-file``), a deployed stack's from its ``JobsTableName`` output
(``--stack [NAME]``; no NAME: ``samconfig.toml``'s stack), or named outright with ``--table`` /
``MASKGATE_TABLE`` (then the usual AWS_* environment says where). Operator mistakes print one line and
exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    from maskgate.stores.tenants import TenantStore

PROG = "maskgate keys"
TABLE_OUTPUT = "JobsTableName"


def _store(args: argparse.Namespace) -> tuple[TenantStore, str, tuple[Path, str] | None]:
    """The tenant store of the chosen stack, a phrase naming where it is, and for the local stack its
    ready file and endpoint (for the hint when nothing answers there)."""
    from maskgate.stores.tenants import TenantStore

    table, client, where, stale = table_target(args, PROG)
    return TenantStore(table=table, client=client), where, stale


def table_target(args: argparse.Namespace, prog: str) -> tuple[str, Any, str, tuple[Path, str] | None]:
    """The jobs table of the chosen stack and a DynamoDB client for it, a phrase naming where it is,
    and for the local stack its ready file and endpoint (for the hint when nothing answers there)."""
    table = args.table or os.environ.get("MASKGATE_TABLE")
    if args.stack is not None and table:
        raise Stop(2, f"{prog}: give --stack or --table (MASKGATE_TABLE), not both")
    if table or args.stack is not None:
        import boto3

        table = table or stack_output(args.stack, TABLE_OUTPUT, prog=prog)
        client = aws_call(lambda: boto3.client("dynamodb"), f"table {table}", prog=prog)
        return table, client, f"table {table}", None
    ready, path = read_ready(
        args.ready_file, prog=prog, otherwise="name a deployed stack with --stack (or its table with --table)"
    )
    client = local_client(ready, path, "dynamodb", prog=prog)
    table = str(ready.get("table") or "")
    if not table:
        raise Stop(2, f"{prog}: the ready file {path} has no table (restart 'maskgate dev')")
    endpoint = str(client.meta.endpoint_url)
    return table, client, f"the local stack at {endpoint}", (path, endpoint)


def add_table_options(command: argparse.ArgumentParser) -> None:
    """The options naming the stack whose jobs table an operator command works on."""
    where = command.add_argument_group("which stack (default: the local one, from its ready file)")
    where.add_argument(
        "--ready-file", metavar="PATH", help=f"the local stack's ready file (./{DEFAULT_READY_FILE})"
    )
    where.add_argument(
        "--stack",
        nargs="?",
        const="",
        metavar="NAME",
        help=f"a deployed stack, by its {TABLE_OUTPUT} output (no NAME: the stack_name in "
        f"./{SAMCONFIG}); uses the usual AWS_* environment",
    )
    where.add_argument(
        "--table", help="the jobs table by name (default: $MASKGATE_TABLE); the usual AWS_* environment"
    )


def _run(args: argparse.Namespace) -> int:
    from maskgate.errors import MaskgateError

    try:
        store, where, stale = _store(args)
        return int(aws_call(lambda: args.action(store, args), where, prog=PROG, stale=stale))
    except Stop as stop:
        print(stop.message, file=sys.stderr, flush=True)  # noqa: T201 (a command talking to a person)
        return stop.code
    except MaskgateError as exc:  # e.g. revoking a key the tenant does not have
        print(f"{PROG}: {exc.message}", file=sys.stderr, flush=True)  # noqa: T201
        return 2


def _create(store: TenantStore, args: argparse.Namespace) -> int:
    expires = timedelta(days=args.expires_in_days) if args.expires_in_days else None
    key = store.create_key(args.tenant, expires_in=expires)
    _out(f"api key         {key.key}   (shown once; only its SHA-256 is stored)")
    _out(f"key id          {key.key_id}")
    _out(f"tenant          {key.tenant}")
    _out(f"webhook secret  {store.webhook_secrets(args.tenant)[0]}")
    return 0


def _list(store: TenantStore, args: argparse.Namespace) -> int:
    records = store.list_keys(args.tenant)
    _out(f"{'key id':<22} {'prefix':<10} {'created':<17} {'last used':<17} {'expires':<17} state")
    for r in records:
        state = "revoked" if r.revoked_at else "active"
        _out(
            f"{r.key_id:<22} {r.prefix:<10} {_when(r.created_at):<17} {_when(r.last_used_at):<17} "
            f"{_when(r.expires_at):<17} {state}"
        )
    return 0


def _revoke(store: TenantStore, args: argparse.Namespace) -> int:
    revoked = store.revoke_key(args.tenant, args.key_id)
    _out(f"revoked {revoked.key_id} ({revoked.prefix}…) of tenant {args.tenant}")
    return 0


def _rotate_secret(store: TenantStore, args: argparse.Namespace) -> int:
    secret, until = store.rotate_secret(args.tenant)
    _out(f"webhook secret  {secret}   (shown once)")
    _out(f"the previous secret keeps signing alongside until {_when(until)} UTC")
    return 0


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M") if at else "-"


def _out(text: str) -> None:
    print(text, flush=True)  # noqa: T201 (a command talking to a person)


def add_keys_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``keys`` (create, list, revoke, rotate-secret) to the ``maskgate`` subcommands."""
    keys = commands.add_parser(
        "keys",
        help="API keys and webhook secrets of a tenant (local stack by default, or --stack / --table)",
        description=__doc__.split("\n\n")[1].replace("\n", " ") if __doc__ else None,
    )
    actions = keys.add_subparsers(dest="keys_command", required=True)
    for name, action, helptext in (
        ("create", _create, "create an API key for a tenant and show the tenant's webhook secret"),
        ("list", _list, "list a tenant's keys (ids, prefixes, times; never the keys)"),
        ("revoke", _revoke, "revoke a key by its id"),
        ("rotate-secret", _rotate_secret, "new webhook secret; the old one signs alongside for 24 h"),
    ):
        command = actions.add_parser(
            name, help=helptext, formatter_class=argparse.ArgumentDefaultsHelpFormatter
        )
        command.add_argument("--tenant", required=True)
        add_table_options(command)
        if name == "create":
            command.add_argument(
                "--expires-in-days", type=int, help="the key stops working after this many days"
            )
        if name == "revoke":
            command.add_argument("--key-id", required=True)
        command.set_defaults(run=_run, action=action)
