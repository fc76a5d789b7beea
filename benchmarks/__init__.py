"""maskgate benchmarks: figures measured on the local stack, printed and never asserted.

``python -m benchmarks`` (``make bench``) starts one in-process local stack, runs the same jobs down the
callback path and the poll-only path in one run, and prints latencies, state transitions and the
Standard-workflow cost per job.
"""

import os

# As a Lambda container (and tests/conftest.py) would: Powertools reads these when maskgate is imported,
# which happens here before the stack provisions the functions' environment.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "maskgate")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "maskgate")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
