"""Reconcile the index with the raw store, and the reconcile workflow's steps."""
