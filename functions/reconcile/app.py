"""The reconcile sweep (scheduled, or ``maskgate reconcile``): restart stalled jobs, fail the ones that
cannot run, release orphaned WaveSpeed slots and recover webhooks nothing delivers."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from maskgate import clients
from maskgate.contracts.steps import ReconcileInput
from maskgate.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=ReconcileInput)
def handler(event: ReconcileInput, context: LambdaContext) -> dict[str, Any]:
    return clients.reconciler().run(event).model_dump(mode="json")
