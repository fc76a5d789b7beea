"""One cold-start sample in a fresh interpreter: ``python benchmarks/startup/coldchild.py '<job JSON>'``.

Run by ``coldstart`` (and ``layer``) as a script (``overhead`` imports its bare app). Until the timed
parts are over it imports only what a Lambda runtime has imported before it loads ``app.py`` (importlib,
json, os, sys, time); then it prints one line, ``@@coldstart <JSON>``, on stdout. Imports may write
``__pycache__`` as any import does (the layer part measures without .pyc).

Kinds of job:

- ``handler``: (a) import ``functions/<step>/app.py`` from its path (as Lambda imports ``app``), then,
  if the handler did not import boto3, time ``import boto3`` + ``botocore.config`` (what its first AWS
  client will import; moto imports them before the timed invoke, so (b) cannot show it);
  (b) with a scenario, set up moto (decorator mode, this process) and time the first invoke with the
  scenario's event, recording every AWS call the handler makes.
- ``bare_worker``: (a) ``import boto3`` + one ``boto3.client("dynamodb")`` + Powertools ``Logger()``;
  (b) drop that default session (the handler's clients start cold too), then time a Logger-decorated
  function replaying the handler's recorded AWS calls on bare boto3 clients.
- ``bare_api``: (a) import and build a bare FastAPI app + Mangum + Logger with a hello route; (b) time
  its first invoke through Mangum with a payload-2.0 event (the POST route replays the recorded calls).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time

# typing is not imported at run time (a Lambda runtime has not imported it before ``app.py``): the
# annotations are strings, and mypy reads a name TYPE_CHECKING as true
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Handler = Callable[[Any, Any], Any]  # a Lambda handler: (event, context) -> response

MARK = "@@coldstart "


def _import_handler(job: dict[str, Any], result: dict[str, Any]) -> Handler:
    function_dir = os.path.join(job["root"], "functions", job["step"])  # noqa: PTH118 (no pathlib yet)
    sys.path.insert(0, function_dir)  # Lambda's /var/task
    started = time.perf_counter()
    spec = importlib.util.spec_from_file_location("app", os.path.join(function_dir, "app.py"))  # noqa: PTH118
    if spec is None or spec.loader is None:
        raise ImportError(f"no app.py in {function_dir}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module
    spec.loader.exec_module(module)
    result["import_s"] = time.perf_counter() - started
    boto3 = sys.modules.get("boto3")
    result["session_at_import"] = boto3 is not None and boto3.DEFAULT_SESSION is not None
    # deferred to the handler's first AWS client: that invoke pays it, so time it (not in a -X importtime
    # child: its profile is the handler's import alone)
    if boto3 is None and "importtime" not in sys._xoptions:
        started = time.perf_counter()
        import boto3  # its import is the figure
        import botocore.config  # noqa: F401

        result["sdk_deferred_s"] = time.perf_counter() - started
    handler: Handler = module.handler
    return handler


def _import_bare_worker(result: dict[str, Any], replay: dict[str, Callable[[], int]]) -> Handler:
    started = time.perf_counter()
    import boto3

    boto3.client("dynamodb")
    from aws_lambda_powertools import Logger

    logger = Logger()
    result["import_s"] = time.perf_counter() - started
    # untimed, as is the replay of the handler's calls (set by _first_invoke)
    return logger.inject_lambda_context(lambda _event, _context: {"failed_calls": replay["run"]()})


def import_bare_api(result: dict[str, Any], replay: dict[str, Callable[[], int]]) -> Handler:
    started = time.perf_counter()
    from aws_lambda_powertools import Logger
    from fastapi import FastAPI
    from mangum import Mangum

    logger = Logger()
    app = FastAPI()

    @app.get("/hello")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    @app.post("/hello")
    def hello_with_calls() -> dict[str, int]:
        return {"failed_calls": replay["run"]()}

    handler = logger.inject_lambda_context(Mangum(app, lifespan="off"))
    result["import_s"] = time.perf_counter() - started
    return handler


def main() -> None:
    job = json.loads(sys.argv[1])
    del sys.path[0]  # this script's directory: benchmarks/startup/ must not shadow anything
    sys.path[0:0] = job.get("sys_path", [])
    result: dict[str, Any] = {"kind": job["kind"], "step": job.get("step"), "scenario": job.get("scenario")}
    replay: dict[str, Callable[[], int]] = {}
    if job["kind"] == "handler":
        handler = _import_handler(job, result)
    elif job["kind"] == "bare_worker":
        handler = _import_bare_worker(result, replay)
    else:
        handler = import_bare_api(result, replay)
    result["modules"] = len(sys.modules)
    if job.get("origins"):
        names = ("pydantic", "httpx", "fastapi", "aws_lambda_powertools", "maskgate", "boto3", "botocore")
        result["origins"] = {n: sys.modules[n].__file__ for n in names if n in sys.modules}
    if job.get("scenario"):
        _first_invoke(job, result, replay, handler)
    print(MARK + json.dumps(result), flush=True)
    os._exit(0)  # no interpreter teardown (moto's is slow): nothing is left to flush


def _first_invoke(
    job: dict[str, Any],
    result: dict[str, Any],
    replay: dict[str, Callable[[], int]],
    handler: Handler,
) -> None:
    """Untimed: moto and the scenario's state; then the timed first invoke."""
    import pickle
    from pathlib import Path

    sys.path.insert(0, job["root"])
    import boto3

    from benchmarks.startup import lambda_env

    key, kind = job["scenario"], job["kind"]
    event = lambda_env.prepare(key, job.get("table"))
    context = lambda_env.LambdaContext()
    recorder = lambda_env.CallRecorder()
    if kind == "handler":
        recorder.install()
    else:
        calls = pickle.loads(Path(job["calls"]).read_bytes()) if job.get("calls") else []
        replay["run"] = lambda_env.replayer(calls)
        event = lambda_env.bare_event(key, event)
        boto3.DEFAULT_SESSION = None  # the client of the timed import must not warm the invoke
    import gc

    gc.collect()
    gc.freeze()  # moto and the set-up out of the collector's way: it must not decide when full runs happen
    started = time.perf_counter()
    response = handler(event, context)
    result["invoke_s"] = time.perf_counter() - started
    result["outcome"] = lambda_env.outcome(key, response)
    if kind == "handler":
        result["calls"] = lambda_env.call_names(recorder.calls)
        if job.get("calls"):
            Path(job["calls"]).write_bytes(pickle.dumps(recorder.calls))


if __name__ == "__main__":
    main()
