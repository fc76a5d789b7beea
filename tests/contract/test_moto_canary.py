"""The private moto names the local stack (local/aws.py) relies on: a moto upgrade fails loudly here."""

from __future__ import annotations

import importlib.metadata
import inspect

import pytest


def test_moto_version_is_the_one_checked():
    assert importlib.metadata.version("moto") == "5.2.5"


def test_moto_lambda_invoke_hook_signature():
    from moto.awslambda.models import LambdaFunction

    parameters = list(inspect.signature(LambdaFunction._invoke_lambda).parameters.values())
    assert [p.name for p in parameters] == ["self", "event"]
    assert parameters[1].default is None
    # invoke() hands the parsed body to _invoke_lambda and unpacks (payload, errored, logs)
    assert "res, errored, logs = self._invoke_lambda(event=body)" in inspect.getsource(LambdaFunction.invoke)


def test_moto_s3_notification_hook_signature():
    from moto.s3 import notifications

    parameters = inspect.signature(notifications._invoke_awslambda).parameters
    assert list(parameters) == ["account_id", "event_body", "fn_arn", "region_name"]
    # send_event looks the hook up as a module global, so patching the module attribute reroutes it
    assert "_invoke_awslambda" in notifications.send_event.__code__.co_names


def test_moto_s3_notification_event_shape():
    from moto.s3 import notifications

    source = inspect.getsource(notifications._get_s3_event)
    assert "quote_plus(key.name)" in source
    assert '"eTag": etag' in source


def test_moto_threaded_server_entry_point():
    from moto.moto_server import threaded_moto_server
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    assert callable(ThreadedMotoServer._server_entry)
    assert list(inspect.signature(ThreadedMotoServer.__init__).parameters) == [
        "self",
        "ip_address",
        "port",
        "verbose",
    ]
    source = inspect.getsource(ThreadedMotoServer._server_entry)
    for name in (
        "DomainDispatcherApplication(create_backend_app)",
        "request_handler=MotoRequestHandler",
        "self._server_ready_event.set()",
        "self._server.serve_forever()",
    ):
        assert name in source
    for name in ("DomainDispatcherApplication", "create_backend_app", "MotoRequestHandler", "make_server"):
        assert hasattr(threaded_moto_server, name)


def test_moto_step_functions_lambda_client_factory_location():
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.utils import boto_client

    assert lambda_eval_utils.boto_client_for is boto_client.boto_client_for
    assert list(inspect.signature(boto_client.boto_client_for).parameters) == [
        "region",
        "service",
        "state_credentials",
    ]
    assert "moto_server_port()" in inspect.getsource(boto_client.boto_client_for)


@pytest.fixture
def restored_moto_config():
    from moto.core.config import default_user_config

    saved = dict(default_user_config)
    yield default_user_config
    default_user_config.clear()
    default_user_config.update(saved)


def test_moto_api_config_switches_state_machine_execution(restored_moto_config):
    from moto.moto_api._internal.models import moto_api_backend
    from moto.stepfunctions import responses

    moto_api_backend.set_config({"stepfunctions": {"execute_state_machine": True}})

    assert restored_moto_config["stepfunctions"] == {"execute_state_machine": True}
    assert 'sfn_config.get("execute_state_machine"' in inspect.getsource(responses)
