"""Webhook delivery unit step Deliver: one scheduled retry; exhausted deliveries are dead-lettered."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from maskgate import clients
from maskgate.contracts.steps import DeliverInput
from maskgate.observability import logger, metrics
from maskgate.steps.deliver import deliver


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=DeliverInput)
def handler(event: DeliverInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id)
    return deliver(event, notifier=clients.notifier()).model_dump(mode="json")
