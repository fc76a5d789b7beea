"""Who is calling: the tenant of the Bearer API key, rate limited per tenant."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from maskgate import clients
from maskgate.errors import Unauthorized


def tenant(authorization: Annotated[str | None, Header()] = None) -> str:
    """The tenant of the Bearer API key."""
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("send the API key as 'Authorization: Bearer <key>'")
    owner = clients.tenant_store().tenant_for_key(key.strip())
    clients.rate_limiter().hit(owner)
    return owner


Tenant = Annotated[str, Depends(tenant)]
