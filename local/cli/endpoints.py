"""``maskgate endpoints``: register the tenant's webhook endpoints, list, show, change and delete them,
read or rotate an endpoint's signing secret, read its delivery attempts and send it again what it
missed.

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
from maskgate_local.cli.client import Attempt, Endpoint, EndpointSecret, EndpointStats
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
    if "stats" in endpoint:
        _show_stats(endpoint["stats"])


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value} ms"


def _show_stats(stats: EndpointStats) -> None:
    """The last 24 hours of the endpoint's attempt log, as the GET of one endpoint answers them."""
    rate = stats["success_rate"]
    succeeded = "" if rate is None else f", {rate * 100:.1f} % succeeded"
    out(f"last 24 h    {stats['attempts']} attempts{succeeded}")
    out(f"latency      p50 {_ms(stats['latency_p50_ms'])}, p95 {_ms(stats['latency_p95_ms'])}")
    out(f"last error   {stats['last_error'] or '-'}")
    out(f"health       {stats['state']}")


def _show_secret(secret: EndpointSecret) -> None:
    if secret["secret"] is None:  # v1a: the public key (the private key is never shown)
        out(f"public key   {secret.get('public_key')}")
    else:
        out(f"secret       {secret['secret']}")
    until, previous = secret["previous_secret_valid_until"], secret.get("previous_public_key")
    if until and previous:
        out(f"             the previous key pair keeps signing alongside until {_when(until)}:")
        out(f"             {previous}")
    elif until:
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
    given = {
        "url": args.url,
        "description": args.description,
        "metadata": None if args.metadata is None else _metadata(args.metadata),
        "enabled": args.enabled,
        "signature": args.signature,
    }
    change: dict[str, Any] = {name: value for name, value in given.items() if value is not None}
    if args.all_events:
        change["event_types"] = []
    elif args.event:
        change["event_types"] = args.event
    if args.no_rate:
        change["rate_limit_per_second"] = None
    elif args.rate is not None:
        change["rate_limit_per_second"] = args.rate
    if not change:
        raise Stop(2, f"{PROG} update: nothing to change (see --help)")
    return change


def _update(args: argparse.Namespace) -> int:
    change = _change(args)
    with api_client(args) as client:
        updated = client.update_endpoint(args.endpoint_id, change)
        _show(updated)
        if change.get("signature") == "v1":  # a new whsec_ secret: shown here, as at create
            _show_secret(client.endpoint_secret(args.endpoint_id))
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


def _result(attempt: Attempt) -> str:
    """The status code the endpoint answered, else why there was no answer."""
    if attempt["status_code"] is not None:
        return str(attempt["status_code"])
    return attempt["error"] or attempt["status"]


def _attempts(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        page = client.endpoint_attempts(
            args.endpoint_id, status=args.status, limit=args.limit, cursor=args.cursor
        )
    out(f"{'time':<23}  {'webhook-id':<43}  {'event':<22}  {'result':<8}  {'latency':>8}  next retry")
    for attempt in page["data"]:
        next_at = _when(attempt["next_attempt_at"])
        out(
            f"{_when(attempt['at']):<23}  {attempt['webhook_id']:<43}  {attempt['event']:<22}  "
            f"{_result(attempt):<8}  {_ms(attempt['latency_ms']):>8}  {next_at}"
        )
    if not page["data"]:
        out("no attempts")
    if page["next_cursor"]:
        out(f"more: --cursor {page['next_cursor']}")
    return 0


def _since(value: str) -> str:
    """``value`` as given, once it reads as an RFC 3339 time with an offset."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise Stop(
            2, f"{PROG} recover: --since takes an RFC 3339 time, e.g. 2026-12-06T00:00:00Z, not {value!r}"
        ) from None
    if parsed.tzinfo is None:
        raise Stop(2, f"{PROG} recover: --since needs its offset (Z or +hh:mm): {value!r}")
    return value


def _recover(args: argparse.Namespace) -> int:
    since = _since(args.since)
    with api_client(args) as client:
        recovery = client.recover_endpoint(args.endpoint_id, since)
    count = recovery["messages"]
    out(
        f"resending {count} message{'' if count == 1 else 's'} to {recovery['endpoint_id']} "
        f"(each whose last attempt failed since {_when(recovery['since'])})"
    )
    return 0


def _resend(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        resent = client.resend_message(args.endpoint_id, args.webhook_id)
    out(f"resending {resent['webhook_id']} to {resent['endpoint_id']}")
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
    command.add_argument(
        "--signature",
        choices=("v1", "v1a"),
        default=None if update else "v1",
        help="switch to another scheme: a key of the new one, the old key signing alongside for 24 hours"
        if update
        else "v1: HMAC-SHA256 with a whsec_ secret (the default); v1a: Ed25519, verified with the "
        "endpoint's public key",
    )
    if not update:
        command.add_argument("--disabled", action="store_true", help="register it disabled")
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
    """Add ``endpoints`` (create, list, show, update, delete, rotate-secret, attempts, recover, resend)
    to the subcommands."""
    api = api_options()
    endpoints = commands.add_parser(
        "endpoints",
        help="the tenant's registered webhook endpoints (create, list, show, update, delete, "
        "rotate-secret, attempts, recover, resend)",
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

    show = actions.add_parser("show", parents=[api], help="show an endpoint and its last 24 hours")
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

    attempts = actions.add_parser(
        "attempts", parents=[api], help="its delivery attempts, newest first (one page)"
    )
    attempts.add_argument("endpoint_id", metavar="ENDPOINT_ID")
    attempts.add_argument(
        "--status", choices=("succeeded", "failed"), help="only those that succeeded (2xx) or failed"
    )
    attempts.add_argument("--limit", type=int, metavar="N", help="attempts on the page (1-100)")
    attempts.add_argument("--cursor", metavar="C", help="the page after the one that printed it")
    attempts.set_defaults(run=guarded(_attempts))

    recover = actions.add_parser(
        "recover", parents=[api], help="resend every message whose last attempt failed since a time"
    )
    recover.add_argument("endpoint_id", metavar="ENDPOINT_ID")
    recover.add_argument(
        "--since", required=True, metavar="RFC3339", help="e.g. 2026-12-06T00:00:00Z (with its offset)"
    )
    recover.set_defaults(run=guarded(_recover))

    resend = actions.add_parser("resend", parents=[api], help="send one message to the endpoint again")
    resend.add_argument("endpoint_id", metavar="ENDPOINT_ID")
    resend.add_argument("webhook_id", metavar="WEBHOOK_ID", help="its webhook-id (msg_…)")
    resend.set_defaults(run=guarded(_resend))
