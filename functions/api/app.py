"""The public HTTP API: API Gateway HTTP API (payload 2.0) events into the FastAPI app via Mangum."""

from mangum import Mangum

from maskgate.api.app import create_app
from maskgate.observability import logger

TEXT_TYPES = ["application/json", "application/problem+json", "text/html", "text/plain"]

handler = logger.inject_lambda_context(Mangum(create_app(), lifespan="off", text_mime_types=TEXT_TYPES))
