"""Create the template's Lambda functions and state machines in moto.

Functions are registered with moto under their logical id (what the template resolver computes for
their ARNs) with a placeholder zip: their code runs in-process through `moto_patches`. State machines
are created through the Step Functions API with their DefinitionSubstitutions resolved (moto's
CloudFormation would store them where they never execute), under the name and ARN that
`Template.get_att` computes, so the ARNs in every function's environment point at them.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from evreplay.local.template import Template

ROLE_NAME = "evreplay-local-execution"
_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
            "Action": "sts:AssumeRole",
        }
    ],
}


def _placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "evreplay local: the code runs in-process (evreplay.local.moto_patches)\n")
    return buffer.getvalue()


def _role_arn(iam: Any) -> str:
    try:
        return str(iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        created = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(_TRUST_POLICY))
        return str(created["Role"]["Arn"])


def create_functions(template: Template, lambda_client: Any, role_arn: str) -> dict[str, str]:
    code = _placeholder_zip()
    arns: dict[str, str] = {}
    for logical_id in template.functions():
        props = template.resolve(template.properties(logical_id))
        created = lambda_client.create_function(
            FunctionName=template.physical_name(logical_id),
            Runtime=props.get("Runtime", "python3.12"),
            Role=role_arn,
            Handler=template.function_handler(logical_id),
            Code={"ZipFile": code},
            Timeout=template.function_timeout(logical_id),
            MemorySize=int(props.get("MemorySize", 128)),
            Environment={"Variables": template.function_environment(logical_id)},
        )
        arns[logical_id] = str(created["FunctionArn"])
    return arns


def create_state_machines(template: Template, sfn: Any, role_arn: str) -> dict[str, str]:
    arns: dict[str, str] = {}
    for logical_id, resource in template.state_machines().items():
        props = resource.get("Properties") or {}
        created = sfn.create_state_machine(
            name=template.physical_name(logical_id),
            definition=template.state_machine_definition(logical_id),
            roleArn=role_arn,
            type=str(props.get("Type", "STANDARD")),
        )
        expected = template.get_att(logical_id, "Arn")
        if created["stateMachineArn"] != expected:
            raise RuntimeError(f"{logical_id} was created as {created['stateMachineArn']}, expected {expected}")
        arns[logical_id] = str(created["stateMachineArn"])
    return arns


def deploy_workflow(template: Template, clients: dict[str, Any]) -> dict[str, str]:
    """Functions and state machines, with clients keyed by service name ("iam", "lambda",
    "stepfunctions"). Returns the ARN of each created resource by logical id."""
    role_arn = _role_arn(clients["iam"])
    arns = create_functions(template, clients["lambda"], role_arn)
    arns.update(create_state_machines(template, clients["stepfunctions"], role_arn))
    return arns
