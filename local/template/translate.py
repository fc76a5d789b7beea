"""Print template.yaml translated to plain CloudFormation (offline, with samtranslator), so the
gates can lint what SAM generates too: roles, policies, permissions, stages.

    python -m maskgate_local.template.translate > translated.json
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from maskgate_local.template import sam

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template = sam.load_template(ROOT / "template.yaml")
    values = sam.parameter_values(template, {})
    translated, _ = sam.translate(template, ROOT, values, os.environ["AWS_DEFAULT_REGION"])
    json.dump(translated, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
