"""Upload expiry step Expire: a registered upload never came; fail its job (upload_expired) and notify."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from maskgate import clients
from maskgate.contracts.steps import JobRef
from maskgate.observability import logger, metrics
from maskgate.steps.expire import expire


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=JobRef)
def handler(event: JobRef, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id)
    return expire(event, notifier=clients.notifier()).model_dump(mode="json")
