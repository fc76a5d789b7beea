"""Workflow step Fail: record a caught error as the job's typed failure."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from maskgate import clients
from maskgate.contracts.steps import FailInput
from maskgate.observability import logger, metrics
from maskgate.steps.fail import fail


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=FailInput)
def handler(event: FailInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id)
    return fail(event, jobs=clients.job_store(), admission=clients.admission()).model_dump(mode="json")
