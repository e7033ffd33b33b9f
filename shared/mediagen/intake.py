"""The S3 intake: job manifests and media drops become jobs; manifests get a report of every line.

One SQS queue (the intake queue) carries three kinds of messages to the ``intake`` function:

- **S3 event notifications** of the intake bucket (``ObjectCreated``):

  * ``jobs/<path>/<name>.json`` (one job) or ``.jsonl`` (one job per line): a **job manifest**. Each line is
    a job document (``docs/channels.md``). A line without ``job_id`` gets ``s3-<manifest id>-<line>``, where the
    manifest id is derived from the bucket, key and version (or ETag), so a re-delivered S3 event, or the
    intake running twice, makes the same job ids and nothing is generated twice. Results go to the outputs
    bucket under ``results/jobs/<path>/<name>/`` (plus the line's own ``output.prefix``), and the **report**
    ``reports/jobs/<path>/<name>/report.json`` lists each line's job id and outcome: written at once (status
    at intake, or the failure that stopped the intake), and again when every line's job has ended
    (``"complete": true``). The intake never reads ``results/`` or ``reports/``, nor any object of the outputs
    bucket (:func:`written_by_mediagen`): what mediagen writes cannot become a job again.
  * ``inbox/<rule prefix>…``: a **media drop**. The rule (:class:`InboxRule`, configured in the CDK construct)
    names a model and an input template; the object goes to the provider as a presigned URL (the job holds
    its ``s3://`` URI; submit presigns it, see :mod:`mediagen.inputs`). Job id ``drop-<name>-<hash>``, from
    the bucket, key and version: a re-delivered event is the same job.

- **Job events** (EventBridge, every terminal job event): when the job is a line of a manifest still open,
  the line is marked done; the last one writes the final report.

Every accepted job goes through :func:`mediagen.steps.accept.accept_job` (the same checks and job record as
any channel) and then the jobs queue, where submit handles it like any SQS job.

Ledger items in the job table (keys start with ``#``, like the spend guard's):
``#manifest:<id>`` (``total``, ``job_ids`` in line order, ``done`` string set, where the report goes) and
``#member:<job_id>`` (``manifests`` string set: the open manifests the job is a line of).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote_plus

from mediagen.errors import ConfigurationError, InvalidJob, MediagenError
from mediagen.inputs import s3_uri
from mediagen.records import TERMINAL, utcnow

if TYPE_CHECKING:
    from mediagen.queue import JobQueue
    from mediagen.steps.core import Ports

MANIFEST_PREFIX = "jobs/"
INBOX_PREFIX = "inbox/"
MANIFEST_SUFFIXES = (".json", ".jsonl")
#: Where a manifest's results go in the outputs bucket: ``results/jobs/<path>/<name>/<job_id>/…``.
RESULTS_PREFIX = "results/"
#: Where a manifest's report goes in the outputs bucket: ``reports/jobs/<path>/<name>/report.json``.
REPORTS_PREFIX = "reports/"
#: Key prefixes mediagen writes under; the intake never reads an object there (whichever bucket notifies it).
WRITTEN_PREFIXES: tuple[str, ...] = (RESULTS_PREFIX, REPORTS_PREFIX)
#: Lines of one manifest (each becomes a job; the manifest's ledger item lists their ids). Split bigger files.
MAX_MANIFEST_LINES = 2000
#: Largest manifest object read, bytes.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
#: Deepest intake message read: an S3 notification or an EventBridge envelope around a job event, whose
#: ``detail`` echoes a job's metadata (at most ``mediagen.jobs.MAX_JOB_DEPTH`` levels).
INTAKE_MESSAGE_MAX_DEPTH = 48
#: Lines of one manifest handled at once (each line waits on DynamoDB: record, membership, read back).
MANIFEST_WORKERS = 16

# SQS limits (SendMessage / SendMessageBatch, API version 2012-11-05): at most 10 entries per batch, the sum of
# the bodies of a batch at most 1 MiB, one body at most the queue's MaximumMessageSize (1 KiB - 1 MiB; 1 MiB by
# default since 2025, but a queue created before keeps 256 KiB, and the construct sets none).
SQS_BATCH_MAX_ENTRIES = 10
SQS_BATCH_MAX_BYTES = 1024 * 1024
SQS_MESSAGE_MAX_BYTES = 1024 * 1024
#: The largest job message the intake sends: 256 KiB, which every jobs queue takes, old or new (and the
#: size of job a line may be, ``mediagen.jobs.MAX_JOB_BYTES``). A longer line is REJECTED by the parser; a
#: shorter one that grows past this once re-encoded as the queue adapter does (``json.dumps``: ASCII escapes,
#: floats written out) is REJECTED by the intake before anything is recorded (:func:`_refuse_oversized`).
JOB_MESSAGE_MAX_BYTES = 256 * 1024


def _log() -> Any:
    from mediagen.observability import get_logger

    return get_logger()


# ----------------------------------------------------------------------------------------------- rules


_PLACEHOLDER = re.compile(r"\{(object_url|key|filename|metadata\.[A-Za-z0-9_-]+)\}")


@dataclass(frozen=True)
class InboxRule:
    """A media-drop rule: an object under ``inbox/<prefix>`` becomes a job for ``model``.

    Attributes:
        prefix: key prefix under ``inbox/``, ending in ``/`` (e.g. ``upscale/``).
        model: the catalog model.
        input_template: the request's ``input``; string values may hold ``{object_url}`` (the object, handed to
            the provider as a presigned URL), ``{key}``, ``{filename}`` and ``{metadata.NAME}`` (the object's
            user metadata ``x-amz-meta-NAME``).
        output_prefix: where results go in the outputs bucket (default ``results/inbox/<prefix>``).
    """

    prefix: str
    model: str
    input_template: dict[str, Any] = field(default_factory=dict)
    output_prefix: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InboxRule:
        prefix = str(data["prefix"])
        prefix = prefix if prefix.endswith("/") else prefix + "/"
        return cls(prefix=prefix, model=str(data["model"]), input_template=dict(data.get("input_template") or {}),
                   output_prefix=str(data.get("output_prefix") or f"results/inbox/{prefix}"))


def load_rules(text: str) -> list[InboxRule]:
    """Rules from ``MEDIAGEN_INBOX_RULES`` (a JSON array).

    Raises:
        ConfigurationError: not a JSON array of rule objects (names the rule).
    """
    try:
        data = json.loads(text or "[]")
        if not isinstance(data, list):
            raise ValueError("not a JSON array")
        return [InboxRule.from_dict(item) for item in data]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"MEDIAGEN_INBOX_RULES is not a list of rules: {exc}") from exc


def match_rule(key: str, rules: list[InboxRule]) -> InboxRule | None:
    """The rule with the longest prefix that ``key`` (``inbox/…``) falls under."""
    rest = key[len(INBOX_PREFIX):] if key.startswith(INBOX_PREFIX) else None
    if rest is None:
        return None
    candidates = [r for r in rules if rest.startswith(r.prefix)]
    return max(candidates, key=lambda r: len(r.prefix)) if candidates else None


def render_template(template: Any, values: dict[str, str], missing: list[str], path: str = "input") -> Any:
    """``template`` with placeholders filled from ``values``; unknown ones are appended to ``missing``."""
    if isinstance(template, str):
        def fill(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in values:
                missing.append(f"{path}: {name}")
                return ""
            return values[name]

        return _PLACEHOLDER.sub(fill, template)
    if isinstance(template, dict):
        return {k: render_template(v, values, missing, f"{path}.{k}") for k, v in template.items()}
    if isinstance(template, list):
        return [render_template(v, values, missing, f"{path}[{i}]") for i, v in enumerate(template)]
    return template


# ----------------------------------------------------------------------------------------------- ports


class ObjectReader(Protocol):
    """Reads intake objects."""

    def read(self, bucket: str, key: str, version: str | None, max_bytes: int) -> bytes:
        """The object's bytes. Raises: MediagenError: missing, unreadable or larger than ``max_bytes``."""
        ...

    def user_metadata(self, bucket: str, key: str, version: str | None) -> dict[str, str]:
        """The object's ``x-amz-meta-*`` metadata (names lower-case, without the prefix)."""
        ...


class S3Objects:
    """``ObjectReader`` on S3."""

    def __init__(self, s3_client: Any) -> None:
        self._s3 = s3_client

    def _params(self, bucket: str, key: str, version: str | None) -> dict[str, Any]:
        return {"Bucket": bucket, "Key": key, **({"VersionId": version} if version else {})}

    def read(self, bucket: str, key: str, version: str | None, max_bytes: int) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            obj = self._s3.get_object(**self._params(bucket, key, version))
            if int(obj.get("ContentLength") or 0) > max_bytes:
                raise MediagenError(f"s3://{bucket}/{key} is larger than {max_bytes} bytes", code="manifest_too_big")
            return bytes(obj["Body"].read())
        except (BotoCoreError, ClientError) as exc:
            raise MediagenError(f"cannot read s3://{bucket}/{key}: {exc}", code="unreadable") from exc

    def user_metadata(self, bucket: str, key: str, version: str | None) -> dict[str, str]:
        head = self._s3.head_object(**self._params(bucket, key, version))
        return {str(k).lower(): str(v) for k, v in (head.get("Metadata") or {}).items()}


class ManifestLedger:
    """Which manifests are open, their lines, and which lines are done (items in the job table)."""

    def __init__(self, table_name: str, dynamodb_client: Any) -> None:
        from mediagen.dynamo import DynamoTable

        self._table = DynamoTable(dynamodb_client, table_name)

    def open(self, manifest_id: str, *, job_ids: list[str], report: dict[str, Any]) -> None:
        """Record a manifest (idempotent: a second call keeps the first record)."""
        from botocore.exceptions import ClientError

        item = {"job_id": f"#manifest:{manifest_id}", "total": len(job_ids), "job_ids": job_ids,
                "report": report, "created_at": utcnow()}
        try:
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(job_id)")
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def join(self, job_id: str, manifest_id: str) -> None:
        """Note that ``job_id`` is a line of ``manifest_id`` (so its end marks the line done)."""
        self._table.update_item(Key={"job_id": f"#member:{job_id}"}, UpdateExpression="ADD manifests :m",
                                ExpressionAttributeValues={":m": {manifest_id}})

    def manifests_of(self, job_id: str) -> list[str]:
        item = self._table.get_item(Key={"job_id": f"#member:{job_id}"}, ConsistentRead=True).get("Item") or {}
        return sorted(item.get("manifests") or [])

    def mark_done(self, manifest_id: str, job_ids: list[str]) -> dict[str, Any] | None:
        """Mark lines done (idempotent). Returns the manifest item when every line is done, else None."""
        from botocore.exceptions import ClientError

        try:
            item = self._table.update_item(
                Key={"job_id": f"#manifest:{manifest_id}"}, UpdateExpression="ADD done :d",
                ConditionExpression="attribute_exists(job_id)", ExpressionAttributeValues={":d": set(job_ids)},
                ReturnValues="ALL_NEW")["Attributes"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None  # not opened yet: the intake marks lines already ended itself
            raise
        done = set(item.get("done") or [])
        return item if done >= set(item.get("job_ids") or []) else None


# ----------------------------------------------------------------------------------------------- manifests


def manifest_id_for(bucket: str, key: str, version: str | None, etag: str | None) -> str:
    """A stable id for one version of a manifest object (24 hex characters)."""
    return hashlib.sha256(f"{bucket}\0{key}\0{version or etag or ''}".encode()).hexdigest()[:24]


def _stem(key: str) -> str:
    for suffix in MANIFEST_SUFFIXES:
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return key


def results_prefix(key: str) -> str:
    """``jobs/team/batch.jsonl`` -> ``results/jobs/team/batch/``: the manifest's results go here (outputs
    bucket), under :data:`RESULTS_PREFIX`, which the intake never reads."""
    return f"{RESULTS_PREFIX}{_stem(key)}/"


def report_key(key: str) -> str:
    """``jobs/team/batch.jsonl`` -> ``reports/jobs/team/batch/report.json`` (outputs bucket), under
    :data:`REPORTS_PREFIX`, which the intake never reads."""
    return f"{REPORTS_PREFIX}{_stem(key)}/report.json"


def written_by_mediagen(bucket: str, key: str, outputs_bucket: str) -> str | None:
    """Why the intake must not read ``s3://bucket/key`` (an object mediagen wrote), or None.

    Defence in depth against an intake that feeds itself (issue 13, finding 5): whatever notification an
    operator adds, an object of the outputs bucket, or under :data:`WRITTEN_PREFIXES` of any bucket, is never
    turned into a job. (The construct also refuses an outputs bucket that is the intake bucket.)
    """
    if outputs_bucket and bucket == outputs_bucket:
        return "the object is in the outputs bucket (mediagen's results and reports); the intake never reads it"
    if key.startswith(WRITTEN_PREFIXES):
        return (f"the object is under {' or '.join(WRITTEN_PREFIXES)}, where mediagen writes; the intake never "
                "reads it")
    return None


def message_bytes(document: dict[str, Any]) -> int:
    """The size of ``document`` as a queue message body (encoded as the queue adapter does), bytes."""
    return len(json.dumps(document).encode())


def size_batches(documents: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """``documents`` in order, grouped so that each group fits one ``SendMessageBatch``: at most
    :data:`SQS_BATCH_MAX_ENTRIES` entries and :data:`SQS_BATCH_MAX_BYTES` of bodies.

    Raises:
        ValueError: a document is larger than :data:`JOB_MESSAGE_MAX_BYTES` (the intake refuses such lines).
    """
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for document in documents:
        n = message_bytes(document)
        if n > JOB_MESSAGE_MAX_BYTES:
            raise ValueError(f"job {document.get('job_id')!r} is {n} bytes; a job message may be at most "
                             f"{JOB_MESSAGE_MAX_BYTES}")
        if current and (len(current) == SQS_BATCH_MAX_ENTRIES or size + n > SQS_BATCH_MAX_BYTES):
            batches.append(current)
            current, size = [], 0
        current.append(document)
        size += n
    if current:
        batches.append(current)
    return batches


def split_manifest(key: str, data: bytes) -> list[tuple[int, bytes]]:
    """``(line number, bytes)`` of each job of a manifest: the whole object for ``.json``, each non-blank line
    for ``.jsonl`` (numbered as in the file, from 1; lines end at ``\n``, ``\r\n`` or ``\r``).

    The bytes are not decoded here: each job goes to :func:`mediagen.decode.decode_json` (through
    :func:`mediagen.steps.accept.accept_job`), which refuses a line that is not UTF-8 (issue 13, finding 14)
    -- a lenient decode would replace the bad bytes and send a garbled prompt to a paid generation."""
    if key.endswith(".jsonl"):
        return [(n, line) for n, line in enumerate(data.splitlines(), start=1) if line.strip()]
    return [(1, data)] if data.strip() else []


def process_manifest(bucket: str, key: str, version: str | None, etag: str | None, *, ports: Ports,
                     objects: ObjectReader, ledger: ManifestLedger) -> dict[str, Any]:
    """Turn a manifest into jobs, queue them, and write its first report. Safe to run again for the same
    object version: the same job ids, nothing generated twice, the report rewritten.

    Lines are handled :data:`MANIFEST_WORKERS` at a time; jobs are queued in batches sized by count and bytes
    (:func:`size_batches`). Every failure is logged with the manifest key and written to the report.

    Returns: the report.

    Raises:
        MediagenError / botocore errors: a transient failure (the queue refused a batch, DynamoDB failed);
            the report says so first, and the S3 event is retried (everything here is idempotent).
    """
    manifest_id = manifest_id_for(bucket, key, version, etag)
    where = {"bucket": bucket, "key": key, "version": version or etag or "", "manifest_id": manifest_id}
    report = report_key(key)
    try:
        lines = split_manifest(key, objects.read(bucket, key, version, MAX_MANIFEST_BYTES))
    except MediagenError as exc:
        _log().error("manifest not read", manifest_key=key, bucket=bucket, error_code=exc.code)
        return _write_report(ports, report, where, [], error=exc.to_dict())
    if len(lines) > MAX_MANIFEST_LINES:
        _log().error("manifest refused: too many lines", manifest_key=key, lines=len(lines))
        return _write_report(ports, report, where, [], error={
            "code": "manifest_too_big",
            "message": f"{len(lines)} jobs; a manifest may hold at most {MAX_MANIFEST_LINES}: split it"})
    try:
        return _take_manifest(lines, key, where, report, ports=ports, ledger=ledger)
    except Exception as exc:
        error = exc.to_dict() if isinstance(exc, MediagenError) else {
            "code": "intake_failed", "message": f"{type(exc).__name__}; the manifest is taken again"}
        _log().exception("manifest intake failed; it is retried", manifest_key=key, bucket=bucket,
                         manifest_id=manifest_id, error_code=error.get("code"))
        try:
            _write_report(ports, report, where, [], complete=False, error=error)
        except Exception:  # noqa: BLE001 - the original failure is what gets retried and reported
            _log().exception("manifest failure report not written", manifest_key=key)
        raise


def _take_manifest(lines: list[tuple[int, bytes]], key: str, where: dict[str, Any], report: str, *, ports: Ports,
                   ledger: ManifestLedger) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    from mediagen.steps.accept import JobConflict, accept_job

    manifest_id = where["manifest_id"]
    base = results_prefix(key)

    def conflict(number: int, exc: JobConflict) -> dict[str, Any]:
        return {"line": number, "job_id": exc.record.get("job_id"), "status": "CONFLICT",
                "error": {"code": exc.code, "message": exc.message}}

    def take(line: tuple[int, bytes]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        number, text = line
        source = {"channel": "s3-manifest", **where, "line": number}
        fallback = f"s3-{manifest_id}-{number}"
        try:
            refused = _refuse_oversized(text, number, fallback, base, source, ports)
            if refused is not None:
                return refused, None
            accepted = accept_job(text, fallback_job_id=fallback, ports=ports, source=source,
                                  record_rejection=True, prefix_base=base)
            _check_owner(accepted.record, source)  # a rejected line's id may be another owner's job
        except JobConflict as exc:
            return conflict(number, exc), None
        record = accepted.record
        document = accepted.document if accepted.enqueue else None
        return {"line": number, "job_id": record["job_id"], "status": record.get("status")}, document

    with ThreadPoolExecutor(max_workers=MANIFEST_WORKERS) as pool:
        taken = list(pool.map(take, lines))
        outcomes = [outcome for outcome, _ in taken]
        documents = [document for _, document in taken if document is not None]
        if documents:
            if ports.jobs_queue is None:
                raise ConfigurationError("no jobs queue configured (MEDIAGEN_JOBS_QUEUE_URL)")
            first, *rest = size_batches(documents)
            # The first batch on this thread (the queue's client is made on first use), the rest at once;
            # any failure raises: it is reported, then the S3 event is retried.
            ports.jobs_queue.send(first)
            list(pool.map(ports.jobs_queue.send, rest))

        tracked = [o for o in outcomes if o["status"] != "CONFLICT" and o.get("job_id")]
        job_ids = [o["job_id"] for o in tracked]
        conflicts = [o for o in outcomes if o["status"] == "CONFLICT"]
        _log().info("manifest accepted", manifest_id=manifest_id, manifest_key=key, lines=len(outcomes),
                    queued=len(documents))
        if not job_ids:
            return _write_report(ports, report, where, conflicts, complete=True)
        ledger.open(manifest_id, job_ids=job_ids, report={**where, "report_key": report, "conflicts": conflicts,
                                                          "lines": [o["line"] for o in tracked]})
        list(pool.map(lambda job_id: ledger.join(job_id, manifest_id), job_ids))
        # Lines whose job has already ended (rejected now, or an earlier job with the same id) are done now; a
        # job ending from here on marks its own line (its event finds the membership written above).
        records = dict(zip(job_ids, pool.map(ports.jobs.get, job_ids), strict=True))  # after the memberships
    ended = [j for j, record in records.items() if record and record.get("status") in TERMINAL]
    complete = ledger.mark_done(manifest_id, ended) if ended else None
    if complete is not None:
        return finish_report(manifest_id, complete, ports=ports, records=records)
    views = [_line_view(o["line"], o.get("job_id"), None if o["status"] == "CONFLICT" else records.get(o["job_id"]), o)
             for o in outcomes]
    return _write_report(ports, report, where, views, complete=False)


def _check_owner(record: dict[str, Any], source: dict[str, Any]) -> None:
    """Refuse a line whose job id is a job of another owner (:mod:`mediagen.principals`).

    :func:`mediagen.steps.accept.accept_job` refuses a valid line with such an id itself; an invalid or oversized
    line goes through :func:`mediagen.steps.core.reject_job`, which returns the job already recorded under the
    id whoever owns it. The report and the manifest ledger must not show or follow that job.

    Raises:
        JobIdTaken: ``record`` belongs to another owner than the manifest's channel (nothing about it revealed).
    """
    from mediagen.principals import channel_owner, owner_of
    from mediagen.steps.accept import JobIdTaken

    if owner_of(record) != channel_owner(source):
        _log().warning("manifest line refused: job id of another owner", manifest_key=source.get("key"),
                       line=source.get("line"), job_id=record.get("job_id"))
        raise JobIdTaken(str(record.get("job_id")))


#: A line re-encoded for the queue grows at most this much (non-ASCII text: x3 as ``\uXXXX``; ``1e15``: x4).
_GROWTH = 5


def _refuse_oversized(text: bytes, number: int, fallback: str, base: str, source: dict[str, Any],
                      ports: Ports) -> dict[str, Any] | None:
    """Record REJECTED (nothing spent) a line whose job would not fit one queue message, and return its report
    line; None when it fits (only long lines are decoded to check, with the safe decoder)."""
    from mediagen.decode import UnreadableBody, decode_json
    from mediagen.jobs import JOB_ID_PATTERN, MAX_JOB_BYTES, MAX_JOB_DEPTH

    size = len(text)
    if size * _GROWTH + len(base) + 256 <= JOB_MESSAGE_MAX_BYTES:
        return None
    try:
        parsed = decode_json(text, max_bytes=MAX_JOB_BYTES, max_depth=MAX_JOB_DEPTH, what="job")
    except UnreadableBody:
        return None  # not a usable job: accept_job records the reason
    if not isinstance(parsed, dict):
        return None
    bound = message_bytes(parsed) + len(base) + 256  # the job document is the line's fields plus its prefix
    if bound <= JOB_MESSAGE_MAX_BYTES:
        return None
    from mediagen.steps.core import reject_job

    given = parsed.get("job_id")
    job_id = given if isinstance(given, str) and JOB_ID_PATTERN.fullmatch(given) else fallback
    error = {"code": "message_too_large", "message": f"line {number}: the job is about {bound} bytes as a queue "
             f"message; a job message may be at most {JOB_MESSAGE_MAX_BYTES} bytes: make the job smaller"}
    record = reject_job(job_id, error, ports=ports, source=source)
    _check_owner(record, source)
    _log().warning("manifest line refused: too large for one queue message", manifest_key=source["key"],
                   line=number, job_id=job_id, message_bytes=bound)
    return {"line": number, "job_id": record.get("job_id"), "status": record.get("status")}


def _line_view(line: int, job_id: str | None, record: dict[str, Any] | None,
               fallback: dict[str, Any] | None = None) -> dict[str, Any]:
    if record is None:
        return {"line": line, "job_id": job_id, **{k: v for k, v in (fallback or {}).items() if k != "line"}}
    view: dict[str, Any] = {"line": line, "job_id": job_id, "status": record.get("status"),
                            "model": record.get("model")}
    if record.get("outputs"):
        view["outputs"] = [o.get("uri") for o in record["outputs"]]
    if record.get("manifest_uri"):
        view["result"] = record["manifest_uri"]
    if record.get("error"):
        view["error"] = record["error"]
    return view


def finish_report(manifest_id: str, item: dict[str, Any], *, ports: Ports,
                  records: dict[str, dict[str, Any] | None] | None = None) -> dict[str, Any]:
    """Write the final report of a manifest whose lines have all ended (``records``: job records already read,
    by job id; those already terminal are used as they are, the others read again)."""
    report = item.get("report") or {}
    job_ids = list(item.get("job_ids") or [])
    numbers = [int(n) for n in report.get("lines") or range(1, len(job_ids) + 1)]
    where = {k: report.get(k) for k in ("bucket", "key", "version", "manifest_id")}
    ended = {j: r for j, r in (records or {}).items() if r and r.get("status") in TERMINAL}  # final: no re-read
    views = [_line_view(line, job_id, ended.get(job_id) or ports.jobs.get(job_id))
             for line, job_id in zip(numbers, job_ids, strict=False)]
    views += [dict(c) for c in report.get("conflicts") or []]
    views.sort(key=lambda v: int(v.get("line") or 0))
    return _write_report(ports, str(report.get("report_key")), where, views, complete=True)


def _write_report(ports: Ports, key: str, where: dict[str, Any], lines: list[dict[str, Any]], *,
                  complete: bool = True, error: dict[str, Any] | None = None) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for line in lines:
        counts[str(line.get("status"))] = counts.get(str(line.get("status")), 0) + 1
    report = {"manifest": where, "complete": complete, "lines_total": len(lines), "counts": counts,
              "lines": lines, "written_at": utcnow()}
    if error:
        report["error"] = error
    if ports.outputs is None:
        raise ConfigurationError("no outputs bucket configured (MEDIAGEN_OUTPUTS_BUCKET)")
    stored = ports.outputs.put_json(key, report)
    _log().info("manifest report written", key=key, complete=complete, lines=len(lines))
    return {**report, "report_uri": stored.uri}


def job_ended(detail: dict[str, Any], *, ports: Ports, ledger: ManifestLedger) -> list[str]:
    """A terminal job event: mark its line done in every open manifest it belongs to; finish the reports of
    manifests that are now complete. Returns the manifest ids whose report was finished."""
    job_id = str(detail.get("job_id", ""))
    finished = []
    for manifest_id in ledger.manifests_of(job_id) if job_id else []:
        item = ledger.mark_done(manifest_id, [job_id])
        if item is not None:
            finish_report(manifest_id, item, ports=ports)
            finished.append(manifest_id)
    return finished


# ----------------------------------------------------------------------------------------------- drops


def drop_job_id(bucket: str, key: str, version: str | None, etag: str | None) -> str:
    """``drop-<readable file stem>-<12 hex>``: stable for one object version."""
    stem = key.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    readable = re.sub(r"[^A-Za-z0-9._-]", "-", stem)[:48].strip("-.") or "object"
    digest = hashlib.sha256(f"{bucket}\0{key}\0{version or etag or ''}".encode()).hexdigest()[:12]
    return f"drop-{readable}-{digest}"


def process_drop(bucket: str, key: str, version: str | None, etag: str | None, rule: InboxRule, *,
                 ports: Ports, objects: ObjectReader) -> dict[str, Any]:
    """Turn a dropped object into a job for its rule's model; queue it. Returns the job record."""
    from mediagen.steps.accept import JobConflict, accept_job, enqueue
    from mediagen.steps.core import reject_job

    job_id = drop_job_id(bucket, key, version, etag)
    source = {"channel": "s3-drop", "bucket": bucket, "key": key, "version": version or etag or "",
              "rule": rule.prefix}
    metadata = objects.user_metadata(bucket, key, version) if "{metadata." in json.dumps(rule.input_template) else {}
    values = {"object_url": s3_uri(bucket, key, version), "key": key, "filename": key.rsplit("/", 1)[-1],
              **{f"metadata.{k}": v for k, v in metadata.items()}}
    missing: list[str] = []
    request = {"model": rule.model, "input": render_template(rule.input_template, values, missing)}
    if missing:
        problems = [{"field": m.split(":")[0], "message": f"the rule needs {m.split(': ')[1]}: set the object's "
                     f"x-amz-meta-{m.split('metadata.')[-1]} metadata" if "metadata." in m else m}
                    for m in missing]
        return reject_job(job_id, InvalidJob(problems).to_dict(), ports=ports, model=rule.model,
                          metadata={"object_key": key}, source=source)
    document = {"job_id": job_id, "request": request, "output": {"prefix": rule.output_prefix},
                "metadata": {"object_key": key, **({"object_metadata": metadata} if metadata else {})}}
    try:
        accepted = accept_job(document, fallback_job_id=job_id, ports=ports, source=source, record_rejection=True)
    except JobConflict as exc:  # the rule changed since this object version was first taken
        _log().warning("media drop already taken by a different request", job_id=job_id, key=key)
        return exc.record
    enqueue(accepted, ports)
    _log().info("media drop accepted", job_id=job_id, key=key, rule=rule.prefix, model=rule.model)
    return accepted.record


# ----------------------------------------------------------------------------------------------- messages


def handle_message(body: str | bytes, *, ports: Ports, objects: ObjectReader, ledger: ManifestLedger,
                   rules: list[InboxRule]) -> list[dict[str, Any]]:
    """One intake-queue message: an S3 event notification, or a job event. Returns what was done per record.

    Raises:
        MediagenError / botocore errors: a transient failure; the message is retried (everything is idempotent).
    """
    from mediagen.decode import UnreadableBody, decode_json

    try:  # the one safe decoder (issue 13, finding 14): no nesting reaches json.loads' recursion
        message = decode_json(body, max_bytes=SQS_MESSAGE_MAX_BYTES, max_depth=INTAKE_MESSAGE_MAX_DEPTH,
                              what="intake message")
    except UnreadableBody as exc:
        _log().warning("intake message refused; dropped", limit=exc.limit, reason=exc.message[:200])
        return [{"kind": "refused", "limit": exc.limit}]
    if not isinstance(message, dict):
        return []
    if message.get("detail-type") and isinstance(message.get("detail"), dict):  # EventBridge job event
        finished = job_ended(message["detail"], ports=ports, ledger=ledger)
        return [{"kind": "job-ended", "job_id": message["detail"].get("job_id"), "reports_finished": finished}]
    done: list[dict[str, Any]] = []
    for record in message.get("Records") or []:  # S3 event notification (s3:TestEvent has no Records)
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record.get("s3") or {}
        bucket = str((s3.get("bucket") or {}).get("name", ""))
        obj = s3.get("object") or {}
        key = unquote_plus(str(obj.get("key", "")))
        version, etag = obj.get("versionId") or None, obj.get("eTag") or None
        why = written_by_mediagen(bucket, key, ports.settings.outputs_bucket)
        if why is not None:
            _log().warning("intake object ignored: mediagen wrote it", bucket=bucket, key=key, reason=why)
            done.append({"kind": "ignored", "key": key, "reason": why})
            continue
        if key.startswith(MANIFEST_PREFIX) and key.endswith(MANIFEST_SUFFIXES):
            report = process_manifest(bucket, key, version, etag, ports=ports, objects=objects, ledger=ledger)
            done.append({"kind": "manifest", "key": key, "lines": report["lines_total"],
                         "report": report.get("report_uri")})
            continue
        rule = match_rule(key, rules)
        if rule is not None and not key.endswith("/"):
            record_ = process_drop(bucket, key, version, etag, rule, ports=ports, objects=objects)
            done.append({"kind": "drop", "key": key, "job_id": record_.get("job_id"), "status": record_.get("status")})
            continue
        _log().info("intake object ignored (no manifest suffix or inbox rule)", key=key)
    return done


# ----------------------------------------------------------------------------------------------- sweeper


#: Jobs one sweep re-enqueues at most.
SWEEP_LIMIT = 200
#: RECEIVED records one sweep looks at, per job it may re-enqueue (``scan`` returns the newest first, and the
#: newest are usually jobs just recorded, not left behind).
SWEEP_SCAN_FACTOR = 10


class ReceivedRecords(Protocol):
    """What the sweeper needs of the job repository (:class:`mediagen.records.JobRepository`): the records in a
    status, and a conditional update."""

    def scan(self, *, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Up to ``limit`` records in ``status``, newest first."""
        ...

    def transition(self, job_id: str, to: Any, *, expect: Any = None,
                   set_fields: dict[str, Any] | None = None) -> dict[str, Any]:
        """As ``JobRepository.transition`` (raises ``StatusConflict`` when ``expect`` does not hold)."""
        ...


def _document_of(record: dict[str, Any]) -> dict[str, Any]:
    """The job document a RECEIVED record was accepted from (what submit needs to take it up again)."""
    document: dict[str, Any] = {"job_id": record["job_id"], "request": record.get("request") or {}}
    if record.get("output_prefix"):
        document["output"] = {"prefix": record["output_prefix"]}
    if record.get("metadata"):
        document["metadata"] = record["metadata"]
    if record.get("max_credits") is not None:
        document["max_credits"] = record["max_credits"]
    if record.get("allow_unknown_fields"):
        document["allow_unknown_fields"] = True
    if record.get("retry_unknown_outcome"):
        document["retry_unknown_outcome"] = True
    for key in ("provider", "fallbacks", "allow_unpriced"):  # part of the job's identity (request_hash)
        if record.get(key) and record.get(key) != "cliprise":
            document[key] = record[key]
    return document


def _resendable(record: dict[str, Any], document: dict[str, Any]) -> bool:
    """Whether ``document`` is the job the record was accepted from: the same ``request_hash``. It is not when
    the record's request lost secret values to redaction (a presigned URL's signature, a token: never stored),
    or a number came back from DynamoDB in another form (``5.0`` as ``5``). A record without a hash (version
    one) is taken as it is."""
    from mediagen.jobs import request_hash

    if not record.get("request_hash"):
        return True
    return request_hash(document["request"], allow_unknown_fields=bool(document.get("allow_unknown_fields")),
                        provider=str(document.get("provider") or "cliprise"),
                        fallbacks=document.get("fallbacks") or ()) == record["request_hash"]


def sweep_stale_received(repo: ReceivedRecords, queue: JobQueue, older_than_s: float, *,
                         limit: int = SWEEP_LIMIT, now: float | None = None) -> list[str]:
    """Put RECEIVED jobs that were never taken up back on the jobs queue (a channel recorded them, then the
    queue refused the send: the API's 503, an intake batch that failed until its message was dead-lettered).

    A record qualifies when it is RECEIVED, has no SUBMITTING transition (submit never claimed it: one that
    went back to RECEIVED is submit's own retry), and was created -- or last swept -- more than
    ``older_than_s`` seconds ago. Each one re-enqueued is marked ``swept_at`` (a conditional update that
    expects RECEIVED), so a job waiting in the queue (e.g. for an in-flight slot) is sent again at most once
    per ``older_than_s``. Safe to run any number of times: submit claims a job id once, and duplicates of a job
    already taken up are ignored.

    The records come from ``repo.scan(status="RECEIVED", limit=limit * SWEEP_SCAN_FACTOR)`` -- the one use of
    the job table's Scan by a function, granted to the ``sweep`` function's own role only
    (``infra/mediagen_infra/sweeper.py``); the table has no status index, and the sweep runs every 15 minutes.
    The oldest stale records go first. A record whose job document is larger than one job message
    (:data:`JOB_MESSAGE_MAX_BYTES`) cannot be sent: it is logged (error, with its job id and size), left
    unmarked and skipped, and the others are re-enqueued. A record whose stored request is no longer the job
    (its ``request_hash`` does not match: secret values were redacted, or DynamoDB gave back ``5.0`` as ``5``)
    is not re-sent -- submit would ignore that document as a different request -- but logged (error) and marked
    ``swept_at`` like the others: the job may still have a live message (one waiting for a free in-flight slot
    looks the same), and if it has none the reconciler ends it ``EXPIRED`` (nothing spent).

    Args:
        repo: the job records (:class:`mediagen.records.DynamoJobRepository` in production).
        queue: the jobs queue.
        older_than_s: minimum age, seconds (e.g. 900: well past a queue send's retries).
        limit: jobs re-enqueued per run at most (bounds the run's time and the queue traffic).
        now: epoch seconds (tests); default the clock.

    Returns: the job ids re-enqueued.

    Raises:
        MediagenError: the queue refused a batch (the rest are tried next run; records already marked are
            taken up again after ``older_than_s``).
    """
    import time
    from datetime import UTC, datetime

    from mediagen.errors import StatusConflict
    from mediagen.records import JobStatus

    def iso(epoch: float) -> str:  # the records' format (mediagen.records.utcnow), so strings compare as times
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    moment = time.time() if now is None else now
    cutoff = iso(moment - older_than_s)
    def last_seen(record: dict[str, Any]) -> str:
        return max(str(record.get("created_at") or ""), str(record.get("swept_at") or ""))

    stale = sorted((r for r in repo.scan(status=str(JobStatus.RECEIVED), limit=limit * SWEEP_SCAN_FACTOR)
                    if r.get("status") == JobStatus.RECEIVED
                    and str(JobStatus.SUBMITTING) not in (r.get("transitions") or {})
                    and last_seen(r) < cutoff), key=last_seen)[:limit]
    stamp = iso(moment)
    documents = []
    for record in stale:
        document = _document_of(record)
        if not _resendable(record, document):
            try:
                repo.transition(record["job_id"], None, expect={JobStatus.RECEIVED}, set_fields={"swept_at": stamp})
            except StatusConflict:  # taken up (or cancelled) since the scan
                continue
            level = "warning" if record.get("swept_at") else "error"  # said loudly once, then every period
            getattr(_log(), level)("stale RECEIVED job not re-enqueued: its stored request is not the job any "
                                   "more (secret values are never stored); its own message, if any, still "
                                   "submits it, else it expires", job_id=record["job_id"])
            continue
        size = message_bytes(document)
        if size > JOB_MESSAGE_MAX_BYTES:  # cannot be sent (size_batches would refuse the whole run): say so
            _log().error("stale RECEIVED job too large for one queue message; not re-enqueued",
                         job_id=record["job_id"], message_bytes=size, limit=JOB_MESSAGE_MAX_BYTES)
            continue
        try:
            repo.transition(record["job_id"], None, expect={JobStatus.RECEIVED}, set_fields={"swept_at": stamp})
        except StatusConflict:  # taken up (or cancelled) since the scan
            continue
        documents.append(document)
    for batch in size_batches(documents):
        queue.send(batch)
    if documents:
        _log().warning("stale RECEIVED jobs re-enqueued", count=len(documents),
                       job_ids=[d["job_id"] for d in documents][:50], older_than_s=older_than_s)
    return [d["job_id"] for d in documents]
