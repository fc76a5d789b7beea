"""Where an operator command finds the stack it works on: the local stack through its ready file, or a
deployed stack through its CloudFormation outputs (``--stack NAME``; no NAME: ``samconfig.toml``'s).

Every mistake an operator can make here (no ready file, one left behind by a stack that is gone, no
region or credentials, a stack without the output) is a ``Stop``: one line and exit status 2, never a
traceback.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

if TYPE_CHECKING:
    from botocore.config import Config
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_lambda.client import LambdaClient

DEFAULT_READY_FILE = "ready.json"
SAMCONFIG = "samconfig.toml"
# moto's placeholder credentials: the local stack checks none
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
T = TypeVar("T")


class Stop(Exception):
    """End the command with ``message`` on stderr and exit status ``code``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def read_ready(path_arg: str | None, *, prog: str, otherwise: str) -> tuple[dict[str, Any], Path]:
    """The ready file (``./ready.json`` unless ``path_arg``) as a dict, and its path.

    ``otherwise`` says how to name a deployed stack instead, for the message when there is none."""
    path = Path(path_arg or DEFAULT_READY_FILE)
    if not path.is_file():
        missing = f"the ready file {path} is missing"
        where = missing if path_arg else f"no {DEFAULT_READY_FILE} in {Path.cwd()}"
        raise Stop(
            2,
            f"{prog}: {where}. Start the local stack with 'maskgate dev' (it writes ./{DEFAULT_READY_FILE}) "
            f"and run from that folder (or pass --ready-file PATH), or {otherwise}.",
        )
    try:
        ready = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise Stop(2, f"{prog}: cannot read the ready file {path}: {exc}") from exc
    if not isinstance(ready, dict):
        raise Stop(2, f"{prog}: the ready file {path} is not a JSON object")
    return ready, path


def ready_value(ready: dict[str, Any], path: Path, key: str, *, prog: str) -> str:
    """One key of the ready file, as a non-empty string."""
    value = ready.get(key)
    if not isinstance(value, str) or not value:
        raise Stop(2, f"{prog}: the ready file {path} has no {key} (restart 'maskgate dev')")
    return value


@overload
def local_client(
    ready: dict[str, Any],
    path: Path,
    service: Literal["dynamodb"],
    *,
    prog: str,
    config: Config | None = None,
) -> DynamoDBClient: ...


@overload
def local_client(
    ready: dict[str, Any], path: Path, service: Literal["lambda"], *, prog: str, config: Config | None = None
) -> LambdaClient: ...


def local_client(
    ready: dict[str, Any],
    path: Path,
    service: Literal["dynamodb", "lambda"],
    *,
    prog: str,
    config: Config | None = None,
) -> DynamoDBClient | LambdaClient:
    """A boto3 client for the local stack's AWS endpoint (moto), as its ready file names it."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=ready_value(ready, path, "aws_endpoint_url", prog=prog),
        region_name=ready_value(ready, path, "region", prog=prog),
        aws_access_key_id=LOCAL_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=LOCAL_CREDENTIALS["aws_secret_access_key"],
        config=config,
    )


def stale_hint(path: Path, url: str) -> str:
    """What to say when the stack a ready file names does not answer."""
    return f"is 'maskgate dev' running? Nothing answers at {url}, which {path} names (a stale ready file?)"


def samconfig_stack(*, prog: str) -> str:
    """The ``stack_name`` in ``./samconfig.toml`` (its global or deploy parameters)."""
    path = Path(SAMCONFIG)
    try:
        config = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise Stop(2, f"{prog}: --stack without a name reads {path}, which cannot be read: {exc}") from exc
    for section in ("global", "deploy"):
        name = config.get("default", {}).get(section, {}).get("parameters", {}).get("stack_name")
        if isinstance(name, str) and name:
            return name
    raise Stop(2, f"{prog}: {path} names no stack_name; pass --stack NAME")


def stack_output(stack: str, output: str, *, prog: str) -> str:
    """One output of a deployed CloudFormation stack (``stack`` empty: samconfig.toml's stack)."""
    name = stack or samconfig_stack(prog=prog)
    import boto3

    where = f"stack {name}"
    cloudformation = aws_call(lambda: boto3.client("cloudformation"), where, prog=prog)
    described = aws_call(lambda: cloudformation.describe_stacks(StackName=name), where, prog=prog)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Stacks"][0].get("Outputs", [])}
    if output not in outputs:
        raise Stop(2, f"{prog}: stack {name} has no {output} output (deploy this version first)")
    return str(outputs[output])


def aws_call(call: Callable[[], T], where: str, *, prog: str, stale: tuple[Path, str] | None = None) -> T:
    """``call()``, with what can go wrong reaching AWS as one line (exit 2). ``stale``: the ready file
    that named a local stack and its endpoint, for the hint when nothing answers there."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    try:
        return call()
    except NoRegionError as exc:
        raise Stop(2, f"{prog}: set AWS_DEFAULT_REGION (or AWS_PROFILE) to the region of {where}") from exc
    except NoCredentialsError as exc:
        raise Stop(2, f"{prog}: no AWS credentials to reach {where} (set AWS_PROFILE or AWS_* keys)") from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise Stop(2, f"{prog}: {where}: {error.get('Code')}: {error.get('Message')}") from exc
    except EndpointConnectionError as exc:
        if stale is not None:
            raise Stop(2, f"{prog}: {stale_hint(*stale)}") from exc
        raise Stop(2, f"{prog}: cannot reach {where}: {exc}") from exc
    except BotoCoreError as exc:
        raise Stop(2, f"{prog}: cannot reach {where}: {exc}") from exc
