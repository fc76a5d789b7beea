"""Logger and metrics for every handler (service name and namespace come from the template).

Tracing is not wired yet: Powertools Tracer needs aws-xray-sdk, which the layer does not ship.
"""

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()
