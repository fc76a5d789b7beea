"""No test runs a coroutine with ``asyncio.run``.

A Mangum handler run earlier in the same pytest worker leaves its event loop as the main thread's.
``asyncio.run`` makes a loop of its own the thread's and so drops that one, unclosed. The garbage
collector's ResourceWarning (an error here) then fails whichever later test it lands in. This happened
twice; once the warning even surfaced inside an AST parse, as CPython 3.11's "AST constructor recursion
depth mismatch". Tests run coroutines on a loop of their own that is never made the thread's:
``loop = asyncio.new_event_loop()``, ``loop.run_until_complete(...)``, then ``loop.close()``.
"""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
RUN = re.compile(r"\basyncio\.run\(")


def test_no_test_replaces_the_threads_event_loop_with_asyncio_run() -> None:
    found = [
        f"{path.relative_to(TESTS)}:{number}: {line.strip()}"
        for path in sorted(TESTS.rglob("*.py"))
        if path.resolve() != Path(__file__).resolve()
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if RUN.search(line)
    ]
    assert not found, "\n".join(found)
