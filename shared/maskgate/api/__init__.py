"""The public HTTP API (DESIGN §5): FastAPI behind Mangum. Only this package knows FastAPI."""
