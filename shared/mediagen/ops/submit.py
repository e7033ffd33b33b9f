"""``mediagen submit FILE… [--wait]``: send jobs to a deployed stack (or the local one) and follow them.

Jobs are checked against the catalog first (an invalid job is reported, one line per problem, and not sent:
no round trip, no credit). A job without ``job_id`` gets ``cli-<uuid>`` so it can be followed. Channels:

- ``queue`` (default): ``SendMessage`` to the stack's jobs queue (output ``JobsQueueUrl``);
- ``api``: ``POST /jobs`` on the jobs API (output ``JobsApiUrl``), signed with SigV4 (your AWS credentials).

With ``--wait`` each job's status is shown as it changes (one line per change: readable live and in a log),
and when every job has ended its outputs are downloaded into ``<output dir>/<job_id>/``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from mediagen.errors import ConfigurationError, MediagenError
from mediagen.ops.display import clean
from mediagen.records import TERMINAL, JobStatus


@dataclass
class Target:
    """Where jobs go and where their records and outputs are read.

    Attributes:
        sqs, dynamodb, s3: boto3 clients (of the deployment's account, or the local stack's).
        queue_url, table, bucket: the stack's jobs queue, job table and outputs bucket.
        api_url: the jobs API endpoint ('' when the stack has none).
        tick: called on every round of waiting (the local stack delivers its queues there).
        http: how to POST to the API: ``(url, body) -> (status, json)``.
    """

    sqs: Any
    dynamodb: Any
    s3: Any
    queue_url: str
    table: str
    bucket: str
    api_url: str = ""
    tick: Callable[[], None] = lambda: None
    http: Callable[[str, str], tuple[int, Any]] | None = None


def deployed_target(stack: str) -> Target:
    """The target of a deployed stack, from its CloudFormation outputs (default boto3 session)."""
    import boto3

    from mediagen.ops import stack_outputs

    outputs = stack_outputs(stack)
    session = boto3.session.Session()

    def signed_post(url: str, body: str) -> tuple[int, Any]:
        return _sigv4_post(session, url, body)

    try:
        return Target(sqs=session.client("sqs"), dynamodb=session.client("dynamodb"), s3=session.client("s3"),
                      queue_url=outputs["JobsQueueUrl"], table=outputs["TaskTableName"],
                      bucket=outputs["OutputsBucketName"], api_url=outputs.get("JobsApiUrl", ""), http=signed_post)
    except KeyError as exc:
        raise ConfigurationError(f"stack {stack} has no output {exc}; is it a mediagen stack?") from exc


def _sigv4_post(session: Any, url: str, body: str) -> tuple[int, Any]:
    """POST ``body`` to an IAM-authenticated API Gateway URL, signed with SigV4 (service ``execute-api``)."""
    import httpx
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = session.get_credentials()
    if credentials is None:
        raise ConfigurationError("no AWS credentials to sign the API request (aws configure / AWS_PROFILE)")
    request = AWSRequest(method="POST", url=url, data=body, headers={"content-type": "application/json"})
    region = session.region_name or url.split(".execute-api.")[-1].split(".")[0]
    SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region).add_auth(request)
    response = httpx.post(url, content=body, headers=dict(request.headers.items()), timeout=30)
    return response.status_code, _json(response.text)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return {"message": text[:500]}


def prepare(jobs: list[dict[str, Any] | str], out: IO[str]) -> tuple[list[dict[str, Any]], int]:
    """Check every job; give job ids to those without. Returns (valid jobs, number of invalid ones); each
    problem is printed as ``<file job n>: <field>: <message>``."""
    from mediagen.catalog import get_catalog
    from mediagen.jobs import check_job

    catalog = get_catalog()
    valid, invalid = [], 0
    for n, job in enumerate(jobs, start=1):
        if isinstance(job, dict) and not job.get("job_id"):
            job = {**job, "job_id": f"cli-{uuid.uuid4().hex[:20]}"}
        checked = check_job(job, fallback_job_id=f"job-{n}", catalog=catalog)  # the check every channel runs
        if checked.error is not None:
            invalid += 1
            problems = checked.error.get("problems") or [{"field": "job", "message": checked.error["message"]}]
            for p in problems:
                print(f"job {n} ({clean(checked.job_id)}): {clean(p['field'])}: {clean(p['message'])}", file=out)
            continue
        assert isinstance(job, dict)
        valid.append(job)
    return valid, invalid


def send(jobs: list[dict[str, Any]], target: Target, *, via: str, out: IO[str]) -> list[str]:
    """Send jobs through ``via`` (queue | api). Returns the job ids sent.

    Raises:
        MediagenError: the API refused a job (400/409/5xx, with its message) or the queue call failed.
    """
    ids = []
    for job in jobs:
        body = json.dumps(job)
        if via == "api":
            if not target.api_url or target.http is None:
                raise ConfigurationError("this stack has no jobs API (output JobsApiUrl); use --via queue")
            status, answer = target.http(f"{target.api_url.rstrip('/')}/jobs", body)
            if status != 202:
                problems = "; ".join(f"{p['field']}: {p['message']}" for p in (answer or {}).get("problems") or [])
                raise MediagenError(f"POST /jobs answered {status} for {job['job_id']}: "
                                    f"{(answer or {}).get('message', '')} {problems}".strip(), code="api_refused")
            print(f"  {clean(job['job_id']):<40} accepted ({'new' if answer.get('created') else 'already accepted'})",
                  file=out, flush=True)
        else:
            target.sqs.send_message(QueueUrl=target.queue_url, MessageBody=body)
            print(f"  {clean(job['job_id']):<40} queued", file=out, flush=True)
        ids.append(job["job_id"])
    return ids


def wait(job_ids: list[str], target: Target, *, timeout: float, out: IO[str], interval: float = 1.0
         ) -> dict[str, dict[str, Any]]:
    """Follow jobs until each has ended (or ``timeout`` seconds pass), printing each status change.

    Returns: job id -> job record (absent: never recorded).

    Raises:
        TimeoutError: some jobs had not ended (names them with their status).
    """
    from mediagen.records import DynamoJobRepository

    jobs = DynamoJobRepository(target.table, target.dynamodb)
    seen: dict[str, tuple[str, int]] = {}
    records: dict[str, dict[str, Any]] = {}
    start = time.monotonic()
    while True:
        target.tick()
        for job_id in job_ids:
            record = jobs.get(job_id)
            if record is None:
                continue
            records[job_id] = record
            state = (str(record.get("status")), int(record.get("polls", 0)))
            if seen.get(job_id) != state:
                seen[job_id] = state
                detail = f"polls={state[1]}"
                if record.get("error"):
                    detail += f"  {clean(record['error'].get('code'))}: {clean(record['error'].get('message'))[:90]}"
                print(f"  [{time.monotonic() - start:6.1f}s] {clean(job_id):<40} {clean(state[0]):<16} {detail}",
                      file=out, flush=True)
        if all(records.get(j, {}).get("status") in TERMINAL for j in job_ids):
            return records
        if time.monotonic() - start > timeout:
            stuck = [f"{j}={records.get(j, {}).get('status', 'not recorded')}" for j in job_ids
                     if records.get(j, {}).get("status") not in TERMINAL]
            raise TimeoutError(f"not finished after {timeout:.0f}s: {', '.join(stuck)}")
        time.sleep(interval)


def download(record: dict[str, Any], target: Target, dest: Path) -> list[Path]:
    """Copy a job's outputs and ``result.json`` into ``dest/<job_id>/`` (through
    :func:`mediagen.ops.paths.write_file`: nothing lands outside ``dest``).

    Raises:
        mediagen.ops.paths.UnsafePath: a job id or key would leave ``dest``.
    """
    from mediagen.ops.paths import write_file

    paths = []
    keys = [o["key"] for o in record.get("outputs") or [] if o.get("key")]
    if record.get("manifest_uri"):
        keys.append(str(record["manifest_uri"]).split("/", 3)[3])
    base = f"{record.get('output_prefix', '')}{record['job_id']}/"
    for key in keys:
        relative = key[len(base):] if key.startswith(base) else key.rsplit("/", 1)[-1]
        data = target.s3.get_object(Bucket=target.bucket, Key=key)["Body"].read()
        paths.append(write_file(dest, record["job_id"], relative, data=data))
    return paths


def submit(jobs: list[dict[str, Any] | str], target: Target | Callable[[], Target], *, via: str = "queue",
           wait_for: bool = False, output_dir: Path = Path("mediagen-output"), timeout: float = 900.0,
           out: IO[str]) -> int:
    """The whole command. ``target`` may be a function returning it: it is then only looked up (stack outputs,
    credentials) once the jobs are known to be valid. Returns the exit code: 0 all sent (and, with
    ``wait_for``, all SUCCEEDED), 1 otherwise."""
    valid, invalid = prepare(jobs, out)
    if invalid:
        print(f"{invalid} invalid job(s) not sent", file=out)
    if not valid:
        return 1
    if not isinstance(target, Target):
        target = target()
    print(f"sending {len(valid)} job(s) via {via}:", file=out, flush=True)
    ids = send(valid, target, via=via, out=out)
    if not wait_for:
        print("follow them with: mediagen status JOB_ID", file=out)
        return 1 if invalid else 0
    print("progress:", file=out, flush=True)
    records = wait(ids, target, timeout=timeout, out=out)
    files: list[Path] = []
    for job_id in ids:
        if records[job_id].get("status") == JobStatus.SUCCEEDED:
            files += download(records[job_id], target, output_dir)
    print("", file=out)
    for job_id in ids:
        r = records[job_id]
        print(f"{clean(job_id):<40} {clean(r.get('status')):<16} {clean((r.get('error') or {}).get('code'))}",
              file=out)
    if files:
        print(f"\noutputs downloaded to {output_dir}/ :", file=out)
        for path in sorted(files):
            print(f"  {clean(path)}", file=out)
    ok = not invalid and all(records[j].get("status") == JobStatus.SUCCEEDED for j in ids)
    return 0 if ok else 1
