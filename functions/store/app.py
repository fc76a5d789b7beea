"""Workflow step Store: copy the finished masks into results/<job_id>/ and finish the job."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from maskgate import clients, steps
from maskgate.observability import logger, metrics
from maskgate.workflow import StoreInput


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=StoreInput)
def handler(event: StoreInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id)
    return steps.store(
        event,
        jobs=clients.job_store(),
        wavespeed=clients.wavespeed(),
        masks=clients.mask_store(),
        admission=clients.admission(),
    ).model_dump(mode="json")
