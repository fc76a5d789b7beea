"""The public HTTP API: API Gateway HTTP API (payload 2.0) events into the FastAPI app via Mangum."""

from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools.utilities.typing import LambdaContext
from mangum import Mangum

from maskgate.api.app import create_app
from maskgate.observability import logger, metrics

if TYPE_CHECKING:
    from mangum.types import LambdaContext as MangumContext

TEXT_TYPES = ["application/json", "application/problem+json", "text/html", "text/plain"]

app = Mangum(create_app(), lifespan="off", text_mime_types=TEXT_TYPES)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # the runtime's one context object, which Powertools and Mangum each describe with a type of their own
    return app(event, cast("MangumContext", context))
