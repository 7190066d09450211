"""Security properties of what deploys: the translated template (SAM's output), not the SAM source.

Every check walks the whole template by resource type, so a function, route, role, bucket, queue,
table or log group added later is covered without touching this file. Each check is a function
returning the problems it found; the tests assert there are none, and
`test_each_check_fails_on_a_broken_copy` proves every check reports a deliberately broken copy,
so none of them can pass vacuously.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from evreplay.local.template import Template

Cfn = dict[str, Any]

IAM_POLICY_HOLDERS = ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")

# No role may be able to destroy or rewrite history in a bucket, or open it up. Matched against
# every Allow action pattern, so `s3:Delete*` or `s3:PutBucket*` are caught too.
FORBIDDEN_ACTIONS = (
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:DeleteObjectTagging",
    "s3:DeleteBucket",
    "s3:PutLifecycleConfiguration",  # expiry rules delete objects without a DeleteObject call
    "s3:PutBucketPolicy",  # could drop the TLS-only deny or grant others access
    "s3:DeleteBucketPolicy",
    "s3:PutBucketVersioning",  # suspending versioning makes overwrites lose the old object
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketAcl",
    "s3:PutObjectAcl",
    "s3:BypassGovernanceRetention",
)

# Actions allowed on Resource "*", each because the service has no resource-level permission for it.
STAR_RESOURCE_ACTIONS = {
    # Step Functions execution logging (the state machine's Logging): CloudWatch Logs' vended-log
    # delivery API takes no resource ARN; AWS documents these exact actions on "*".
    "logs:CreateLogDelivery": "vended log delivery has no resource-level permissions",
    "logs:GetLogDelivery": "vended log delivery has no resource-level permissions",
    "logs:UpdateLogDelivery": "vended log delivery has no resource-level permissions",
    "logs:DeleteLogDelivery": "vended log delivery has no resource-level permissions",
    "logs:ListLogDeliveries": "vended log delivery has no resource-level permissions",
    "logs:PutResourcePolicy": "the account's log resource policy has no ARN of its own",
    "logs:DescribeResourcePolicies": "list call, no resource-level permissions",
    "logs:DescribeLogGroups": "list call, no resource-level permissions",
}

# AWS managed policies a role may carry (they use Resource "*" inside), each with its reason.
ALLOWED_MANAGED_POLICIES = {
    # SAM attaches it to every function: CreateLogGroup/CreateLogStream/PutLogEvents, nothing else.
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": "function logs to CloudWatch Logs",
    # Tracing: Active / Tracing.Enabled; X-Ray's PutTraceSegments & co. have no resource-level permissions.
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": "X-Ray trace writes, no resource-level permissions",
}

S3_ENCRYPTION = {"AES256", "aws:kms", "aws:kms:dsse"}


# ---------------------------------------------------------------------------- template walking
def resources_of(cfn: Cfn, *types: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in cfn["Resources"].items():
        if resource["Type"] in types:
            yield logical_id, resource.get("Properties") or {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_documents(cfn: Cfn) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, statement) for every statement of every identity policy in the template."""
    for logical_id, props in resources_of(cfn, *IAM_POLICY_HOLDERS):
        documents = [p["PolicyDocument"] for p in props.get("Policies") or []]
        if "PolicyDocument" in props:
            documents.append(props["PolicyDocument"])
        for document in documents:
            for statement in as_list(document.get("Statement") or []):
                yield f"{logical_id}/{statement.get('Sid', '?')}", statement


def allow_statements(cfn: Cfn) -> Iterator[tuple[str, dict[str, Any]]]:
    for where, statement in policy_documents(cfn):
        if statement.get("Effect") == "Allow":
            yield where, statement


def refers_to(value: Any, logical_id: str) -> bool:
    """True when a property value is a Ref/GetAtt/Sub of `logical_id` (or its literal name)."""
    if value == logical_id:
        return True
    if isinstance(value, dict):
        if value.get("Ref") == logical_id:
            return True
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return (target[0] if isinstance(target, list) else str(target).split(".")[0]) == logical_id
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            return f"${{{logical_id}}}" in text or f"${{{logical_id}." in text
    return False


# ---------------------------------------------------------------------------- the checks
def api_auth_problems(cfn: Cfn) -> list[str]:
    """Every way in over HTTP needs SigV4 (IAM): REST API methods, explicit methods and routes,
    function URLs; and no Lambda permission lets anyone but this template's API invoke."""
    problems: list[str] = []
    methods_seen = 0
    for api_id, props in resources_of(cfn, "AWS::ApiGateway::RestApi"):
        body = props.get("Body") or {}
        if "BodyS3Location" in props:
            problems.append(f"{api_id}: definition outside the template cannot be checked")
        top_level = body.get("security") or []
        definitions = body.get("securityDefinitions") or {}
        for path, operations in (body.get("paths") or {}).items():
            for method, operation in operations.items():
                if method.startswith("x-") and method != "x-amazon-apigateway-any-method":
                    continue
                methods_seen += 1
                schemes = {name for requirement in operation.get("security", top_level) for name in requirement}
                iam = {
                    name
                    for name in schemes
                    if definitions.get(name, {}).get("x-amazon-apigateway-authtype") == "awsSigv4"
                }
                if not iam or schemes - iam:
                    problems.append(f"{api_id} {method.upper()} {path}: security {sorted(schemes)} is not AWS_IAM only")
    for method_id, props in resources_of(cfn, "AWS::ApiGateway::Method"):
        methods_seen += 1
        if props.get("AuthorizationType") != "AWS_IAM" and props.get("HttpMethod") != "OPTIONS":
            problems.append(f"{method_id}: AuthorizationType {props.get('AuthorizationType')}")
    for route_id, props in resources_of(cfn, "AWS::ApiGatewayV2::Route"):
        if props.get("AuthorizationType") != "AWS_IAM":
            problems.append(f"{route_id}: AuthorizationType {props.get('AuthorizationType')}")
    for url_id, props in resources_of(cfn, "AWS::Lambda::Url"):
        if props.get("AuthType") != "AWS_IAM":
            problems.append(f"{url_id}: function URL AuthType {props.get('AuthType')}")
    api_ids = [api_id for api_id, _ in resources_of(cfn, "AWS::ApiGateway::RestApi")]
    for permission_id, props in resources_of(cfn, "AWS::Lambda::Permission"):
        principal = props.get("Principal")
        if principal == "*" or not str(principal).endswith(".amazonaws.com"):
            problems.append(f"{permission_id}: invoke permission for principal {principal!r}")
        elif principal == "events.amazonaws.com" and not any(
            refers_to(props.get("SourceArn"), rule_id) for rule_id, _ in resources_of(cfn, "AWS::Events::Rule")
        ):
            problems.append(
                f"{permission_id}: EventBridge may invoke from any rule (SourceArn not this template's rule)"
            )
        elif principal == "apigateway.amazonaws.com" and not any(
            refers_to(props.get("SourceArn"), api_id) or _sub_mentions(props.get("SourceArn"), api_id)
            for api_id in api_ids
        ):
            problems.append(f"{permission_id}: API Gateway may invoke from any API (SourceArn not this template's API)")
    if methods_seen == 0:
        problems.append("no API methods found: the check would pass vacuously")
    return problems


def _sub_mentions(value: Any, logical_id: str) -> bool:
    """Fn::Sub with a variable map: {"Fn::Sub": ["...${__ApiId__}...", {"__ApiId__": {"Ref": id}}]}."""
    if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), list):
        return any(refers_to(v, logical_id) for v in value["Fn::Sub"][1].values())
    return False


def routes_missing_from_api(template: Template, cfn: Cfn) -> list[str]:
    """Every route the SAM template declares is a method of a REST API checked above."""
    declared = set()
    for _, props in resources_of(cfn, "AWS::ApiGateway::RestApi"):
        for path, operations in ((props.get("Body") or {}).get("paths") or {}).items():
            declared |= {(method.upper(), path) for method in operations}
    return [f"{r.method} {r.path}" for r in template.routes() if (r.method, r.path) not in declared]


def wildcard_action_problems(cfn: Cfn) -> list[str]:
    """No Allow with a wildcard action (`*`, `service:*`, `s3:Get*`) and no NotAction/NotResource."""
    problems = []
    for where, statement in allow_statements(cfn):
        for key in ("NotAction", "NotResource"):
            if key in statement:
                problems.append(f"{where}: Allow with {key}")
        for action in as_list(statement.get("Action") or []):
            if not isinstance(action, str) or "*" in action or "?" in action:
                problems.append(f"{where}: wildcard action {action!r}")
    return problems


def forbidden_action_problems(cfn: Cfn) -> list[str]:
    problems = []
    for where, statement in allow_statements(cfn):
        for pattern in as_list(statement.get("Action") or []):
            for forbidden in FORBIDDEN_ACTIONS:
                if fnmatch.fnmatchcase(forbidden.lower(), str(pattern).lower()):
                    problems.append(f"{where}: {pattern!r} grants {forbidden}")
    return problems


def star_resource_problems(cfn: Cfn) -> list[str]:
    """Resource "*" only for the actions in STAR_RESOURCE_ACTIONS; managed policies only from the list."""
    problems = []
    for where, statement in allow_statements(cfn):
        if "*" in as_list(statement.get("Resource")):
            for action in as_list(statement.get("Action") or []):
                if action not in STAR_RESOURCE_ACTIONS:
                    problems.append(f"{where}: {action} on Resource '*'")
    for logical_id, props in resources_of(cfn, "AWS::IAM::Role"):
        for arn in props.get("ManagedPolicyArns") or []:
            if arn not in ALLOWED_MANAGED_POLICIES:
                problems.append(f"{logical_id}: managed policy {arn} is not on the reviewed list")
    return problems


def resource_policy_problems(cfn: Cfn) -> list[str]:
    """Bucket and queue policies never Allow everyone."""
    problems = []
    for logical_id, props in resources_of(cfn, "AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy"):
        for statement in as_list(props["PolicyDocument"].get("Statement") or []):
            principal = statement.get("Principal")
            public = principal == "*" or (isinstance(principal, dict) and "*" in as_list(principal.get("AWS")))
            if statement.get("Effect") == "Allow" and public:
                problems.append(f"{logical_id}/{statement.get('Sid', '?')}: Allow to Principal '*'")
    return problems


def denies_insecure_transport(statement: dict[str, Any], service: str) -> bool:
    return (
        statement.get("Effect") == "Deny"
        and statement.get("Principal") in ("*", {"AWS": "*"})
        and {str(a) for a in as_list(statement.get("Action"))} & {"*", f"{service}:*"} != set()
        and str((statement.get("Condition") or {}).get("Bool", {}).get("aws:SecureTransport")).lower() == "false"
    )


# Buckets of work files the workflows write and read back (reconcile manifests and results, replay
# plans), which may expire; every other bucket holds data that is never deleted.
WORK_BUCKETS = frozenset({"ReconcileBucket", "ReplayPlanBucket"})


def bucket_problems(cfn: Cfn) -> list[str]:
    problems: list[str] = []
    policies = list(resources_of(cfn, "AWS::S3::BucketPolicy"))
    buckets = list(resources_of(cfn, "AWS::S3::Bucket"))
    if not buckets:
        return ["no bucket found: the check would pass vacuously"]
    for bucket_id, props in buckets:
        block = props.get("PublicAccessBlockConfiguration") or {}
        for flag in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
            if block.get(flag) is not True:
                problems.append(f"{bucket_id}: PublicAccessBlockConfiguration.{flag} is not true")
        rules = (props.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration") or []
        algorithms = {(r.get("ServerSideEncryptionByDefault") or {}).get("SSEAlgorithm") for r in rules}
        if not algorithms or not algorithms <= S3_ENCRYPTION:
            problems.append(f"{bucket_id}: default encryption {sorted(map(str, algorithms))}")
        if (props.get("VersioningConfiguration") or {}).get("Status") != "Enabled":
            problems.append(f"{bucket_id}: versioning is not Enabled")
        # A lifecycle rule may move objects to another storage class (RawTransitionDays), never expire them,
        # but in the workflows' own scratch buckets (their manifests, plans and results are derived data).
        for rule in [] if bucket_id in WORK_BUCKETS else (props.get("LifecycleConfiguration") or {}).get("Rules") or []:
            deleting = sorted(key for key in rule if "Expiration" in key or key == "ExpiredObjectDeleteMarker")
            if deleting:
                problems.append(f"{bucket_id}: lifecycle rule {rule.get('Id')} deletes objects ({', '.join(deleting)})")
        ownership = [r.get("ObjectOwnership") for r in (props.get("OwnershipControls") or {}).get("Rules") or []]
        if ownership != ["BucketOwnerEnforced"]:
            problems.append(f"{bucket_id}: ACLs not disabled (ObjectOwnership {ownership})")
        tls_only = [
            statement
            for _, policy in policies
            if refers_to(policy.get("Bucket"), bucket_id)
            for statement in as_list(policy["PolicyDocument"].get("Statement") or [])
            if denies_insecure_transport(statement, "s3")
        ]
        covered = [resource for statement in tls_only for resource in as_list(statement.get("Resource"))]
        bucket_arn = any(refers_to(r, bucket_id) and "/*" not in str(r) for r in covered)
        object_arns = any(refers_to(r, bucket_id) and "/*" in str(r) for r in covered)
        if not (bucket_arn and object_arns):
            problems.append(
                f"{bucket_id}: no bucket policy denying aws:SecureTransport=false on the bucket and its objects"
            )
    return problems


def queue_problems(cfn: Cfn) -> list[str]:
    problems: list[str] = []
    queues = list(resources_of(cfn, "AWS::SQS::Queue"))
    if not queues:
        return ["no queue found: the check would pass vacuously"]
    policies = list(resources_of(cfn, "AWS::SQS::QueuePolicy"))
    for queue_id, props in queues:
        if props.get("SqsManagedSseEnabled") is not True and not props.get("KmsMasterKeyId"):
            problems.append(f"{queue_id}: no SSE (SqsManagedSseEnabled or KmsMasterKeyId)")
        tls_only = any(
            any(refers_to(q, queue_id) for q in policy.get("Queues") or [])
            and any(denies_insecure_transport(s, "sqs") for s in as_list(policy["PolicyDocument"].get("Statement")))
            for _, policy in policies
        )
        if not tls_only:
            problems.append(f"{queue_id}: no queue policy denying aws:SecureTransport=false")
    return problems


def table_problems(cfn: Cfn) -> list[str]:
    problems: list[str] = []
    tables = list(resources_of(cfn, "AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"))
    if not tables:
        return ["no table found: the check would pass vacuously"]
    for table_id, props in tables:
        if (props.get("SSESpecification") or {}).get("SSEEnabled") is not True:
            problems.append(f"{table_id}: SSESpecification.SSEEnabled is not true")
        if (props.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled") is not True:
            problems.append(f"{table_id}: point-in-time recovery is off")
    return problems


def log_problems(cfn: Cfn) -> list[str]:
    """Every log group keeps logs for a bounded time, and every function and state machine writes
    to a log group of this template (Lambda would otherwise create one that never expires)."""
    problems: list[str] = []
    groups = dict(resources_of(cfn, "AWS::Logs::LogGroup"))
    for group_id, props in groups.items():
        if not props.get("RetentionInDays"):
            problems.append(f"{group_id}: no RetentionInDays")
    for function_id, props in resources_of(cfn, "AWS::Lambda::Function"):
        explicit = (props.get("LoggingConfig") or {}).get("LogGroup")
        if not any(
            (explicit is not None and refers_to(explicit, group_id))
            or _names_function_group(group.get("LogGroupName"), function_id)
            for group_id, group in groups.items()
        ):
            problems.append(f"{function_id}: no log group with retention in the template")
    for machine_id, props in resources_of(cfn, "AWS::StepFunctions::StateMachine"):
        for destination in (props.get("LoggingConfiguration") or {}).get("Destinations") or []:
            arn = (destination.get("CloudWatchLogsLogGroup") or {}).get("LogGroupArn")
            if not any(refers_to(arn, group_id) for group_id in groups):
                problems.append(f"{machine_id}: logs to a group outside the template")
    return problems


def _names_function_group(name: Any, function_id: str) -> bool:
    return isinstance(name, dict) and name.get("Fn::Sub") == f"/aws/lambda/${{{function_id}}}"


CHECKS: dict[str, Callable[[Cfn], list[str]]] = {
    "api_auth": api_auth_problems,
    "wildcard_actions": wildcard_action_problems,
    "forbidden_actions": forbidden_action_problems,
    "star_resources": star_resource_problems,
    "resource_policies": resource_policy_problems,
    "buckets": bucket_problems,
    "queues": queue_problems,
    "tables": table_problems,
    "logs": log_problems,
}


# ---------------------------------------------------------------------------- the tests
# The defaults, and every optional operations parameter set: what deploys differs (a lifecycle rule,
# alarm actions, no processor), and every variant must pass.
VARIANTS = {
    "defaults": {},
    "every option": {"RawTransitionDays": "30", "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:ops"},
    "no processor": {"EnableProcessor": "false", "RawTransitionDays": "1"},
    "destinations": {
        "ReplayDestinations": "orders=arn:aws:sqs:us-east-1:123456789012:orders,"
        "bus=arn:aws:events:us-east-1:123456789012:event-bus/team"
    },
}


@pytest.fixture(scope="module", params=list(VARIANTS.values()), ids=list(VARIANTS))
def cfn(request: pytest.FixtureRequest) -> Cfn:
    # As CloudFormation deploys it for these parameters: conditions evaluated, Fn::If resolved.
    return Template(parameter_overrides=request.param).deployed


@pytest.mark.parametrize("check", list(CHECKS))
def test_translated_template_passes(check: str, cfn: Cfn) -> None:
    assert CHECKS[check](cfn) == []


def test_every_declared_route_is_a_checked_api_method(template: Template, cfn: Cfn) -> None:
    assert template.routes(), "the template declares no routes"
    assert routes_missing_from_api(template, cfn) == []


def test_health_is_iam_authorized_too(cfn: Cfn) -> None:
    # /health is a route of the same API: a deployed health check signs its request like any client.
    (body,) = [props["Body"] for _, props in resources_of(cfn, "AWS::ApiGateway::RestApi")]
    assert body["paths"]["/health"]["get"]["security"] == [{"AWS_IAM": []}]


# ---------------------------------------------------------------------------- control: checks can fail
def _first(cfn: Cfn, cfn_type: str) -> dict[str, Any]:
    return next(props for _, props in resources_of(cfn, cfn_type))


def _function_role_policy(cfn: Cfn) -> list[dict[str, Any]]:
    role = next(
        p
        for _, p in resources_of(cfn, "AWS::IAM::Role")
        if "lambda.amazonaws.com" in str(p["AssumeRolePolicyDocument"])
    )
    return role["Policies"][0]["PolicyDocument"]["Statement"]


def _grant(action: Any, resource: Any = "arn:aws:s3:::somewhere/*") -> Callable[[Cfn], None]:
    return lambda cfn: _function_role_policy(cfn).append({"Effect": "Allow", "Action": action, "Resource": resource})


def _drop_method_security(cfn: Cfn) -> None:
    paths = _first(cfn, "AWS::ApiGateway::RestApi")["Body"]["paths"]
    next(iter(next(iter(paths.values())).values())).pop("security")


def _add_public_function_url(cfn: Cfn) -> None:
    cfn["Resources"]["OpenUrl"] = {
        "Type": "AWS::Lambda::Url",
        "Properties": {"AuthType": "NONE", "TargetFunctionArn": "x"},
    }


def _open_invoke_permission(cfn: Cfn) -> None:
    _first(cfn, "AWS::Lambda::Permission")["Principal"] = "*"


def _rule_permission_from_any_rule(cfn: Cfn) -> None:
    (permission,) = [
        props
        for _, props in resources_of(cfn, "AWS::Lambda::Permission")
        if props["Principal"] == "events.amazonaws.com"
    ]
    permission.pop("SourceArn")


def _attach_admin(cfn: Cfn) -> None:
    _first(cfn, "AWS::IAM::Role")["ManagedPolicyArns"].append("arn:aws:iam::aws:policy/AdministratorAccess")


def _public_bucket_statement(cfn: Cfn) -> None:
    _first(cfn, "AWS::S3::BucketPolicy")["PolicyDocument"]["Statement"].append(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}
    )


def _set(cfn_type: str, *path: str, value: Any = None, delete: bool = False) -> Callable[[Cfn], None]:
    def mutate(cfn: Cfn) -> None:
        target = _first(cfn, cfn_type)
        for key in path[:-1]:
            target = target[key]
        if delete:
            target.pop(path[-1])
        else:
            target[path[-1]] = value

    return mutate


def _drop_tls_condition(cfn: Cfn) -> None:
    _first(cfn, "AWS::S3::BucketPolicy")["PolicyDocument"]["Statement"][0].pop("Condition")


def _expire_raw_objects(cfn: Cfn) -> None:
    _first(cfn, "AWS::S3::Bucket")["LifecycleConfiguration"] = {
        "Rules": [{"Id": "Tidy", "Status": "Enabled", "Transitions": [], "ExpirationInDays": 365}]
    }


def _drop_function_log_group(cfn: Cfn) -> None:
    function_id = next(i for i, _ in resources_of(cfn, "AWS::Lambda::Function"))
    for group_id, group in list(resources_of(cfn, "AWS::Logs::LogGroup")):
        if _names_function_group(group.get("LogGroupName"), function_id):
            del cfn["Resources"][group_id]


BROKEN_COPIES: list[tuple[str, str, Callable[[Cfn], None]]] = [
    ("api_auth", "a method without security", _drop_method_security),
    ("api_auth", "a function URL with AuthType NONE", _add_public_function_url),
    ("api_auth", "an invoke permission for '*'", _open_invoke_permission),
    ("api_auth", "an EventBridge invoke permission without its rule", _rule_permission_from_any_rule),
    ("wildcard_actions", "Action '*'", _grant("*")),
    ("wildcard_actions", "Action 'sqs:*'", _grant("sqs:*")),
    ("wildcard_actions", "Action 's3:Get*'", _grant(["s3:GetObject", "s3:Get*"])),
    ("forbidden_actions", "s3:DeleteObject", _grant("s3:DeleteObject")),
    ("forbidden_actions", "s3:Delete* (pattern)", _grant("s3:Delete*")),
    ("forbidden_actions", "s3:PutLifecycleConfiguration", _grant("s3:PutLifecycleConfiguration")),
    ("forbidden_actions", "s3:PutBucketPolicy", _grant("s3:PutBucketPolicy")),
    ("star_resources", "dynamodb:Query on '*'", _grant("dynamodb:Query", "*")),
    ("star_resources", "an unreviewed managed policy", _attach_admin),
    ("resource_policies", "a bucket policy allowing everyone", _public_bucket_statement),
    (
        "buckets",
        "public policies not blocked",
        _set("AWS::S3::Bucket", "PublicAccessBlockConfiguration", "BlockPublicPolicy", value=False),
    ),
    ("buckets", "no default encryption", _set("AWS::S3::Bucket", "BucketEncryption", delete=True)),
    (
        "buckets",
        "versioning suspended",
        _set("AWS::S3::Bucket", "VersioningConfiguration", "Status", value="Suspended"),
    ),
    ("buckets", "TLS-only deny without its condition", _drop_tls_condition),
    ("buckets", "a lifecycle rule that expires objects", _expire_raw_objects),
    ("queues", "a queue without SSE", _set("AWS::SQS::Queue", "SqsManagedSseEnabled", value=False)),
    ("queues", "a queue outside the TLS-only policy", _set("AWS::SQS::QueuePolicy", "Queues", value=[])),
    ("tables", "a table without SSE", _set("AWS::DynamoDB::Table", "SSESpecification", delete=True)),
    ("tables", "a table without PITR", _set("AWS::DynamoDB::Table", "PointInTimeRecoverySpecification", delete=True)),
    ("logs", "a log group without retention", _set("AWS::Logs::LogGroup", "RetentionInDays", delete=True)),
    ("logs", "a function without its log group", _drop_function_log_group),
]


@pytest.mark.parametrize(("check", "breakage", "mutate"), BROKEN_COPIES, ids=[f"{c}: {b}" for c, b, _ in BROKEN_COPIES])
def test_each_check_fails_on_a_broken_copy(check: str, breakage: str, mutate: Callable[[Cfn], None], cfn: Cfn) -> None:
    # GIVEN a copy of the real template with one deliberate hole
    broken = copy.deepcopy(cfn)
    mutate(broken)

    # THEN the check reports it (and the untouched template still passes: see above)
    assert CHECKS[check](broken) != [], f"{check} did not notice: {breakage}"


def test_every_check_has_a_broken_copy() -> None:
    assert {check for check, _, _ in BROKEN_COPIES} == set(CHECKS)
