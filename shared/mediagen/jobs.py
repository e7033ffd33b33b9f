"""The job contract: what upstream systems send (documented in ``docs/channels.md``).

A job arrives as an SQS message body, an HTTP body, or a line of an S3 manifest::

    {
      "job_id": "optional client key, 1-128 chars [A-Za-z0-9._:-]",   # the idempotency key
      "request": {"model": "seedance-v1-pro", "input": {...}},          # a documented request body
      "output": {"prefix": "optional/key/prefix/"},
      "metadata": {...},                                               # echoed in the job record and events
      "max_credits": 200,
      "allow_unknown_fields": false,                                   # pass fields the catalog does not know
      "retry_unknown_outcome": false,                                  # re-send after an ambiguous failure
      "provider": "cliprise",                                          # or "clipia"
      "fallbacks": [{"provider": "clipia", "request": {...}}],         # tried after a refusal (nothing spent)
      "allow_unpriced": false                                          # send even when no price is known
    }

:func:`parse_job` never raises on bad input: it returns the problems, each naming the field, together with
the job id to record them under, so that even a garbage message ends in a recorded REJECTED job.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

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
                         "retry_unknown_outcome", "provider", "fallbacks", "allow_unpriced"})
#: Most fallbacks a job may list.
MAX_FALLBACKS = 3


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
    "allow_unpriced": "must be true or false",
    "provider": "must be one of: cliprise, clipia",
    "fallbacks": f"must be a list of at most {MAX_FALLBACKS} objects like "
                 "{\"provider\": \"clipia\", \"request\": {...}}",
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


class JobFallback(BaseModel):
    """Another provider's request for the same job, tried after a refusal that spent nothing."""

    model_config = ConfigDict(extra="forbid")

    provider: Literal["cliprise", "clipia"] = Field(description="the provider of this request")
    request: dict[str, Any] = Field(description="a request body of that provider's catalog")


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

    provider: Literal["cliprise", "clipia"] = Field("cliprise", description="the provider that runs `request`")
    fallbacks: list[JobFallback] | None = Field(
        None, max_length=MAX_FALLBACKS,
        description="tried in order when the previous attempt was refused with nothing spent (no credits, model "
                    "unavailable, rate limited past the wait); never after an ambiguous outcome")
    allow_unpriced: StrictBool = Field(False, description="send the job even when neither its price nor an upper "
                                                          "bound is known while max_credits or a daily budget "
                                                          "is set (otherwise REJECTED price_unknown)")

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


def request_hash(request: dict[str, Any], *, allow_unknown_fields: bool = False, provider: str = "cliprise",
                 fallbacks: Sequence[dict[str, Any]] = ()) -> str:
    """SHA-256 (hex) of the canonical JSON of what a job pays for (see :attr:`Job.request_hash`); the sweeper
    compares it with a record's to tell whether the record still holds the whole request."""
    paid: dict[str, Any] = {"request": request, "allow": allow_unknown_fields}
    if provider != "cliprise" or fallbacks:  # absent for Cliprise-only jobs: hashes stay as they were
        paid |= {"provider": provider, "fallbacks": list(fallbacks)}
    canonical = json.dumps(paid, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


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
    #: ``"cliprise"`` | ``"clipia"``: the provider of ``request``.
    provider: str = "cliprise"
    #: ``[{"provider", "request"}]``: tried in order after a refusal that spent nothing.
    fallbacks: tuple[dict[str, Any], ...] = ()
    #: Send even when no price or upper bound is known while a limit is set.
    allow_unpriced: bool = False

    def attempt(self, index: int) -> tuple[str, dict[str, Any]]:
        """``(provider, request)`` of attempt ``index`` (0: the job's own; then its fallbacks)."""
        if index == 0:
            return self.provider, self.request
        entry = self.fallbacks[index - 1]
        return str(entry["provider"]), dict(entry["request"])

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
        if self.provider != "cliprise":
            doc["provider"] = self.provider
        if self.fallbacks:
            doc["fallbacks"] = [dict(f) for f in self.fallbacks]
        if self.allow_unpriced:
            doc["allow_unpriced"] = True
        return doc

    @property
    def request_hash(self) -> str:
        """SHA-256 (hex) of the canonical JSON of what determines the generation (the request and how it is
        checked), and so what is paid for.

        Two deliveries with the same job id and the same hash are the same job, whatever channel each came
        through and wherever each asked the result to land (the first delivery's ``output.prefix`` wins); a
        different hash under the same job id is a conflict.
        """
        return request_hash(self.request, allow_unknown_fields=self.allow_unknown_fields, provider=self.provider,
                            fallbacks=self.fallbacks)


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
    fallbacks = tuple({"provider": f.provider, "request": f.request} for f in envelope.fallbacks or ())
    return ParsedJob(
        job_id,
        Job(job_id=job_id, request=request, output_prefix=prefix, metadata=metadata,
            max_credits=max_credits, allow_unknown_fields=allow_unknown, retry_unknown_outcome=retry_unknown,
            provider=envelope.provider, fallbacks=fallbacks, allow_unpriced=envelope.allow_unpriced),
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


def check_job(body: str | bytes | dict[str, Any], *, fallback_job_id: str, catalog: Catalog | None = None,
              budget_set: bool | Callable[[str], bool] = False,
              providers: frozenset[str] | None = None) -> CheckedJob:
    """Validate a job document: the envelope, its request (and every fallback's) against its provider's
    catalog, and its cost against ``max_credits`` (see :func:`price_problem`).

    Args:
        catalog: the Cliprise catalog to use (default: :func:`mediagen.catalog.catalog_for`); other providers'
            requests are checked with ``catalog_for(provider)``.
        budget_set: a daily budget applies (then a job whose cost cannot be bounded is refused too); or a
            function telling it for the job's provider (each provider has its own budget).
        providers: the providers this deployment offers (``MEDIAGEN_PROVIDERS``); a job naming another one, as
            its provider or a fallback's, is refused with code ``provider_not_configured``. None: not checked.

    The one check every channel runs (queue, HTTP API, S3 intake, CLI). Never raises for bad input: the
    problems are in ``error`` (``{"code", "message", "problems"?}``).
    """
    from mediagen.errors import InvalidJob

    parsed = parse_job(body, fallback_job_id=fallback_job_id)
    if parsed.job is None:
        return CheckedJob(parsed.job_id, parsed.model, parsed.metadata, None, InvalidJob(parsed.problems).to_dict())
    job = parsed.job
    problems: list[dict[str, Any]] = []
    if providers is not None:
        off = [("provider" if index == 0 else f"fallbacks[{index - 1}].provider", job.attempt(index)[0])
               for index in range(len(job.fallbacks) + 1) if job.attempt(index)[0] not in providers]
        if off:
            offered = ", ".join(sorted(providers)) or "none"
            return CheckedJob(job.job_id, job.model, job.metadata, job, {
                "code": "provider_not_configured",
                "message": f"this deployment does not offer {', '.join(sorted({name for _, name in off}))} "
                           f"(it offers: {offered})",
                "problems": [{"field": field, "message": f"{name!r} is not configured in this deployment; "
                                                         f"allowed: {offered}"} for field, name in off]})
    for index in range(len(job.fallbacks) + 1):
        provider, request = job.attempt(index)
        where = "" if index == 0 else f"fallbacks[{index - 1}].request."
        for p in attempt_catalog(provider, catalog).validate(request, allow_unknown_fields=job.allow_unknown_fields):
            found = p.to_dict()
            problems.append({**found, "field": where + str(found.get("field", ""))} if where else found)
    if problems:
        return CheckedJob(job.job_id, job.model, job.metadata, job, InvalidJob(problems).to_dict())
    cat = attempt_catalog(job.provider, catalog)
    estimate = cat.estimate(job.request)
    bound = estimate if estimate is not None else cat.upper_bound(job.request)
    applies = budget_set(job.provider) if callable(budget_set) else budget_set
    refusal = price_problem(bound, estimate, max_credits=job.max_credits, budget_set=applies,
                            allow_unpriced=job.allow_unpriced)
    if refusal is not None:
        return CheckedJob(job.job_id, job.model, job.metadata, job, refusal, estimate=estimate)
    return CheckedJob(job.job_id, job.model, job.metadata, job, estimate=estimate)


def attempt_catalog(provider: str, cliprise: Catalog | None = None) -> Any:
    """The :class:`~mediagen.catalog.ProviderCatalog` for ``provider`` (``cliprise``: ``cliprise`` if given)."""
    from mediagen.catalog import ProviderCatalog, catalog_for

    if provider == "cliprise" and cliprise is not None:
        return ProviderCatalog("cliprise", cliprise)
    return catalog_for(provider)


def price_problem(bound: int | None, estimate: int | None, *, max_credits: int | None, budget_set: bool,
                  allow_unpriced: bool) -> dict[str, Any] | None:
    """Why a request must be refused for its cost (``{"code", "message"}``), or None.

    ``bound`` is the exact estimate or an upper bound (the model's dearest documented setting for what the
    request leaves out). A limit (``max_credits`` or the daily budget) needs a bound: without one the job is
    refused ``price_unknown`` unless ``allow_unpriced``; a bound above ``max_credits`` is ``over_budget``.
    """
    if bound is None:
        if (max_credits is not None or budget_set) and not allow_unpriced:
            limit = f"max_credits {max_credits}" if max_credits is not None else "the daily credit budget"
            return {"code": "price_unknown",
                    "message": f"the catalog has no price (nor an upper bound) for this request, so {limit} cannot "
                               "be enforced; set \"allow_unpriced\": true to send it anyway"}
        return None
    if max_credits is not None and bound > max_credits:
        what = "estimated" if estimate is not None else "may cost up to"
        return {"code": "over_budget", "message": f"{what} {bound} credits, more than max_credits {max_credits}"}
    return None


def execution_name(job_id: str) -> str:
    """The Step Functions execution name for a job: deterministic, so a second StartExecution for the same
    job fails with ``ExecutionAlreadyExists`` instead of running twice.

    Execution names allow 1-80 characters of ``A-Za-z0-9-_``; job ids allow more, so the name is a readable
    prefix plus 16 hex characters of the job id's SHA-256.
    """
    readable = re.sub(r"[^A-Za-z0-9_-]", "-", job_id)[:56]
    return f"{readable}-{hashlib.sha256(job_id.encode()).hexdigest()[:16]}"
