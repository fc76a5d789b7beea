"""``maskgate tenants`` (set-limits, show) and ``maskgate usage``: a tenant's quotas and monthly spend
cap, and what it has used.

``tenants`` is an operator command: it works on the stack's jobs table, found as ``maskgate keys``
finds it (the local stack's ready file, ``--stack [NAME]`` or ``--table``). ``usage`` asks the API
with the tenant's own key (``GET /v1/usage``), or, with ``--tenant``, reads the table as an operator.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from maskgate_local.cli.api import api_client, api_options, err, guarded, out
from maskgate_local.cli.keys import add_table_options, table_target
from maskgate_local.cli.targets import Stop, aws_call

if TYPE_CHECKING:
    from maskgate.contracts.limits import TenantLimits
    from maskgate.stores.limits import LimitStore

PROG = "maskgate tenants"


def _limit_store(table: str, client: Any) -> LimitStore:
    from maskgate.contracts.limits import TenantLimits
    from maskgate.stores.limits import LimitStore
    from maskgate.stores.tenants import TenantStore

    # what the tenant was given itself, over the model's own defaults (the deployment's parameters are
    # not known here: a limit the tenant was never given is shown as the deployment's default)
    tenants = TenantStore(table=table, client=client)
    return LimitStore(table=table, client=client, tenants=tenants, defaults=TenantLimits())


def _operator(args: argparse.Namespace) -> int:
    from maskgate.errors import MaskgateError

    try:
        table, client, where, stale = table_target(args, PROG)
        return int(aws_call(lambda: args.action(table, client, args), where, prog=PROG, stale=stale))
    except Stop as stop:
        err(stop.message)
        return stop.code
    except (MaskgateError, ValueError) as exc:
        err(f"{PROG}: {getattr(exc, 'message', exc)}")
        return 2


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for option, field in (
        ("max_in_flight", "max_jobs_in_flight"),
        ("jobs_per_minute", "jobs_per_minute"),
        ("images_per_day", "images_per_day"),
        ("spend_threshold", "spend_threshold"),
        ("cache", "cache_enabled"),
    ):
        if getattr(args, option) is not None:
            changes[field] = getattr(args, option)
    if args.spend_cap is not None and args.no_spend_cap:
        raise Stop(2, f"{PROG}: give --spend-cap or --no-spend-cap, not both")
    if args.spend_cap is not None:
        changes["monthly_spend_cap_usd"] = args.spend_cap
    if args.no_spend_cap:
        changes["monthly_spend_cap_usd"] = None
    if not changes:
        raise Stop(2, f"{PROG} set-limits: give at least one limit to set (see --help)")
    return changes


def _set_limits(table: str, client: Any, args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    store = _limit_store(table, client)
    try:
        store.set(args.tenant, _changes(args))
    except ValidationError as exc:
        raise Stop(2, f"{PROG} set-limits: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from exc
    _show_limits(args.tenant, store.get(args.tenant), store.own(args.tenant))
    return 0


def _show(table: str, client: Any, args: argparse.Namespace) -> int:
    store = _limit_store(table, client)
    _show_limits(args.tenant, store.get(args.tenant), store.own(args.tenant))
    return 0


def _show_limits(tenant: str, limits: TenantLimits, own: set[str]) -> None:
    def shown(field: str, text: str) -> str:
        return text if field in own else "deployment default"

    cap = limits.monthly_spend_cap_usd
    out(f"tenant               {tenant}")
    out(f"jobs in flight       {shown('max_jobs_in_flight', _quota(limits.max_jobs_in_flight))}")
    out(f"jobs per minute      {shown('jobs_per_minute', _quota(limits.jobs_per_minute))}")
    out(f"images per day       {shown('images_per_day', _quota(limits.images_per_day))}")
    out(f"monthly spend cap    {shown('monthly_spend_cap_usd', 'none' if cap is None else _usd(cap))}")
    out(f"spend threshold      {shown('spend_threshold', f'{limits.spend_threshold:.0%}')}")
    out(f"result cache         {shown('cache_enabled', 'on' if limits.cache_enabled else 'off')}")


def _quota(value: int) -> str:
    return "no limit" if value == 0 else str(value)


def _usage_of_tenant(table: str, client: Any, args: argparse.Namespace) -> int:
    from maskgate.stores.spend import SpendLedger

    counters = SpendLedger(table=table, client=client).counters(args.tenant, args.month or _this_month())
    store = _limit_store(table, client)
    limits, own = store.get(args.tenant), store.own(args.tenant)
    cap = limits.monthly_spend_cap_usd if "monthly_spend_cap_usd" in own else None
    out(f"tenant {args.tenant}, {args.month or _this_month()}")
    for name in ("accepted", "submitted", "released", "succeeded", "failed", "canceled", "cache_hits"):
        out(f"  {name.replace('_', ' '):<18} {counters[name]}")
    out(
        f"  {'refused':<18} {counters['quota_rejections']} quota_exceeded, "
        f"{counters['cap_rejections']} spend_cap_reached"
    )
    spent, reserved = _usd(counters["spent"] / 1e6), _usd(counters["reserved"] / 1e6)
    out(f"  {'wavespeed':<18} {spent} spent, {reserved} reserved")
    out(f"  {'cache saved':<18} {_usd(counters['cache_saved'] / 1e6)}")
    if cap is not None:
        out(f"  {'cap':<18} {_usd(cap)}; remaining {_usd(max(0.0, cap - counters['committed'] / 1e6))}")
    else:
        out(f"  {'cap':<18} the deployment's default (ask the API: maskgate usage with the tenant's key)")
    return 0


def _usage(args: argparse.Namespace) -> int:
    if args.tenant is not None:
        args.action = _usage_of_tenant
        return _operator(args)
    return int(guarded(_usage_by_api)(args))


def _usage_by_api(args: argparse.Namespace) -> int:
    with api_client(args) as client:
        usage = client.usage(args.month)
    jobs = usage["jobs"]
    out(f"tenant {usage['tenant']}, {usage['month']}")
    for name in ("accepted", "submitted", "released", "succeeded", "failed", "canceled", "cache_hits"):
        out(f"  {name.replace('_', ' '):<18} {jobs[name]}")
    out(
        f"  {'refused':<18} {jobs['quota_rejections']} quota_exceeded, "
        f"{jobs['cap_rejections']} spend_cap_reached"
    )
    out(f"  {'wavespeed':<18} {_usd(usage['wavespeed_usd'])} spent, {_usd(usage['reserved_usd'])} reserved")
    out(f"  {'aws (estimated)':<18} {_usd(usage['aws_estimated_usd'])}")
    out(f"  {'cache saved':<18} {_usd(usage['cache_saved_usd'])}")
    cap = usage["cap_usd"]
    left = "none" if cap is None else f"{_usd(cap)}; remaining {_usd(usage['remaining_usd'])}"
    out(f"  {'cap':<18} {left}")
    return 0


def _usd(amount: float | None) -> str:
    """Dollars as both usage views print them: cents always, then what the micro-dollars add
    (``$0.00``, ``$0.025``, ``$50.00``, ``$0.000125``)."""
    if amount is None:
        return "-"
    whole = f"{amount:,.6f}".rstrip("0")
    return "$" + (whole + "0" * max(0, 2 - len(whole.partition(".")[2])))


def _this_month() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


def _month(text: str) -> str:
    try:
        datetime.strptime(text, "%Y-%m")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"a month is YYYY-MM, not {text!r}") from exc
    return text


def add_tenants_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``tenants`` (set-limits, show) and ``usage`` to the ``maskgate`` subcommands."""
    tenants = commands.add_parser(
        "tenants", help="a tenant's quotas, spend cap and cache opt-out (local stack, or --stack / --table)"
    )
    actions = tenants.add_subparsers(dest="tenants_command", required=True)
    limits = actions.add_parser("set-limits", help="set a tenant's limits; the ones not given keep theirs")
    limits.add_argument("--tenant", required=True)
    limits.add_argument(
        "--max-in-flight", type=int, metavar="N", help="jobs accepted and unfinished at once; 0: no limit"
    )
    limits.add_argument(
        "--jobs-per-minute", type=int, metavar="N", help="jobs accepted per minute; 0: no limit"
    )
    limits.add_argument(
        "--images-per-day", type=int, metavar="N", help="jobs accepted per UTC day; 0: no limit"
    )
    limits.add_argument("--spend-cap", type=float, metavar="USD", help="the most a UTC month's jobs may cost")
    limits.add_argument("--no-spend-cap", action="store_true", help="no monthly spend cap")
    limits.add_argument(
        "--spend-threshold",
        type=float,
        metavar="FRACTION",
        help="of the cap, for tenant.spend_threshold (0.8)",
    )
    limits.add_argument(
        "--cache",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="let the result cache answer its jobs",
    )
    add_table_options(limits)
    limits.set_defaults(run=_operator, action=_set_limits)
    show = actions.add_parser("show", help="a tenant's limits (its own, or the deployment's defaults)")
    show.add_argument("--tenant", required=True)
    add_table_options(show)
    show.set_defaults(run=_operator, action=_show)

    usage = commands.add_parser(
        "usage",
        parents=[api_options()],
        help="a month's usage: jobs, WaveSpeed and AWS dollars, cache savings, the cap and what remains",
    )
    usage.add_argument("--month", type=_month, metavar="YYYY-MM", help="default: this month (UTC)")
    usage.add_argument(
        "--tenant", help="any tenant's, read from the stack's table as an operator (default: the API key's)"
    )
    usage.add_argument("--stack", nargs="?", const="", metavar="NAME", help="with --tenant: a deployed stack")
    usage.add_argument("--table", help="with --tenant: the jobs table by name")
    usage.set_defaults(run=_usage)
