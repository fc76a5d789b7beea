"""``maskgate endpoints`` against the local stack: an endpoint's whole life through the command."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import pytest

from maskgate.stores.tenants import TenantStore
from maskgate_local.cli.main import main
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def endpoints(stack: Stack, capsys: pytest.CaptureFixture[str]) -> Run:
    """Run ``maskgate endpoints <action> …`` in-process for a tenant of its own: (exit code, out, err)."""
    tenant = f"cli-endpoints-{uuid.uuid4().hex[:8]}"  # the other tests' tenant registers nothing
    key = TenantStore(table=stack.ready["table"], client=stack.aws("dynamodb")).create_key(tenant).key

    def run(action: str, *args: str) -> tuple[int, str, str]:
        code = main(["endpoints", action, "--api-url", stack.ready["api_url"], "--api-key", key, *args])
        captured = capsys.readouterr()
        assert key not in captured.out + captured.err
        return code, captured.out, captured.err

    return run


def field(out: str, name: str) -> str:
    found = re.search(rf"^{name} +(\S.*)$", out, re.MULTILINE)
    assert found, out
    return found.group(1)


def test_endpoints_create_list_show_update_rotate_delete(endpoints: Run) -> None:
    url = "http://127.0.0.1:9/hooks/orders"
    code, out, _ = endpoints(
        "create", url, "--description", "orders", "--event", "segmentation.failed", "--rate", "5",
        "--metadata", "team=vision",
    )  # fmt: skip
    assert code == 0, out
    endpoint_id, secret = field(out, "id"), field(out, "secret")
    assert re.fullmatch(r"ep_[0-9a-f]{16}", endpoint_id) and secret.startswith("whsec_")
    assert field(out, "events") == "segmentation.failed" and field(out, "rate limit") == "5 per second"
    assert field(out, "metadata") == "team=vision" and field(out, "state") == "enabled"

    code, out, _ = endpoints("list")
    [row] = [line for line in out.splitlines() if line.startswith(endpoint_id)]
    assert row.split()[1:4] == ["enabled", "failed", url] and row.endswith("orders")
    assert secret not in out

    code, out, _ = endpoints("show", endpoint_id)
    assert code == 0 and field(out, "url") == url and secret not in out
    code, out, _ = endpoints("show", endpoint_id, "--secret")
    assert code == 0 and field(out, "secret") == secret

    code, out, _ = endpoints("update", endpoint_id, "--disable", "--description", "paused", "--no-rate")
    assert code == 0 and field(out, "state") == "disabled" and field(out, "description") == "paused"
    assert field(out, "rate limit") == "-" and field(out, "events") == "segmentation.failed"
    code, out, _ = endpoints("update", endpoint_id, "--enable", "--all-events")
    assert code == 0 and field(out, "state") == "enabled" and field(out, "events") == "every event type"
    code, _, err = endpoints("update", endpoint_id)
    assert code == 2 and "nothing to change" in err

    code, out, _ = endpoints("rotate-secret", endpoint_id)
    new = field(out, "secret")
    assert code == 0 and new.startswith("whsec_") and new != secret
    assert "keeps signing alongside until" in out
    code, out, _ = endpoints("show", endpoint_id, "--secret")
    assert field(out, "secret") == new

    code, out, _ = endpoints("delete", endpoint_id)
    assert (code, out.strip()) == (0, f"deleted {endpoint_id}")
    code, out, err = endpoints("show", endpoint_id)
    assert code == 2 and out == "" and err.startswith(f"not_found: no webhook endpoint {endpoint_id}")
    code, out, _ = endpoints("list")
    assert code == 0 and endpoint_id not in out and "no webhook endpoints" in out


def test_endpoints_refusals_are_problems_with_exit_code_2(endpoints: Run) -> None:
    code, out, err = endpoints("create", "https://example.com/hook")  # the local stack: loopback only
    assert code == 2 and out == "" and err.startswith("url_not_allowed: ")
    code, _, err = endpoints("create", "http://127.0.0.1:9/hook", "--rate", "0")
    assert code == 2 and err.startswith("invalid_request: ") and "  - rate_limit_per_second: " in err
    code, _, err = endpoints("create", "http://127.0.0.1:9/hook", "--metadata", "novalue")
    assert code == 2 and "KEY=VALUE" in err


def test_a_v1a_endpoint_prints_its_public_keys_and_never_a_private_key(endpoints: Run) -> None:
    code, out, _ = endpoints("create", "http://127.0.0.1:9/hooks/signed", "--signature", "v1a")
    assert code == 0, out
    endpoint_id, public = field(out, "id"), field(out, "public key")
    assert field(out, "signature") == "v1a" and public.startswith("whpk_")
    assert "secret " not in out and "whsk_" not in out

    code, out, _ = endpoints("show", endpoint_id, "--secret")
    assert code == 0 and field(out, "public key") == public and "whsk_" not in out

    code, out, _ = endpoints("rotate-secret", endpoint_id)
    assert code == 0 and "whsk_" not in out
    new = field(out, "public key")
    assert new.startswith("whpk_") and new != public
    assert "the previous key pair keeps signing alongside until" in out and public in out
    code, out, _ = endpoints("show", endpoint_id)
    assert field(out, "public key") == new

    code, out, _ = endpoints("update", endpoint_id, "--signature", "v1")  # switching prints the new secret
    assert code == 0 and field(out, "signature") == "v1" and "whsk_" not in out
    assert field(out, "secret").startswith("whsec_")
    assert "the previous key pair keeps signing alongside until" in out and new in out
    assert endpoints("delete", endpoint_id)[0] == 0
