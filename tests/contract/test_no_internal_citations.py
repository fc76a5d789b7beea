"""Every tracked file users see stands alone: none cites the team's internal design document.

README, OpenAPI, docstrings, comments, template.yaml and the rest say what they mean themselves; a
citation such as "DESIGN §11" or "DESIGN.md" points users at a document they never see. Files under
``tests/`` are not checked.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CITATION = re.compile(r"DESIGN\s*(§|\.md)")


def _tracked_files() -> list[str]:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: no list of tracked files")
    listed = subprocess.run(  # noqa: S603 - a fixed git command, no shell
        [git, "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    return [name for name in listed.decode().split("\0") if name]


def _citations(name: str) -> list[str]:
    path = ROOT / name
    if not path.is_file():  # tracked but deleted in the work tree
        return []
    text = path.read_bytes().decode("utf-8", errors="replace")
    return [
        f"{name}:{number}: {line.strip()}"
        for number, line in enumerate(text.splitlines(), start=1)
        if CITATION.search(line)
    ]


def test_no_tracked_file_outside_tests_cites_the_design_document() -> None:
    found = [hit for name in _tracked_files() if not name.startswith("tests/") for hit in _citations(name)]

    assert not found, "user-visible files cite the internal design document:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "line",
    ["see DESIGN §11", "DESIGN§3", "DESIGN.md", "(DESIGN  §4, §8)", "DESIGN\t.md"],
)
def test_the_pattern_finds_citations(line: str) -> None:
    assert CITATION.search(line)


@pytest.mark.parametrize("line", ["DESIGN_JOB_TYPES", "by design (§4)", "the design document", "DESIGNER.md"])
def test_the_pattern_leaves_other_text(line: str) -> None:
    assert not CITATION.search(line)
