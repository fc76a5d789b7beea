"""The public HTTP API: API Gateway HTTP API (payload 2.0) events into the FastAPI app via Mangum."""

from mangum import Mangum

from maskgate.api.app import create_app
from maskgate.observability import logger

handler = logger.inject_lambda_context(Mangum(create_app(), lifespan="off"))
