"""Logger and metrics for every handler (service name and namespace come from the template).

Tracing is not wired yet: Powertools Tracer needs aws-xray-sdk, which the layer does not ship.
"""

import warnings

from aws_lambda_powertools import Logger, Metrics

# A step that had nothing to count (a poll that is still waiting) is normal, not worth a warning
# on every invocation.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

logger = Logger()
metrics = Metrics()
