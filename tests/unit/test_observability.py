"""The per-tenant metric: a document of its own with the tenant as a dimension, and nothing printed
where metrics are switched off (the local stack's terminal stays readable)."""

from __future__ import annotations

import json

import pytest

from maskgate.observability import metrics, tenant_metric


@pytest.fixture(autouse=True)
def empty_metrics():
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def test_a_tenant_metric_is_written_with_the_tenant_as_a_dimension(monkeypatch, capsys) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)

    tenant_metric("CacheHit", "acme")

    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(documents) == 1 and documents[0]["CacheHit"] in (1, [1], 1.0, [1.0])
    assert documents[0]["tenant"] == "acme"
    directive = documents[0]["_aws"]["CloudWatchMetrics"][0]
    assert ["service", "tenant"] in directive["Dimensions"]
    assert "CacheHit" in metrics.metric_set  # and once for the alarms, without the tenant


def test_nothing_is_printed_where_metrics_are_switched_off(monkeypatch, capsys) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")

    tenant_metric("TenantSpend", "acme", 0.005, "None")

    assert capsys.readouterr().out == ""
