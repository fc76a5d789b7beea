"""S3 ObjectCreated under uploads/: start one job per uploaded object (a redelivery finds its job)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from maskgate import clients
from maskgate.observability import logger, metrics
from maskgate.workflow import UploadEvent


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=UploadEvent)
def handler(event: UploadEvent, context: LambdaContext) -> dict[str, Any]:
    jobs = [clients.intake().accept_upload(record) for record in event.Records]
    return {"jobs": [{"id": j.id, "status": j.status.value} for j in jobs if j is not None]}
