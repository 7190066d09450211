"""evreplay: event investigation and replay for AWS event pipelines."""

__version__ = "0.1.0"
