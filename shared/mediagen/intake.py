"""The S3 intake: job manifests and media drops become jobs; manifests get a report of every line.

One SQS queue (the intake queue) carries three kinds of messages to the ``intake`` function:

- **S3 event notifications** of the intake bucket (``ObjectCreated``):

  * ``jobs/<path>/<name>.json`` (one job) or ``.jsonl`` (one job per line): a **job manifest**. Each line is
    a job document (DESIGN.md "Job"). A line without ``job_id`` gets ``s3-<manifest id>-<line>``, where the
    manifest id is derived from the bucket, key and version (or ETag), so a re-delivered S3 event, or the
    intake running twice, makes the same job ids and nothing is generated twice. Results go under the
    manifest's prefix in the outputs bucket, ``jobs/<path>/<name>/`` (plus the line's own ``output.prefix``),
    and the **report** ``jobs/<path>/<name>/report.json`` lists each line's job id and outcome: written at
    once (status at intake), and again when every line's job has ended (``"complete": true``).
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
    from mediagen.steps.core import Ports

MANIFEST_PREFIX = "jobs/"
INBOX_PREFIX = "inbox/"
MANIFEST_SUFFIXES = (".json", ".jsonl")
#: Lines of one manifest (each becomes a job; the manifest's ledger item lists their ids). Split bigger files.
MAX_MANIFEST_LINES = 2000
#: Largest manifest object read, bytes.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024


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


def results_prefix(key: str) -> str:
    """``jobs/team/batch.jsonl`` -> ``jobs/team/batch/`` (the manifest's results and report go here)."""
    stem = key
    for suffix in MANIFEST_SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return f"{stem}/"


def split_manifest(key: str, data: bytes) -> list[tuple[int, str]]:
    """``(line number, text)`` of each job of a manifest: the whole object for ``.json``, each non-blank line
    for ``.jsonl`` (numbered as in the file, from 1)."""
    text = data.decode("utf-8", errors="replace")
    if key.endswith(".jsonl"):
        return [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    return [(1, text)] if text.strip() else []


def process_manifest(bucket: str, key: str, version: str | None, etag: str | None, *, ports: Ports,
                     objects: ObjectReader, ledger: ManifestLedger) -> dict[str, Any]:
    """Turn a manifest into jobs, queue them, and write its first report. Safe to run again for the same
    object version: the same job ids, nothing generated twice, the report rewritten.

    Returns: the report.
    """
    from mediagen.steps.accept import JobConflict, accept_job

    manifest_id = manifest_id_for(bucket, key, version, etag)
    base = results_prefix(key)
    where = {"bucket": bucket, "key": key, "version": version or etag or "", "manifest_id": manifest_id}
    report_key = f"{base}report.json"
    try:
        lines = split_manifest(key, objects.read(bucket, key, version, MAX_MANIFEST_BYTES))
    except MediagenError as exc:
        return _write_report(ports, report_key, where, [], error=exc.to_dict())
    if len(lines) > MAX_MANIFEST_LINES:
        return _write_report(ports, report_key, where, [], error={
            "code": "manifest_too_big",
            "message": f"{len(lines)} jobs; a manifest may hold at most {MAX_MANIFEST_LINES}: split it"})

    outcomes: list[dict[str, Any]] = []
    documents: list[dict[str, Any]] = []
    for number, text in lines:
        source = {"channel": "s3-manifest", **where, "line": number}
        try:
            accepted = accept_job(text, fallback_job_id=f"s3-{manifest_id}-{number}", ports=ports, source=source,
                                  record_rejection=True, prefix_base=base)
        except JobConflict as exc:
            outcomes.append({"line": number, "job_id": exc.record.get("job_id"), "status": "CONFLICT",
                             "error": {"code": exc.code, "message": exc.message}})
            continue
        record = accepted.record
        if accepted.enqueue and accepted.document is not None:
            documents.append(accepted.document)
        outcomes.append({"line": number, "job_id": record["job_id"], "status": record.get("status")})
    if documents:
        if ports.jobs_queue is None:
            raise ConfigurationError("no jobs queue configured (MEDIAGEN_JOBS_QUEUE_URL)")
        ports.jobs_queue.send(documents)  # raises: the S3 event is retried, and this runs again

    tracked = [o for o in outcomes if o["status"] != "CONFLICT" and o.get("job_id")]
    job_ids = [o["job_id"] for o in tracked]
    conflicts = [o for o in outcomes if o["status"] == "CONFLICT"]
    _log().info("manifest accepted", manifest_id=manifest_id, key=key, lines=len(outcomes), queued=len(documents))
    if not job_ids:
        return _write_report(ports, report_key, where, conflicts, complete=True)
    ledger.open(manifest_id, job_ids=job_ids, report={**where, "report_key": report_key, "conflicts": conflicts,
                                                      "lines": [o["line"] for o in tracked]})
    for job_id in job_ids:
        ledger.join(job_id, manifest_id)
    # Lines whose job has already ended (rejected now, or an earlier job with the same id) are done now; a job
    # ending from here on marks its own line (its event finds the membership written above).
    records = {job_id: ports.jobs.get(job_id) for job_id in job_ids}  # read once, after the memberships
    ended = [j for j, record in records.items() if record and record.get("status") in TERMINAL]
    complete = ledger.mark_done(manifest_id, ended) if ended else None
    if complete is not None:
        return finish_report(manifest_id, complete, ports=ports, records=records)
    views = [_line_view(o["line"], o.get("job_id"), None if o["status"] == "CONFLICT" else records.get(o["job_id"]), o)
             for o in outcomes]
    return _write_report(ports, report_key, where, views, complete=False)


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


def handle_message(body: str, *, ports: Ports, objects: ObjectReader, ledger: ManifestLedger,
                   rules: list[InboxRule]) -> list[dict[str, Any]]:
    """One intake-queue message: an S3 event notification, or a job event. Returns what was done per record.

    Raises:
        MediagenError / botocore errors: a transient failure; the message is retried (everything is idempotent).
    """
    try:
        message = json.loads(body)
    except ValueError:
        _log().warning("intake message is not JSON; dropped")
        return []
    if not isinstance(message, dict):
        return []
    if message.get("detail-type") and isinstance(message.get("detail"), dict):  # EventBridge job event
        finished = job_ended(message["detail"], ports=ports, ledger=ledger)
        return [{"kind": "job-ended", "job_id": message["detail"].get("job_id"), "reports_finished": finished}]
    done = []
    for record in message.get("Records") or []:  # S3 event notification (s3:TestEvent has no Records)
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record.get("s3") or {}
        bucket = str((s3.get("bucket") or {}).get("name", ""))
        obj = s3.get("object") or {}
        key = unquote_plus(str(obj.get("key", "")))
        version, etag = obj.get("versionId") or None, obj.get("eTag") or None
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
