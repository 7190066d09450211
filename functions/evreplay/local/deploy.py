"""Create the template's storage and queues in moto (or any AWS endpoint the clients point at).

What is created, with the template's properties: buckets (encryption, public access block, ownership
controls, versioning); tables (keys, indexes, SSE, TTL); queues (attributes, redrive) and their queue
policies (stored, not evaluated by moto). Left out, on purpose: bucket policies - moto evaluates them
and cannot tell TLS (aws:SecureTransport), so the template's TLS-only deny would refuse every request
(tests/functional/local/test_deploy.py shows it). IAM, log groups, alarms, the dashboard, the Glue
catalog (Athena), EventBridge rules (delivered by `evreplay.local.events`) and the API itself have no
local counterpart (the local server routes requests from the template; resources are picked by type,
so any other type is skipped); Lambda functions and state machines are created by
`evreplay.local.workflow`.
"""

from __future__ import annotations

import json
from typing import Any

from evreplay.local.template import Template


def _table_request(template: Template, logical_id: str) -> dict[str, Any]:
    props = template.resolve(template.properties(logical_id))
    request: dict[str, Any] = {
        "TableName": template.physical_name(logical_id),
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    if request["BillingMode"] == "PROVISIONED":
        request["ProvisionedThroughput"] = props["ProvisionedThroughput"]
    for index_kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(index_kind):
            request[index_kind] = props[index_kind]
    if (props.get("SSESpecification") or {}).get("SSEEnabled"):
        request["SSESpecification"] = {"Enabled": True}
    return request


def create_tables(template: Template, dynamodb: Any) -> list[str]:
    created = []
    for logical_id in template.of_type("AWS::DynamoDB::Table"):
        request = _table_request(template, logical_id)
        dynamodb.create_table(**request)
        ttl = template.properties(logical_id).get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=request["TableName"],
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        created.append(request["TableName"])
    return created


def create_buckets(template: Template, s3: Any) -> list[str]:
    created = []
    for logical_id in template.of_type("AWS::S3::Bucket"):
        props = template.resolve(template.properties(logical_id))
        name = template.physical_name(logical_id)
        if template.region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": template.region})
        if "BucketEncryption" in props:
            # CloudFormation's ServerSideEncryptionByDefault is the API's ApplyServerSideEncryptionByDefault.
            rules = [
                {
                    "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                    **({"BucketKeyEnabled": rule["BucketKeyEnabled"]} if "BucketKeyEnabled" in rule else {}),
                }
                for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
        if "OwnershipControls" in props:
            s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
        if "VersioningConfiguration" in props:
            s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]}
            )
        created.append(name)
    return created


_QUEUE_ATTRIBUTES = (
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
    "SqsManagedSseEnabled",
)


def create_queues(template: Template, sqs: Any) -> dict[str, str]:
    """Create every queue, then attach redrive policies (their targets exist by then)."""
    urls: dict[str, str] = {}
    queues = template.of_type("AWS::SQS::Queue")
    for logical_id in queues:
        props = template.resolve(template.properties(logical_id))
        attributes = {name: _attribute(props[name]) for name in _QUEUE_ATTRIBUTES if name in props}
        response = sqs.create_queue(QueueName=template.physical_name(logical_id), Attributes=attributes)
        urls[logical_id] = response["QueueUrl"]
    for logical_id in queues:
        redrive = template.resolve(template.properties(logical_id)).get("RedrivePolicy")
        if redrive:
            policy = {
                "deadLetterTargetArn": redrive["deadLetterTargetArn"],
                "maxReceiveCount": int(redrive["maxReceiveCount"]),
            }
            sqs.set_queue_attributes(QueueUrl=urls[logical_id], Attributes={"RedrivePolicy": json.dumps(policy)})
    for logical_id in template.of_type("AWS::SQS::QueuePolicy"):
        props = template.properties(logical_id)
        document = json.dumps(template.resolve(props["PolicyDocument"]))
        for queue in props["Queues"]:
            sqs.set_queue_attributes(QueueUrl=urls[queue["Ref"]], Attributes={"Policy": document})
    return urls


def _attribute(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def deploy_storage(template: Template, clients: dict[str, Any]) -> None:
    """Buckets, tables and queues, with clients keyed by service name."""
    create_buckets(template, clients["s3"])
    create_tables(template, clients["dynamodb"])
    create_queues(template, clients["sqs"])
