"""Workflow step Store: copy the finished masks into results/<job_id>/, finish the job, and make the
first attempt of its webhook (as Notify does on the failure path): one state, one invocation less."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from maskgate import clients
from maskgate.contracts.steps import StoreInput
from maskgate.observability import logger, metrics
from maskgate.steps.store import store


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=StoreInput)
def handler(event: StoreInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id)
    return store(
        event,
        jobs=clients.job_store(),
        wavespeed=clients.wavespeed(),
        bucket=clients.bucket(),
        admission=clients.admission(),
        notifier=clients.notifier(),
    ).model_dump(mode="json")
