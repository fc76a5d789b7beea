"""What the API commands (``submit``, ``jobs``, ``cancel``, ``listen``) share: where the API is, its
client, their options, and the guard that turns problems into messages and exit codes.

They talk to the local stack by default (its ready file gives ``api_url``, ``api_key`` and
``webhook_secret``) and to a deployed stack with ``--api-url`` / ``MASKGATE_API_URL`` and
``--api-key`` / ``MASKGATE_API_KEY``. API errors print as ``type: detail`` plus the problem's
``errors``; the exit status is 2 for a 4xx answer or a usage error and 1 for a 5xx, a network error
or a job that did not succeed. The API key is never printed."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maskgate_local.cli.client import ApiProblem, ApiUnreachable, MaskgateClient
from maskgate_local.cli.targets import DEFAULT_READY_FILE, Stop, read_ready, stale_hint


def out(text: str) -> None:
    """A line on stdout, for the person running the command."""
    print(text, flush=True)  # noqa: T201 (a command talking to a person)


def err(text: str) -> None:
    """A line on stderr: progress, problems, hints."""
    print(text, file=sys.stderr, flush=True)  # noqa: T201


# -- where the API is ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    api_url: str
    api_key: str
    ready_file: Path | None = None  # where the URL came from, when it is the local stack's


def local_ready(path_arg: str | None) -> tuple[dict[str, Any], Path]:
    """The local stack's ready file and its path (``Stop`` names the deployed-stack options if none)."""
    return read_ready(
        path_arg,
        prog="maskgate",
        otherwise="name a deployed stack with --api-url and --api-key (or MASKGATE_API_URL and "
        "MASKGATE_API_KEY)",
    )


def _target(args: argparse.Namespace) -> Target:
    url = args.api_url or os.environ.get("MASKGATE_API_URL")
    key = args.api_key or os.environ.get("MASKGATE_API_KEY")
    if url and key:
        return Target(url, key)
    ready, path = local_ready(args.ready_file)
    if url and url.rstrip("/") != str(ready.get("api_url", "")).rstrip("/"):
        raise Stop(2, f"maskgate: {url} is not the stack of {path}; give its --api-key (or MASKGATE_API_KEY)")
    url, key = url or ready.get("api_url"), key or ready.get("api_key")
    if not url or not key:
        raise Stop(2, f"maskgate: the ready file {path} has no api_url / api_key")
    return Target(str(url), str(key), ready_file=path)


def api_client(args: argparse.Namespace) -> MaskgateClient:
    """A client for the API the options name (else the local stack's, from its ready file)."""
    target = _target(args)
    args.ready_file_used = target.ready_file  # for the hint when nothing answers there
    return MaskgateClient(target.api_url, target.api_key)


def guarded(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run a command, turning API problems, network errors and ``Stop`` into messages and exit codes."""

    def guarded_run(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except Stop as stop:
            err(stop.message)
            return stop.code
        except ApiProblem as problem:
            err(f"{problem.type}: {problem.detail}")
            for error in problem.errors:
                err(f"  - {error['loc']}: {error['msg']}")
            if problem.retry_after is not None:
                err(f"  retry after {problem.retry_after} s")
            return 2 if 400 <= problem.status < 500 else 1
        except ApiUnreachable as exc:
            ready_file = getattr(args, "ready_file_used", None)
            if ready_file is not None and exc.connect:
                err(f"maskgate: {stale_hint(ready_file, exc.url)}")
                return 2
            err(f"network error: {exc}")
            return 1
        except KeyboardInterrupt:
            err("interrupted")
            return 130

    return guarded_run


def api_options() -> argparse.ArgumentParser:
    """The options naming the stack (``--api-url``, ``--api-key``, ``--ready-file``), as a parent parser."""
    options = argparse.ArgumentParser(add_help=False)
    where = options.add_argument_group("which stack (default: the local one, from its ready file)")
    where.add_argument(
        "--api-url", help="the API's base URL (default: $MASKGATE_API_URL, else the ready file)"
    )
    where.add_argument("--api-key", help="the API key (default: $MASKGATE_API_KEY, else the ready file)")
    where.add_argument("--ready-file", help=f"the local stack's ready file (default: ./{DEFAULT_READY_FILE})")
    return options
