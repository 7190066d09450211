"""Ingest: validate an arrival, store it, index it, answer retries idempotently."""
