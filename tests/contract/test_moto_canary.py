"""The private moto names the local stack (local/stack/aws.py and moto_speed.py) relies on: a moto upgrade
fails loudly here."""

from __future__ import annotations

import importlib.metadata
import inspect
import re

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


# --- what local/stack/moto_speed.py caches ------------------------------------------------------------------


def test_moto_dispatcher_lists_its_modules_per_request():
    from moto import backends
    from moto.moto_server import werkzeug_app

    assert werkzeug_app.backends is backends
    assert inspect.isgeneratorfunction(backends.list_of_moto_modules)
    assert list(inspect.signature(backends.list_of_moto_modules).parameters) == []
    # looked up on the module at each call, so patching the module attribute reroutes it
    source = inspect.getsource(werkzeug_app.DomainDispatcherApplication.get_backend_for_host)
    assert "host in backends.list_of_moto_modules()" in source
    assert "os.listdir(path)" in inspect.getsource(backends.list_of_moto_modules)


def test_moto_step_functions_parses_the_definition_per_execution():
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend import execution_worker
    from moto.stepfunctions.parser.backend.test_state.execution_worker import TestStateExecutionWorker

    worker = execution_worker.ExecutionWorker
    assert list(inspect.signature(worker._get_evaluation_entrypoint).parameters) == ["self"]
    source = inspect.getsource(worker._get_evaluation_entrypoint)
    assert "AmazonStateLanguageParser.parse(" in source
    assert "self._evaluation_details.state_machine_details.definition" in source
    assert "program = self._get_evaluation_entrypoint()" in inspect.getsource(worker._execution_logic)
    assert execution_worker.SyncExecutionWorker.__dict__.get("_get_evaluation_entrypoint") is None
    # TestState keeps its own parser (not cached)
    assert "_get_evaluation_entrypoint" in TestStateExecutionWorker.__dict__
    assert list(inspect.signature(AmazonStateLanguageParser.parse).parameters) == ["definition"]


def test_moto_asl_components_keep_no_execution_state():
    """A parsed program is shared by every execution of its definition: no component method but a
    constructor assigns to the component, except ``EvalComponent.heap_key`` (set once, before sharing)."""
    import ast
    from pathlib import Path

    from moto.stepfunctions.parser.asl import component
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent

    constructors = {"__init__", "from_state_props"}
    runtime_workers = {  # created per evaluation (Map and Parallel) or per Environment, not in the program
        "MapRunRecordPoolManager",
        "IterationWorker",
        "JobPool",
        "Counter",
        "MapRunRecord",
        "BranchWorker",
        "BranchWorkerPool",
    }
    found = []
    for path in Path(component.__file__).parent.rglob("*.py"):
        for cls in (n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef)):
            if cls.name in runtime_workers:
                continue
            for method in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
                if method.name in constructors:
                    continue
                for node in ast.walk(method):
                    targets = node.targets if isinstance(node, ast.Assign) else []
                    targets += [node.target] if isinstance(node, ast.AugAssign | ast.AnnAssign) else []
                    found += [
                        f"{cls.name}.{method.name}: {ast.unparse(t)}"
                        for t in targets
                        if ast.unparse(t).startswith("self.")
                    ]
    assert found == ["EvalComponent.heap_key: self.__heap_key"]
    assert "_EvalComponent__heap_key" in vars(EvalComponent)
    assert isinstance(vars(EvalComponent)["heap_key"], property)


def test_moto_step_functions_jsonpath_parse_names():
    import jsonpath_ng
    import jsonpath_ng.ext
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    assert json_path.parse is jsonpath_ng.ext.parse
    assert result_path.parse is jsonpath_ng.parse
    assert "parse(path)" in inspect.getsource(json_path.extract_json)
    assert "parse(self.result_path_src)" in inspect.getsource(result_path.ResultPath._eval_body)
    # what makes a cache worth it: every parse builds a parser
    assert "JsonPathParser()" in inspect.getsource(jsonpath_ng.parse)


def test_moto_dynamodb_update_expression_ast_is_read_or_copied():
    """local/stack/moto_speed.py caches ``UpdateExpressionParser.make`` per expression: moto only reads
    the AST it returns (``find_clauses``) or deep-copies it before validation fills it in."""
    from moto.dynamodb import responses
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    assert isinstance(UpdateExpressionParser.__dict__["make"], classmethod)
    assert list(inspect.signature(UpdateExpressionParser.make).parameters) == ["expression_str"]
    assert "self.node_to_validate = deepcopy(expression)" in inspect.getsource(validators.Validator.__init__)
    for source in (inspect.getsource(DynamoDBBackend.update_item), inspect.getsource(responses)):
        for line in source.splitlines():
            if "update_expression_ast" in line and "UpdateExpressionParser.make(" not in line:
                assert ".find_clauses(" in line or line.strip() in ("update_expression_ast,",), line
    assert "validated_ast.normalize()" in inspect.getsource(DynamoDBBackend.update_item)


def test_moto_dynamodb_condition_lexer_depends_on_the_expression_only():
    """local/stack/moto_speed.py caches ``ConditionExpressionParser._lex_condition_expression`` per
    expression: it reads nothing but ``self.condition_expression`` and returns a deque of namedtuples
    the parser consumes; no one appends to a node's children in place."""
    from moto.dynamodb import comparisons
    from moto.dynamodb.comparisons import ConditionExpressionParser

    parser = ConditionExpressionParser
    assert list(inspect.signature(parser._lex_condition_expression).parameters) == ["self"]
    lex = inspect.getsource(parser._lex_condition_expression)
    assert "remaining_expression = self.condition_expression" in lex
    assert "self.expression_attribute" not in lex + inspect.getsource(parser._lex_one_node)
    assert "nodes = self._lex_condition_expression()" in inspect.getsource(parser.parse)
    assert parser.Node._fields == ("nonterminal", "kind", "text", "value", "children")
    source = inspect.getsource(comparisons)
    for mutation in (".children.append", ".children.extend", ".children.insert", ".children.pop"):
        assert mutation not in source
    assert not re.search(r"\.children\[[^]]*\]\s*=[^=]", source)


# --- what local/stack/moto_speed.py changes (tests/tooling/stack/test_moto_speed.py checks the answers) -----


def test_moto_json_serializer_writes_attribute_values_member_by_member():
    from moto.core import serialize
    from moto.core.utils import get_service_model
    from moto.dynamodb.responses import DynamoResult

    from maskgate_local.stack.moto_speed import ATTRIBUTE_VALUE_MEMBERS

    structure = serialize.BaseJSONSerializer._serialize_type_structure
    assert list(inspect.signature(structure).parameters) == ["self", "serialized", "value", "shape", "key"]
    assert 'f"_serialize_type_{shape.type_name}"' in inspect.getsource(
        serialize.ResponseSerializer._serialize
    )
    assert "if member_value is not None:" in inspect.getsource(
        serialize.ResponseSerializer._serialize_structure_member
    )
    assert "str(value) if value not in [None, {}, []] else value" in inspect.getsource(
        serialize.BaseJSONSerializer._serialize_type_string
    )
    assert [p.__name__ for p in serialize.DEFAULT_ALIAS_PROVIDERS] == [
        "ExplicitAlias",
        "ShapeNameAlias",
        "NoAlias",
        "ShapePrefixAlias",
        "ClassPrefixAlias",
        "ModelAlias",
    ]
    shape = get_service_model("dynamodb").shape_for("AttributeValue")
    assert tuple(shape.members) == ATTRIBUTE_VALUE_MEMBERS
    assert [m.type_name for m in shape.members.values()] == [
        "string", "string", "blob", "list", "list", "list", "map", "list", "boolean", "boolean"
    ]  # fmt: skip
    assert "dynamo_to_dict(result)" in inspect.getsource(DynamoResult.__init__)


def test_moto_lists_a_response_class_methods_per_request():
    from moto.core import responses

    source = inspect.getsource(responses.BaseResponse.call_action)
    assert "method_names = method_names_from_class(self.__class__)" in source
    assert "if action in method_names:" in source
    assert inspect.getsource(responses).count("method_names_from_class(") == 1


def test_moto_dynamodb_traversers_process_by_class_only():
    """local/stack/moto_speed.py keeps the traversal's two class checks per (traverser class, node class):
    no traverser changes how it walks, and every processing map is keyed by classes alone."""
    import ast
    from pathlib import Path

    from moto.dynamodb import parsing
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser

    source = inspect.getsource(DepthFirstTraverser.traverse_node_recursively)
    for line in (
        "if isinstance(node, Node):",
        "if isinstance(node, self.nodes_to_be_processed()):",
        "self.pre_processing_of_child(node, i)",
        "node = self.process(node)",
        "parent_node.children[child_id] = node",
    ):
        assert line in source
    maps = []
    for path in Path(parsing.__file__).parent.rglob("*.py"):
        for cls in (n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef)):
            for method in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
                assert method.name not in (
                    "traverse_node_recursively",
                    "nodes_to_be_processed",
                    "process",
                ) or (cls.name == "DepthFirstTraverser"), f"{cls.name}.{method.name}"
                if method.name == "_processing_map" and cls.name != "DepthFirstTraverser":
                    (returned,) = [n.value for n in ast.walk(method) if isinstance(n, ast.Return)]
                    assert isinstance(returned, ast.Dict), cls.name
                    assert all(isinstance(k, ast.Name) for k in returned.keys), cls.name
                    maps.append(cls.name)
    assert len(maps) == 10


def test_moto_dynamodb_transactions_copy_tables_through_the_models_copy_module():
    """local/stack/moto_speed.py keeps a transaction's items for its rollback instead of whole tables:
    ``transact_write_items`` copies each table it names with the ``copy`` module of
    ``moto.dynamodb.models`` and, to roll back, assigns those copies back into ``self.tables``; tables
    keep items in ``items`` by hash (then range) key, and a stream in ``stream_shard``."""
    import copy

    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend, Table

    assert models.copy is copy
    source = inspect.getsource(DynamoDBBackend.transact_write_items)
    assert re.search(
        r"original_table_state\[table_name\] = copy\.deepcopy\(\s*self\.tables\[table_name\]", source
    )
    assert source.count("self.tables[table_name] = original_table_state[table_name]") == 2
    assert "self.get_item(table_name, key)" in source
    assert list(inspect.signature(DynamoDBBackend.get_keys_value).parameters) == ["self", "table", "keys"]
    put = inspect.getsource(Table.put_item)
    assert "self.items[hash_value][range_value] = item" in put and "self.items[hash_value] = item" in put
    assert "self.stream_shard = None" in inspect.getsource(Table.__init__).replace(": StreamShard | None", "")


def test_moto_dynamodb_update_item_copies_the_item_only_for_its_stream():
    """local/stack/moto_speed.py skips ``orig_item = copy.deepcopy(item)`` for a table without a stream:
    it is the first of the models module's two deep copies an UpdateItem reaches, read only for the
    stream's record."""
    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend

    module = inspect.getsource(models)
    assert module.count("copy.deepcopy(") == 2
    source = inspect.getsource(DynamoDBBackend.update_item)
    assert "orig_item = copy.deepcopy(item)" in source
    assert source.count("orig_item") == 2
    assert "table.stream_shard.add(orig_item, item)" in source


def test_moto_dynamodb_validation_copies_the_ast_then_runs_its_passes_in_order():
    """local/stack/moto_speed.py unpickles a cached AST where ``Validator.__init__`` deep-copies it, and
    skips ``ActionCountValidator`` on a copy of an AST it passed: the validator module's ``deepcopy`` is
    ``copy.deepcopy``; validation traverses the copy with each processor in turn, the action count first;
    that pass reads only the tree's clauses and gives the node back."""
    import copy

    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser

    assert validators.deepcopy is copy.deepcopy
    assert "n = processor.traverse(n)" in inspect.getsource(validators.Validator.validate)
    assert "def traverse(self, node):" in inspect.getsource(DepthFirstTraverser)
    processors = inspect.getsource(validators.UpdateExpressionValidator.get_ast_processors)
    assert processors.index("ActionCountValidator()") < processors.index("OverlappingPathsValidator(")
    assert processors.index("OverlappingPathsValidator(") < processors.index("UpdateHashRangeKeyValidator(")
    assert processors.index("UpdateHashRangeKeyValidator(") < processors.index(
        "ExpressionAttributeValueProcessor("
    )
    checks = {
        validators.ActionCountValidator: "{UpdateExpression: self.verify_action_counts}",
        validators.OverlappingPathsValidator: "{UpdateExpression: self.check_for_overlapping_paths}",
        validators.UpdateHashRangeKeyValidator: "{UpdateExpressionPath: self.check_for_hash_or_range_key}",
    }
    for check, processing in checks.items():
        source = inspect.getsource(check)
        assert "return " + processing in source
        assert source.rstrip().endswith("return node")  # the one processing gives the node back
        assert not re.search(r"(\.children(\[[^\]]*\])?|\.parent)\s*=", source)  # nothing in the tree is set
        assert "self.item" not in source and "pre_processing_of_child" not in source
        init = check.__dict__.get("__init__")
        if init is not None:  # what the check reads besides the tree
            assert list(inspect.signature(init).parameters)[1:] in (
                ["expression_attribute_names"],
                ["table_key_attributes", "expression_attribute_names"],
            )


def test_moto_flask_views_call_their_handler_as_flaskless_app_does():
    """`FlasklessApp` repeats `convert_to_flask_response.__call__` without Flask; moto's apps add only
    flask-cors to a view (no other before- or after-request hook)."""
    from moto.core.utils import convert_to_flask_response
    from moto.moto_server.werkzeug_app import create_backend_app

    source = inspect.getsource(convert_to_flask_response.__call__)
    for line in (
        "request = normalize_request(cast(Request, flask_request))",
        "recorder._record_request(request)",
        "result = self.callback(request, request.raw_url, dict(request.headers))",
        'result = 400, {}, exc.response["Error"]["Message"]',
        "response = Response(response=content, status=status, headers=headers)",
        'if request.method == "HEAD" and "content-length" in headers:',
        'response.headers["Content-Length"] = headers["content-length"]',
    ):
        assert line in source
    assert source.count("\n") < 30  # nothing else added
    app = create_backend_app("dynamodb")
    assert not any(app.before_request_funcs.values())
    after = [f.__module__ for funcs in app.after_request_funcs.values() for f in funcs]
    assert after == ["flask_cors.extension"]


def test_moto_draws_each_request_id_through_the_responses_modules_name():
    """local/stack/moto_speed.py replaces ``gen_amzn_requestid_long`` in ``moto.core.responses``, which
    imports it by name and calls it with the response's headers; moto draws it from its own random."""
    from moto.core import responses
    from moto.utilities import aws_headers

    assert responses.__dict__["gen_amzn_requestid_long"] is aws_headers.gen_amzn_requestid_long
    assert "request_id = gen_amzn_requestid_long(headers)" in inspect.getsource(responses)
    source = inspect.getsource(aws_headers.gen_amzn_requestid_long)
    assert "random.get_random_string(length=52)" in source and '"x-amzn-requestid"' in source


def test_moto_dynamodb_sizes_an_item_through_dynamo_type_size():
    """local/stack/moto_speed.py replaces ``DynamoType.size``, which the item size check of every set
    attribute (``LimitedSizeDict.__setitem__``) calls for each value."""
    from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict

    setitem = inspect.getsource(LimitedSizeDict.__setitem__)
    assert "item.size() if type(item) is DynamoType" in setitem and "405000" in setitem
    size = inspect.getsource(DynamoType.size)
    assert "DynamoType(v).size()" in size and "DynamoType({sub_type: v}).size()" in size
