"""Replays: the request, the page rules, the workflow's steps, state, sending and the API's service."""
