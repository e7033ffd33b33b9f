"""The error hierarchy of mediagen: one base class, a small family per boundary.

Errors are translated once, at the adapter edge (HTTP response -> ``ProviderError``; botocore
``ClientError`` -> ``RepositoryError``), and mapped once to a job status (see ``mediagen.records``).
"""

from __future__ import annotations

from typing import Any


class MediagenError(Exception):
    """Base class of every error mediagen raises on purpose.

    Attributes:
        code: a short machine-readable code (``snake_case``), stored in job records and events.
        message: a human-readable message, safe to log (never carries a secret).
    """

    code: str = "mediagen_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, Any]:
        """``{"code": str, "message": str}`` -- the shape stored in job records and events."""
        return {"code": self.code, "message": self.message}


class ConfigurationError(MediagenError):
    """A setting is missing or malformed (environment variable, secret, CDK context)."""

    code = "configuration_error"


class InvalidJob(MediagenError):
    """The job envelope or its request failed validation; nothing was sent to the provider.

    Attributes:
        problems: one ``{"field": path, "message": text}`` per problem found (all of them, not the first).
    """

    code = "invalid_request"

    #: At most this many problems are kept (a job record must stay under DynamoDB's 400 KB item limit and an
    #: event under EventBridge's 256 KB); a last entry says how many more there were.
    MAX_PROBLEMS = 50
    #: Longest message kept per problem, in characters (problem messages echo the offending value).
    MAX_MESSAGE = 300

    def __init__(self, problems: list[dict[str, str]], message: str | None = None) -> None:
        kept = [{"field": str(p["field"])[:200], "message": _clip(str(p["message"]), self.MAX_MESSAGE)}
                for p in problems[: self.MAX_PROBLEMS]]
        if len(problems) > self.MAX_PROBLEMS:
            kept.append({"field": "request", "message": f"... and {len(problems) - self.MAX_PROBLEMS} more problems"})
        self.problems = kept
        text = message or "; ".join(f"{p['field']}: {p['message']}" for p in kept[:10])
        super().__init__(_clip(text, 2000))

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "problems": self.problems}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class RepositoryError(MediagenError):
    """The job repository failed (DynamoDB)."""

    code = "repository_error"


class StatusConflict(RepositoryError):
    """A conditional write lost: the job is not in the status the caller expected.

    Raised when a job id is reused with a different request, or a transition races another worker.
    """

    code = "status_conflict"


class JobNotFound(RepositoryError):
    """No job record exists for the job id."""

    code = "job_not_found"


class StorageError(MediagenError):
    """Writing outputs to S3 failed, or a downloaded result was incomplete."""

    code = "storage_error"
