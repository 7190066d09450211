"""Every change evreplay makes to moto's internals, in one place, pinned to the moto it was written for.

- In-process Lambda: without Docker, moto's `LambdaSimpleBackend.invoke` only echoes the payload. The
  replacement resolves the function's `Handler` from the template (function name = logical id) and
  calls it in this process with a fake LambdaContext. An exception becomes what Lambda answers: the
  `X-Amz-Function-Error: Unhandled` header and an `{"errorMessage", "errorType", ...}` body, so the
  state machine's Retry/Catch see the exception's class name as the error, as on AWS.
- Speed, measured on 2 cores (NOTES-moto.md): the Step Functions interpreter re-parses every
  JSONPath (3-6 ms each), so the parse is cached; SQS scans the whole queue through a slow
  `unix_time_millis` on every send, so it gets a `time.time()` equivalent; and every received
  message checks its retention period through `get_queue_attributes`, which computes every
  attribute of the queue (message counts included: O(queue) per message, O(queue²) to drain it),
  so that check reads the one attribute it needs; SendMessage likewise computes every attribute of
  the queue just to read ContentBasedDeduplication, so it reads that flag directly.
- Step Functions' optimized `states:startExecution` integration (the workflow's continue-as-new):
  moto passes the ASL's parameter names (`StateMachineArn`, `Name`, `Input`) to boto3 unchanged,
  which wants `stateMachineArn`, `name`, `input`, and returns boto3's camelCase output where AWS
  returns `ExecutionArn`, `StartDate`. The patch maps the names both ways, as AWS does.
- Step Functions execution ends: moto emits no EventBridge events, so where an execution ends
  (`BaseExecutionWorkerCommunication.terminated`) the patch publishes the "Step Functions Execution
  Status Change" event AWS would to the template's rules (`evreplay.local.events`), whose Lambda
  targets run in-process like any other function. (moto's StopExecution drops the error and cause
  it is given, so a stopped execution reports none: a known local difference.)
- Step Functions' failure log: every failed step (retried ones too) logged an ERROR of ~5 KB, the
  repr of the whole state with its parsed ASL. The patch logs one WARNING line instead: the state,
  the error, and the Lambda error's message when there is one.
- DynamoDB transactions: moto deep-copies every table a TransactWriteItems touches (to roll back),
  which costs O(table) per transaction (ingest is one transaction per event: quadratic) and, with
  the batch ingest's worker threads, fails with "dictionary changed size during iteration" when
  another write lands during the copy. The replacement snapshots only the items the transaction
  touches, and every DynamoDB request runs under one lock (the GIL serializes them anyway).
- DynamoDB Query on a table's own key: moto sorts the whole table (every comparison re-casting
  DynamoDB values) and walks the partition from its first item on every page, so paging through a
  5 000-item partition cost ~0.8 s a page. The replacement sorts only the queried partition, once per
  call, with each key cast once, and stops where the key condition's contiguous range ends. The
  legacy KeyConditions form keeps moto's code.
- DynamoDB Query on a global secondary index (one string hash key, one range key): moto compares every
  item of the table through casting equality, sorts with casting comparisons and projects each result
  by turning the whole item into JSON once per projected attribute; a stream replay's plan (16
  partitions a day) spent most of moto's CPU there. The replacement matches the hash key as a string,
  casts each sort key once and copies string-valued top-level projections; other index shapes,
  nested or non-string projections keep moto's code.
- DynamoDB responses: moto's generic serializer walks the output shape for every attribute value
  (~1 ms per item of a Query page). Item operations' outputs are already DynamoDB's wire JSON once
  moto has built them, so they are dumped as JSON directly; anything else (other operations, errors,
  binary values) keeps moto's serializer.
- DynamoDB items: moto builds every item (each write, each parsed item) one attribute at a time into a
  dict whose every assignment re-sums the size of all attributes already there (the 400 KB item limit):
  O(attributes²) per item, most of a BatchWriteItem's CPU. The replacement sizes the item once, with
  the same limit and the same error.

`apply()` raises `MotoPatchError` at once if moto is not the pinned version or an internal it
replaces has moved: a silently unapplied patch would show up later as an echoing Lambda or a
mysteriously slow suite.
"""

from __future__ import annotations

import copy
import email.utils
import functools
import hashlib
import json
import string
import threading
import time
import traceback
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import botocore.session
import moto
import moto.awslambda_simple.models as lambda_simple_models
import moto.dynamodb.models as dynamodb_models
import moto.dynamodb.models.dynamo_type as dynamodb_type_module
import moto.dynamodb.models.table as dynamodb_table_module
import moto.dynamodb.responses as dynamodb_responses
import moto.events.models as events_models
import moto.sqs.models as sqs_models
import moto.stepfunctions.parser.asl.component.common.path.result_path as result_path_module
import moto.stepfunctions.parser.asl.component.eval_component as eval_component_module
import moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn as sfn_task_module
import moto.stepfunctions.parser.asl.utils.json_path as json_path_module
import moto.stepfunctions.parser.backend.execution as sfn_execution_module
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

from evreplay.local.events import LocalEventBus, status_change_event
from evreplay.local.runtime import FakeLambdaContext, function_lock, load_handler
from evreplay.local.template import Template

MOTO_VERSION = "5.2.5"


class MotoPatchError(RuntimeError):
    """moto is not the version these patches were written for, or its internals moved."""


@dataclass(frozen=True)
class _Function:
    handler: str
    timeout_seconds: int
    memory_mb: int


# Every moto internal a patch replaces or relies on: (module, dotted attribute path).
_REQUIRED: tuple[tuple[Any, str], ...] = (
    (lambda_simple_models, "LambdaSimpleBackend.invoke"),
    (sqs_models, "unix_time_millis"),
    (sqs_models, "SQSBackend.send_message"),
    (sqs_models, "SQSBackend._validate_message"),
    (sqs_models, "SQSBackend.is_message_valid_based_on_retention_period"),
    (sqs_models, "Message"),
    (sqs_models, "random.uuid4"),
    (sqs_models, "random.choice"),
    (sqs_models, "MAXIMUM_MESSAGE_DELAY"),
    (sqs_models, "InvalidParameterValue"),
    (json_path_module, "parse"),
    (sfn_execution_module, "BaseExecutionWorkerCommunication.terminated"),
    (eval_component_module, "EvalComponent._log_failure_event_exception"),
    (eval_component_module, "EvalComponent._log_exception"),
    (eval_component_module, "LOG"),
    (sfn_execution_module, "BaseExecutionWorkerCommunication._reflect_execution_status"),
    (sfn_execution_module, "Execution.to_describe_output"),
    (events_models, "EventPattern.matches_event"),
    (sfn_task_module, "StateTaskServiceSfn._normalise_parameters"),
    (sfn_task_module, "StateTaskServiceSfn._normalise_response"),
    (sfn_task_module, "StateTaskServiceSfn._get_boto_service_action"),
    (result_path_module, "parse"),
    (dynamodb_responses, "DynamoHandler.call_action"),
    (dynamodb_responses, "DynamoHandler.serialized"),
    (dynamodb_responses, "DynamoHandler._get_action"),
    (dynamodb_models, "DynamoDBBackend.transact_write_items"),
    (dynamodb_models, "ConditionalCheckFailed"),
    (dynamodb_models, "MockValidationException"),
    (dynamodb_models, "MultipleTransactionsException"),
    (dynamodb_models, "TooManyTransactionsException"),
    (dynamodb_models, "TransactionCanceledException"),
    (dynamodb_models, "TransactWriteSingleOpException"),
    (dynamodb_models, "get_filter_expression"),
    (dynamodb_table_module, "Table.query"),
    (dynamodb_table_module, "Table._get_last_evaluated_key"),
    (dynamodb_table_module, "DynamoType"),
    (dynamodb_table_module, "RESULT_SIZE_LIMIT"),
    (dynamodb_type_module, "Item.__init__"),
    (dynamodb_type_module, "LimitedSizeDict"),
    (dynamodb_type_module, "DynamoType"),
    (dynamodb_type_module, "ItemSizeTooLarge"),
    (dynamodb_type_module, "bytesize"),
)

_lock = threading.Lock()
_dynamodb_lock = threading.RLock()
# Held by every moto DynamoDB request: whoever reads moto's tables directly takes it too.
DYNAMODB_LOCK = _dynamodb_lock
_functions: dict[str, _Function] = {}
_originals: dict[str, Any] = {}
_ends_in_flight = threading.Condition()
_ends = [0]  # execution ends whose status change event is being published
_event_bus: list[LocalEventBus] = []  # the template's rules; one bus, replaced by each apply()


def _missing(module: Any, path: str) -> bool:
    target = module
    for part in path.split("."):
        if not hasattr(target, part):
            return True
        target = getattr(target, part)
    return False


def check() -> None:
    """Fail loudly unless moto is the pinned version and every internal the patches touch is there."""
    if moto.__version__ != MOTO_VERSION:
        raise MotoPatchError(
            f"evreplay.local.moto_patches targets moto {MOTO_VERSION}, found {moto.__version__}: "
            "re-check each patched internal, then update MOTO_VERSION"
        )
    missing = [f"{module.__name__}.{path}" for module, path in _REQUIRED if _missing(module, path)]
    if missing:
        raise MotoPatchError(f"moto internals moved, cannot patch: {', '.join(missing)}")


def apply(template: Template) -> None:
    """Patch moto (once per process) and (re)register the template's functions. Idempotent."""
    check()
    functions = {
        logical_id: _Function(
            handler=template.function_handler(logical_id),
            timeout_seconds=template.function_timeout(logical_id),
            memory_mb=int(template.resolve(template.properties(logical_id).get("MemorySize", 128))),
        )
        for logical_id in template.functions()
    }
    bus = LocalEventBus(template.event_rules(), _call_function)
    with _lock:
        _functions.clear()
        _functions.update(functions)
        _event_bus[:] = [bus]
        if _originals:
            return
        _originals["sfn.terminated"] = sfn_execution_module.BaseExecutionWorkerCommunication.terminated
        sfn_execution_module.BaseExecutionWorkerCommunication.terminated = _execution_terminated  # type: ignore[method-assign]
        eval_component_module.EvalComponent._log_failure_event_exception = _log_failure_event  # type: ignore[method-assign]
        eval_component_module.EvalComponent._log_exception = _log_exception  # type: ignore[method-assign]
        _originals["invoke"] = lambda_simple_models.LambdaSimpleBackend.invoke
        _originals["unix_time_millis"] = sqs_models.unix_time_millis
        _originals["json_path.parse"] = json_path_module.parse
        _originals["result_path.parse"] = result_path_module.parse
        _originals["dynamodb.call_action"] = dynamodb_responses.DynamoHandler.call_action
        _originals["sfn._normalise_parameters"] = sfn_task_module.StateTaskServiceSfn._normalise_parameters
        _originals["dynamodb.Table.query"] = dynamodb_table_module.Table.query
        _originals["dynamodb.serialized"] = dynamodb_responses.DynamoHandler.serialized
        _originals["dynamodb.transact_write_items"] = dynamodb_models.DynamoDBBackend.transact_write_items
        _originals["dynamodb.Item.__init__"] = dynamodb_type_module.Item.__init__
        lambda_simple_models.LambdaSimpleBackend.invoke = _invoke_in_process  # type: ignore[method-assign]
        sqs_models.unix_time_millis = _unix_time_millis  # type: ignore[assignment]
        sqs_models.SQSBackend.is_message_valid_based_on_retention_period = _within_retention  # type: ignore[method-assign]
        sqs_models.SQSBackend.send_message = _send_message  # type: ignore[method-assign]
        # Parsed JSONPath expressions are immutable; the interpreter only calls find/update on them.
        json_path_module.parse = functools.lru_cache(maxsize=4096)(_originals["json_path.parse"])
        result_path_module.parse = functools.lru_cache(maxsize=1024)(_originals["result_path.parse"])
        dynamodb_models.DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
        dynamodb_responses.DynamoHandler.call_action = _locked_call_action  # type: ignore[method-assign]
        sfn_task_module.StateTaskServiceSfn._normalise_parameters = _sfn_parameters  # type: ignore[method-assign]
        sfn_task_module.StateTaskServiceSfn._normalise_response = _sfn_response  # type: ignore[method-assign]
        dynamodb_table_module.Table.query = _table_query  # type: ignore[method-assign]
        dynamodb_responses.DynamoHandler.serialized = _dynamodb_serialized  # type: ignore[method-assign]
        dynamodb_type_module.Item.__init__ = _item_init  # type: ignore[method-assign]


def applied() -> bool:
    return bool(_originals)


def _unix_time_millis(dt: Any = None) -> float:
    if dt is None:
        return time.time() * 1000.0
    original = _originals["unix_time_millis"]
    return float(original(dt))


def _within_retention(self: Any, queue_name: str, message: Any) -> bool:
    retention_seconds = int(self.get_queue(queue_name).message_retention_period)
    return bool(retention_seconds + message.sent_timestamp / 1000 > time.time())


def _send_message(
    self: Any,
    queue_name: str,
    message_body: str,
    message_attributes: dict[str, Any] | None = None,
    delay_seconds: int | None = None,
    deduplication_id: str | None = None,
    group_id: str | None = None,
    system_attributes: dict[str, Any] | None = None,
    validate_group_id: bool = True,
) -> Any:
    """moto 5.2.5's SQSBackend.send_message, reading ContentBasedDeduplication without computing
    every queue attribute (message counts included) for each message."""
    m = sqs_models
    queue = self.get_queue(queue_name)
    self._validate_message(
        queue,
        message_body=message_body,
        delay_seconds=int(delay_seconds or 0),
        deduplication_id=deduplication_id,
        group_id=group_id,
        validate_group_id=validate_group_id,
    )
    delay_seconds = int(delay_seconds) if delay_seconds is not None else queue.delay_seconds
    message = m.Message(str(m.random.uuid4()), message_body, system_attributes)
    if queue.fifo_queue and queue.content_based_deduplication:
        message.deduplication_id = hashlib.sha256(message_body.encode("utf-8")).hexdigest()
    if deduplication_id is not None:
        message.deduplication_id = deduplication_id
        message.sequence_number = "".join(m.random.choice(string.digits) for _ in range(20))
    if group_id is not None:
        message.group_id = group_id
    if message_attributes:
        message.message_attributes = message_attributes
    if delay_seconds > m.MAXIMUM_MESSAGE_DELAY:
        raise m.InvalidParameterValue(
            f"Value {delay_seconds} for parameter DelaySeconds is invalid. "
            "Reason: DelaySeconds must be >= 0 and <= 900."
        )
    message.mark_sent(delay_seconds=delay_seconds)
    queue.add_message(message)
    return message


def _function_name(name_or_arn: str) -> str:
    # arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]
    if name_or_arn.startswith("arn:"):
        return name_or_arn.split(":")[6]
    return name_or_arn.split(":")[0]


def _invoke_in_process(
    self: Any,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: dict[str, str],
) -> bytes | None:
    name = _function_name(function_name)
    spec = _functions.get(name)
    if spec is None:
        # Not one of the template's functions: keep moto's behaviour.
        result: bytes | None = _originals["invoke"](self, function_name, qualifier, body, headers, response_headers)
        return result
    self.get_function(function_name, qualifier)  # ResourceNotFound unless deployed, as on AWS
    if (headers or {}).get("X-Amz-Invocation-Type") == "DryRun":
        return b""
    raw = body.decode("utf-8") if isinstance(body, bytes) else body
    event = json.loads(raw) if raw else {}
    context = _context(name, spec)
    try:
        output = _call_function(name, event, context)
    except Exception as exc:
        # The shape the Lambda Python runtime reports for an unhandled exception.
        response_headers["x-amz-function-error"] = "Unhandled"
        error = {
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "requestId": context.aws_request_id,
            "stackTrace": traceback.format_tb(exc.__traceback__),
        }
        return json.dumps(error).encode("utf-8")
    return json.dumps(output).encode("utf-8")


def _context(name: str, spec: _Function) -> FakeLambdaContext:
    return FakeLambdaContext(
        function_name=name, timeout_seconds=spec.timeout_seconds, memory_limit_in_mb=spec.memory_mb
    )


def _call_function(name: str, event: dict[str, Any], context: FakeLambdaContext | None = None) -> Any:
    """Run one of the template's functions in this process, as one invocation."""
    spec = _functions[name]
    # Two replays at once may run the same task function from two interpreter threads.
    with function_lock(name):
        return load_handler(spec.handler)(event, context or _context(name, spec))


_LOG_MESSAGE_CHARS = 300


def _failure_line(component: Any, error: str, details: Any) -> str:
    """`state ValidateRequest failed: InvalidReplayRequest: start_time: required`, at most ~300 chars."""
    where = getattr(component, "name", None) or type(component).__name__
    message = ""
    for detail in (details or {}).values() if isinstance(details, dict) else ():
        cause = detail.get("cause") if isinstance(detail, dict) else None
        try:
            parsed = json.loads(cause) if isinstance(cause, str) else None
        except ValueError:
            parsed = None
        message = str(parsed.get("errorMessage", "")) if isinstance(parsed, dict) else str(cause or "")
        break
    line = f"state {where} failed: {error}" + (f": {message}" if message else "")
    return line if len(line) <= _LOG_MESSAGE_CHARS else line[: _LOG_MESSAGE_CHARS - 3] + "..."


def _log_failure_event(self: Any, failure_event_exception: Any) -> None:
    failure = failure_event_exception.failure_event
    error = failure.error_name.error_name if failure.error_name else "error"
    eval_component_module.LOG.warning("%s", _failure_line(self, error, failure.event_details))


def _log_exception(self: Any, exception: Exception) -> None:
    eval_component_module.LOG.warning(
        "%s", _failure_line(self, type(exception).__name__, {"": {"cause": str(exception)}})
    )


def _execution_terminated(self: Any) -> None:
    """moto's end of an execution, then the status change event AWS would publish."""
    with _ends_in_flight:
        _ends[0] += 1  # counted before the status turns final, so a waiter never misses this end
    try:
        _originals["sfn.terminated"](self)
        execution = self.execution
        described = dict(execution.to_describe_output())
        described["status"] = getattr(described["status"], "value", described["status"])
        stopped = execution.exec_worker.env.program_state() if execution.exec_worker else None
        if isinstance(stopped, ProgramStopped):
            described.update(error=stopped.error or None, cause=stopped.cause or None)
        for bus in list(_event_bus):
            bus.publish(status_change_event(described, execution.region_name))
    finally:
        with _ends_in_flight:
            _ends[0] -= 1
            _ends_in_flight.notify_all()


def wait_for_execution_ends(timeout: float) -> bool:
    """Wait until no execution end is being published (its event delivered to the rules' targets).
    Whoever tears a moto down after its executions ended calls this first: a delivery still running
    (or retrying) would otherwise write into the next moto. False if `timeout` passed first."""
    with _ends_in_flight:
        return _ends_in_flight.wait_for(lambda: _ends[0] == 0, timeout)


@functools.cache
def _stepfunctions_members(action: str) -> dict[str, str]:
    """{lowercase name: boto3 name} of a Step Functions operation's input members."""
    model = botocore.session.get_session().get_service_model("stepfunctions")
    operation = next(name for name in model.operation_names if name.lower() == action.replace("_", "").lower())
    return {member.lower(): member for member in model.operation_model(operation).input_shape.members}


def _sfn_parameters(
    self: Any, parameters: dict[str, Any], boto_service_name: str | None = None, service_action_name: str | None = None
) -> None:
    _originals["sfn._normalise_parameters"](self, parameters, boto_service_name, service_action_name)
    members = _stepfunctions_members(self._get_boto_service_action(service_action_name))
    for key in list(parameters):
        boto_key = members.get(key.lower())
        if boto_key is not None and boto_key != key:
            parameters[boto_key] = parameters.pop(key)


def _sfn_response(
    self: Any, response: Any, boto_service_name: str | None = None, service_action_name: str | None = None
) -> None:
    if not isinstance(response, dict):
        return
    for key in list(response):
        value = response.pop(key)
        response[key[:1].upper() + key[1:]] = value.isoformat() if isinstance(value, datetime) else value


# Operations whose output is items, keys and counts only: no timestamps, nothing shape-specific.
_ITEM_OPERATIONS = frozenset(
    {"Query", "Scan", "GetItem", "BatchGetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem",
     "TransactWriteItems", "TransactGetItems"}
)  # fmt: skip


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_none(item) for item in value]
    return value


def _dynamodb_serialized(self: Any, action_result: Any) -> Any:
    result = action_result.result
    if isinstance(result, dict) and self._get_action() in _ITEM_OPERATIONS:
        try:
            body = json.dumps(_without_none(result), separators=(",", ":"))
        except TypeError:  # binary values: moto's serializer base64-encodes them
            pass
        else:
            headers = {
                "Content-Type": "application/x-amz-json-1.0",
                "server": "amazon.com",
                "date": email.utils.formatdate(usegmt=True),
            }
            headers.update(self.response_headers)
            return 200, headers, body
    return _originals["dynamodb.serialized"](self, action_result)


# moto 5.2.5's LimitedSizeDict bound: "between 409 and 410KB" measured, 405 000 bytes used.
_ITEM_SIZE_LIMIT = 405_000


def _item_init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
    """moto 5.2.5's Item.__init__, the item's size summed once. moto's running check raises at the
    first attribute that takes the total past the limit; sizes are never negative, so that happens
    exactly when the whole item's size is past it."""
    m = dynamodb_type_module
    self.hash_key = hash_key
    self.range_key = range_key
    converted = {key: m.DynamoType(value) for key, value in attrs.items()}
    if sum(m.bytesize(key) + value.size() for key, value in converted.items()) > _ITEM_SIZE_LIMIT:
        raise m.ItemSizeTooLarge
    self.attrs = m.LimitedSizeDict()
    dict.update(self.attrs, converted)  # later assignments (updates) keep LimitedSizeDict's check


def _locked_call_action(self: Any) -> Any:
    with _dynamodb_lock:
        return _originals["dynamodb.call_action"](self)


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto 5.2.5's DynamoDBBackend.transact_write_items, rolling back per item instead of per table."""
    m = dynamodb_models
    if len(transact_items) > 100:
        raise m.TooManyTransactionsException()
    snapshots: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []

    def rollback() -> None:
        for table_name, key, attributes in reversed(snapshots):
            if attributes is None:
                if self.get_item(table_name, key) is not None:
                    self.delete_item(table_name, key)
            else:
                self.put_item(table_name, attributes)

    target_items: set[tuple[str, str]] = set()
    errors: list[tuple[str | None, str | None, Any]] = []
    for item in transact_items:
        original_item: dict[str, Any] | None = None
        if len(list(item.keys())) > 1:
            raise m.TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            unique = (str(table_name), str(dict(sorted(key.items()))))
            if unique in target_items:
                raise m.MultipleTransactionsException()
            target_items.add(unique)
            current = self.get_item(table_name, key)
            if condition_expression is not None:
                condition = m.get_filter_expression(condition_expression, names, values)
                if not condition.expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise m.ConditionalCheckFailed(item=original_item)
            if op_type != "ConditionCheck":
                snapshots.append((table_name, key, copy.deepcopy(current.to_json()["Attributes"]) if current else None))
            if op_type == "Put":
                self.put_item(
                    table_name,
                    op["Item"],
                    condition_expression=condition_expression,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    condition_expression=condition_expression,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            elif op_type == "Update":
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    condition_expression=condition_expression,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            errors.append((None, None, None))
        except (m.MultipleTransactionsException, m.MockValidationException):
            rollback()
            raise
        except m.ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))
        except Exception as e:  # as moto does: any other failure cancels the transaction
            errors.append((type(e).__name__, str(e), original_item))
    if any(code is not None for code, _, _ in errors):
        rollback()
        raise m.TransactionCanceledException(errors)


def _table_query(
    self: Any,
    hash_key: Any,
    range_comparison: str | None,
    range_objs: list[Any],
    limit: int,
    exclusive_start_key: dict[str, Any] | None,
    scan_index_forward: bool,
    projection_expressions: list[list[str]] | None,
    index_name: str | None = None,
    consistent_read: bool = False,
    filter_expression: Any = None,
    hash_key_conditions: list[tuple[str, Any]] | None = None,
    range_key_conditions: list[tuple[str, str, list[Any]]] | None = None,
    **filter_kwargs: Any,
) -> tuple[list[Any], int, dict[str, Any] | None]:
    """moto 5.2.5's Table.query for a table's own (hash, range) key: same results, one partition."""
    query: dict[str, Any] = {
        "hash_key": hash_key,
        "range_comparison": range_comparison,
        "range_objs": range_objs,
        "limit": limit,
        "exclusive_start_key": exclusive_start_key,
        "scan_index_forward": scan_index_forward,
        "projection_expressions": projection_expressions,
        "index_name": index_name,
        "consistent_read": consistent_read,
        "filter_expression": filter_expression,
        "hash_key_conditions": hash_key_conditions,
        "range_key_conditions": range_key_conditions,
    }
    found = _index_query(self, filter_kwargs=filter_kwargs, **query) if index_name else None
    if found is not None:
        return found
    if (
        index_name
        or filter_kwargs
        or not self.range_key_attr
        or len(hash_key_conditions or []) > 1
        or len(range_key_conditions or []) > 1
    ):
        return _originals["dynamodb.Table.query"](self, **query, **filter_kwargs)  # type: ignore[no-any-return]
    partition = self.items.get(hash_key) or {}
    ordered = sorted(((item.range_key.cast_value, item) for item in partition.values()), key=lambda pair: pair[0])
    if not scan_index_forward:
        ordered.reverse()
    if exclusive_start_key:
        start = dynamodb_table_module.DynamoType(exclusive_start_key[self.range_key_attr]).cast_value
        ordered = [pair for pair in ordered if (pair[0] > start if scan_index_forward else pair[0] < start)]
    results: list[Any] = []
    size = 0
    last_evaluated_key = None
    matching = False
    for _, item in ordered:
        item_size = item.size()  # sums every attribute: once per item
        if len(results) == limit or size + item_size > dynamodb_table_module.RESULT_SIZE_LIMIT:
            last_evaluated_key = self._get_last_evaluated_key(results[-1], None)
            break
        if range_comparison and not item.range_key.compare(range_comparison, range_objs):
            if matching:
                break  # a key condition selects one contiguous run of the sorted partition
            continue
        matching = True
        results.append(item)
        size += item_size
    scanned_count = len(results)
    results = copy.deepcopy(results)
    if filter_expression is not None:
        results = [item for item in results if filter_expression.expr(item)]
    if projection_expressions:
        results = [item.project(projection_expressions) for item in results]
    return results, scanned_count, last_evaluated_key


def _index_query(
    table: Any,
    *,
    hash_key: Any,
    range_comparison: str | None,
    range_objs: list[Any],
    limit: int,
    exclusive_start_key: dict[str, Any] | None,
    scan_index_forward: bool,
    projection_expressions: list[list[str]] | None,
    index_name: str,
    consistent_read: bool,
    filter_expression: Any,
    hash_key_conditions: list[tuple[str, Any]] | None,
    range_key_conditions: list[tuple[str, str, list[Any]]] | None,
    filter_kwargs: dict[str, Any],
) -> tuple[list[Any], int, dict[str, Any] | None] | None:
    """moto 5.2.5's Table.query on a global secondary index with one string hash key and one range key,
    or None (moto's own code answers). moto compares every item of the table through DynamoType's
    casting equality, sorts the matches with casting comparisons, and projects each result by turning
    the whole item into plain JSON once per projected attribute: ~5 ms a page of a 6 000-item table,
    O(table) for every page. Here: plain string equality on the hash key, each sort key cast once,
    and string-valued top-level projections copied; the same items, order, page ends and keys."""
    m = dynamodb_table_module
    index = next((gsi for gsi in table.global_indexes if gsi.name == index_name), None)
    if index is None or consistent_read or filter_kwargs or not table.range_key_attr:
        return None
    hash_attrs = [key["AttributeName"] for key in index.schema if key["KeyType"] == "HASH"]
    range_attrs = [key["AttributeName"] for key in index.schema if key["KeyType"] == "RANGE"]
    conditions = hash_key_conditions or []
    if len(hash_attrs) != 1 or len(range_attrs) != 1 or len(conditions) != 1 or len(range_key_conditions or []) > 1:
        return None
    (hash_attr,), (range_attr,) = hash_attrs, range_attrs
    condition_attr, wanted = conditions[0]
    if condition_attr != hash_attr or wanted.type != "S":
        return None
    if range_key_conditions and range_key_conditions[0][0] != range_attr:
        return None
    # moto's order: index hash, index range, table hash, table range (each by its cast value).
    sort_attrs = [hash_attr, range_attr, table.hash_key_attr, table.range_key_attr]
    if exclusive_start_key is not None and any(exclusive_start_key.get(attr) is None for attr in sort_attrs):
        return None
    candidates: list[tuple[tuple[Any, ...], Any]] = []
    for partition in table.items.values():
        for item in partition.values():
            value = item.attrs.get(hash_attr)
            if value is None or value.type != "S" or value.value != wanted.value or item.attrs.get(range_attr) is None:
                continue
            candidates.append((tuple(item.attrs[attr].cast_value for attr in sort_attrs), item))
    candidates.sort(key=lambda pair: pair[0])
    if not scan_index_forward:
        candidates.reverse()
    if exclusive_start_key is not None:
        start = tuple(m.DynamoType(exclusive_start_key[attr]).cast_value for attr in sort_attrs)
        candidates = [pair for pair in candidates if (pair[0] > start if scan_index_forward else pair[0] < start)]
    results: list[Any] = []
    size = 0
    last_evaluated_key = None
    for _, item in candidates:
        item_size = item.size()
        if len(results) == limit or size + item_size > m.RESULT_SIZE_LIMIT:
            last_evaluated_key = table._get_last_evaluated_key(results[-1], index_name)
            break
        if range_comparison and not item.attrs[range_attr].compare(range_comparison, range_objs):
            continue
        results.append(item)
        size += item_size
    scanned_count = len(results)
    results = [_project(index, item, _index_attributes(table, index)) for item in results]
    if filter_expression is not None:
        results = [item for item in results if filter_expression.expr(item)]
    if projection_expressions:
        results = [_project(None, item, projection_expressions) for item in results]
    return results, scanned_count, last_evaluated_key


def _index_attributes(table: Any, index: Any) -> list[list[str]] | None:
    """The attributes an index holds as moto's Index.project names them (None: all of them)."""
    projection_type = (index.projection or {}).get("ProjectionType")
    keys = [*index.table_key_attrs, *(key["AttributeName"] for key in index.schema)]
    if projection_type == "KEYS_ONLY":
        return [[name] for name in keys]
    if projection_type == "INCLUDE":
        return [[name] for name in [*keys, *index.projection.get("NonKeyAttributes", [])]]
    return None


def _project(index: Any, item: Any, attributes: list[list[str]] | None) -> Any:
    """A copy of `item` with only `attributes` (top-level names), as moto's Item.project builds it;
    moto's own projection (a JSON round trip) for nested paths or values other than strings."""
    if attributes is None:
        return copy.deepcopy(item)
    names = [path[0] for path in attributes if len(path) == 1]
    if len(names) != len(attributes) or any(item.attrs[name].type != "S" for name in names if name in item.attrs):
        copied = copy.deepcopy(item)
        return index.project(copied) if index is not None else copied.project(attributes)
    kept = {name: {"S": item.attrs[name].value} for name in dict.fromkeys(names) if name in item.attrs}
    return dynamodb_type_module.Item(copy.deepcopy(item.hash_key), copy.deepcopy(item.range_key), kept)
