"""maskgate.settings.settings_from: one typed object from an environment mapping."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from maskgate import settings as settings_module
from maskgate.errors import NotConfigured
from maskgate.settings import settings_from

REQUIRED = {
    "MASKGATE_TABLE": "maskgate-jobs",
    "MASKGATE_BUCKET": "maskgate-123456789012-eu-west-1",
    "MASKGATE_STATE_MACHINE_ARN": "arn:aws:states:eu-west-1:123456789012:stateMachine:segmentation",
}


def test_settings_from_reads_the_required_names():
    settings = settings_from(REQUIRED)

    assert settings.table == "maskgate-jobs"
    assert settings.bucket == "maskgate-123456789012-eu-west-1"
    assert settings.state_machine_arn.endswith(":stateMachine:segmentation")


def test_settings_from_defaults_to_aws_and_wavespeed():
    settings = settings_from(REQUIRED)

    assert settings.environment == "aws"
    assert not settings.is_local
    assert settings.wavespeed_base_url == "https://api.wavespeed.ai"
    assert settings.finished_job_ttl_days == 30


def test_settings_from_reads_local_environment():
    settings = settings_from({**REQUIRED, "MASKGATE_ENVIRONMENT": "local"})

    assert settings.is_local


def test_settings_from_refuses_unknown_environment():
    with pytest.raises(NotConfigured):
        settings_from({**REQUIRED, "MASKGATE_ENVIRONMENT": "production"})


def test_settings_from_reads_every_optional_name():
    env = {
        **REQUIRED,
        "MASKGATE_DEFAULT_TENANT": "acme",
        "MASKGATE_DEFAULT_REQUEST": '{"prompt": "cat"}',
        "MASKGATE_FINISHED_JOB_TTL_DAYS": "7",
        "MASKGATE_POLL_INITIAL_SECONDS": "2",
        "WAVESPEED_BASE_URL": "http://127.0.0.1:5100",
        "WAVESPEED_API_KEY_SECRET": "dev/wavespeed",
        "MASKGATE_PUBLIC_API_URL": "http://127.0.0.1:3000",
    }

    settings = settings_from(env)

    assert settings.default_tenant == "acme"
    assert settings.default_request == '{"prompt": "cat"}'
    assert settings.finished_job_ttl_days == 7
    assert settings.poll_initial_seconds == 2
    assert settings.wavespeed_base_url == "http://127.0.0.1:5100"
    assert settings.wavespeed_api_key_secret == "dev/wavespeed"
    assert settings.public_api_url == "http://127.0.0.1:3000"


def test_settings_from_splits_output_hosts_on_commas():
    settings = settings_from(
        {**REQUIRED, "WAVESPEED_OUTPUT_HOSTS": " *.wavespeed.ai, 127.0.0.1 ,,d1.cloudfront.net,"}
    )

    assert settings.wavespeed_output_hosts == ("*.wavespeed.ai", "127.0.0.1", "d1.cloudfront.net")


def test_settings_from_empty_output_hosts_is_an_empty_tuple():
    assert settings_from({**REQUIRED, "WAVESPEED_OUTPUT_HOSTS": ""}).wavespeed_output_hosts == ()


def test_settings_from_default_output_hosts_are_wavespeed_and_cloudfront():
    assert settings_from(REQUIRED).wavespeed_output_hosts == ("*.wavespeed.ai", "*.cloudfront.net")


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_settings_from_missing_required_name_fails(missing):
    env = {k: v for k, v in REQUIRED.items() if k != missing}

    with pytest.raises(NotConfigured, match=f"{missing}: is not set"):
        settings_from(env)


@pytest.mark.parametrize("name", ["MASKGATE_FINISHED_JOB_TTL_DAYS", "MASKGATE_POLL_INITIAL_SECONDS"])
def test_settings_from_refuses_a_non_integer(name):
    with pytest.raises(NotConfigured, match=f"{name}: Input should be a valid integer"):
        settings_from({**REQUIRED, name: "soon"})


def test_settings_from_ignores_unrelated_names():
    settings = settings_from({**REQUIRED, "PATH": "/usr/bin", "AWS_REGION": "eu-west-1", "table": "nope"})

    assert settings.table == "maskgate-jobs"


def test_settings_from_is_frozen():
    settings = settings_from(REQUIRED)

    with pytest.raises(ValidationError):
        settings.table = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    "name", ["MASKGATE_PUBLIC_API_URL", "MASKGATE_WEBHOOK_DLQ_URL", "MASKGATE_DELIVERY_STATE_MACHINE_ARN"]
)
def test_an_empty_optional_setting_is_unset_and_required_only_where_used(name):
    settings = settings_from({**REQUIRED, name: ""})
    field = next(f for f, env in settings_module._ENV.items() if env == name)

    assert getattr(settings, field) is None
    with pytest.raises(NotConfigured, match=f"{name} is not set; this function needs it"):
        settings.require(field)
    assert settings_from({**REQUIRED, name: "x"}).require(field) == "x"
