"""Tenant secrets on moto: rotation overlap ends after 24 hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3

from maskgate.stores.tenants import TenantStore
from tests.integration.conftest import REGION, Aws


def test_rotated_out_secret_stops_signing_after_24_hours(aws: Aws) -> None:
    clock = [datetime(2026, 11, 25, 12, tzinfo=UTC)]
    store = TenantStore(
        table=aws.table, client=boto3.client("dynamodb", region_name=REGION), now=lambda: clock[0]
    )
    old = store.ensure_tenant("acme")
    new, until = store.rotate_secret("acme")
    assert until == clock[0] + timedelta(hours=24)
    clock[0] += timedelta(hours=23, minutes=59)
    assert store.webhook_secrets("acme") == [new, old]
    clock[0] += timedelta(minutes=2)
    assert store.webhook_secrets("acme") == [new]
