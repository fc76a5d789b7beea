"""Workflow step Submit (waits for its task token): record the token, submit the prediction once."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from maskgate import clients
from maskgate.contracts.steps import SubmitInput
from maskgate.observability import logger, metrics
from maskgate.settings import get_settings
from maskgate.steps.submit import submit


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=SubmitInput)
def handler(event: SubmitInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id)
    return submit(
        event,
        jobs=clients.job_store(),
        wavespeed=clients.wavespeed(),
        bucket=clients.bucket(),
        settings=get_settings(),
        admission=clients.admission(),
        workflow=clients.workflow(),
        gate=clients.gate(),
        cache=clients.result_cache(),
    ).model_dump(mode="json")
