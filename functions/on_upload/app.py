"""S3 ObjectCreated under uploads/: start one job per uploaded object (a redelivery finds its job).

S3's ``s3:TestEvent`` (sent once when the notification is configured) carries no records: it is
acknowledged and ignored, never raised (an error would be retried, then dead-lettered)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from maskgate import clients
from maskgate.contracts.s3_events import UploadEvent
from maskgate.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=UploadEvent)
def handler(event: UploadEvent, context: LambdaContext) -> dict[str, Any]:
    return clients.upload_intake().accept_event(event).model_dump(mode="json", exclude_none=True)
