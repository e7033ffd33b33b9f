"""Who owns a job, and who may see it (issue 13, finding 7).

Every job record holds its ``owner`` (:data:`mediagen.records.JobRecord`):

- a job sent through the jobs HTTP API: the caller's IAM principal as API Gateway's IAM authorizer reports it
  (``requestContext.authorizer.iam.userArn`` of the HTTP API payload 2.0 event), normalised by
  :func:`normalise_principal` -- an assumed-role session becomes its role
  (``arn:aws:sts::111122223333:assumed-role/Uploader/session-1`` -> ``arn:aws:iam::111122223333:role/Uploader``),
  so every session of one role is one owner; the account id is part of the ARN;
- a job from the S3 intake: ``s3:<bucket>``; a job from the jobs queue: ``sqs`` (:func:`channel_owner`);
- an API without authentication (the construct's ``allow_unauthenticated=True``): :data:`ANONYMOUS`, shared by
  every caller -- such an API is public by choice.

``GET /jobs/{job_id}`` and ``POST /jobs/{job_id}/cancel`` serve a job only to its owner and to the operators
(``MEDIAGEN_OPERATOR_PRINCIPALS``, :func:`parse_operators`); anyone else gets the answer a missing job gets
(:func:`may_see`). Channel-owned jobs are therefore readable through the API by operators only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from mediagen.errors import ConfigurationError

#: The owner of jobs sent to an API that authenticates nobody (every caller is this one principal).
ANONYMOUS = "anonymous"
#: The owner of jobs that arrived on the jobs queue.
SQS_OWNER = "sqs"
#: The owner of API jobs recorded before owners were (no ``owner`` field): nobody's principal, operators only.
LEGACY_API_OWNER = "api"

_ARN = re.compile(r"arn:(?P<partition>aws[a-z-]*):(?P<service>iam|sts)::(?P<account>\d{12}):(?P<resource>.+)")


def normalise_principal(arn: str) -> str:
    """The owner string of an IAM principal ARN.

    - ``arn:<p>:sts::<account>:assumed-role/<role>/<session>`` -> ``arn:<p>:iam::<account>:role/<role>``;
    - ``arn:<p>:iam::<account>:role/<path>/<role>`` -> ``arn:<p>:iam::<account>:role/<role>`` (a role or user
      name is unique in its account whatever its path, and assumed-role ARNs carry no path);
    - ``arn:<p>:iam::<account>:user/<path>/<user>`` -> ``arn:<p>:iam::<account>:user/<user>``;
    - anything else (``...:root``, ``...:federated-user/<name>``) unchanged.

    Raises:
        ValueError: not an IAM or STS principal ARN.
    """
    match = _ARN.fullmatch(arn.strip())
    if match is None:
        raise ValueError(f"{arn[:200]!r} is not an IAM principal ARN (arn:aws:iam::<account>:role/<name>, "
                         "...:user/<name>, arn:aws:sts::<account>:assumed-role/<role>/<session>)")
    partition, service, account, resource = match.group("partition", "service", "account", "resource")
    kind, _, rest = resource.partition("/")
    if service == "sts" and kind == "assumed-role" and rest:
        return f"arn:{partition}:iam::{account}:role/{rest.split('/', 1)[0]}"
    if service == "iam" and kind in ("role", "user") and rest:
        return f"arn:{partition}:iam::{account}:{kind}/{rest.rsplit('/', 1)[-1]}"
    return f"arn:{partition}:{service}::{account}:{resource}"


def caller_principal(event: Mapping[str, Any]) -> str:
    """The owner string of the caller of an API Gateway HTTP API (payload 2.0) event: its IAM principal
    (``requestContext.authorizer.iam.userArn``, normalised), or :data:`ANONYMOUS` when the route has no IAM
    authorizer. Only what API Gateway puts in ``requestContext`` counts (never a header)."""
    context = event.get("requestContext") or {}
    iam = ((context.get("authorizer") or {}) if isinstance(context, Mapping) else {}).get("iam") or {}
    arn = iam.get("userArn") if isinstance(iam, Mapping) else None
    if not arn:
        return ANONYMOUS
    try:
        return normalise_principal(str(arn))
    except ValueError:
        return str(arn)  # an ARN of a shape we do not know: compared exactly


def channel_owner(source: Mapping[str, Any] | None) -> str:
    """The owner of a job that did not come through the API: ``s3:<bucket>`` (manifest or media drop),
    :data:`SQS_OWNER` (the jobs queue: no source), :data:`LEGACY_API_OWNER` (an API job without owner)."""
    source = source or {}
    channel = str(source.get("channel") or "")
    if channel.startswith("s3"):
        return f"s3:{source.get('bucket') or ''}"
    if channel == "api":
        return LEGACY_API_OWNER
    return SQS_OWNER


def owner_of(record: Mapping[str, Any]) -> str:
    """A job record's owner: its ``owner`` field, else the one its channel implies (:func:`channel_owner`)."""
    return str(record.get("owner") or channel_owner(record.get("source")))


@lru_cache(maxsize=8)
def parse_operators(text: str) -> frozenset[str]:
    """The operator principals of ``MEDIAGEN_OPERATOR_PRINCIPALS``: IAM principal ARNs separated by commas or
    whitespace, each normalised (:func:`normalise_principal`).

    Raises:
        ConfigurationError: an entry is not an IAM principal ARN (names it).
    """
    operators = set()
    for entry in re.split(r"[\s,]+", text.strip()):
        if not entry:
            continue
        try:
            operators.add(normalise_principal(entry))
        except ValueError as exc:
            raise ConfigurationError(f"MEDIAGEN_OPERATOR_PRINCIPALS: {exc}") from exc
    return frozenset(operators)


def may_see(record: Mapping[str, Any], principal: str, operators: frozenset[str]) -> bool:
    """Whether ``principal`` may read or cancel the job ``record``: it owns it, or it is an operator."""
    return principal in operators or owner_of(record) == principal
