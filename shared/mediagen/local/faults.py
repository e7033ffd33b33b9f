"""AWS-side fault injection for the embedded stack: throttles, server errors and lost responses from moto.

``MEDIAGEN_LOCAL_FAULTS`` is a comma-separated list of ``service:Operation=kind@rate``::

    events:PutEvents=throttle@0.3,dynamodb:UpdateItem=throttle@0.05,sqs:SendMessageBatch=error@0.1

* ``service``: the boto3 client name (``sqs``, ``dynamodb``, ``s3``, ``events``, ``stepfunctions``,
  ``secretsmanager``, ``lambda``, ...); ``Operation``: the API operation as AWS spells it (``PutEvents``).
* ``kind``: ``throttle`` -- the service's throttling error (HTTP 400 ``ThrottlingException``, or what the service
  sends: DynamoDB ``ProvisionedThroughputExceededException``, SQS ``RequestThrottled``, S3 503 ``SlowDown``, Lambda
  429 ``TooManyRequestsException``), the request is not applied; ``error`` -- HTTP 500 ``InternalFailure``
  (DynamoDB ``InternalServerError``, S3 ``InternalError``), not applied; ``timeout`` -- the request IS applied by
  moto, then the client gets ``botocore.exceptions.ReadTimeoutError`` (the caller cannot know whether it happened).
* ``rate``: the share of calls that fail, in (0, 1].

``MEDIAGEN_LOCAL_FAULTS_SEED`` (an integer) makes the draws repeatable; without it a random seed is drawn and
reported (:attr:`FaultInjector.seed`).

The injector answers in moto's place in botocore's ``before-send`` event (the event botocore emits just before
sending an HTTP request, whose first response replaces the network): a faulted request never reaches moto, or
reaches it and its response is then lost. botocore parses the synthetic response as it would AWS's, so its own
retry logic (the clients' retry mode and attempts) runs exactly as against AWS.
"""

from __future__ import annotations

import json
import random
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from unittest import mock

from mediagen.errors import ConfigurationError

#: The environment variable holding the fault spec, and the one holding the seed.
ENV_FAULTS = "MEDIAGEN_LOCAL_FAULTS"
ENV_FAULTS_SEED = "MEDIAGEN_LOCAL_FAULTS_SEED"
#: The fault kinds.
KINDS: tuple[str, ...] = ("throttle", "error", "timeout")

_ENTRY = re.compile(r"(?P<service>[a-z0-9-]+):(?P<operation>[A-Za-z0-9]+)=(?P<kind>[a-z]+)@(?P<rate>[0-9.]+)")
#: Throttling error per service (boto3 name): (HTTP status, code). Default: 400 ThrottlingException.
_THROTTLE: Mapping[str, tuple[int, str]] = {
    "dynamodb": (400, "ProvisionedThroughputExceededException"),
    "sqs": (400, "RequestThrottled"),
    "s3": (503, "SlowDown"),
    "lambda": (429, "TooManyRequestsException"),
}
#: Server error per service: (HTTP status, code). Default: 500 InternalFailure.
_ERROR: Mapping[str, tuple[int, str]] = {
    "dynamodb": (500, "InternalServerError"),
    "s3": (500, "InternalError"),
    "lambda": (500, "ServiceException"),
}


class FaultSpecError(ConfigurationError):
    """``MEDIAGEN_LOCAL_FAULTS`` (or its seed) is malformed; the message names the bad entry."""

    code = "invalid_fault_spec"


@dataclass(frozen=True)
class FaultRule:
    """One entry of the spec: ``service:operation=kind@rate``.

    Attributes:
        service: boto3 client name (``events``).
        operation: API operation (``PutEvents``).
        kind: one of :data:`KINDS`.
        rate: share of calls faulted, in (0, 1].
        service_id: botocore's hyphenated service id, as in the ``before-send.<service_id>.<operation>`` event
            (``eventbridge`` for ``events``).
        protocol: the service's wire protocol (``json``, ``rest-json``, ``rest-xml``, ``query``).
    """

    service: str
    operation: str
    kind: str
    rate: float
    service_id: str
    protocol: str

    @property
    def key(self) -> str:
        """``service:Operation`` -- how counts are reported."""
        return f"{self.service}:{self.operation}"


@lru_cache(maxsize=64)
def _service_model(service: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def parse_faults(spec: str) -> tuple[FaultRule, ...]:
    """The rules of a ``MEDIAGEN_LOCAL_FAULTS`` value (empty or blank: none).

    Raises:
        FaultSpecError: an entry is not ``service:Operation=kind@rate``, names an unknown service, operation or
            kind (the message lists the kinds), has a rate outside (0, 1], or repeats a ``service:Operation``.
    """
    rules: dict[tuple[str, str], FaultRule] = {}
    for raw in spec.split(","):
        entry = raw.strip()
        if not entry:
            continue
        match = _ENTRY.fullmatch(entry)
        if match is None:
            raise FaultSpecError(f"{ENV_FAULTS}: entry {entry!r} is not service:Operation=kind@rate "
                                 f"(kind: {', '.join(KINDS)}; e.g. events:PutEvents=throttle@0.3)")
        service, operation, kind = match["service"], match["operation"], match["kind"]
        if kind not in KINDS:
            raise FaultSpecError(f"{ENV_FAULTS}: entry {entry!r} has kind {kind!r}; allowed kinds: {', '.join(KINDS)}")
        try:
            rate = float(match["rate"])
        except ValueError:
            rate = -1.0
        if not 0 < rate <= 1:
            raise FaultSpecError(f"{ENV_FAULTS}: entry {entry!r} has rate {match['rate']!r}; use a number in (0, 1]")
        try:
            model = _service_model(service)
        except Exception as exc:  # noqa: BLE001 - botocore's UnknownServiceError and friends
            raise FaultSpecError(f"{ENV_FAULTS}: entry {entry!r} names service {service!r}, which botocore does "
                                 "not know; use the boto3 client name (sqs, dynamodb, s3, events, stepfunctions, "
                                 "secretsmanager, lambda)") from exc
        if operation not in model.operation_names:
            raise FaultSpecError(f"{ENV_FAULTS}: entry {entry!r}: {service} has no operation {operation!r}")
        if (service, operation) in rules:
            raise FaultSpecError(f"{ENV_FAULTS}: entry {entry!r} repeats {service}:{operation}")
        protocol = str(getattr(model, "resolved_protocol", None) or model.protocol)
        rules[(service, operation)] = FaultRule(service, operation, kind, rate, model.service_id.hyphenize(),
                                                protocol)
    return tuple(rules.values())


def parse_seed(value: str | None) -> int | None:
    """``MEDIAGEN_LOCAL_FAULTS_SEED`` as an integer (``None`` when unset or blank).

    Raises:
        FaultSpecError: not an integer.
    """
    if value is None or not value.strip():
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise FaultSpecError(f"{ENV_FAULTS_SEED} must be an integer, got {value!r}") from exc


class FaultInjector:
    """Decides, per AWS request, whether to fault it, and counts what it injected.

    Args:
        rules: the faults (see :func:`parse_faults`).
        seed: seeds the draws; ``None`` draws a random seed (kept in :attr:`seed`).

    Attributes:
        rules, seed.
    """

    def __init__(self, rules: tuple[FaultRule, ...], *, seed: int | None = None) -> None:
        self.rules = rules
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
        self._random = random.Random(self.seed)  # noqa: S311 - fault draws, not security
        self._by_event = {(rule.service_id, rule.operation): rule for rule in rules}
        self._lock = threading.Lock()
        self._counts: dict[str, dict[str, int]] = {}

    @classmethod
    def from_spec(cls, spec: str, *, seed: int | str | None = None) -> FaultInjector:
        """Raises: FaultSpecError: see :func:`parse_faults` and :func:`parse_seed`."""
        return cls(parse_faults(spec), seed=parse_seed(seed) if isinstance(seed, str) else seed)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> FaultInjector | None:
        """The injector ``MEDIAGEN_LOCAL_FAULTS`` and ``MEDIAGEN_LOCAL_FAULTS_SEED`` describe; ``None`` when no
        fault is set.

        Raises:
            FaultSpecError: either variable is malformed.
        """
        rules = parse_faults(environ.get(ENV_FAULTS, ""))
        seed = parse_seed(environ.get(ENV_FAULTS_SEED))
        return cls(rules, seed=seed) if rules else None

    def injected(self) -> dict[str, dict[str, int]]:
        """Faults injected so far: ``{"events:PutEvents": {"throttle": 3}, ...}`` (a copy)."""
        with self._lock:
            return {key: dict(kinds) for key, kinds in self._counts.items()}

    def total(self) -> int:
        """How many faults were injected in all."""
        with self._lock:
            return sum(sum(kinds.values()) for kinds in self._counts.values())

    def before_send(self, event_name: str, request: Any, send: Callable[[], Any]) -> Any:
        """The ``before-send`` answer for ``request``: a synthetic error response, ``send()``'s response (moto's),
        or, for a ``timeout``, ``send()`` and then :class:`botocore.exceptions.ReadTimeoutError`.

        Args:
            event_name: ``before-send.<service id>.<Operation>``.
            request: botocore's ``AWSPreparedRequest``.
            send: applies the request (moto) and returns its response.
        """
        _, _, rest = event_name.partition(".")
        service_id, _, operation = rest.rpartition(".")
        rule = self._by_event.get((service_id, operation))
        if rule is None:
            return send()
        with self._lock:
            if self._random.random() >= rule.rate:
                rule = None
            else:
                kinds = self._counts.setdefault(f"{rule.service}:{rule.operation}", {})
                kinds[rule.kind] = kinds.get(rule.kind, 0) + 1
        if rule is None:
            return send()
        if rule.kind == "timeout":
            from botocore.exceptions import ReadTimeoutError

            send()
            raise ReadTimeoutError(endpoint_url=request.url)
        return error_response(rule, request.url)


def error_response(rule: FaultRule, url: str) -> Any:
    """The ``botocore.awsrequest.AWSResponse`` AWS sends for ``rule``'s throttle or error, in the service's
    wire protocol."""
    from botocore.awsrequest import AWSResponse

    status, code = (_THROTTLE if rule.kind == "throttle" else _ERROR).get(
        rule.service, (400, "ThrottlingException") if rule.kind == "throttle" else (500, "InternalFailure"))
    message = "Rate exceeded (injected by MEDIAGEN_LOCAL_FAULTS)" if rule.kind == "throttle" else \
        "Internal failure (injected by MEDIAGEN_LOCAL_FAULTS)"
    request_id = str(uuid.uuid4())
    headers = {"x-amzn-RequestId": request_id, "x-amz-request-id": request_id}
    if rule.protocol == "json":
        headers["Content-Type"] = "application/x-amz-json-1.0"
        body = json.dumps({"__type": code, "message": message}).encode()
    elif rule.protocol == "rest-json":
        headers["Content-Type"] = "application/json"
        headers["x-amzn-ErrorType"] = code
        body = json.dumps({"message": message, "Type": "User" if status < 500 else "Service"}).encode()
    elif rule.protocol == "rest-xml":
        headers["Content-Type"] = "application/xml"
        body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}"
                f"</Message><RequestId>{request_id}</RequestId></Error>").encode()
    else:  # query, ec2
        headers["Content-Type"] = "text/xml"
        side = "Sender" if status < 500 else "Receiver"
        body = (f"<ErrorResponse><Error><Type>{side}</Type><Code>{code}</Code><Message>{message}</Message>"
                f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>").encode()
    return AWSResponse(url, status, headers, _Raw(body))


class _Raw:
    """The raw body botocore reads from an ``AWSResponse`` (``stream()`` and ``read()``)."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, *_: Any) -> bytes:
        body, self._body = self._body, b""
        return body


@contextmanager
def installed(injector: FaultInjector) -> Iterator[FaultInjector]:
    """Put ``injector`` in moto's place in the ``before-send`` event of every botocore client moto serves (every
    session, the default one included) until the block ends. moto must be running (``mock_aws``)."""
    from moto.core.botocore_stubber import BotocoreStubber

    moto_before_send = BotocoreStubber.__call__

    def before_send(stubber: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
        if not stubber.enabled:
            return None
        return injector.before_send(event_name, request,
                                    lambda: moto_before_send(stubber, event_name, request, **kwargs))

    with mock.patch.object(BotocoreStubber, "__call__", before_send):
        yield injector
