"""Shared foundations: settings, clients, errors, times, ids, cursors, observability, idempotency, schemas."""
