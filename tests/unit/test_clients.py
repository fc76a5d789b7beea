"""maskgate.clients.reset: every cached factory, the callback secret and the settings forgotten at once,
as a fresh container would have them; found in the module, so a factory added later cannot escape it."""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from maskgate import clients
from maskgate.settings import get_settings

ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "MASKGATE_TABLE": "jobs",
    "MASKGATE_BUCKET": "bucket",
    "MASKGATE_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:segmentation",
    "MASKGATE_DELIVERY_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:delivery",
    "MASKGATE_UPLOAD_EXPIRY_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:expiry",
    "MASKGATE_WEBHOOK_DLQ_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
}


def cached_factories(module: ModuleType) -> dict[str, Any]:
    """Every function of ``module`` with a functools cache, found independently of clients' own search."""
    return {
        name: value
        for name, value in vars(module).items()
        if inspect.isfunction(getattr(value, "__wrapped__", None)) and hasattr(value, "cache_info")
    }


def module_state(module: ModuleType) -> dict[str, Any]:
    """The module's variables: what is neither a function, a class, a module nor the factory list."""
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("__")
        and name != "_CACHED"
        and not callable(value)
        and not isinstance(value, ModuleType)
    }


def fresh_copy() -> ModuleType:
    """maskgate.clients executed anew under another name: its state just after import."""
    spec = importlib.util.spec_from_file_location("maskgate_clients_fresh", clients.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def call(factory: Callable[..., Any]) -> None:
    """Build what a factory builds: a string for each argument (a service name, an API key)."""
    parameters = inspect.signature(factory).parameters
    factory(*("s3" for _ in parameters))


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in ENVIRONMENT.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    clients.reset()
    yield
    clients.reset()


class _StubWaveSpeed:
    def webhook_secret(self) -> str:
        return "whsec_test"


def test_every_cached_factory_settings_and_the_secret_are_forgotten(
    environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    factories = cached_factories(clients)
    for factory in factories.values():
        call(factory)
    monkeypatch.setattr(clients, "wavespeed", _StubWaveSpeed)
    assert clients.wavespeed_webhook_secret() == "whsec_test"
    filled = {name for name, factory in factories.items() if factory.cache_info().currsize}
    assert filled == set(factories), "every factory was called"
    assert get_settings.cache_info().currsize == 1 and clients._secret_cache is not None

    clients.reset()

    left = {name for name, factory in factories.items() if factory.cache_info().currsize}
    assert not left, f"clients.reset() left these cached: {sorted(left)}"
    assert get_settings.cache_info().currsize == 0
    assert module_state(clients) == module_state(fresh_copy())


def test_the_factories_found_are_every_cached_function_of_the_module() -> None:
    found = {factory.__name__ for factory in clients._CACHED}
    assert found == set(cached_factories(clients)) - {"get_settings"}  # imported; reset clears it by name
    assert {"s3", "job_store", "reconciler", "_config", "_wavespeed_for"} <= set(cached_factories(clients))


def test_a_factory_a_test_stands_in_for_is_still_forgotten(
    environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = clients.s3
    original()
    monkeypatch.setattr(clients, "s3", lambda: None)

    clients.reset()

    assert original.cache_info().currsize == 0
