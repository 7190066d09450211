"""The `evreplay` command line: the local stack, ingest, backfill, replays, inspection.

Needs the `local` extra (rich, moto for `evreplay local`); the Lambda functions never import it."""
