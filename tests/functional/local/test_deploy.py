"""The local stack's storage is what template.yaml declares (evreplay.local.deploy): what AWS would
answer about the bucket and the queues, read back through the same APIs."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from evreplay.local.template import Template


def _resolved(template: Template, logical_id: str) -> dict:
    return template.resolve(template.properties(logical_id))


def test_the_raw_bucket_is_versioned_and_owner_enforced_as_declared(stack):
    versioning = stack.s3.get_bucket_versioning(Bucket=stack.bucket)
    ownership = stack.s3.get_bucket_ownership_controls(Bucket=stack.bucket)["OwnershipControls"]

    assert versioning["Status"] == "Enabled"
    assert ownership == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def test_the_bucket_policy_is_left_out_because_moto_would_refuse_every_request_under_it(stack):
    # The documented difference (README, evreplay.local.deploy): if moto ever learns aws:SecureTransport,
    # this fails and the local stack can create the policy too.
    with pytest.raises(ClientError, match="NoSuchBucketPolicy"):
        stack.s3.get_bucket_policy(Bucket=stack.bucket)
    policy = _resolved(stack.template, "RawBucketPolicy")["PolicyDocument"]
    stack.s3.put_bucket_policy(Bucket=stack.bucket, Policy=json.dumps(policy))

    with pytest.raises(ClientError) as refused:
        stack.s3.put_object(Bucket=stack.bucket, Key="raw/probe.json", Body=b"{}")

    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_both_queues_have_the_templates_tls_only_policy(stack):
    expected = _resolved(stack.template, "ReplayQueuePolicy")["PolicyDocument"]
    for logical_id in ("ReplayQueue", "ReplayDeadLetterQueue"):
        url = stack.sqs.get_queue_url(QueueName=stack.template.physical_name(logical_id))["QueueUrl"]

        attributes = stack.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]

        assert json.loads(attributes["Policy"]) == expected, logical_id
