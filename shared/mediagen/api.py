"""The jobs HTTP API (API Gateway HTTP API, payload 2.0; Powertools event handler with OpenAPI).

Routes (IAM/SigV4 auth in a deployment; see ``infra/mediagen_infra/jobs_api.py``):

- ``POST /jobs`` -- a job document (:mod:`mediagen.jobs`). Checked synchronously against the catalog: **400**
  with every problem (``{"code", "message", "problems": [{"field", "message"}]}``) and nothing recorded;
  **202** ``{"job_id", "status", "status_url", "created"}`` when accepted (recorded RECEIVED and queued for
  submit); idempotent on ``job_id`` (the same job again: 202 with ``created: false``); **409** when the job id
  is taken by a different request; **503** when the queue refused it (nothing sent: send it again).
- ``GET /jobs/{job_id}`` -- status, timestamps, error, outputs as S3 URIs and presigned download URLs.
- ``POST /jobs/{job_id}/cancel`` -- stops polling and records CANCELLED. Cliprise has no cancel: a job already
  sent keeps running there and its credits are spent; a Clipia job is cancelled at Clipia too, which refunds
  it if it has not finished (the response says which).

**Jobs belong to their caller** (issue 13, finding 7; :mod:`mediagen.principals`): a job is recorded with its
``owner``, the caller's IAM principal (an assumed role's sessions are the role). ``GET`` and ``cancel`` answer
another caller exactly as for a missing job (404), unless it is an operator (``MEDIAGEN_OPERATOR_PRINCIPALS``);
jobs from the S3 intake and the jobs queue are visible to operators only. A job id already used by another
owner is answered 409 ``job_id_unavailable`` with a generic message (nothing about that job, nothing recorded
or queued): the id is a global key, so its existence cannot be hidden from a caller who must choose another,
but nothing else is shown. ``owner`` is shown in the job view, which only the owner and operators get.
Every body is read by :func:`mediagen.decode.refuse_http_body` before Powertools parses it (issue 13, finding
14): a body nested too deeply or not UTF-8 is a 400, never a ``RecursionError``.
- ``GET /models``, ``GET /models/{model_id}`` -- the catalog (summary; request JSON Schema).
- ``GET /openapi.json`` -- this API's OpenAPI document (also in ``docs/openapi.json``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from pydantic import BaseModel, ConfigDict, Field

from mediagen import __version__
from mediagen.errors import MediagenError
from mediagen.jobs import JOB_ID_PATTERN, MAX_JOB_BYTES, MAX_JOB_DEPTH, JobDocument, envelope_problems

TITLE = "mediagen jobs API"

# ----------------------------------------------------------------------------------------------- models


class Problem(BaseModel):
    field: str = Field(description="path of the offending field, e.g. `request.input.image_size`")
    message: str = Field(description="what is wrong and what is allowed")


class ErrorBody(BaseModel):
    code: str = Field(description="machine-readable error code")
    message: str
    problems: list[Problem] | None = None
    job_id: str | None = None
    status: str | None = Field(None, description="the job's status, when the error is about an existing job")


class JobAccepted(BaseModel):
    job_id: str
    status: str = Field(description="the job's status now (RECEIVED for a new job)")
    status_url: str = Field(description="GET this for the job's progress and outputs")
    created: bool = Field(description="false when this job id was already accepted (an idempotent repeat)")


class OutputView(BaseModel):
    model_config = ConfigDict(extra="allow")

    uri: str = Field(description="s3://bucket/key")
    key: str
    bytes: int
    content_type: str
    sha256: str
    url: str | None = Field(None, description="presigned download URL")
    url_expires_in: int | None = Field(None, description="seconds the download URL stays valid")


class JobView(BaseModel):
    """A job's job record as callers see it (no internal tokens)."""

    model_config = ConfigDict(extra="allow")

    job_id: str
    status: Literal["RECEIVED", "SUBMITTING", "SUBMITTED", "PERSISTING", "SUCCEEDED", "REJECTED", "FAILED",
                    "PIPELINE_FAILED", "TIMED_OUT", "OUTCOME_UNKNOWN", "CANCELLED", "EXPIRED"]
    terminal: bool
    model: str | None = None
    modality: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    transitions: dict[str, str] = Field(default_factory=dict, description="status -> when it was entered")
    polls: int = 0
    callbacks: int = 0
    credits_estimate: int | None = None
    provider_task_id: str | None = None
    error: ErrorBody | None = None
    outputs: list[OutputView] = Field(default_factory=list)
    manifest_uri: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    source: dict[str, Any] | None = None
    owner: str | None = Field(None, description="who the job belongs to: the IAM principal that sent it (a role "
                              "for assumed-role callers), `s3:<bucket>` or `sqs`; only its owner and operators "
                              "see the job")


class CancelResult(BaseModel):
    job_id: str
    status: Literal["CANCELLED"]
    cancelled_from: str = Field(description="the status the job was in")
    credits: str = Field(description="what happens to the credits")
    message: str


class ModelBlock(BaseModel):
    id: str
    source: str
    required: list[str]
    optional: list[str]


class ModelSummary(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    name: str
    modality: str
    legacy: bool
    root_only: bool
    request_values: list[str]
    blocks: list[ModelBlock]
    priced: bool
    alias_of: str | None = None


class ModelDetail(ModelSummary):
    request_schema: dict[str, Any] = Field(description="JSON Schema of the request body")


# ----------------------------------------------------------------------------------------------- app

app = APIGatewayHttpResolver(enable_validation=True)

_JSON = content_types.APPLICATION_JSON
_ERRORS: dict[int, Any] = {
    code: {"description": text, "content": {_JSON: {"model": ErrorBody}}}
    for code, text in {400: "invalid: every problem, each naming its field; nothing recorded or sent",
                       404: "no such job or model (a job of another caller is answered as a missing one)",
                       409: "conflict (see `code`): `job_id_conflict` -- your job id, used by a different request "
                            "of yours; `job_id_unavailable` -- the job id belongs to someone else (nothing about "
                            "that job is said); `already_ended` / `busy_retry` -- the job cannot be cancelled "
                            "(now)",
                       503: "the jobs queue refused the job; nothing was sent: send it again"}.items()
}


def _errors(*codes: int) -> dict[int, Any]:
    return {c: _ERRORS[c] for c in codes}


def _error(http_status: int, code: str, message: str, **extra: Any) -> Response[Any]:
    body = {"code": code, "message": message, **{k: v for k, v in extra.items() if v is not None}}
    return Response(status_code=http_status, content_type=_JSON, body=body)


def _ports() -> Any:
    from mediagen.wiring import ports

    return ports("api")


def _base_url() -> str:
    event = app.current_event
    headers = event.headers or {}
    proto = headers.get("x-forwarded-proto", "https")
    return f"{proto}://{event.request_context.domain_name}"


@app.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> Response[Any]:
    """The body does not match :class:`~mediagen.jobs.JobDocument`: answer with mediagen's own problems (the
    same ones the queue would record, from the same model), each naming its field."""
    problems = envelope_problems(list(exc.errors()))
    return _error(400, "invalid_request", "; ".join(f"{p['field']}: {p['message']}" for p in problems[:10]),
                  problems=problems[:50])


@app.exception_handler(ValueError)
def _unreadable_body(exc: ValueError) -> Response[Any]:
    """A body Powertools cannot even decode (e.g. ``multipart/form-data`` without a boundary): jobs are JSON.

    Only a ``ValueError`` raised while Powertools decodes the body is the caller's fault (400); any other (a
    pydantic ``ValidationError`` of a stored record, a bug) is ours: 500 with a generic message."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    if not frames or not frames[-1].filename.endswith(_BODY_DECODER):  # raised elsewhere: not the body's fault
        return _internal_error(exc)
    content_type = (app.current_event.headers or {}).get("content-type", "")
    return _error(400, "invalid_request", f"the body could not be read as {content_type[:80]!r}; send a JSON job "
                  "with content-type application/json",
                  problems=[{"field": "body", "message": "not a JSON document (content-type application/json)"}])


#: The Powertools module that decodes request bodies (its ValueErrors are unreadable bodies).
_BODY_DECODER = "openapi_validation.py"


def _internal_error(exc: Exception) -> Response[Any]:
    """A fault of ours (e.g. a stored record the response model rejects): logged with its type (never the
    record or the body), answered 500 generically. Other unexpected exceptions fail the invocation, which API
    Gateway answers with its own generic 500."""
    from mediagen.observability import get_logger

    # Not the exception's text: a pydantic error quotes the record's values.
    get_logger().error("the jobs API failed", error_type=type(exc).__name__)
    return _error(500, "internal_error", "the request could not be completed; try again later")


def _raw_body() -> str:
    body = app.current_event.decoded_body or ""
    return body if isinstance(body, str) else str(body)


class QueueRefused(MediagenError):
    """The jobs queue refused an accepted job (HTTP 503); nothing was sent to the provider.
    Attributes: ``record`` (the job record, still RECEIVED)."""

    code = "queue_unavailable"

    def __init__(self, message: str, record: dict[str, Any]) -> None:
        super().__init__(message)
        self.record = record


def _http_errors() -> dict[type[MediagenError], tuple[int, Callable[[Any], dict[str, Any]]]]:
    """The one exception-to-HTTP table of this API: error class -> (status, extra body fields). The most
    specific class of an error wins; a MediagenError not listed is ours (500)."""
    from mediagen.errors import JobNotFound
    from mediagen.steps.accept import JobConflict, JobIdTaken, JobRefused
    from mediagen.steps.cancel import NotCancellable

    def about(record: dict[str, Any]) -> dict[str, Any]:
        return {"job_id": record.get("job_id"), "status": record.get("status")}

    return {
        JobRefused: (400, lambda e: {"problems": e.error.get("problems")}),
        JobNotFound: (404, lambda e: {}),
        JobConflict: (409, lambda e: about(e.record)),
        JobIdTaken: (409, lambda e: {"job_id": e.record.get("job_id")}),  # nothing about the other owner's job
        NotCancellable: (409, lambda e: {"code": "busy_retry" if e.retry else "already_ended",
                                         "job_id": e.job_id or None, "status": e.status or None}),
        QueueRefused: (503, lambda e: about(e.record)),
    }


@app.exception_handler(MediagenError)
def _mediagen_error(exc: MediagenError) -> Response[Any]:
    table = _http_errors()
    for cls in type(exc).__mro__:
        if cls in table:
            http_status, extra = table[cls]
            fields = {"code": exc.code, "message": exc.message, **extra(exc)}
            return _error(http_status, fields.pop("code"), fields.pop("message"), **fields)
    return _internal_error(exc)


#: The routes (path pattern -> the one method each serves), for 405 answers to other methods.
ROUTES: dict[str, str] = {r"/jobs": "POST", r"/jobs/[^/]+": "GET", r"/jobs/[^/]+/cancel": "POST",
                          r"/models": "GET", r"/models/[^/]+": "GET", r"/openapi\.json": "GET"}


@app.exception_handler(NotFoundError)
def _not_found(exc: NotFoundError) -> Response[Any]:
    import re

    path = app.current_event.path
    for pattern, method in ROUTES.items():
        if re.fullmatch(pattern, path):
            response = _error(405, "method_not_allowed", f"{path} accepts {method} only")
            response.headers["Allow"] = method
            return response
    return _error(404, "not_found", "no such route")


@app.post("/jobs", summary="Submit a job", tags=["jobs"], operation_id="createJob",
          response_description="accepted: recorded and queued for submission",
          responses={202: {"description": "accepted (or already accepted: `created` is false)",
                           "content": {_JSON: {"model": JobAccepted}}}, **_errors(400, 409, 503)})
def create_job(job: Annotated[JobDocument, Body(description="the job")]) -> Response[Any]:
    """Check the job against the catalog now, record it and queue it for submission.

    Nothing is sent to the provider by this call, and an invalid job is refused before anything is recorded.
    """
    import uuid

    from mediagen.steps.accept import accept_job, enqueue

    if len(_raw_body().encode("utf-8", "replace")) > MAX_JOB_BYTES:
        return _error(400, "invalid_request", f"the job is larger than {MAX_JOB_BYTES} bytes",
                      problems=[{"field": "body", "message": f"larger than {MAX_JOB_BYTES} bytes"}])
    ports = _ports()
    source = {"channel": "api", "request_id": app.current_event.request_context.request_id}
    # The envelope was checked against JobDocument by the validation layer; accept checks the request.
    # Raises JobRefused (400), JobConflict or JobIdTaken (409): see _http_errors.
    accepted = accept_job(job.model_dump(exclude_unset=True), fallback_job_id=f"api-{uuid.uuid4().hex}",
                          ports=ports, source=source, owner=_caller())
    record = accepted.record
    try:
        enqueue(accepted, ports)
    except MediagenError as exc:
        raise QueueRefused(f"{exc.message}; nothing was sent to the provider: send the same job again "
                           f"(job_id {record['job_id']})", record) from exc
    job_id = record["job_id"]
    body = JobAccepted(job_id=job_id, status=str(record.get("status")), created=accepted.created,
                       status_url=f"{_base_url()}/jobs/{job_id}")
    return Response(status_code=202, content_type=_JSON, body=body.model_dump(mode="json"),
                    headers={"Location": f"/jobs/{job_id}"})


@app.get("/jobs/<job_id>", summary="A job's status and outputs", tags=["jobs"], operation_id="getJob",
         responses={200: {"description": "the job", "content": {_JSON: {"model": JobView}}}, **_errors(404)})
def get_job(job_id: Annotated[str, Path(description="the job id")]) -> Response[Any]:
    """Status, timestamps for each transition, error, and outputs with S3 URIs and presigned download URLs
    (valid ``MEDIAGEN_DOWNLOAD_URL_SECONDS``, default 900 s). Only the job's owner (the principal that sent it)
    and operators get it; anyone else gets the 404 of a missing job."""
    ports = _ports()
    record = ports.jobs.get(job_id) if _plausible_job_id(job_id) else None
    if record is None or not _may_see(record, ports):
        return _no_job(job_id)
    return Response(status_code=200, content_type=_JSON, body=job_view(record, ports).model_dump(mode="json"))


def _plausible_job_id(job_id: str) -> bool:
    return bool(JOB_ID_PATTERN.fullmatch(job_id))


def _no_job(job_id: str) -> Response[Any]:
    """The one answer for a job the caller cannot have: missing, or another caller's (finding 7)."""
    return _error(404, "not_found", f"no job {job_id[:128]!r}", job_id=job_id[:128])


def _caller() -> str:
    """The calling principal (:func:`mediagen.principals.caller_principal` of the event)."""
    from mediagen.principals import caller_principal

    return caller_principal(app.current_event.raw_event)


def _may_see(record: dict[str, Any], ports: Any) -> bool:
    """Whether the caller owns ``record`` or is an operator (``MEDIAGEN_OPERATOR_PRINCIPALS``)."""
    from mediagen.principals import may_see, parse_operators

    return may_see(record, _caller(), parse_operators(ports.settings.operator_principals))


def job_view(record: dict[str, Any], ports: Any) -> JobView:
    """The caller's view of a job record (:func:`mediagen.records.public_view`), with download URLs."""
    from mediagen.records import public_view

    presign = ports.outputs.presigned_url if ports.outputs is not None else None
    return JobView.model_validate(public_view(record, presign, ports.settings.download_url_seconds))


@app.post("/jobs/<job_id>/cancel", summary="Cancel a job", tags=["jobs"], operation_id="cancelJob",
          responses={200: {"description": "cancelled", "content": {_JSON: {"model": CancelResult}}},
                     **_errors(404, 409)})
def cancel(job_id: Annotated[str, Path(description="the job id")]) -> Response[Any]:
    """Stop the job: a job still waiting to be sent is never sent (no credits spent, unless an earlier attempt may
    have reached the provider: the response says so). Cliprise has **no cancel
    operation**: a job already at Cliprise keeps running there and its credits are spent; a job at Clipia is
    cancelled there too, which refunds its credits if it has not finished. Either way mediagen stops polling it
    and does not store its result. 409 when the job has ended, or is being sent or stored right now (ask again
    in a few seconds). Only the job's owner and operators may cancel it (404 for anyone else)."""
    from mediagen.errors import JobNotFound
    from mediagen.steps.cancel import cancel_credits, cancel_job

    if not _plausible_job_id(job_id):
        return _no_job(job_id)
    ports = _ports()
    try:  # NotCancellable: 409 (see _http_errors)
        record = cancel_job(job_id, ports, reason="cancelled through the HTTP API",
                            may_cancel=lambda found: _may_see(found, ports))
    except JobNotFound:
        return _no_job(job_id)
    was = str(record.get("cancelled_from", ""))
    body = CancelResult(job_id=job_id, status="CANCELLED", cancelled_from=was, credits=cancel_credits(was, record),
                        message=str((record.get("error") or {}).get("message", "cancelled")))
    return Response(status_code=200, content_type=_JSON, body=body.model_dump(mode="json"))


@app.get("/models", summary="The model catalog", tags=["models"], operation_id="listModels",
         responses={200: {"description": "every model (aliases as their own entries)",
                          "content": {_JSON: {"model": list[ModelSummary]}}}})
def list_models() -> Response[Any]:
    """Every model the catalog knows, with its modality, request values and request blocks."""
    from mediagen.catalog import get_catalog
    from mediagen.catalog.commands import model_summary

    entries = []
    for m in get_catalog().models():
        entries.append(model_summary(m))
        entries.extend(model_summary(m, alias_of=m.id, value=a) for a in m.aliases)
    return Response(status_code=200, content_type=_JSON, body=entries)


@app.get("/models/<model_id>", summary="One model", tags=["models"], operation_id="getModel",
         responses={200: {"description": "the model and the JSON Schema of its request body",
                          "content": {_JSON: {"model": ModelDetail}}}, **_errors(404)})
def get_model(model_id: Annotated[str, Path(description="a model id, routed value or alias")]
              ) -> Response[Any]:
    """A model's summary and the JSON Schema of its request body (404 with "did you mean" suggestions)."""
    from mediagen.catalog import get_catalog
    from mediagen.catalog.commands import model_summary
    from mediagen.catalog.reference import json_schema

    catalog = get_catalog()
    info = catalog.resolve(model_id)
    if info is None:
        hints = catalog.suggest(model_id)
        return _error(404, "unknown_model", f"unknown model {model_id[:128]!r}"
                      + (f"; did you mean {', '.join(hints)}?" if hints else ""))
    summary = model_summary(info, alias_of=info.id if model_id != info.id and model_id in info.aliases else None,
                            value=model_id if model_id in info.aliases else None)
    return Response(status_code=200, content_type=_JSON,
                    body={**summary, "request_schema": json_schema(info)})


@app.get("/openapi.json", summary="This API's OpenAPI document", tags=["meta"], operation_id="getOpenApi",
         include_in_schema=False)
def openapi_document() -> Response[Any]:
    return Response(status_code=200, content_type=_JSON, body=json.loads(openapi_json()))


def openapi_json() -> str:
    """The OpenAPI document of this API (what ``docs/openapi.json`` holds), as JSON text.

    Powertools documents a 422 for request validation on every operation; this API answers 400 instead (with
    mediagen's own problems, see ``_invalid_request``), so the 422 entries are dropped."""
    document = json.loads(app.get_openapi_json_schema(
        title=TITLE, version=__version__, openapi_version="3.1.0",
        summary="Submit and follow paid generative-media jobs (Cliprise) run by mediagen",
        description="All routes need AWS SigV4 (IAM) authentication in a deployment. A job belongs to the IAM "
                    "principal that sent it (an assumed role's sessions are the role): only it and the deployment's "
                    "operators may read or cancel it; anyone else is answered as for a missing job (404). Job "
                    "documents are "
                    "described by the `JobDocument` schema below (and in `docs/channels.md`); the models and "
                    "their request schemas are served by `GET /models`.",
    ))
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    schemas = document.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The ``api`` function: read the body with the one safe decoder (:func:`mediagen.decode.refuse_http_body`,
    at most :data:`~mediagen.jobs.MAX_JOB_BYTES` bytes and :data:`~mediagen.jobs.MAX_JOB_DEPTH` levels) before
    Powertools parses it -- its ``json.loads`` turns a deeply nested body into a ``RecursionError`` (a 500) --
    and answer 400 ``invalid_request`` with the decoder's problems; otherwise route the event (``app.resolve``).
    """
    from mediagen.decode import refuse_http_body

    refused = refuse_http_body(event, max_bytes=MAX_JOB_BYTES, max_depth=MAX_JOB_DEPTH, what="job")
    if refused is not None:
        body = {"code": "invalid_request", "message": refused.message, "problems": refused.problems}
        return {"statusCode": 400, "headers": {"Content-Type": _JSON}, "body": json.dumps(body),
                "isBase64Encoded": False}
    return app.resolve(event, context)


if __name__ == "__main__":  # python -m mediagen.api > docs/openapi.json
    print(openapi_json(), end="")
