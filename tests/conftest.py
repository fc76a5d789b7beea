"""Process-wide test settings, applied before any maskgate module is imported.

Powertools reads its service name and metrics namespace when ``maskgate.observability`` is imported,
as a Lambda container would from the template's environment.
"""

import os

import pytest

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "maskgate")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "maskgate")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

# The files that take longest, longest first (measured: the fault run about 100-130 s, the benchmarks'
# smoke runs about 95 s, schemathesis about 65 s; every other file takes under 40 s).
LONGEST_FIRST = (
    "tests/integration/test_benchmarks_faults.py",
    "tests/integration/test_benchmarks_smoke.py",
    "tests/e2e/test_schemathesis.py",
)


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist (`--dist loadfile`) hands a worker one whole file at a time, by default the files
    # with the most tests first; in the collection's order instead, the longest files start first and
    # none is left running alone at the end while the other worker has nothing to do
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: n for n, path in enumerate(LONGEST_FIRST)}
    # a stable sort: every other test keeps its place
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
