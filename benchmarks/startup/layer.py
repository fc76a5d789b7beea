"""The Lambda layer as ``shared/requirements.txt`` + ``shared/maskgate`` build it: its unzipped size, and
what the precompiled ``.pyc`` the build ships (``shared/Makefile``) change for a cold import.

In a temporary directory: ``pip install --no-compile --target <layer> -r shared/requirements.txt`` (it
may use the package index), ``shared/maskgate`` copied beside it. Children run ``python -S`` with
``sys.path`` = [the function's directory, the layer, a "runtime" directory] and
``PYTHONDONTWRITEBYTECODE=1`` (as Lambda: /var/task, /opt/python, then the runtime's own boto3; the
layer is read-only there). The runtime directory holds links to this venv's boto3 and its dependencies
(with their .pyc, as the Lambda runtime ships them), and nothing else: not the venv's site-packages,
whose extra packages (rich, pygments, click...) the handlers would otherwise import through httpx's CLI.
Then ``python -m compileall --invalidation-mode unchecked-hash`` the layer, as the build does (with this
interpreter: the children run it), and the same imports again.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.startup.coldstart import (
    BASELINE_LABEL,
    IMPORT_BUDGET,
    ChildRunner,
    import_self_time,
    summary,
    top_packages,
    verdict,
)
from benchmarks.startup.lambda_env import ROOT, function_env
from benchmarks.stats import ratio

DEFAULT_RUNS = 7
RUNTIME_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
TOP_DIRS = 6
# as shared/Makefile compiles the layer
COMPILEALL = ("-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash")
# the handlers' imports with and without .pyc; the baselines only with (their figure beside item 8's)
KINDS = {
    "fail": ({"kind": "handler", "step": "fail"}, (False, True)),
    "api": ({"kind": "handler", "step": "api"}, (False, True)),
    "bare_worker": ({"kind": "bare_worker"}, (True,)),
    "bare_api": ({"kind": "bare_api"}, (True,)),
}


def build_layer(target: Path) -> float:
    """pip-install the requirements and copy maskgate into ``target``; seconds taken."""
    started = time.monotonic()
    argv = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check"]
    argv += ["--target", str(target), "-r", str(ROOT / "shared" / "requirements.txt")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pip install for the layer failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "shared" / "maskgate", target / "maskgate", ignore=ignore)
    return time.monotonic() - started


def sizes(root: Path) -> dict[str, Any]:
    """Bytes and files under ``root``: in all, in .pyc, and by top-level entry (dist-info with its
    package's name)."""
    total = pyc = files = 0
    by_entry: dict[str, int] = defaultdict(int)
    for path in root.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        size = path.stat().st_size
        total, files = total + size, files + 1
        pyc += size if path.suffix == ".pyc" else 0
        entry = path.relative_to(root).parts[0]
        by_entry[entry.split("-")[0].removesuffix(".py").lower()] += size
    top = sorted(by_entry.items(), key=lambda item: -item[1])[:TOP_DIRS]
    return {"bytes": total, "pyc_bytes": pyc, "files": files, "top": top}


def runtime_dir(target: Path) -> Path:
    """Links to this venv's boto3 and its dependencies: the Lambda runtime's own copies."""
    target.mkdir()
    for name in RUNTIME_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"{name} is not installed in this environment")
        source = Path(spec.origin)
        source = source.parent if source.name == "__init__.py" else source
        (target / source.name).symlink_to(source)
    return target


def _samples(runner: ChildRunner, layer: Path, runtime: Path, *, pyc: bool, runs: int) -> dict[str, Any]:
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    where = {"sys_path": [str(layer), str(runtime)], "origins": True}
    for _ in range(runs):
        for name, (job, states) in KINDS.items():
            if pyc in states:
                found[name].append(runner.run({**job, **where}))
    for name, results in found.items():
        _check_origins(name, results[0].get("origins", {}), layer, runtime)
    figures = {}
    for name, results in found.items():
        figures[name] = {**summary(r["import_s"] for r in results), **_deferred(results)}
    return figures


def _deferred(results: list[dict[str, Any]]) -> dict[str, float]:
    """The median AWS SDK import the handler deferred to its first client (coldchild's sdk_deferred_s)."""
    deferred = [r["sdk_deferred_s"] for r in results if "sdk_deferred_s" in r]
    return {"sdk_deferred_ms": summary(deferred)["median_ms"]} if deferred else {}


def _check_origins(name: str, origins: dict[str, str], layer: Path, runtime: Path) -> None:
    """The layout is what it claims: layer packages from the layer, boto3 from the runtime directory."""
    for module, path in origins.items():
        home = runtime if module in RUNTIME_MODULES else layer
        if not Path(path).resolve().is_relative_to(home.resolve()) and not path.startswith(str(home)):
            raise RuntimeError(f"{name}: {module} was imported from {path}, not from {home}")


def run(*, runs: int = DEFAULT_RUNS) -> dict[str, Any]:
    env = {**function_env(), "PYTHONDONTWRITEBYTECODE": "1"}
    runner = ChildRunner(env=env, flags=("-S",))
    with tempfile.TemporaryDirectory(prefix="maskgate-layer-") as tmp:
        layer = Path(tmp) / "python"
        pip_s = build_layer(layer)
        source = sizes(layer)
        runtime = runtime_dir(Path(tmp) / "runtime")
        runner.run({**KINDS["api"][0], "sys_path": [str(layer), str(runtime)]})  # uncounted: page cache
        without = _samples(runner, layer, runtime, pyc=False, runs=runs)
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, *COMPILEALL, str(layer)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"compileall failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        compile_s = time.monotonic() - started
        compiled = sizes(layer)
        with_pyc = _samples(runner, layer, runtime, pyc=True, runs=runs)
        where = {"sys_path": [str(layer), str(runtime)]}
        profiles = {
            name: import_self_time(runner.run({**job, **where}, flags=("-X", "importtime"))["importtime"])
            for name, (job, _) in KINDS.items()
        }
    report: dict[str, Any] = {
        "runs": runs,
        "pip_s": pip_s,
        "compileall_s": compile_s,
        "source": source,
        "compiled": compiled,
        "without_pyc": without,
        "with_pyc": with_pyc,
        "import_self_ms": profiles,
        "children": runner.children,
    }
    for name, kind in (("fail", "worker"), ("api", "api")):
        slower = ratio(without[name]["median_ms"], with_pyc[name]["median_ms"])
        value = ratio(with_pyc[name]["median_ms"], with_pyc[f"bare_{kind}"]["median_ms"])
        report[f"{name}_without_over_with"] = slower
        report[f"{name}_ratio_with_pyc"] = value
        report[f"{name}_verdict_with_pyc"] = verdict(value, IMPORT_BUDGET[kind])
        if "sdk_deferred_ms" in with_pyc[name]:
            both = with_pyc[name]["median_ms"] + with_pyc[name]["sdk_deferred_ms"]
            report[f"{name}_ratio_with_pyc_and_sdk"] = ratio(both, with_pyc[f"bare_{kind}"]["median_ms"])
    return report


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def render(report: dict[str, Any]) -> str:
    src, comp, wo, wi = report["source"], report["compiled"], report["without_pyc"], report["with_pyc"]
    top = ", ".join(f"{name} {_mb(n)}" for name, n in src["top"])
    lines = [
        f"  layer (pip install --no-compile --target, + shared/maskgate; {report['pip_s']:.0f} s): unzipped "
        f"{_mb(src['bytes'])} in {src['files']:,} files, no .pyc",
        f"    largest: {top}",
        f"    after compileall (unchecked-hash, as shared/Makefile; {report['compileall_s']:.1f} s): "
        f"{_mb(comp['bytes'])} (+{_mb(comp['pyc_bytes'])} of .pyc)",
        f"  cold import in the Lambda layout (python -S; function dir, layer, runtime boto3; "
        f"PYTHONDONTWRITEBYTECODE=1), {report['runs']} runs, median ms (min-max):",
        f"  {'':<44} {'no .pyc':>18} {'with .pyc':>18} {'no/with':>8}",
    ]
    for name, label in (("fail", "functions/fail/app.py"), ("api", "functions/api/app.py")):
        lines.append(
            f"  {label:<44} {_range(wo[name]):>18} {_range(wi[name]):>18} "
            f"{report[f'{name}_without_over_with']:>7.2f}x"
        )
    for kind in ("worker", "api"):
        lines.append(f"  {'baseline ' + kind:<44} {'':>18} {_range(wi['bare_' + kind]):>18}")
    for name, kind in (("fail", "worker"), ("api", "api")):
        lines.append(
            f"  with .pyc, {name} import / baseline {kind} ({BASELINE_LABEL[kind].split(' (')[0]}): "
            f"{report[f'{name}_ratio_with_pyc']:.2f}x  <= {IMPORT_BUDGET[kind]}x "
            f"{report[f'{name}_verdict_with_pyc']}"
        )
        if f"{name}_ratio_with_pyc_and_sdk" in report:
            lines.append(
                f"    + boto3 and botocore.config, imported by its first AWS client instead "
                f"({wi[name]['sdk_deferred_ms']:,.0f} ms): {report[f'{name}_ratio_with_pyc_and_sdk']:.2f}x"
            )
    p = report["import_self_ms"]
    lines += [
        "  import self time by top-level package in this layout with .pyc, ms (baseline's in brackets):",
        f"    fail: {top_packages(p['fail'], p['bare_worker'])}",
        f"    api:  {top_packages(p['api'], p['bare_api'])}",
    ]
    return "\n".join(lines)


def _range(f: dict[str, float]) -> str:
    return f"{f['median_ms']:,.0f} ({f['min_ms']:,.0f}-{f['max_ms']:,.0f})"
