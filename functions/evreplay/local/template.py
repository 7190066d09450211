"""template.yaml, read once and resolved for a local account.

The template is the single source of truth: tables, the bucket, queues, function environments,
API routes, queue triggers and the state machine's substitutions all come from here, through
aws-sam-translator (offline) so that Globals and event sources are merged the way SAM merges
them. Conditions are evaluated for the parameters given, as CloudFormation would: a resource whose
condition is false does not exist here (`deployed`), `Fn::If` takes its branch, and `AWS::NoValue`
removes the property. Physical names are deterministic (`<LogicalId>` for tables and queues, lowercase for the
bucket), so a function's environment can be computed before anything is created.
"""

from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ACCOUNT_ID = "123456789012"
STACK_NAME = "evreplay-local"


class TemplateError(RuntimeError):
    """template.yaml cannot be read, translated or resolved."""


def project_root() -> Path:
    """The repository root: the folder holding template.yaml (an editable install)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "template.yaml").is_file() and (parent / "statemachines").is_dir():
            return parent
    return Path.cwd()


def default_template_path() -> Path:
    env = os.environ.get("EVREPLAY_TEMPLATE")
    if env:
        return Path(env)
    cwd = Path.cwd() / "template.yaml"
    return cwd if cwd.is_file() else project_root() / "template.yaml"


_NO_VALUE = object()


class _OfflinePolicyLoader:
    """aws-sam-translator asks IAM for managed policies; offline it falls back to its bundled list."""

    def load(self) -> dict[str, str]:
        return {}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str  # logical id


@dataclass(frozen=True)
class EventRule:
    logical_id: str
    pattern: dict[str, Any]  # resolved for the local account
    functions: tuple[str, ...]  # logical ids of the Lambda targets


@dataclass(frozen=True)
class QueueTrigger:
    queue: str  # logical id
    function: str  # logical id
    batch_size: int
    report_batch_item_failures: bool


class Template:
    """A parsed, translated template and a resolver for one local account and region."""

    def __init__(
        self,
        path: Path | None = None,
        region: str | None = None,
        parameter_overrides: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path) if path else default_template_path()
        self.root = self.path.parent
        self.region = region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        try:
            self.sam: dict[str, Any] = yaml_parse(self.path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise TemplateError(f"cannot read {self.path}: {exc}") from exc
        self.parameters = {
            name: str(spec.get("Default", "")) for name, spec in (self.sam.get("Parameters") or {}).items()
        }
        for name, value in (parameter_overrides or {}).items():
            if name not in self.parameters:
                raise TemplateError(f"template has no parameter {name}")
            self.parameters[name] = str(value)

    # ------------------------------------------------------------------ translation
    def packaged(self) -> dict[str, Any]:
        """The SAM template as `sam package` would leave it: code and layers on S3, the ASL inlined."""
        sam = copy.deepcopy(self.sam)
        globals_function = sam.get("Globals", {}).get("Function", {})
        if isinstance(globals_function.get("CodeUri"), str):
            globals_function["CodeUri"] = "s3://evreplay-artifacts/functions.zip"
        for resource in sam.get("Resources", {}).values():
            props = resource.get("Properties") or {}
            if resource.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
                props["CodeUri"] = "s3://evreplay-artifacts/functions.zip"
            if resource.get("Type") == "AWS::Serverless::LayerVersion" and isinstance(props.get("ContentUri"), str):
                props["ContentUri"] = "s3://evreplay-artifacts/layer.zip"
            if resource.get("Type") == "AWS::Serverless::StateMachine" and isinstance(props.get("DefinitionUri"), str):
                props["Definition"] = self._read_json(props.pop("DefinitionUri"))
        return sam

    @cached_property
    def translated(self) -> dict[str, Any]:
        """The CloudFormation template SAM produces (offline)."""
        os.environ.setdefault("AWS_DEFAULT_REGION", self.region)
        try:
            return dict(transform(self.packaged(), self.parameters, _OfflinePolicyLoader()))
        except InvalidDocumentException as exc:
            messages = "; ".join(str(cause) for cause in exc.causes)
            raise TemplateError(f"template does not translate: {messages}") from exc

    @cached_property
    def deployed(self) -> dict[str, Any]:
        """The translated template as CloudFormation deploys it for these parameters: resources and
        outputs whose condition is false left out, `Fn::If` resolved, `AWS::NoValue` removed."""
        cfn = self.translated
        deployed = {key: value for key, value in cfn.items() if key not in ("Resources", "Outputs")}
        for section in ("Resources", "Outputs"):
            deployed[section] = {
                logical_id: self._chosen(entry)
                for logical_id, entry in (cfn.get(section) or {}).items()
                if "Condition" not in entry or self.condition(entry["Condition"])
            }
        return deployed

    def condition(self, name: str) -> bool:
        """A condition of the template, evaluated for these parameters."""
        conditions = self.translated.get("Conditions") or {}
        if name not in conditions:
            raise TemplateError(f"template has no condition {name}")
        return bool(self._evaluate(conditions[name]))

    def _evaluate(self, expression: Any) -> Any:
        if not (isinstance(expression, dict) and len(expression) == 1):
            return expression
        ((key, arg),) = expression.items()
        if key == "Fn::Equals":
            left, right = (self._evaluate(item) for item in arg)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self._evaluate(arg[0])
        if key == "Fn::And":
            return all(self._evaluate(item) for item in arg)
        if key == "Fn::Or":
            return any(self._evaluate(item) for item in arg)
        if key == "Condition":
            return self.condition(arg)
        if key in ("Ref", "Fn::Select", "Fn::Split", "Fn::Sub", "Fn::Join"):
            return self.resolve(expression)
        raise TemplateError(f"{key} is not supported in a condition locally")

    def _chosen(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self._chosen(entry) for entry in value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if value == {"Ref": "AWS::NoValue"}:
            return _NO_VALUE
        if len(value) == 1 and "Fn::If" in value:
            name, if_true, if_false = value["Fn::If"]
            return self._chosen(if_true if self.condition(name) else if_false)
        chosen = {key: self._chosen(entry) for key, entry in value.items()}
        return {key: entry for key, entry in chosen.items() if entry is not _NO_VALUE}

    def _sam_resources(self, sam_type: str) -> dict[str, dict[str, Any]]:
        """SAM resources of one type, as written, that exist for these parameters."""
        return {
            logical_id: resource
            for logical_id, resource in (self.sam.get("Resources") or {}).items()
            if resource.get("Type") == sam_type
            and ("Condition" not in resource or self.condition(resource["Condition"]))
        }

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.deployed["Resources"])

    @property
    def outputs(self) -> dict[str, dict[str, Any]]:
        return dict(self.deployed["Outputs"])

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {name: res for name, res in self.resources.items() if res["Type"] == cfn_type}

    def properties(self, logical_id: str) -> dict[str, Any]:
        return dict(self.resources[logical_id].get("Properties") or {})

    def _read_json(self, relative: str) -> Any:
        path = (self.root / relative).resolve()
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TemplateError(f"cannot read {path}: {exc}") from exc

    # ------------------------------------------------------------------ physical names
    def physical_name(self, logical_id: str) -> str:
        cfn_type = self.resources[logical_id]["Type"]
        if cfn_type == "AWS::S3::Bucket":
            return f"{STACK_NAME}-{logical_id.lower()}"
        if cfn_type == "AWS::StepFunctions::StateMachine":
            name = self.properties(logical_id).get("StateMachineName")
            return str(self.resolve(name)) if name else logical_id
        return logical_id

    def ref(self, logical_id: str) -> str:
        if logical_id in self.parameters:
            return self.parameters[logical_id]
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::StackName": STACK_NAME,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": "",
        }
        if logical_id in pseudo:
            return pseudo[logical_id]
        if logical_id not in self.resources:
            raise TemplateError(f"Ref to unknown {logical_id}")
        cfn_type = self.resources[logical_id]["Type"]
        name = self.physical_name(logical_id)
        if cfn_type == "AWS::SQS::Queue":
            return f"https://sqs.{self.region}.amazonaws.com/{ACCOUNT_ID}/{name}"
        if cfn_type == "AWS::StepFunctions::StateMachine":
            return self.get_att(logical_id, "Arn")
        return name

    def get_att(self, logical_id: str, attribute: str) -> str:
        if logical_id not in self.resources:
            raise TemplateError(f"GetAtt of unknown {logical_id}")
        cfn_type = self.resources[logical_id]["Type"]
        name = self.physical_name(logical_id)
        arns = {
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{self.region}:{ACCOUNT_ID}:table/{name}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{self.region}:{ACCOUNT_ID}:{name}",
            "AWS::Lambda::Function": f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{name}",
            "AWS::StepFunctions::StateMachine": f"arn:aws:states:{self.region}:{ACCOUNT_ID}:stateMachine:{name}",
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT_ID}:role/{name}",
        }
        if attribute == "Arn" and cfn_type in arns:
            return arns[cfn_type]
        if attribute in ("QueueName", "Name", "BucketName"):
            return name
        if attribute == "QueueUrl":
            return self.ref(logical_id)
        raise TemplateError(f"GetAtt {logical_id}.{attribute} is not supported locally")

    # ------------------------------------------------------------------ intrinsics
    def resolve(self, value: Any) -> Any:
        """Resolve Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select and Fn::Split for the local account."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical_id, attribute)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Join":
                separator, items = arg
                return separator.join(str(self.resolve(item)) for item in self.resolve(items))
            if key == "Fn::Split":
                separator, text = arg
                return str(self.resolve(text)).split(separator)
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key.startswith("Fn::"):
                raise TemplateError(f"{key} is not supported locally")
        return {key: self.resolve(item) for key, item in value.items()}

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    # ------------------------------------------------------------------ what the local stack needs
    def functions(self) -> dict[str, dict[str, Any]]:
        return self.of_type("AWS::Lambda::Function")

    def function_handler(self, logical_id: str) -> str:
        return str(self.properties(logical_id)["Handler"])

    def function_environment(self, logical_id: str) -> dict[str, str]:
        variables = (self.properties(logical_id).get("Environment") or {}).get("Variables") or {}
        return {name: str(self.resolve(value)) for name, value in variables.items()}

    def function_timeout(self, logical_id: str) -> int:
        return int(self.resolve(self.properties(logical_id).get("Timeout", 3)))

    def merged_environment(self) -> dict[str, str]:
        """Every function's variables in one mapping. Functions share the process locally, so
        one variable must mean the same for all of them: a conflict is an error."""
        merged: dict[str, str] = {}
        for logical_id in self.functions():
            for name, value in self.function_environment(logical_id).items():
                if merged.setdefault(name, value) != value:
                    raise TemplateError(f"{name} differs between functions; the local stack needs one value")
        return merged

    def routes(self) -> list[Route]:
        """API routes from each SAM function's `Api` events."""
        routes = []
        for logical_id, resource in self._sam_resources("AWS::Serverless::Function").items():
            for event in ((resource.get("Properties") or {}).get("Events") or {}).values():
                if event.get("Type") == "Api":
                    props = event["Properties"]
                    routes.append(Route(str(props["Method"]).upper(), str(props["Path"]), logical_id))
        return routes

    def queue_triggers(self) -> list[QueueTrigger]:
        triggers = []
        for resource in self.of_type("AWS::Lambda::EventSourceMapping").values():
            props = resource["Properties"]
            source = props["EventSourceArn"]
            queue = source["Fn::GetAtt"][0] if isinstance(source, dict) and "Fn::GetAtt" in source else None
            name = props["FunctionName"]
            function = name["Ref"] if isinstance(name, dict) else name
            if queue is None:
                continue
            triggers.append(
                QueueTrigger(
                    queue=queue,
                    function=function,
                    batch_size=int(self.resolve(props.get("BatchSize", 10))),
                    report_batch_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
                )
            )
        return triggers

    def event_rules(self) -> list[EventRule]:
        """EventBridge rules with an EventPattern and Lambda targets (SAM `EventBridgeRule` events)."""
        rules = []
        for logical_id, resource in self.of_type("AWS::Events::Rule").items():
            props = resource["Properties"]
            if props.get("State", "ENABLED") != "ENABLED" or "EventPattern" not in props:
                continue
            functions = tuple(
                target["Arn"]["Fn::GetAtt"][0]
                for target in props.get("Targets") or []
                if isinstance(target.get("Arn"), dict)
                and "Fn::GetAtt" in target["Arn"]
                and self.resources[target["Arn"]["Fn::GetAtt"][0]]["Type"] == "AWS::Lambda::Function"
            )
            rules.append(EventRule(logical_id, self.resolve(props["EventPattern"]), functions))
        return rules

    def state_machines(self) -> dict[str, dict[str, Any]]:
        """SAM state machines as written (DefinitionUri + DefinitionSubstitutions)."""
        return self._sam_resources("AWS::Serverless::StateMachine")

    def state_machine_definition(self, logical_id: str) -> str:
        """The ASL text with its DefinitionSubstitutions resolved, as CloudFormation would."""
        props = self.state_machines()[logical_id]["Properties"]
        text = (self.root / props["DefinitionUri"]).read_text(encoding="utf-8")
        substitutions = {
            name: str(self.resolve(value)) for name, value in (props.get("DefinitionSubstitutions") or {}).items()
        }

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in substitutions:
                raise TemplateError(
                    f"{props['DefinitionUri']} uses ${{{name}}} but the template does not substitute it"
                )
            return substitutions[name]

        return re.sub(r"\$\{([A-Za-z0-9_]+)\}", replace, text)
