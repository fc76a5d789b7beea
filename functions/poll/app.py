"""Workflow step Poll (waits for its task token): the callback is late, so read the prediction."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from maskgate import clients
from maskgate.contracts.steps import PollInput
from maskgate.observability import logger, metrics
from maskgate.steps.poll import poll


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=PollInput)
def handler(event: PollInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id)
    return poll(
        event, jobs=clients.job_store(), wavespeed=clients.wavespeed(), workflow=clients.workflow()
    ).model_dump(mode="json")
