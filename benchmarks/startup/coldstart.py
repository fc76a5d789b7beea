"""Cold init of every function, for the cold-start budgets: one fresh interpreter per sample, ratios to
baselines measured in the same run in the same kind of child (``coldchild.py`` does the timing).

(a) import of ``functions/<step>/app.py`` from its path, against ``import boto3`` + one client +
Powertools ``Logger()`` (workers) or a bare FastAPI + Mangum + Logger app (api);
(b) the first invoke of the scenarios in ``lambda_env.SCENARIOS`` (a sample event, moto in decorator
mode in the child), against the same AWS calls made on bare boto3 clients (or a bare hello route).
Figures are printed with their budgets, never asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.startup.lambda_env import ROOT, SCENARIOS, STEPS, function_env, table_properties
from benchmarks.stats import percentile, ratio

CHILD = Path(__file__).with_name("coldchild.py")
MARK = "@@coldstart "
DEFAULT_RUNS = 7
IMPORT_BUDGET = {"api": 1.2, "worker": 1.5}
INVOKE_BUDGET = 1.3
BASELINE_LABEL = {
    "worker": 'import boto3 + boto3.client("dynamodb") + Powertools Logger()',
    "api": "bare FastAPI app + hello route + Mangum + Powertools Logger (import + build)",
}
TOP_PACKAGES = 8
DEV_ONLY = ("rich", "pygments", "click", "markdown_it", "mdurl")  # httpx's CLI, when installed


@dataclass
class ChildRunner:
    """Runs ``coldchild.py`` jobs in fresh interpreters and returns each one's result line."""

    env: dict[str, str] = field(default_factory=function_env)
    flags: Sequence[str] = ()
    children: int = 0

    def run(self, job: dict[str, Any], *, flags: Sequence[str] = ()) -> dict[str, Any]:
        argv = [sys.executable, *self.flags, *flags, str(CHILD), json.dumps({**job, "root": str(ROOT)})]
        done = subprocess.run(
            argv, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False
        )
        self.children += 1
        lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"cold-start child {job} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(lines[-1][len(MARK) :])
        if "-X" in flags:
            result["importtime"] = done.stderr
        return result


def summary(values: Iterable[float]) -> dict[str, float]:
    """n, median and range of durations given in seconds, in milliseconds."""
    ms = sorted(v * 1000.0 for v in values)
    return {
        "n": len(ms),
        "median_ms": percentile(ms, 50),
        "min_ms": ms[0] if ms else float("nan"),
        "max_ms": ms[-1] if ms else float("nan"),
    }


def kind_of(step: str) -> str:
    return "api" if step == "api" else "worker"


def _bare_kind(step: str) -> str:
    return "bare_api" if step == "api" else "bare_worker"


def verdict(value: float, budget: float) -> str:
    return "within" if value <= budget else "OVER"


def import_self_time(importtime: str) -> dict[str, float]:
    """``-X importtime`` output (stderr) summed by top-level package: self time in ms."""
    totals: dict[str, float] = defaultdict(float)
    for line in importtime.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = (part.strip() for part in line[len("import time:") :].split("|"))
        totals[name.split(".")[0]] += float(self_us) / 1000.0
    return dict(totals)


def run(*, runs: int = DEFAULT_RUNS, runner: ChildRunner | None = None) -> dict[str, Any]:
    """Every sample, interleaved: per round, each scenario's handler and baseline child (alternating
    which goes first), then the import of every function without a first-invoke scenario."""
    runner = runner or ChildRunner()
    handler: dict[str, list[dict[str, Any]]] = defaultdict(list)  # by scenario key, or step (import only)
    bare: dict[str, list[dict[str, Any]]] = defaultdict(list)
    invoked_steps = {scenario.step for scenario in SCENARIOS.values()}
    table = table_properties()
    with tempfile.TemporaryDirectory(prefix="maskgate-coldstart-") as tmp:
        calls = {key: str(Path(tmp) / f"{key}.pickle") for key in SCENARIOS}

        def jobs(key: str) -> list[dict[str, Any]]:
            step, shared = SCENARIOS[key].step, {"scenario": key, "calls": calls[key], "table": table}
            return [{"kind": "handler", "step": step, **shared}, {"kind": _bare_kind(step), **shared}]

        runner.run(jobs("api_create")[0])  # uncounted: brings the files every child reads into the page cache
        for round_ in range(runs):
            for key in SCENARIOS:
                for job in jobs(key) if round_ % 2 == 0 else reversed(jobs(key)):
                    (handler if job["kind"] == "handler" else bare)[key].append(runner.run(job))
            for step in STEPS:
                if step not in invoked_steps:
                    handler[step].append(runner.run({"kind": "handler", "step": step}))
        profiles = {
            name: import_self_time(runner.run(job, flags=("-X", "importtime"))["importtime"])
            for name, job in (
                ("fail", {"kind": "handler", "step": "fail"}),
                ("bare_worker", {"kind": "bare_worker"}),
                ("api", {"kind": "handler", "step": "api"}),
                ("bare_api", {"kind": "bare_api"}),
            )
        }
    report = build(handler, bare, profiles)
    report["runs"] = runs
    report["children"] = runner.children
    return report


def build(
    handler: dict[str, list[dict[str, Any]]],
    bare: dict[str, list[dict[str, Any]]],
    profiles: dict[str, dict[str, float]],
) -> dict[str, Any]:
    baselines: dict[str, dict[str, Any]] = {}
    for kind in ("worker", "api"):
        keys = [key for key, scenario in SCENARIOS.items() if kind_of(scenario.step) == kind]
        samples = [r["import_s"] for key in keys for r in bare[key]]
        baselines[kind] = {**summary(samples), "what": BASELINE_LABEL[kind]}
    imports: dict[str, dict[str, Any]] = {}
    for step in STEPS:
        keys = [key for key, s in SCENARIOS.items() if s.step == step] or [step]
        results = [r for key in keys for r in handler[key]]
        figures = summary(r["import_s"] for r in results)
        kind = kind_of(step)
        value = ratio(figures["median_ms"], baselines[kind]["median_ms"])
        imports[step] = {
            **figures,
            "kind": kind,
            "ratio": value,
            "budget": IMPORT_BUDGET[kind],
            "verdict": verdict(value, IMPORT_BUDGET[kind]),
            "boto3_session_at_import": any(r.get("session_at_import") for r in results),
            **with_deferred_sdk(results, figures["median_ms"], baselines[kind]["median_ms"]),
        }
    invokes: dict[str, dict[str, Any]] = {}
    for key, scenario in SCENARIOS.items():
        mine, theirs = summary(r["invoke_s"] for r in handler[key]), summary(r["invoke_s"] for r in bare[key])
        value = ratio(mine["median_ms"], theirs["median_ms"])
        invokes[key] = {
            "label": scenario.label,
            "did": scenario.did,
            "baseline_did": scenario.bare,
            "handler": mine,
            "baseline": theirs,
            "ratio": value,
            "budget": INVOKE_BUDGET,
            "verdict": verdict(value, INVOKE_BUDGET),
            "outcome": handler[key][0]["outcome"],
            "aws_calls": handler[key][0]["calls"],
            "baseline_outcome": bare[key][0]["outcome"],
        }
    return {"baselines": baselines, "imports": imports, "first_invokes": invokes, "import_self_ms": profiles}


def with_deferred_sdk(results: list[dict[str, Any]], import_ms: float, baseline_ms: float) -> dict[str, Any]:
    """The AWS SDK import a handler defers to its first client (``sdk_deferred_s`` of each child, none when
    the handler imports boto3 itself), and the import plus it over the baseline: what a cold start with an
    AWS call costs, which the first-invoke figures miss (moto has imported boto3 by then)."""
    deferred = [r["sdk_deferred_s"] for r in results if "sdk_deferred_s" in r]
    if not deferred:
        return {"sdk_deferred_ms": None, "ratio_with_sdk": None}
    sdk_ms = summary(deferred)["median_ms"]
    return {"sdk_deferred_ms": sdk_ms, "ratio_with_sdk": ratio(import_ms + sdk_ms, baseline_ms)}


def _range(f: dict[str, float]) -> str:
    return f"{f['median_ms']:>6,.0f} ({f['min_ms']:,.0f}-{f['max_ms']:,.0f})"


def top_packages(profile: dict[str, float], baseline: dict[str, float]) -> str:
    ranked = sorted(profile.items(), key=lambda item: -item[1])[:TOP_PACKAGES]
    return ", ".join(f"{name} {ms:,.0f} ({baseline.get(name, 0.0):,.0f})" for name, ms in ranked)


def render(report: dict[str, Any]) -> str:
    b, imports, invokes = report["baselines"], report["imports"], report["first_invokes"]
    lines = [
        f"  cold start: a fresh interpreter per sample ({report['runs']} rounds, {report['children']} "
        "children); ms = median (min-max); ratio = median / baseline median",
        f"  baseline worker: {b['worker']['what']}: {_range(b['worker']).strip()} ms, n={b['worker']['n']}",
        f"  baseline api:    {b['api']['what']}: {_range(b['api']).strip()} ms, n={b['api']['n']}",
        "",
        f"  {'(a) import functions/<step>/app.py':<36} {'n':>3} {'ms (min-max)':>18} {'ratio':>7}  budget"
        "   (n: every child of that function)",
    ]
    for step, f in imports.items():
        lines.append(
            f"  {step:<36} {f['n']:>3} {_range(f):>18} {f['ratio']:>6.2f}x  <= {f['budget']}x {f['verdict']}"
        )
    sessions = ", ".join(step for step, f in imports.items() if f["boto3_session_at_import"])
    deferred = ", ".join(
        f"{step} {f['sdk_deferred_ms']:,.0f} ms ({f['ratio_with_sdk']:.2f}x)"
        for step, f in imports.items()
        if f.get("sdk_deferred_ms") is not None
    )
    lines += [
        "  boto3 session built at import: " + (sessions or "none (clients are lazy)"),
        "  boto3 + botocore.config imported by the first AWS client, not at import (import + it / baseline): "
        + (deferred or "none"),
        "",
        f"  {'(b) first invoke':<28} {'handler ms (min-max)':>20} {'baseline ms (min-max)':>22} "
        f"{'ratio':>7}  budget",
    ]
    for f in invokes.values():
        lines.append(
            f"  {f['label']:<28} {_range(f['handler']):>20} {_range(f['baseline']):>22} "
            f"{f['ratio']:>6.2f}x  <= {f['budget']}x {f['verdict']}"
        )
    lines += ["", "  what each first invoke did (moto in decorator mode inside the child; no network):"]
    for f in invokes.values():
        calls = ", ".join(f["aws_calls"]) or "none"
        lines += [
            f"    {f['label']}: {f['did']}",
            f"      answered {f['outcome']}; AWS calls ({len(f['aws_calls'])}): {calls}",
            f"      baseline: {f['baseline_did']}; answered {f['baseline_outcome']}",
        ]
    p = report["import_self_ms"]
    lines += [
        "",
        "  import self time by top-level package, ms (baseline's in brackets; one -X importtime child each):",
        f"    fail: {top_packages(p['fail'], p['bare_worker'])}",
        f"    api:  {top_packages(p['api'], p['bare_api'])}",
        f"    total self ms: fail {sum(p['fail'].values()):,.0f} vs {sum(p['bare_worker'].values()):,.0f}; "
        f"api {sum(p['api'].values()):,.0f} vs {sum(p['bare_api'].values()):,.0f}",
    ]
    dev = sum(p["fail"].get(name, 0.0) for name in DEV_ONLY)
    if dev:
        lines.append(
            f"    note: `import httpx` loads its CLI's packages when installed, as here ({dev:,.0f} ms self "
            "in fail's import); the layer has none of them (the layer part measures the Lambda layout)"
        )
    return "\n".join(lines)
