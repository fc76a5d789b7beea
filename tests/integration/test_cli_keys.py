"""``maskgate keys create`` against the table from the usual AWS environment (moto here)."""

from __future__ import annotations

import re

import pytest

from maskgate import clients
from maskgate_local.cli import main
from tests.integration.conftest import Aws


def test_keys_create_prints_a_key_that_authenticates_its_tenant(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "create", "--tenant", "acme", "--table", aws.table]) == 0
    printed = capsys.readouterr().out
    key = re.search(r"api key\s+(mg_\S+)", printed)
    secret = re.search(r"webhook secret\s+(whsec_\S+)", printed)
    assert key and secret
    assert clients.tenant_store().tenant_for_key(key.group(1)) == "acme"
    assert clients.tenant_store().webhook_secrets("acme") == [secret.group(1)]
