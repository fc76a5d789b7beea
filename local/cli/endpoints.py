"""``maskgate endpoints``: register the tenant's webhook endpoints, list, show, change and delete them,
and read or rotate an endpoint's signing secret.

An endpoint receives the events of every job of the tenant that its event types name (none: every
type), signed with its own secret (v1) or its own Ed25519 key pair (``--signature v1a``). The secret is
printed by ``create``, by ``show --secret`` and by ``rotate-secret``; a v1a endpoint's public key is
printed instead (its private key never leaves maskgate); never the API key."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from maskgate.contracts.endpoints import EVENT_TYPES
from maskgate_local.cli.api import api_client, api_options, guarded, out
from maskgate_local.cli.client import Endpoint, EndpointSecret
from maskgate_local.cli.targets import Stop

PROG = "maskgate endpoints"


def _when(value: str | None) -> str:
    if not value:
        return "-"
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return value


def _events(endpoint: Endpoint) -> str:
    return ", ".join(endpoint["event_types"]) or "every event type"


def _state(endpoint: Endpoint) -> str:
    if endpoint["enabled"]:
        return "enabled"
    if endpoint.get("disabled_reason"):
        return f"disabled at {_when(endpoint['disabled_at'])}: {endpoint['disabled_reason']}"
    return "disabled"


def _show(endpoint: Endpoint) -> None:
    rate = endpoint["rate_limit_per_second"]
    metadata = endpoint["metadata"]
    out(f"id           {endpoint['id']}")
    out(f"url          {endpoint['url']}")
    out(f"description  {endpoint['description'] or '-'}")
    out(f"events       {_events(endpoint)}")
    out(f"state        {_state(endpoint)}")
    out(f"rate limit   {f'{rate} per second' if rate else '-'}")
    out(f"metadata     {' '.join(f'{k}={v}' for k, v in metadata.items()) or '-'}")
    out(f"signature    {endpoint['signature']}")
    if endpoint.get("public_key"):
        out(f"public key   {endpoint['public_key']}")
    out(f"created      {_when(endpoint['created_at'])}")
    out(f"updated      {_when(endpoint['updated_at'])}")


def _show_secret(secret: EndpointSecret) -> None:
    until = secret["previous_secret_valid_until"]
    if secret["secret"] is None:  # v1a: the public keys (the private key is never shown)
        out(f"public key   {secret.get('public_key')}")
        if until:
            out(f"             the previous key pair keeps signing alongside until {_when(until)}:")
            out(f"             {secret.get('previous_public_key')}")
        return
    out(f"secret       {secret['secret']}")
    if until:
        out(f"             the previous secret keeps signing alongside until {_when(until)}")


def _metadata(pairs: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise Stop(2, f"{PROG}: --metadata takes KEY=VALUE, not {pair!r}")
        found[key] = value
    return found


def _create(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"url": args.url, "event_types": args.event or []}
    if args.description is not None:
        body["description"] = args.description
    if args.rate is not None:
        body["rate_limit_per_second"] = args.rate
    if args.metadata:
        body["metadata"] = _metadata(args.metadata)
    if args.disabled:
        body["enabled"] = False
    if args.signature != "v1":
        body["signature"] = args.signature
    with api_client(args) as client:
        created = client.create_endpoint(body)
    _show(created)
    if created["secret"] is None:  # v1a: the public key, printed by _show, verifies its events
        out("             verify its events with the public key (README: Verifying v1a)")
        return 0
    out(f"secret       {created['secret']}")
    out(f"             verify its events with it ('maskgate endpoints show {created['id']} --secret')")
    return 0


def _list(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        found = client.list_endpoints()
    out(f"{'id':<19}  {'state':<8}  {'events':<24}  {'url':<40}  description")
    for endpoint in found:
        events = ",".join(e.removeprefix("segmentation.") for e in endpoint["event_types"]) or "all"
        state = "enabled" if endpoint["enabled"] else "disabled"
        url, description = endpoint["url"], endpoint["description"]
        out(f"{endpoint['id']:<19}  {state:<8}  {events:<24}  {url:<40}  {description}")
    if not found:
        out("no webhook endpoints")
    return 0


def _get(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        endpoint = client.get_endpoint(args.endpoint_id)
        secret = client.endpoint_secret(args.endpoint_id) if args.secret else None
    _show(endpoint)
    if secret is not None:
        _show_secret(secret)
    return 0


def _change(args: argparse.Namespace) -> dict[str, Any]:
    change: dict[str, Any] = {}
    if args.url is not None:
        change["url"] = args.url
    if args.description is not None:
        change["description"] = args.description
    if args.all_events:
        change["event_types"] = []
    elif args.event:
        change["event_types"] = args.event
    if args.no_rate:
        change["rate_limit_per_second"] = None
    elif args.rate is not None:
        change["rate_limit_per_second"] = args.rate
    if args.metadata is not None:
        change["metadata"] = _metadata(args.metadata)
    if args.enabled is not None:
        change["enabled"] = args.enabled
    if not change:
        raise Stop(2, f"{PROG} update: nothing to change (see --help)")
    return change


def _update(args: argparse.Namespace) -> int:
    change = _change(args)
    with api_client(args) as client:
        _show(client.update_endpoint(args.endpoint_id, change))
    return 0


def _delete(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        client.delete_endpoint(args.endpoint_id)
    out(f"deleted {args.endpoint_id}")
    return 0


def _rotate_secret(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        rotated = client.rotate_endpoint_secret(args.endpoint_id)
    out(f"id           {args.endpoint_id}")
    _show_secret(rotated)
    return 0


def _fields(command: argparse.ArgumentParser, *, update: bool) -> None:
    command.add_argument("--description", help="what the endpoint is for (up to 256 characters)")
    command.add_argument(
        "--event",
        action="append",
        choices=EVENT_TYPES,
        metavar="TYPE",
        help=f"an event type it receives (repeat for more; none: every type): {', '.join(EVENT_TYPES)}",
    )
    command.add_argument("--rate", type=int, metavar="N", help="at most N deliveries per second (1-1000)")
    command.add_argument(
        "--metadata",
        action="append",
        metavar="KEY=VALUE",
        help="a string pair of your own (repeat for more, up to 16"
        + ("; replaces them all)" if update else ")"),
    )
    if not update:
        command.add_argument("--disabled", action="store_true", help="register it disabled")
        command.add_argument(
            "--signature",
            choices=("v1", "v1a"),
            default="v1",
            help="v1: HMAC-SHA256 with a whsec_ secret (the default); v1a: Ed25519, verified with the "
            "endpoint's public key",
        )
        return
    command.add_argument("--url", help="a new URL (checked as at create)")
    command.add_argument("--all-events", action="store_true", help="receive every event type again")
    command.add_argument("--no-rate", action="store_true", help="remove its own rate limit")
    state = command.add_mutually_exclusive_group()
    state.add_argument(
        "--enable",
        dest="enabled",
        action="store_const",
        const=True,
        help="enable it (an endpoint maskgate disabled too: its reason is cleared)",
    )
    state.add_argument("--disable", dest="enabled", action="store_const", const=False, help="disable it")


def add_endpoints_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``endpoints`` (create, list, show, update, delete, rotate-secret) to the subcommands."""
    api = api_options()
    endpoints = commands.add_parser(
        "endpoints",
        help="the tenant's registered webhook endpoints (create, list, show, update, delete, rotate-secret)",
        description=__doc__.split("\n\n")[1].replace("\n", " ") if __doc__ else None,
    )
    actions = endpoints.add_subparsers(dest="endpoints_command", required=True)

    create = actions.add_parser("create", parents=[api], help="register an endpoint; prints its secret")
    create.add_argument(
        "url", metavar="URL", help="where events are POSTed (https; loopback on the local stack)"
    )
    _fields(create, update=False)
    create.set_defaults(run=guarded(_create))

    listing = actions.add_parser("list", parents=[api], help="list the endpoints, oldest first")
    listing.set_defaults(run=guarded(_list))

    show = actions.add_parser("show", parents=[api], help="show an endpoint")
    show.add_argument("endpoint_id", metavar="ENDPOINT_ID")
    show.add_argument("--secret", action="store_true", help="print its signing secret too")
    show.set_defaults(run=guarded(_get))

    update = actions.add_parser("update", parents=[api], help="change the fields given, only those")
    update.add_argument("endpoint_id", metavar="ENDPOINT_ID")
    _fields(update, update=True)
    update.set_defaults(run=guarded(_update))

    delete = actions.add_parser("delete", parents=[api], help="delete an endpoint")
    delete.add_argument("endpoint_id", metavar="ENDPOINT_ID")
    delete.set_defaults(run=guarded(_delete))

    rotate = actions.add_parser(
        "rotate-secret", parents=[api], help="a new signing secret; the old one signs alongside for 24 h"
    )
    rotate.add_argument("endpoint_id", metavar="ENDPOINT_ID")
    rotate.set_defaults(run=guarded(_rotate_secret))
