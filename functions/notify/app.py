"""Workflow step Notify: the first attempt of the job's final webhook; a failure starts its delivery unit."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from maskgate import clients
from maskgate.contracts.steps import JobRef
from maskgate.observability import logger, metrics
from maskgate.steps.notify import notify


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=JobRef)
def handler(event: JobRef, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id)
    return notify(event, notifier=clients.notifier()).model_dump(mode="json")
