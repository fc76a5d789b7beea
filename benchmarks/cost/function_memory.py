"""Peak resident memory of each function in a fresh interpreter: its handler imported, then boto3 with the
clients the functions build between them (they build them on first use, not at import).

The floor a MemorySize must clear: Lambda's Python runtime adds its own process on top, and an invoke
adds what it holds (an image up to 20 MB, its base64 form in the api's event).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.startup.lambda_env import function_env

# VmHWM, not getrusage's ru_maxrss: Linux keeps ru_maxrss across exec, so a child forked from the big
# benchmark process would report the parent's size.
_CHILD = """
import importlib.util, json, resource, sys
function_dir = sys.argv[1]
sys.path.insert(0, function_dir)
spec = importlib.util.spec_from_file_location("app", function_dir + "/app.py")
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
import boto3
clients = [boto3.client(s) for s in ("dynamodb", "s3", "stepfunctions", "secretsmanager", "sqs")]
try:
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"max_rss_kb": peak}))
"""


def peak_rss_mb(code_dirs: Mapping[str, Path], *, parallel: int = 2) -> dict[str, float]:
    """Name -> peak RSS in MB after importing ``<code_dir>/app.py`` (NaN when the child failed)."""
    env = function_env()

    def one(code_dir: Path) -> float:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(code_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            return float("nan")
        return float(json.loads(lines[-1])["max_rss_kb"]) / 1024

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return dict(zip(code_dirs, pool.map(one, code_dirs.values()), strict=True))
