"""``maskgate keys create`` against the table from the usual AWS environment (moto here)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from maskgate import clients
from maskgate.errors import Unauthorized
from maskgate_local.cli.main import main
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


def _create(aws: Aws, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[str, str]:
    assert main(["keys", "create", "--tenant", "acme", "--table", aws.table, *extra]) == 0
    printed = capsys.readouterr().out
    key = re.search(r"api key\s+(mg_\S+)", printed)
    key_id = re.search(r"key id\s+(key_\S+)", printed)
    assert key and key_id
    return key.group(1), key_id.group(1)


def test_keys_list_shows_ids_prefixes_and_last_use_never_the_key(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    key, key_id = _create(aws, capsys)
    clients.tenant_store().tenant_for_key(key)
    assert main(["keys", "list", "--tenant", "acme", "--table", aws.table]) == 0
    listing = capsys.readouterr().out
    [row] = [line for line in listing.splitlines() if line.startswith(key_id)]
    assert key[:8] in row and "active" in row and key not in listing
    assert row.split()[5] != "-"  # last used: a date


def test_keys_revoke_stops_the_key(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    key, key_id = _create(aws, capsys)
    assert main(["keys", "revoke", "--tenant", "acme", "--key-id", key_id, "--table", aws.table]) == 0
    with pytest.raises(Unauthorized):
        clients.tenant_store().tenant_for_key(key)
    main(["keys", "list", "--tenant", "acme", "--table", aws.table])
    assert "revoked" in capsys.readouterr().out


def test_keys_revoke_of_another_tenants_key_is_refused(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    _, key_id = _create(aws, capsys)
    code = main(["keys", "revoke", "--tenant", "other", "--key-id", key_id, "--table", aws.table])
    err = capsys.readouterr().err
    assert code == 2 and err == f"maskgate keys: tenant other has no key {key_id}\n"  # one line, no traceback


def test_an_expired_key_stops_working(aws: Aws) -> None:
    key = clients.tenant_store().create_key("acme", expires_in=timedelta(seconds=-1)).key
    with pytest.raises(Unauthorized):
        clients.tenant_store().tenant_for_key(key)


def test_keys_rotate_secret_prints_a_new_secret_and_keeps_the_old(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    _create(aws, capsys)
    old = clients.tenant_store().webhook_secrets("acme")[0]
    assert main(["keys", "rotate-secret", "--tenant", "acme", "--table", aws.table]) == 0
    new = re.search(r"webhook secret\s+(whsec_\S+)", capsys.readouterr().out)
    assert new and clients.tenant_store().webhook_secrets("acme") == [new.group(1), old]
