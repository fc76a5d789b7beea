"""Store's instances step: its cold start and its duration for 1 MP and 12 MP masks, each against a
baseline measured in the same run.

Cold start, in fresh interpreters (median of ``runs``): importing the Store handler (``functions/store/
app.py``, the baseline: numpy and Pillow are not imported there), and then the instances modules a
job's first instances pull in (numpy, Pillow, ``maskgate.results``), as the first job asking for
instances pays once per container. Duration, in this process (median of ``repeats``): a PNG mask of
a few discs and boxes decoded to a boolean array (the baseline: what any look at the pixels costs),
against the whole step (decode, 8-connected components, COCO RLE, polygons, instances.json and the COCO
file serialised). Priced at Store's 1,024 MB. Figures are printed, never asserted.
"""

from __future__ import annotations

import io
import json
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

from benchmarks.cost.prices import PRICES, SAM3_USD_PER_IMAGE
from benchmarks.startup.lambda_env import ROOT
from benchmarks.stats import ratio

DEFAULT_RUNS = 7
DEFAULT_REPEATS = 5
STORE_MEMORY_MB = 1024
SIZES = {"1 MP": (1280, 800), "12 MP": (4000, 3000)}
_IMPORT = (
    "import sys, time\n"
    "sys.path[:0] = [{root!r}, {shared!r}]\n"
    "started = time.perf_counter()\n"
    "import functions.store.app\n"
    "handler = time.perf_counter()\n"
    "import maskgate.results.instances, maskgate.results.coco\n"
    "done = time.perf_counter()\n"
    "print(handler - started, done - handler)\n"
)


def cold_import(runs: int) -> dict[str, float]:
    """Median seconds to import the Store handler, and then the instances modules, in fresh children."""
    script = _IMPORT.format(root=str(ROOT), shared=str(ROOT / "shared"))
    handler, imaging = [], []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            env={"PATH": "", "AWS_DEFAULT_REGION": "us-east-1", "PYTHONDONTWRITEBYTECODE": "1"},
        )
        first, second = (float(v) for v in done.stdout.split())
        handler.append(first)
        imaging.append(second)
    return {"handler_ms": statistics.median(handler) * 1000, "imaging_ms": statistics.median(imaging) * 1000}


def sample_mask(width: int, height: int) -> bytes:
    """A PNG mask of four objects (two discs, a box, a ring with a hole) scaled to the size."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(image)
    w, h = width, height
    draw.ellipse((0.05 * w, 0.1 * h, 0.35 * w, 0.6 * h), fill=255)
    draw.ellipse((0.6 * w, 0.05 * h, 0.8 * w, 0.35 * h), fill=255)
    draw.rectangle((0.4 * w, 0.65 * h, 0.7 * w, 0.95 * h), fill=255)
    draw.ellipse((0.75 * w, 0.5 * h, 0.95 * w, 0.9 * h), fill=255)
    draw.ellipse((0.8 * w, 0.6 * h, 0.9 * w, 0.8 * h), fill=0)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def _median_s(work: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def duration(width: int, height: int, repeats: int) -> dict[str, Any]:
    """Median seconds: decoding the mask (baseline) and the whole instances step."""
    from maskgate.results.coco import coco_file
    from maskgate.results.instances import decode, instances

    data = sample_mask(width, height)

    def step() -> int:
        found = instances([decode(data, cut_out=False)])
        document = {
            "id": "seg_bench",
            "width": width,
            "height": height,
            "found": bool(found),
            "instances": found,
        }
        coco = coco_file(
            found, job_id="seg_bench", width=width, height=height, file_name="bench.png",
            category=None, created=datetime.now(UTC),
        )  # fmt: skip
        return len(json.dumps(document)) + len(json.dumps(coco))

    step()  # warm: imports and first allocations
    decode_s = _median_s(lambda: decode(data, cut_out=False), repeats)
    step_s = _median_s(step, repeats)
    usd = step_s * STORE_MEMORY_MB / 1024 * PRICES.lambda_gb_second
    return {
        "mask_png_bytes": len(data),
        "instances": len(instances([decode(data, cut_out=False)])),
        "result_bytes": step(),
        "decode_ms": decode_s * 1000,
        "step_ms": step_s * 1000,
        "step_over_decode": ratio(step_s, decode_s),
        "usd_per_image": usd,
        "share_of_sam3": usd / SAM3_USD_PER_IMAGE,
    }


def run(*, runs: int = DEFAULT_RUNS, repeats: int = DEFAULT_REPEATS) -> dict[str, Any]:
    """Cold import and duration figures (the instances part of the report)."""
    cold = cold_import(runs)
    return {
        "runs": runs,
        "repeats": repeats,
        "cold_import": {**cold, "imaging_over_handler": ratio(cold["imaging_ms"], cold["handler_ms"])},
        "sizes": {label: duration(w, h, repeats) for label, (w, h) in SIZES.items()},
    }


def render(report: dict[str, Any]) -> str:
    cold = report["cold_import"]
    lines = [
        f"  Store's instances step (median of {report['runs']} fresh interpreters /"
        f" {report['repeats']} runs)",
        f"  cold import: Store handler {cold['handler_ms']:.0f} ms (baseline); the instances modules"
        f" (numpy, Pillow, maskgate.results) on a job's first instances +{cold['imaging_ms']:.0f} ms"
        f" ({cold['imaging_over_handler']:.2f}x the handler's)",
        f"  {'mask':<6} {'PNG':>9} {'instances':>9} {'decode ms':>10} {'step ms':>9} {'step/decode':>12}"
        f" {'$/image at 1,024 MB':>20} {'of $0.005':>9}",
    ]
    for label, f in report["sizes"].items():
        lines.append(
            f"  {label:<6} {f['mask_png_bytes'] / 1024:>7.0f} KB {f['instances']:>9} {f['decode_ms']:>10.1f}"
            f" {f['step_ms']:>9.1f} {f['step_over_decode']:>11.2f}x {f['usd_per_image']:>20.8f}"
            f" {f['share_of_sam3']:>9.3%}"
        )
    return "\n".join(lines)
