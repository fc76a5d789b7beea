"""Who is calling: the tenant of the Bearer API key, rate limited per tenant.

The key travels as ``Authorization: Bearer <key>``; the OpenAPI document declares it as the HTTP bearer
security scheme ``bearer`` (so generated clients and the docs page's Authorize button send it).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from maskgate import clients
from maskgate.errors import Unauthorized

bearer = HTTPBearer(
    auto_error=False,  # a missing or malformed key is our own 401 problem, not FastAPI's
    scheme_name="bearer",
    bearerFormat="mg_…",
    description="An API key (`mg_` and 43 characters) from `maskgate keys create`, sent as "
    "`Authorization: Bearer <key>`. Keys belong to one tenant; another tenant's jobs are 404.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def tenant_of(credentials: HTTPAuthorizationCredentials | None) -> str:
    """The tenant of the Bearer API key (401 without a valid one), counted against its rate limit."""
    key = credentials.credentials.strip() if credentials is not None else ""
    if not key:
        raise Unauthorized("send the API key as 'Authorization: Bearer <key>'")
    owner = clients.tenant_store().tenant_for_key(key)
    clients.rate_limiter().hit(owner)
    return owner


def tenant(credentials: Credentials = None) -> str:
    """The calling tenant, as a route dependency."""
    return tenant_of(credentials)


Tenant = Annotated[str, Depends(tenant)]
