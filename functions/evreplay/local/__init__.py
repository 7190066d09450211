"""The local stack: the same template, state machine and handlers on moto, in one process.

Needs the `local` extra (moto, aws-sam-translator, rich); the Lambda functions never import it."""
