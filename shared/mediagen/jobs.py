"""The job contract: what upstream systems send (documented in ``docs/channels.md``).

A job arrives as an SQS message body, an HTTP body, or a line of an S3 manifest::

    {
      "job_id": "optional client key, 1-128 chars [A-Za-z0-9._:-]",   # the idempotency key
      "request": {"model": "seedance-v1-pro", "input": {...}},          # a documented request body
      "output": {"prefix": "optional/key/prefix/"},
      "metadata": {...},                                               # echoed in the job record and events
      "max_credits": 200,
      "allow_unknown_fields": false,                                   # pass fields the catalog does not know
      "retry_unknown_outcome": false                                   # re-send after an ambiguous failure
    }

:func:`parse_job` never raises on bad input: it returns the problems, each naming the field, together with
the job id to record them under, so that even a garbage message ends in a recorded REJECTED job.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError, field_validator

from mediagen.decode import UnreadableBody, decode_json, value_problems

if TYPE_CHECKING:
    from mediagen.catalog import Catalog

#: 1-128 characters of ``A-Za-z0-9._:-``, and not ``.`` or ``..`` (the id is a path segment of every output key
#: and of the folders the CLI downloads into).
#: (No look-around: the API's pydantic model runs this pattern on the Rust regex engine.)
JOB_ID_PATTERN = re.compile(
    r"^(?:[A-Za-z0-9_:-]|[A-Za-z0-9._:-][A-Za-z0-9_:-]|[A-Za-z0-9_:-]\.|[A-Za-z0-9._:-]{3,128})$")
PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9!_.*'()/=-]{0,512}$")
#: Upper bound of a job document, in bytes (SQS allows 256 KiB; anything larger is not a documented body).
MAX_JOB_BYTES = 256 * 1024
#: Deepest nesting of a job document (DynamoDB stores at most 32 levels of nested attributes).
MAX_JOB_DEPTH = 32
_KNOWN_KEYS = frozenset({"job_id", "request", "output", "metadata", "max_credits", "allow_unknown_fields",
                         "retry_unknown_outcome"})


#: What each envelope problem says, by field (the value's path is in ``field``).
_MESSAGES = {
    "job_id": "must be 1-128 characters of A-Z a-z 0-9 . _ : -, and not '.' or '..'",
    "output.prefix": "must be a relative S3 key prefix (letters, digits, !_.*'()/=-; no '..', no '.' segment, "
                     "no leading '/')",
    "output": "must be an object like {\"prefix\": \"path/\"}",
    "metadata": "must be a JSON object",
    "max_credits": "must be a non-negative integer",
    "allow_unknown_fields": "must be true or false",
    "retry_unknown_outcome": "must be true or false",
}
#: Largest ``metadata``, in bytes of JSON (it is echoed in every event).
MAX_METADATA_BYTES = 8 * 1024


class JobOutput(BaseModel):
    """Where the results land."""

    prefix: str = Field("", description="S3 key prefix of the results (`<prefix><job_id>/…`)", max_length=512)

    @field_validator("prefix")
    @classmethod
    def _relative_prefix(cls, value: str) -> str:
        if not PREFIX_PATTERN.fullmatch(value) or ".." in value or value.startswith("/") or "." in value.split("/"):
            raise ValueError(_MESSAGES["output.prefix"])
        return value


class JobDocument(BaseModel):
    """A job: what the SQS queue, the HTTP API, S3 manifests and the CLI accept (its request is checked
    against the catalog)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "job_id": "catalog-42-hero",
        "request": {"model": "nano-banana", "input": {"prompt": "A perfume bottle on wet stone",
                                                      "output_format": "png", "image_size": "1:1"}},
        "output": {"prefix": "catalog/"}, "metadata": {"sku": "42"}, "max_credits": 20}]})

    job_id: str | None = Field(None, pattern=JOB_ID_PATTERN.pattern, min_length=1, max_length=128,
                               description="the idempotency key; generated when absent")
    request: dict[str, Any] = Field(description="a request body exactly as the Cliprise documentation shows it "
                                                "(`model` plus `input` or root fields), without `callBackUrl`")
    output: JobOutput | None = None
    metadata: dict[str, Any] | None = Field(None, description="echoed in the job record and in events")
    max_credits: StrictInt | None = Field(None, ge=0, description="refuse the job when its estimate is higher")
    allow_unknown_fields: StrictBool = Field(False, description="send fields the catalog does not know")
    retry_unknown_outcome: StrictBool = Field(False, description="re-send after an ambiguous generate failure "
                                                                 "(may pay twice)")

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value)) > MAX_METADATA_BYTES:
            raise ValueError(f"must be at most {MAX_METADATA_BYTES // 1024} KiB of JSON")
        return value


def envelope_problems(errors: list[Any], doc: Any = None) -> list[dict[str, str]]:
    """pydantic's errors for a :class:`JobDocument` -> mediagen's problems (``{"field", "message"}``), one per
    field, each saying what is allowed. ``loc`` entries ``"body"`` (Powertools) are dropped."""
    problems: list[dict[str, str]] = []
    seen: set[str] = set()
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        kind = str(err.get("type", ""))
        field_path = ".".join(loc[:2] if loc[:1] == ["output"] and loc[1:2] == ["prefix"] else loc[:1]) or "body"
        if kind == "json_invalid":  # loc is the position in the text
            field_path = "body"
            message = f"not valid JSON ({err.get('msg', '')})"
        elif kind == "extra_forbidden":
            message = f"unknown job field; allowed: {', '.join(sorted(_KNOWN_KEYS))}"
        elif field_path == "request" and kind == "missing":
            message = "required: a documented request body with a 'model'"
        elif field_path == "request":
            got = doc.get("request") if isinstance(doc, dict) else err.get("input")
            message = f"must be an object, got {type(got).__name__}"
        elif field_path == "metadata" and kind == "value_error":
            message = str(err.get("ctx", {}).get("error", err.get("msg", "")))
        elif field_path == "body" and kind in ("model_type", "model_attributes_type", "dict_type"):
            message = "a job must be a JSON object"
        else:
            message = _MESSAGES.get(field_path, str(err.get("msg", "invalid")))
        if field_path not in seen:
            seen.add(field_path)
            problems.append(_problem(field_path, message))
    return problems


@dataclass(frozen=True)
class Job:
    """A parsed, envelope-valid job. ``request`` is not yet validated against the catalog."""

    job_id: str
    request: dict[str, Any]
    output_prefix: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    max_credits: int | None = None
    allow_unknown_fields: bool = False
    #: Re-send after an ambiguous generate failure (the provider may then charge twice). Default: never.
    retry_unknown_outcome: bool = False

    @property
    def model(self) -> str:
        """The request's ``model`` value, or ``""`` when absent or not a string."""
        value = self.request.get("model")
        return value if isinstance(value, str) else ""

    def document(self) -> dict[str, Any]:
        """The job as a job document again, with its id explicit (for re-sending it to the queue)."""
        doc: dict[str, Any] = {"job_id": self.job_id, "request": self.request}
        if self.output_prefix:
            doc["output"] = {"prefix": self.output_prefix}
        if self.metadata:
            doc["metadata"] = self.metadata
        if self.max_credits is not None:
            doc["max_credits"] = self.max_credits
        if self.allow_unknown_fields:
            doc["allow_unknown_fields"] = True
        if self.retry_unknown_outcome:
            doc["retry_unknown_outcome"] = True
        return doc

    @property
    def request_hash(self) -> str:
        """SHA-256 (hex) of the canonical JSON of what determines the generation (the request and how it is
        checked), and so what is paid for.

        Two deliveries with the same job id and the same hash are the same job, whatever channel each came
        through and wherever each asked the result to land (the first delivery's ``output.prefix`` wins); a
        different hash under the same job id is a conflict.
        """
        canonical = json.dumps(
            {"request": self.request, "allow": self.allow_unknown_fields},
            sort_keys=True, separators=(",", ":"), ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class ParsedJob:
    """Outcome of :func:`parse_job`: a job, or the problems with the id to record them under."""

    job_id: str
    job: Job | None
    problems: list[dict[str, str]]
    model: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


def _problem(field_path: str, message: str) -> dict[str, str]:
    return {"field": field_path, "message": message}


def parse_job(body: str | bytes | dict[str, Any], *, fallback_job_id: str) -> ParsedJob:
    """Parse a job document.

    Args:
        body: the raw message body (JSON text or bytes) or an already-decoded object.
        fallback_job_id: the id to use when the job carries none (or an unusable one). Callers derive it
            from the delivery (e.g. ``sqs-<messageId>``) so that a redelivered message maps to the same id.

    Returns:
        ParsedJob: ``job`` is set when the envelope is valid; otherwise ``problems`` lists every problem,
        each ``{"field": path, "message": text}``.
    """
    problems: list[dict[str, str]] = []
    doc: Any = body
    try:
        if isinstance(body, bytes | str):
            doc = decode_json(body, max_bytes=MAX_JOB_BYTES, max_depth=MAX_JOB_DEPTH, what="job")
        else:
            unusable = value_problems(body, max_depth=MAX_JOB_DEPTH)
            if unusable:
                raise UnreadableBody("job holds values no record can keep", what="job", limit="values",
                                     problems=unusable, document=body)
    except UnreadableBody as exc:
        job_id = fallback_job_id
        found = exc.document
        if isinstance(found, dict) and isinstance(found.get("job_id"), str) \
                and JOB_ID_PATTERN.fullmatch(found["job_id"]):
            job_id = found["job_id"]
        return ParsedJob(job_id, None, exc.problems)
    if not isinstance(doc, dict):
        not_object = _problem("body", f"a job must be a JSON object, got {type(doc).__name__}")
        return ParsedJob(fallback_job_id, None, [not_object])

    job_id = fallback_job_id
    raw_id = doc.get("job_id")
    if isinstance(raw_id, str) and JOB_ID_PATTERN.fullmatch(raw_id):
        job_id = raw_id
    if doc.get("request") is None and "model" in doc:
        # A bare documented request body is accepted as a job with a generated id.
        doc = {"request": {k: v for k, v in doc.items() if k not in _KNOWN_KEYS or k == "model"},
               **{k: v for k, v in doc.items() if k in _KNOWN_KEYS and k != "model"}}
    request = doc.get("request")
    metadata = doc.get("metadata")
    metadata = metadata if isinstance(metadata, dict) and len(json.dumps(metadata)) <= MAX_METADATA_BYTES else {}
    envelope: JobDocument | None = None
    try:  # a null request is a missing one
        envelope = JobDocument.model_validate({k: v for k, v in doc.items() if k != "request" or v is not None})
    except ValidationError as exc:
        problems = envelope_problems(exc.errors(), doc)
    if envelope is None or problems or not isinstance(request, dict):
        model = request.get("model") if isinstance(request, dict) else None
        return ParsedJob(job_id, None, problems, model=model if isinstance(model, str) else "", metadata=metadata)
    raw_prefix = envelope.output.prefix if envelope.output else ""
    prefix = raw_prefix if not raw_prefix or raw_prefix.endswith("/") else raw_prefix + "/"
    max_credits, allow_unknown, retry_unknown = (envelope.max_credits, envelope.allow_unknown_fields,
                                                 envelope.retry_unknown_outcome)

    model = request.get("model")
    model = model if isinstance(model, str) else ""
    return ParsedJob(
        job_id,
        Job(job_id=job_id, request=request, output_prefix=prefix, metadata=metadata,
            max_credits=max_credits, allow_unknown_fields=allow_unknown, retry_unknown_outcome=retry_unknown),
        [],
        model=model,
        metadata=metadata,
    )


@dataclass
class CheckedJob:
    """A job document after every check that needs no AWS call: the envelope, the catalog, ``max_credits``.

    ``job`` is None, or ``error`` is set, when the job must be refused (``error`` is what is recorded).
    """

    job_id: str
    model: str
    metadata: dict[str, Any]
    job: Job | None
    error: dict[str, Any] | None = None
    estimate: int | None = None

    @property
    def request_hash(self) -> str:
        return self.job.request_hash if self.job is not None else ""


def check_job(body: str | bytes | dict[str, Any], *, fallback_job_id: str, catalog: Catalog) -> CheckedJob:
    """Validate a job document (envelope, request against the catalog, estimate vs ``max_credits``).

    The one check every channel runs (queue, HTTP API, S3 intake, CLI). Never raises for bad input: the
    problems are in ``error`` (``{"code", "message", "problems"?}``).
    """
    from mediagen.errors import InvalidJob

    parsed = parse_job(body, fallback_job_id=fallback_job_id)
    if parsed.job is None:
        return CheckedJob(parsed.job_id, parsed.model, parsed.metadata, None, InvalidJob(parsed.problems).to_dict())
    job = parsed.job
    problems = [p.to_dict() for p in catalog.validate(job.request, allow_unknown_fields=job.allow_unknown_fields)]
    if problems:
        return CheckedJob(job.job_id, job.model, job.metadata, job, InvalidJob(problems).to_dict())
    estimate = catalog.estimate(job.request)
    if job.max_credits is not None and estimate is not None and estimate > job.max_credits:
        return CheckedJob(job.job_id, job.model, job.metadata, job, {
            "code": "over_budget", "message": f"estimated {estimate} credits exceeds max_credits {job.max_credits}"},
            estimate=estimate)
    return CheckedJob(job.job_id, job.model, job.metadata, job, estimate=estimate)



def execution_name(job_id: str) -> str:
    """The Step Functions execution name for a job: deterministic, so a second StartExecution for the same
    job fails with ``ExecutionAlreadyExists`` instead of running twice.

    Execution names allow 1-80 characters of ``A-Za-z0-9-_``; job ids allow more, so the name is a readable
    prefix plus 16 hex characters of the job id's SHA-256.
    """
    readable = re.sub(r"[^A-Za-z0-9_-]", "-", job_id)[:56]
    return f"{readable}-{hashlib.sha256(job_id.encode()).hexdigest()[:16]}"
