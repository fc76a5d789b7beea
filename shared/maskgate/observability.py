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


def tenant_metric(name: str, tenant: str, value: float = 1, unit: str = "Count") -> None:
    """A metric for the alarms (the service's), and the same again with the tenant as a dimension, in
    a document of its own. Powertools' ``single_metric`` writes that document to stdout even where
    metrics are switched off (``POWERTOOLS_METRICS_DISABLED``, as on the local stack): skipped there."""
    from aws_lambda_powertools.metrics import single_metric
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    metrics.add_metric(name=name, unit=unit, value=value)
    if is_metrics_disabled():
        return
    with single_metric(name=name, unit=unit, value=value, namespace=metrics.namespace) as one:  # type: ignore[arg-type]
        one.add_dimension(name="service", value=metrics.service or "maskgate")
        one.add_dimension(name="tenant", value=tenant)
