"""The public HTTP API: FastAPI behind Mangum. Only this package knows FastAPI."""
