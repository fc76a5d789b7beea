"""What the local stack changes in moto 5.2.5 to run faster; every change keeps moto's answers.

`install(patch)` applies them through the caller's ``patch(owner, name, replacement)``, which also
restores the originals. Each relies on moto internals pinned by `tests/contract/test_moto_canary.py`.

Caches of what moto rebuilds on every request or execution, each for a result that cannot differ
between calls:
- Step Functions' `boto_client_for` (used for each Lambda task): a client per task costs ~12 ms.
- `moto.backends.list_of_moto_modules`, which moto's dispatcher calls for every request, under its one
  lock, to list moto's own package directory (a listdir and ~200 stats).
- The ASL program of each state machine definition: `ExecutionWorker._get_evaluation_entrypoint` lexes,
  parses and preprocesses the definition for every execution (ANTLR in pure Python, ~0.1-0.3 s). The
  program is a tree of components whose evaluation keeps its state in the execution's `Environment`,
  never on the components (pinned by the canary), so one program serves every execution of that
  definition. The one lazily set attribute, `EvalComponent.heap_key` (a random id keying the execution's
  heap), is set on every component before the program is shared, so no two threads can race to set it.
- The JSONPath expressions of Step Functions: `jsonpath_ng` builds a new PLY parser for every `parse`
  (~1 ms); the parsed expression is an immutable AST, so each path string is parsed once.
- DynamoDB's expressions: an UpdateItem parses its update expression twice (~1 ms each) and every
  condition expression is lexed by regular expressions, token by token. The update expression's AST
  is only read (`find_clauses`) or deep-copied before validation fills it in, and the lexer's tokens
  are tuples of strings read by the parser that follows, so both are cached by expression string
  (what depends on `ExpressionAttributeNames`/`Values` still runs for every request).
- The method names of a response class: moto's `call_action` lists them with `inspect.getmembers` for
  every request to check that the action is one; a class's functions do not change while it serves.
- What an UpdateItem's validators ask of each node of its AST: ten traversals ask every node
  `isinstance(node, Node)` (an ABC, so each check goes through `ABCMeta`) and rebuild the traverser's
  map of node classes to process (`nodes_to_be_processed`, a dict of bound methods each call). Both
  answers depend only on the traverser's class and the node's class (every `_processing_map` is a dict
  whose keys are classes, pinned by the canary), so they are kept per pair of classes. The hook
  called before each child (``pre_processing_of_child``) does nothing but in the one traverser class
  that overrides it, so it is called for that class only. The walk, its order and each processing
  are moto's.

Copies moto makes that nothing reads:
- TransactWriteItems deep-copies every table it names before running, for its rollback (0.1 s per
  transaction at a few thousand items, growing with the table): the items the transaction may write
  are copied instead and put back on a rollback (`_ItemRollback`).
- UpdateItem deep-copies its item before the update, read only for a stream's record: not made for a
  table without a stream. Its validation deep-copies the cached AST (unpickled instead) and runs three
  passes that only check the tree, skipped on a copy of an AST that passed them (`_AstCopies`).

Sums without copies, ids in one draw:
- An item's size: ``LimitedSizeDict`` sums the whole item's size on every attribute an update sets
  (the 400 KB check), and moto's ``DynamoType.size`` wraps each map value in a new ``DynamoType``,
  which copies that value's whole subtree, at every level of the map. The same sum is taken over the
  values as they are (`item_size`).
- A response's request id: 52 characters drawn one ``choice`` at a time (~50 µs a request); drawn
  with one ``choices`` call instead, from the same alphabet and moto's same seedable random.

A shorter path for DynamoDB's items: moto's JSON response serializer walks every attribute value
member by member, asking six alias providers per member where to find it (a 22-attribute item took
~4 ms of a ~6 ms GetItem). DynamoDB's handler hands it items already in wire form (plain dicts, binary
values as bytes), for which every alias resolves to the member's own key, so an `AttributeValue` given
as such a dict is written directly, by the same rules per member type (strings through `str`, binary
through the serializer's own base64, booleans as they are, a `None` member left out). Anything else
(another shape, an object, a key that is no member, a map key "", a response transformer) takes
moto's own path.
"""

from __future__ import annotations

import copy
import functools
import pickle
import string
import threading
from collections import deque
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any

Patch = Callable[[Any, str, Any], None]


def install(patch: Patch) -> None:
    """Apply every cache and short path (moto is imported here, late)."""
    from moto import backends
    from moto.core import responses
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.utils import json_path
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    client_for = lambda_eval_utils.__dict__["boto_client_for"]
    patch(lambda_eval_utils, "boto_client_for", _cached_client_factory(client_for))
    patch(backends, "list_of_moto_modules", _listed_once(backends.__dict__["list_of_moto_modules"]))
    patch(ExecutionWorker, "_get_evaluation_entrypoint", _cached_entrypoint())
    patch(json_path, "parse", _cached_parse(json_path.__dict__["parse"]))
    patch(result_path, "parse", _cached_parse(result_path.__dict__["parse"]))
    patch(
        responses, "method_names_from_class", _names_per_class(responses.__dict__["method_names_from_class"])
    )
    patch(responses, "gen_amzn_requestid_long", request_id)
    _install_dynamodb(patch)


def _install_dynamodb(patch: Patch) -> None:
    from moto.core.serialize import BaseJSONSerializer
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser  # type: ignore[attr-defined]

    # mypy finds no such class in moto 5.2.5's module; it is there (tests/contract/test_moto_canary.py)
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]

    make = UpdateExpressionParser.__dict__["make"].__func__
    copies = _AstCopies()
    patch(UpdateExpressionParser, "make", classmethod(_cached_update_expression(make, copies)))
    patch(validators, "deepcopy", copies.deepcopy)
    patch(DepthFirstTraverser, "traverse", copies.checked_once(DepthFirstTraverser.__dict__["traverse"]))
    lex = ConditionExpressionParser.__dict__["_lex_condition_expression"]
    patch(ConditionExpressionParser, "_lex_condition_expression", _cached_lexer(lex))
    structure = BaseJSONSerializer.__dict__["_serialize_type_structure"]
    patch(BaseJSONSerializer, "_serialize_type_structure", _attribute_values_directly(structure))
    patch(DepthFirstTraverser, "traverse_node_recursively", _traverse_with_known_classes())
    patch(DynamoType, "size", item_size)
    _install_item_rollback(patch)


def _install_item_rollback(patch: Patch) -> None:
    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    rollback = _ItemRollback(Table)
    patch(models, "copy", rollback.copy_module)
    original = DynamoDBBackend.__dict__["transact_write_items"]
    patch(DynamoDBBackend, "transact_write_items", rollback.wrap(original))
    update_item = DynamoDBBackend.__dict__["update_item"]
    patch(DynamoDBBackend, "update_item", rollback.without_stream_copy(update_item))


def _cached_client_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    cache: dict[tuple[str, str], Any] = {}
    lock = threading.Lock()

    @functools.wraps(original)
    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        with lock:
            if (region, service) not in cache:
                cache[(region, service)] = original(
                    region=region, service=service, state_credentials=state_credentials
                )
            return cache[(region, service)]

    return boto_client_for


def _listed_once(original: Callable[[], Iterable[str]]) -> Callable[[], tuple[str, ...]]:
    """moto's own package directories, listed once (they are files of the installed package)."""
    listed: list[tuple[str, ...]] = []

    @functools.wraps(original)
    def list_of_moto_modules() -> tuple[str, ...]:
        if not listed:
            listed.append(tuple(original()))
        return listed[0]

    return list_of_moto_modules


def _cached_entrypoint() -> Callable[[Any], Any]:
    """``ExecutionWorker._get_evaluation_entrypoint`` with the program parsed once per definition."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    @functools.lru_cache(maxsize=64)
    def program(definition: str) -> Any:
        parsed = AmazonStateLanguageParser.parse(definition)[0]
        _fix_heap_keys(parsed)
        return parsed

    def _get_evaluation_entrypoint(worker: Any) -> Any:
        return program(worker._evaluation_details.state_machine_details.definition)

    return _get_evaluation_entrypoint


def _fix_heap_keys(program: Any) -> None:
    """Set ``heap_key`` on every component of ``program`` (it is set on first read otherwise)."""
    from moto.stepfunctions.parser.asl.component.component import Component
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent

    seen: set[int] = set()
    pending: list[Any] = [program]
    while pending:
        node = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, EvalComponent):
            _ = node.heap_key
        if isinstance(node, Component):
            pending.extend(vars(node).values())
        elif isinstance(node, list | tuple | set | frozenset):
            pending.extend(node)
        elif isinstance(node, dict):
            pending.extend(node.values())


def _cached_parse(original: Callable[[str], Any]) -> Callable[[str], Any]:
    """A JSONPath ``parse`` that parses each path once (the expression is an immutable AST)."""
    return functools.wraps(original)(functools.lru_cache(maxsize=4096)(original))


_EXPRESSIONS_CACHED = 4096


def _names(names: dict[str, str] | None) -> tuple[tuple[str, str], ...] | None:
    return None if names is None else tuple(sorted(names.items()))


def _cached_update_expression(
    make: Callable[[Any, str], Any], copies: _AstCopies
) -> Callable[[Any, str], Any]:
    """``UpdateExpressionParser.make`` parsing each expression once (a parse error is raised every time)."""
    parsed: dict[tuple[Any, str], Any] = {}

    @functools.wraps(make)
    def cached_make(cls: Any, expression_str: str) -> Any:
        found = parsed.get((cls, expression_str))
        if found is None:
            found = make(cls, expression_str)
            if len(parsed) < _EXPRESSIONS_CACHED:
                parsed[(cls, expression_str)] = found
                copies.keep(found)
        return found

    return cached_make


class _AstCopies:
    """The copies an UpdateItem's validation makes of a cached update expression's AST, and the checks of
    them that depend on the AST and the request's names alone.

    - ``Validator.__init__`` deep-copies the AST before its ten passes fill the copy in (~0.35 ms by
      ``copy.deepcopy``): a cached AST is pickled once and each copy is unpickled (~0.05 ms), which makes
      the same tree (node classes and attributes, each parent its copy's parent).
    - The first three of those passes only check the tree: ``ActionCountValidator`` (at most one ADD,
      one REMOVE and one SET clause) reads nothing but its clauses, ``OverlappingPathsValidator`` its
      paths and ``ExpressionAttributeNames``, ``UpdateHashRangeKeyValidator`` its paths, those names and
      the table's key attributes. Each raises or gives the node back unchanged, having walked every node
      (the first two ask each ``UpdateExpression`` for its clauses, itself a walk). A copy of a cached AST
      is not walked again by a check it passed with the same inputs; any other pass, and these on any
      other tree, are moto's.
    """

    def __init__(self) -> None:
        self._pickled: dict[int, tuple[Any, bytes]] = {}  # id(cached AST) -> (the AST, kept alive; pickle)
        self._passed: set[tuple[int, type, Any]] = set()  # (id(cached AST), check, its other inputs)
        self._last = threading.local()  # this thread's last copy: (copy, cached AST)

    def keep(self, ast: Any) -> None:
        try:
            self._pickled[id(ast)] = (ast, pickle.dumps(ast, protocol=pickle.HIGHEST_PROTOCOL))
        except Exception:  # an AST pickle cannot write is deep-copied as before
            return

    def deepcopy(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
        """``deepcopy`` as ``moto.dynamodb.parsing.validators`` sees it."""
        kept = self._pickled.get(id(value)) if memo is None else None
        if kept is None or kept[0] is not value:
            return copy.deepcopy(value, memo)
        copied = pickle.loads(kept[1])  # noqa: S301 - bytes this process pickled from moto's own AST
        self._last.pair = (copied, value)
        return copied

    def checked_once(self, traverse: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        """``DepthFirstTraverser.traverse`` skipping a pass that only checks (the three in ``inputs``, each
        with what it reads besides the tree) on a copy of a cached AST that passed it with the same
        inputs."""
        from moto.dynamodb.parsing import validators

        inputs: dict[type, Callable[[Any], Any]] = {
            validators.ActionCountValidator: lambda _: (),
            validators.OverlappingPathsValidator: lambda v: _names(v.expression_attribute_names),
            validators.UpdateHashRangeKeyValidator: lambda v: (
                tuple(v.table_key_attributes),
                _names(v.expression_attribute_names),
            ),
        }

        @functools.wraps(traverse)
        def traverse_once(traverser: Any, node: Any) -> Any:
            read = inputs.get(type(traverser))
            copied, cached = getattr(self._last, "pair", (None, None))
            if read is None or copied is not node:
                return traverse(traverser, node)
            try:
                passed = (id(cached), type(traverser), read(traverser))
                hash(passed)
            except TypeError:  # inputs that cannot key a cache (not strings): moto's pass
                return traverse(traverser, node)
            if passed in self._passed:
                return node
            result = traverse(traverser, node)  # raises for a tree that fails: never kept
            if len(self._passed) < _EXPRESSIONS_CACHED:
                self._passed.add(passed)
            return result

        return traverse_once


def _cached_lexer(lex: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``ConditionExpressionParser._lex_condition_expression`` lexing each expression once; every parser
    gets a deque of its own (the parser consumes it)."""
    lexed: dict[str, tuple[Any, ...]] = {}

    @functools.wraps(lex)
    def _lex_condition_expression(parser: Any) -> deque[Any]:
        expression = parser.condition_expression
        nodes = lexed.get(expression)
        if nodes is None:
            nodes = tuple(lex(parser))
            if len(lexed) < _EXPRESSIONS_CACHED:
                lexed[expression] = nodes
        return deque(nodes)

    return _lex_condition_expression


def _names_per_class(original: Callable[[object], list[str]]) -> Callable[[object], list[str]]:
    """``method_names_from_class`` listing each class once (callers only test membership)."""
    listed: dict[object, list[str]] = {}

    @functools.wraps(original)
    def method_names_from_class(clazz: object) -> list[str]:
        names = listed.get(clazz)
        if names is None:
            names = listed[clazz] = original(clazz)
        return names

    return method_names_from_class


class _KnownClasses:
    """What a traversal asks per traverser class: each node class's two checks, and its per-child hook
    (None when it is the base class's, which does nothing)."""

    def __init__(self) -> None:
        from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Node  # type: ignore[attr-defined]

        self._node = Node
        self._base_hook = DepthFirstTraverser.__dict__["pre_processing_of_child"]
        self._checked: dict[type, dict[type, tuple[bool, bool]]] = {}
        self.hooks: dict[type, Callable[..., Any] | None] = {}

    def checks(self, traverser: Any, node: Any) -> tuple[bool, bool]:
        by_node = self._checked.get(type(traverser))
        if by_node is None:  # the hook first: a traversal reads it once this class is known
            hook = type(traverser).pre_processing_of_child
            self.hooks[type(traverser)] = None if hook is self._base_hook else hook
            by_node = self._checked[type(traverser)] = {}
        found = by_node.get(type(node))
        if found is None:
            is_node = isinstance(node, self._node)
            processed = is_node and isinstance(node, traverser.nodes_to_be_processed())
            found = by_node[type(node)] = (is_node, processed)
        return found


def _traverse_with_known_classes() -> Callable[..., Any]:
    """``DepthFirstTraverser.traverse_node_recursively`` with its two class checks kept per pair of
    (traverser class, node class), and the per-child hook called only for a traverser class that has
    one of its own (one of moto's traversers does); otherwise the same walk, in the same order."""
    known = _KnownClasses()

    def traverse_node_recursively(self: Any, node: Any, child_id: int = -1) -> Any:
        is_node, processed = known.checks(self, node)
        if is_node:
            parent_node = node.parent
            if node.children is not None:
                hook = known.hooks[type(self)]
                for i, child_node in enumerate(node.children):
                    if hook is not None:
                        hook(self, node, i)
                    self.traverse_node_recursively(child_node, i)
            if processed:
                node = self.process(node)
                node.parent = parent_node
                if parent_node:
                    parent_node.children[child_id] = node
        return node

    return traverse_node_recursively


# --- sums without copies, ids in one draw --------------------------------------------------------------

_REQUEST_ID_CHARACTERS = string.ascii_letters + string.digits  # moto's get_random_string pool


def request_id(headerdict: dict[str, Any] | None = None) -> str:
    """``moto.utilities.aws_headers.gen_amzn_requestid_long`` as ``moto.core.responses`` calls it."""
    from moto.moto_api._internal import mock_random

    req_id = "".join(mock_random.choices(_REQUEST_ID_CHARACTERS, k=52))
    if headerdict is not None and isinstance(headerdict, dict):
        headerdict.update({"x-amzn-requestid": req_id})
    return req_id


def item_size(value: Any) -> int:
    """``DynamoType.size``: the same sum per type, over the values as they are (a map's or a list's
    members are ``DynamoType``s, or plain ``{type: value}`` dicts that moto wraps as it reads them)."""
    kind, inner = value.type, value.value
    if kind == "N":
        return len(str(inner))
    if kind in _SETS:
        member = kind[0]
        return sum(len(str(v)) if member == "N" else _bytes(v) for v in inner)
    if kind == "L":
        return sum(item_size(v) for v in inner)
    if kind == "M":
        return sum(_bytes(k) + item_size(_typed(v)) for k, v in inner.items())
    if isinstance(inner, bool):
        return 1
    return _bytes(inner)


_SETS = frozenset({"SS", "NS", "BS"})


def _typed(value: Any) -> Any:
    from moto.dynamodb.models.dynamo_type import DynamoType

    return value if type(value) is DynamoType else DynamoType(value)


def _bytes(value: Any) -> int:
    return len(value if isinstance(value, bytes) else value.encode("utf-8"))


# --- DynamoDB's attribute values, written directly ----------------------------------------------------

_STRINGS = frozenset({"S", "N"})
_STRING_SETS = frozenset({"SS", "NS"})
_BOOLEANS = frozenset({"NULL", "BOOL"})
# the members of DynamoDB's AttributeValue shape, in the model's order (moto writes them in this order)
ATTRIBUTE_VALUE_MEMBERS = ("S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL")
_MEMBERS = frozenset(ATTRIBUTE_VALUE_MEMBERS)


class _NotPlain(Exception):
    """A value the direct path does not write: moto's own serializer writes the whole value instead."""


def _attribute_values_directly(original: Callable[..., None]) -> Callable[..., None]:
    """``BaseJSONSerializer._serialize_type_structure`` writing a DynamoDB ``AttributeValue`` given as a
    plain dict directly; everything else goes to ``original``."""

    @functools.wraps(original)
    def _serialize_type_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if (
            key
            and shape.name == "AttributeValue"
            and type(value) is dict
            and self.operation_model.service_model.service_name == "dynamodb"
            and not getattr(self._value_picker, "response_transformers", None)
        ):
            try:
                written = attribute_value(value, self._base64)
            except _NotPlain:
                pass
            else:
                serialized[key] = written
                return
        original(self, serialized, value, shape, key)

    return _serialize_type_structure


def attribute_value(value: Any, base64: Callable[[Any], str]) -> dict[str, Any]:
    """One AttributeValue in wire form, as moto's JSON serializer writes it (``base64``: the serializer's
    own); raises _NotPlain for what only moto's path may write."""
    if type(value) is not dict or not value.keys() <= _MEMBERS:
        raise _NotPlain
    written: dict[str, Any] = {}
    for member in ATTRIBUTE_VALUE_MEMBERS:
        item = value.get(member)
        if item is not None:
            written[member] = _member(member, item, base64)
    return written


def _member(member: str, item: Any, base64: Callable[[Any], str]) -> Any:
    if member in _STRINGS:
        return _string(item)
    if member in _BOOLEANS:
        return item
    if member == "B":
        return base64(item)
    if member in _STRING_SETS:
        return [_string(one) for one in item]
    if member == "BS":
        return [base64(one) for one in item]
    if member == "M":
        if type(item) is not dict or "" in item:  # moto writes the members of a ""-keyed value into M
            raise _NotPlain
        return {key: attribute_value(one, base64) for key, one in item.items() if one is not None}
    return [None if one is None else attribute_value(one, base64) for one in item]  # L: None kept


def _string(value: Any) -> Any:
    """moto's JSON string member: an Enum's value, then ``str`` of anything but None, {} and []."""
    if isinstance(value, Enum):
        value = value.value
    return str(value) if value not in [None, {}, []] else value


# --- TransactWriteItems: the items it writes kept for its rollback, not every table ----------------------


class _LiveTable:
    """What moto keeps as a table's state before a transaction: here the live table itself (the items the
    transaction writes are kept by `_ItemRollback`)."""

    def __init__(self, table: Any) -> None:
        self.table = table


class _CopyModule:
    """The ``copy`` module as ``moto.dynamodb.models`` sees it: ``deepcopy`` of a table inside a transaction
    kept by `_ItemRollback` gives a `_LiveTable`; inside an UpdateItem on a table without a stream, the
    copy of the item before (``orig_item``, read only to write the stream's record) is not made; everything
    else is ``copy``'s."""

    def __init__(self, table_class: type, inside: threading.local) -> None:
        self._table_class = table_class
        self._inside = inside

    def deepcopy(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
        if type(value) is self._table_class and getattr(self._inside, "transaction", False):
            return _LiveTable(value)
        if getattr(self._inside, "no_stream", False):
            self._inside.no_stream = False  # the one copy this UpdateItem makes
            return None
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


class _ItemRollback:
    """``DynamoDBBackend.transact_write_items`` keeping, for its rollback, a copy of each item it may write
    instead of a deep copy of each table it names (which grew with the table: 0.1 s per transaction at a
    few thousand items). moto runs every operation and decides whether to roll back; on a rollback it puts
    back what it kept, a `_LiveTable`, which is swapped for the live table, and each kept item is put back
    (an item that did not exist is deleted). A table with a stream (its records are rolled back with the
    table) takes moto's own copy."""

    def __init__(self, table_class: type) -> None:
        self._inside = threading.local()
        self.copy_module = _CopyModule(table_class, self._inside)

    def wrap(self, original: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(original)
        def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
            kept = _kept_items(backend, transact_items)
            if kept is None:
                return original(backend, transact_items)
            self._inside.transaction = True
            try:
                return original(backend, transact_items)
            except BaseException:
                for name, table in list(backend.tables.items()):
                    if isinstance(table, _LiveTable):
                        backend.tables[name] = table.table
                for table, hash_value, range_value, item in kept:
                    _put_back(table, hash_value, range_value, item)
                raise
            finally:
                self._inside.transaction = False

        return transact_write_items

    def without_stream_copy(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """``DynamoDBBackend.update_item`` not copying the item first when its table has no stream."""

        @functools.wraps(original)
        def update_item(backend: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
            table = backend.tables.get(table_name)
            if table is None or table.stream_shard is not None:
                return original(backend, table_name, *args, **kwargs)
            self._inside.no_stream = True
            try:
                return original(backend, table_name, *args, **kwargs)
            finally:
                self._inside.no_stream = False

        return update_item


def _kept_items(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, Any, Any, Any]] | None:
    """A copy of the item at each key the transaction names, as (table, hash, range, item or None); None
    when a table has a stream. A key moto cannot read is skipped: its operation fails before writing."""
    kept: dict[tuple[int, Any, Any], tuple[Any, Any, Any, Any]] = {}
    for transact_item in transact_items:
        try:
            op_type, op = next(iter(transact_item.items()))
            table = backend.tables.get(op.get("TableName"))
            if table is None:
                continue
            if table.stream_shard is not None:
                return None
            if op_type == "Put":
                attrs = op["Item"]
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            hash_value, range_value = backend.get_keys_value(table, key)
            slot = (id(table), hash_value, range_value)
            if slot not in kept:
                item = table.get_item(hash_value, range_value)
                kept[slot] = (table, hash_value, range_value, copy.deepcopy(item))
        except Exception:  # noqa: S112 - moto raises its own error for this operation, before writing
            continue
    return list(kept.values())


def _put_back(table: Any, hash_value: Any, range_value: Any, item: Any) -> None:
    if item is None:
        table.delete_item(hash_value, range_value)  # no stream (else moto's own copy ran): no record
    elif range_value is not None:
        table.items[hash_value][range_value] = item
    else:
        table.items[hash_value] = item
