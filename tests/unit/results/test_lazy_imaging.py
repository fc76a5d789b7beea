"""numpy and Pillow (the imaging layer, on Store alone) are imported by no handler at cold start:
Store imports them only when a job asks for instances or the COCO file."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HANDLERS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["modules"]


def test_no_handler_imports_numpy_or_pillow_at_cold_start() -> None:
    script = (
        "import importlib, sys\n"
        f"for name in {HANDLERS!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in ('numpy', 'PIL') if m in sys.modules))\n"
    )
    done = subprocess.run(  # noqa: S603 - a fresh interpreter, as a cold start
        [sys.executable, "-W", "ignore", "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "", "PYTHONPATH": f"{ROOT}:{ROOT / 'shared'}", "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
