"""The S3 intake on fakes and moto's SQS: what it never reads (finding 5), manifests with large lines
(finding 6), and the sweeper of RECEIVED jobs a refused send left behind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mediagen import intake
from mediagen.errors import MediagenError
from mediagen.intake import (
    JOB_MESSAGE_MAX_BYTES,
    SQS_BATCH_MAX_BYTES,
    SQS_BATCH_MAX_ENTRIES,
    SQS_MESSAGE_MAX_BYTES,
    handle_message,
    process_manifest,
    report_key,
    results_prefix,
    size_batches,
    sweep_stale_received,
)
from mediagen.jobs import MAX_JOB_BYTES
from mediagen.queue import SqsJobQueue
from mediagen.records import JobStatus
from mediagen.settings import Settings
from mediagen.steps.core import Ports
from mediagen.storage import StoredObject
from tests.fakes import InMemoryJobs, RecordingEvents

INTAKE = "intake-bucket"
OUTPUTS = "outputs-bucket"


# ----------------------------------------------------------------------------------------------- fakes


class MemoryOutputs:
    """``OutputStore.put_json`` in memory (what the intake writes: reports)."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}

    def put_json(self, key: str, document: dict[str, Any]) -> StoredObject:
        self.objects[key] = json.loads(json.dumps(document))
        return StoredObject(uri=f"s3://{OUTPUTS}/{key}", key=key, bytes=0, content_type="application/json",
                            sha256="")


class MemoryObjects:
    """``ObjectReader`` over a dict of (bucket, key) -> bytes; counts reads."""

    def __init__(self, objects: dict[tuple[str, str], bytes] | None = None) -> None:
        self.objects = objects or {}
        self.reads: list[tuple[str, str]] = []

    def read(self, bucket: str, key: str, version: str | None, max_bytes: int) -> bytes:
        self.reads.append((bucket, key))
        return self.objects[(bucket, key)]

    def user_metadata(self, bucket: str, key: str, version: str | None) -> dict[str, str]:
        return {}


class MemoryLedger:
    """``ManifestLedger`` in memory."""

    def __init__(self) -> None:
        self.manifests: dict[str, dict[str, Any]] = {}
        self.members: dict[str, set[str]] = {}

    def open(self, manifest_id: str, *, job_ids: list[str], report: dict[str, Any]) -> None:
        self.manifests.setdefault(manifest_id, {"job_ids": job_ids, "report": report, "done": set()})

    def join(self, job_id: str, manifest_id: str) -> None:
        self.members.setdefault(job_id, set()).add(manifest_id)

    def manifests_of(self, job_id: str) -> list[str]:
        return sorted(self.members.get(job_id, ()))

    def mark_done(self, manifest_id: str, job_ids: list[str]) -> dict[str, Any] | None:
        item = self.manifests.get(manifest_id)
        if item is None:
            return None
        item["done"] |= set(job_ids)
        return item if item["done"] >= set(item["job_ids"]) else None


class RefusingQueue:
    """A jobs queue whose every send fails (SQS down)."""

    def send(self, documents: list[dict[str, Any]]) -> None:
        raise MediagenError("the jobs queue refused the job(s): EndpointConnectionError", code="queue_unavailable")


class ListQueue:
    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []

    def send(self, documents: list[dict[str, Any]]) -> None:
        self.batches.append(documents)


@pytest.fixture
def sqs() -> Iterator[tuple[Any, str]]:
    """moto's SQS (it enforces the real limits: 10 entries, 1 MiB per batch) and a queue with default limits."""
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        yield client, client.create_queue(QueueName="jobs")["QueueUrl"]


def make_ports(queue: Any) -> Ports:
    return Ports(settings=Settings(MEDIAGEN_OUTPUTS_BUCKET=OUTPUTS, MEDIAGEN_INTAKE_BUCKET=INTAKE),
                 jobs=InMemoryJobs(), events=RecordingEvents(), provider=lambda: None,  # type: ignore[arg-type,return-value]
                 outputs=MemoryOutputs(), jobs_queue=queue)


def line(prompt: str = "a red bicycle", *, padding: int = 0, job_id: str | None = None) -> str:
    """A valid job line; ``padding`` bytes of extra, unchecked request data make it large."""
    request: dict[str, Any] = {"model": "nano-banana", "input": {"prompt": prompt, "output_format": "png",
                                                                  "image_size": "1:1"}}
    doc: dict[str, Any] = {"request": request}
    if padding:
        request["input"]["notes"] = "x" * padding
        doc["allow_unknown_fields"] = True
    if job_id:
        doc["job_id"] = job_id
    return json.dumps(doc)


def s3_event(bucket: str, key: str) -> str:
    return json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {
        "bucket": {"name": bucket}, "object": {"key": key, "eTag": "e1"}}}]})


def drain(client: Any, url: str) -> list[dict[str, Any]]:
    bodies = []
    while messages := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for m in messages:
            bodies.append(json.loads(m["Body"]))
            client.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The structured fields of every ERROR record logged."""
    return [vars(r) for r in caplog.records if r.levelname == "ERROR"]


# ------------------------------------------------------------------------------------- finding 5


def test_finding_05_same_bucket_for_intake_and_outputs_cannot_loop() -> None:
    """Everything mediagen writes for a manifest lies where the intake never reads; and an operator who points
    a notification at the results (or shares the bucket) gets ignored objects, not new jobs."""
    manifest = "jobs/team-a/batch-7.jsonl"
    assert results_prefix(manifest) == "results/jobs/team-a/batch-7/"
    assert report_key(manifest) == "reports/jobs/team-a/batch-7/report.json"
    queue = ListQueue()
    ports = make_ports(queue)
    objects = MemoryObjects({(INTAKE, manifest): (line() + "\n" + line("two") + "\n").encode()})
    ledger = MemoryLedger()
    done = handle_message(s3_event(INTAKE, manifest), ports=ports, objects=objects, ledger=ledger, rules=[])
    assert done[0]["kind"] == "manifest" and len(ports.jobs.items) == 2  # type: ignore[attr-defined]
    written = list(ports.outputs.objects)  # type: ignore[union-attr]
    result_keys = [f"{d['output']['prefix']}{d['job_id']}/result.json" for b in queue.batches for d in b]

    # Every key mediagen wrote (report, results), notified as if it were a new manifest or a drop, in the
    # outputs bucket or (a hand-made shared bucket) in the intake bucket: never read, never a job.
    for bucket in (OUTPUTS, INTAKE):
        for key in [*written, *result_keys, "jobs/team-a/batch-7/report.json"]:
            if bucket == INTAKE and not key.startswith(("results/", "reports/")):
                continue  # a key under jobs/ in the intake bucket is a manifest someone put there
            outcome = handle_message(s3_event(bucket, key), ports=ports, objects=objects, ledger=ledger, rules=[])
            assert [o["kind"] for o in outcome] == ["ignored"], (bucket, key)
    assert objects.reads == [(INTAKE, manifest)]
    assert len(ports.jobs.items) == 2  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------- finding 6


def test_finding_06_manifest_lines_are_queued_in_batches_sized_by_bytes_not_only_count(
        sqs: tuple[Any, str]) -> None:
    client, url = sqs
    ports = make_ports(SqsJobQueue(url, lambda: client))
    key = "jobs/big/ten.jsonl"
    lines = [line(f"picture {i}", padding=110 * 1024) for i in range(10)]  # 10 x ~110 KB > 1 MiB
    objects = MemoryObjects({(INTAKE, key): "\n".join(lines).encode()})

    report = process_manifest(INTAKE, key, None, "e1", ports=ports, objects=objects, ledger=MemoryLedger())

    assert "error" not in report and report["counts"] == {"RECEIVED": 10}
    queued = drain(client, url)
    assert sorted(d["job_id"] for d in queued) == sorted(line_["job_id"] for line_ in report["lines"])


def test_finding_06_a_line_over_the_message_limit_is_rejected_in_the_report_and_the_rest_are_queued(
        sqs: tuple[Any, str]) -> None:
    client, url = sqs
    ports = make_ports(SqsJobQueue(url, lambda: client))
    key = "jobs/big/one-too-big.jsonl"
    lines = [line("fine"), line("huge", padding=MAX_JOB_BYTES + 1), line("fine too")]
    objects = MemoryObjects({(INTAKE, key): "\n".join(lines).encode()})

    report = process_manifest(INTAKE, key, None, "e1", ports=ports, objects=objects, ledger=MemoryLedger())

    by_line = {v["line"]: v for v in report["lines"]}
    assert by_line[1]["status"] == by_line[3]["status"] == "RECEIVED"
    assert by_line[2]["status"] == "REJECTED"
    assert str(MAX_JOB_BYTES) in json.dumps(by_line[2]["error"])  # the reason names the limit
    record = ports.jobs.get(by_line[2]["job_id"])
    assert record is not None and record["status"] == "REJECTED" and not record.get("credits_charged")
    assert sorted(d["job_id"] for d in drain(client, url)) == sorted([by_line[1]["job_id"], by_line[3]["job_id"]])
    assert ports.outputs.objects[report_key(key)]["counts"] == {"RECEIVED": 2, "REJECTED": 1}  # type: ignore[union-attr]


def test_finding_06_a_line_that_grows_past_the_message_limit_is_rejected_before_anything_is_recorded() -> None:
    # 150 KB of "é" is within the line limit, and 450 KB once escaped for the queue: more than a queue made
    # before SQS's 2025 increase takes (MaximumMessageSize 256 KiB).
    assert JOB_MESSAGE_MAX_BYTES <= SQS_MESSAGE_MAX_BYTES
    queue = ListQueue()
    ports = make_ports(queue)
    key = "jobs/big/accents.jsonl"
    grows = json.loads(line("accents", padding=1))
    grows["request"]["input"]["notes"] = "é" * 75_000
    grows["job_id"] = "accents-1"
    objects = MemoryObjects({(INTAKE, key): (line("fine") + "\n" + json.dumps(grows, ensure_ascii=False)).encode()})

    report = process_manifest(INTAKE, key, None, "e1", ports=ports, objects=objects, ledger=MemoryLedger())

    by_line = {v["line"]: v for v in report["lines"]}
    assert by_line[2]["job_id"] == "accents-1" and by_line[2]["status"] == "REJECTED"
    assert by_line[2]["error"]["code"] == "message_too_large" and "262144" in by_line[2]["error"]["message"]
    record = ports.jobs.get("accents-1")
    assert record is not None and record["status"] == "REJECTED" and "request" not in record
    assert [d["job_id"] for b in queue.batches for d in b] == [by_line[1]["job_id"]]


def test_finding_06_batches_respect_the_entry_and_byte_limits_and_keep_the_order() -> None:
    documents = [{"job_id": str(i), "pad": "x" * (i * 7919 % 250_000)} for i in range(40)]
    batches = size_batches(documents)
    assert [d for b in batches for d in b] == documents  # order kept, nothing lost
    for batch in batches:
        assert len(batch) <= SQS_BATCH_MAX_ENTRIES
        assert sum(intake.message_bytes(d) for d in batch) <= SQS_BATCH_MAX_BYTES
    with pytest.raises(ValueError, match="at most"):
        size_batches([{"pad": "x" * JOB_MESSAGE_MAX_BYTES}])


def test_finding_06_a_refused_send_is_logged_with_the_manifest_key_and_reported(
        caplog: pytest.LogCaptureFixture) -> None:
    ports = make_ports(RefusingQueue())
    key = "jobs/team-b/down.jsonl"
    objects = MemoryObjects({(INTAKE, key): (line() + "\n").encode()})

    with pytest.raises(MediagenError):  # the S3 event is retried
        process_manifest(INTAKE, key, None, "e1", ports=ports, objects=objects, ledger=MemoryLedger())

    report = ports.outputs.objects[report_key(key)]  # type: ignore[union-attr]
    assert report["complete"] is False and report["error"]["code"] == "queue_unavailable"
    failure = errors_logged(caplog)
    assert failure and failure[0]["manifest_key"] == key and failure[0]["error_code"] == "queue_unavailable"


def test_finding_06_an_unreadable_manifest_is_logged_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    class Unreadable(MemoryObjects):
        def read(self, bucket: str, key: str, version: str | None, max_bytes: int) -> bytes:
            raise MediagenError(f"cannot read s3://{bucket}/{key}: AccessDenied", code="unreadable")

    ports = make_ports(ListQueue())
    key = "jobs/team-b/locked.jsonl"
    report = process_manifest(INTAKE, key, None, "e1", ports=ports, objects=Unreadable(), ledger=MemoryLedger())
    assert report["error"]["code"] == "unreadable" and report_key(key) in ports.outputs.objects  # type: ignore[union-attr]
    assert [x["manifest_key"] for x in errors_logged(caplog)] == [key]


# ------------------------------------------------------------------------------------- finding 14


def test_finding_14_intake_a_deeply_nested_message_is_refused_not_a_crash() -> None:
    ports = make_ports(ListQueue())
    for body in ("[" * 100_000 + "]" * 100_000, '{"Records":' * 100_000 + "[]" + "}" * 100_000, "[" * 100_000,
                 b'{"Records": [\xff]}'):
        outcome = handle_message(body, ports=ports, objects=MemoryObjects(), ledger=MemoryLedger(), rules=[])
        assert [o["kind"] for o in outcome] == ["refused"]
    assert ports.jobs.items == {}  # type: ignore[attr-defined]


def test_finding_14_intake_a_long_deeply_nested_manifest_line_is_rejected_and_the_others_are_queued() -> None:
    queue = ListQueue()
    ports = make_ports(queue)
    key = "jobs/deep/nested.jsonl"
    deep = "[" * 100_000 + "]" * 100_000  # long enough to be decoded by the size check, deep enough to recurse
    objects = MemoryObjects({(INTAKE, key): "\n".join([line("fine"), deep, line("fine too")]).encode()})

    report = process_manifest(INTAKE, key, None, "e1", ports=ports, objects=objects, ledger=MemoryLedger())

    by_line = {v["line"]: v for v in report["lines"]}
    assert by_line[1]["status"] == by_line[3]["status"] == "RECEIVED" and by_line[2]["status"] == "REJECTED"
    assert "max_depth" in json.dumps(by_line[2]["error"]) or "levels" in json.dumps(by_line[2]["error"])
    assert len([d for b in queue.batches for d in b]) == 2


def test_finding_14_intake_a_manifest_line_that_is_not_utf8_is_rejected_not_garbled() -> None:
    queue = ListQueue()
    ports = make_ports(queue)
    key = "jobs/bytes/latin1.jsonl"
    garbled = line("caf\u00e9", job_id="latin-1").replace("\\u00e9", "\u00e9").encode("latin-1")
    objects = MemoryObjects({(INTAKE, key): line("fine").encode() + b"\n" + garbled})

    report = process_manifest(INTAKE, key, None, "e1", ports=ports, objects=objects, ledger=MemoryLedger())

    by_line = {v["line"]: v for v in report["lines"]}
    assert by_line[2]["status"] == "REJECTED" and "UTF-8" in json.dumps(by_line[2]["error"])
    assert [d["request"]["input"]["prompt"] for b in queue.batches for d in b] == ["fine"]  # nothing garbled sent


def test_finding_07_intake_jobs_belong_to_their_bucket_and_an_api_callers_job_id_is_not_taken_over() -> None:
    queue = ListQueue()
    ports = make_ports(queue)
    ports.jobs.create({"job_id": "someone-elses", "status": "SUCCEEDED", "owner": "arn:aws:iam::1:user/a",  # type: ignore[attr-defined]
                       "request_hash": "h", "model": "nano-banana"})
    key = "jobs/team/owned.jsonl"
    objects = MemoryObjects({(INTAKE, key): (line("mine", job_id="mine-1") + "\n"
                                             + line("theirs", job_id="someone-elses")).encode()})

    report = process_manifest(INTAKE, key, None, "e1", ports=ports, objects=objects, ledger=MemoryLedger())

    by_line = {v["line"]: v for v in report["lines"]}
    assert ports.jobs.get("mine-1")["owner"] == f"s3:{INTAKE}"  # type: ignore[index]
    assert by_line[2]["status"] == "CONFLICT" and by_line[2]["error"]["code"] == "job_id_unavailable"
    assert "SUCCEEDED" not in json.dumps(report)  # nothing about the other owner's job
    assert [d["job_id"] for b in queue.batches for d in b] == ["mine-1"]


def seed_other_owners_job(ports: Ports, job_id: str) -> None:
    ports.jobs.create({"job_id": job_id, "status": "SUCCEEDED", "owner": "arn:aws:iam::1:user/a",  # type: ignore[attr-defined]
                       "request_hash": "h", "model": "secret-model",
                       "outputs": [{"uri": "s3://their-bucket/results/their-1/0.png"}],
                       "manifest_uri": "s3://their-bucket/results/their-1/manifest.json"})


@pytest.mark.parametrize("kind", ["invalid", "oversized"])
def test_finding_07_intake_a_rejected_line_reusing_another_owners_job_id_reveals_and_tracks_nothing(
        kind: str) -> None:
    queue, ledger = ListQueue(), MemoryLedger()
    ports = make_ports(queue)
    seed_other_owners_job(ports, "their-1")
    if kind == "invalid":
        theirs = json.dumps({"job_id": "their-1", "request": {"input": {"prompt": "no model"}}})
    else:
        grows = json.loads(line("accents", padding=1, job_id="their-1"))
        grows["request"]["input"]["notes"] = "é" * 75_000
        theirs = json.dumps(grows, ensure_ascii=False)
    key = f"jobs/team/{kind}.jsonl"
    objects = MemoryObjects({(INTAKE, key): (line("mine", job_id="mine-1") + "\n" + theirs).encode()})

    report = process_manifest(INTAKE, key, None, "e1", ports=ports, objects=objects, ledger=ledger)

    by_line = {v["line"]: v for v in report["lines"]}
    assert by_line[2] == {"line": 2, "job_id": "their-1", "status": "CONFLICT", "error": {
        "code": "job_id_unavailable", "message": "job id 'their-1' cannot be used; choose another job_id"}}
    stored = json.dumps(ports.outputs.objects[report_key(key)])  # type: ignore[union-attr]
    for secret in ("SUCCEEDED", "secret-model", "their-bucket"):
        assert secret not in json.dumps(report) and secret not in stored
    assert ledger.manifests_of("their-1") == []  # their job ending never touches this manifest
    (manifest,) = ledger.manifests.values()
    assert manifest["job_ids"] == ["mine-1"]
    assert ports.jobs.get("their-1")["status"] == "SUCCEEDED"  # type: ignore[index]
    assert [d["job_id"] for b in queue.batches for d in b] == ["mine-1"]


def test_finding_07_intake_an_oversized_line_with_a_dot_segment_job_id_gets_the_line_id() -> None:
    ports = make_ports(ListQueue())
    grows = json.loads(line("accents", padding=1, job_id=".."))
    grows["request"]["input"]["notes"] = "é" * 75_000
    key = "jobs/team/dots.jsonl"
    objects = MemoryObjects({(INTAKE, key): json.dumps(grows, ensure_ascii=False).encode()})

    report = process_manifest(INTAKE, key, None, "e1", ports=ports, objects=objects, ledger=MemoryLedger())

    (view,) = report["lines"]
    assert view["status"] == "REJECTED" and view["job_id"] != ".." and view["job_id"].endswith("-1")
    assert ports.jobs.get("..") is None


# ------------------------------------------------------------------------------------- sweeper


class SweepableTasks(InMemoryJobs):
    """The job repository fake; counts the sweeper's scans (the one function use of Scan)."""

    def __init__(self) -> None:
        super().__init__()
        self.scans: list[tuple[str | None, int | None]] = []

    def scan(self, *, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        self.scans.append((status, limit))
        return super().scan(status=status, limit=limit)


def received_record(tasks: SweepableTasks, job_id: str, created_at: str, **extra: Any) -> None:
    tasks.create({"job_id": job_id, "status": "RECEIVED", "request": {"model": "nano-banana", "input": {
        "prompt": job_id}}, "output_prefix": "results/jobs/x/", "metadata": {"team": "a"}, **extra})
    tasks.items[job_id]["created_at"] = created_at


NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
OLD, RECENT = "2027-01-15T07:00:00.000Z", "2027-01-15T07:59:00.000Z"


def test_sweeper_re_enqueues_stale_received_jobs_never_claimed_once_per_period() -> None:
    tasks, queue = SweepableTasks(), ListQueue()
    received_record(tasks, "stale", OLD)
    received_record(tasks, "recent", RECENT)
    received_record(tasks, "retrying", OLD)  # submit claimed it once and put it back itself
    tasks.items["retrying"]["transitions"]["SUBMITTING"] = OLD
    received_record(tasks, "done", OLD)
    tasks.transition("done", JobStatus.SUCCEEDED)

    assert sweep_stale_received(tasks, queue, 15 * 60, now=NOW) == ["stale"]
    (document,) = queue.batches[0]
    assert document == {"job_id": "stale", "request": {"model": "nano-banana", "input": {"prompt": "stale"}},
                        "output": {"prefix": "results/jobs/x/"}, "metadata": {"team": "a"}}
    # Run again at once: already swept this period, nothing sent twice; a period later it goes again.
    assert sweep_stale_received(tasks, queue, 15 * 60, now=NOW + 60) == []
    assert sorted(sweep_stale_received(tasks, queue, 15 * 60, now=NOW + 16 * 60)) == ["recent", "stale"]


def test_sweeper_is_bounded_per_run_and_skips_a_job_taken_up_meanwhile() -> None:
    class Racing(SweepableTasks):
        def scan(self, *, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
            found = super().scan(status=status, limit=limit)
            self.transition("job-0", JobStatus.SUBMITTING, expect={JobStatus.RECEIVED})  # submit wins a race
            return found

    tasks, queue = Racing(), ListQueue()
    for i in range(30):
        received_record(tasks, f"job-{i}", OLD)
    swept = sweep_stale_received(tasks, queue, 900, limit=12, now=NOW)
    assert len(swept) == 11 and "job-0" not in swept
    assert sum(len(b) for b in queue.batches) == 11
    assert tasks.scans == [("RECEIVED", 120)]  # only RECEIVED records, a bounded number


def test_sweeper_takes_the_oldest_left_behind_jobs_first() -> None:
    tasks, queue = SweepableTasks(), ListQueue()
    for i in range(5):
        received_record(tasks, f"old-{i}", f"2027-01-15T06:0{i}:00.000Z")
    for i in range(20):
        received_record(tasks, f"new-{i}", RECENT)  # just recorded: not left behind
    assert sweep_stale_received(tasks, queue, 900, limit=3, now=NOW) == ["old-0", "old-1", "old-2"]


def test_sweeper_skips_and_logs_a_job_too_large_to_send_and_re_enqueues_the_others(
        caplog: pytest.LogCaptureFixture) -> None:
    tasks, queue = SweepableTasks(), ListQueue()
    received_record(tasks, "huge", "2027-01-15T06:00:00.000Z", metadata={"notes": "é" * 60_000})  # oldest first
    received_record(tasks, "small", OLD)

    assert sweep_stale_received(tasks, queue, 900, now=NOW) == ["small"]  # the sweep is not stopped

    assert [d["job_id"] for b in queue.batches for d in b] == ["small"]
    (error,) = errors_logged(caplog)
    assert error["job_id"] == "huge" and error["message_bytes"] > JOB_MESSAGE_MAX_BYTES
    assert tasks.items["small"].get("swept_at") and not tasks.items["huge"].get("swept_at")
    assert sweep_stale_received(tasks, queue, 900, now=NOW + 16 * 60) == ["small"]  # and every run after


def test_sweeper_on_dynamodb_re_enqueues_only_stale_unclaimed_received_records(sqs: tuple[Any, str]) -> None:
    from mediagen.records import DynamoJobRepository

    client, url = sqs  # moto is active
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(TableName="tasks", KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
                          BillingMode="PAY_PER_REQUEST")
    repository = DynamoJobRepository("tasks", dynamodb)
    for job_id in ("left-behind", "claimed", "finished"):
        repository.create({"job_id": job_id, "status": "RECEIVED", "request": {"model": "nano-banana", "input": {
            "prompt": job_id, "scale": 1.5}}, "output_prefix": "results/jobs/x/", "max_credits": 10})
    repository.transition("claimed", JobStatus.SUBMITTING, expect={JobStatus.RECEIVED})
    repository.transition("claimed", JobStatus.RECEIVED, expect={JobStatus.SUBMITTING})  # submit's own retry
    repository.transition("finished", JobStatus.REJECTED)
    dynamodb.put_item(TableName="tasks", Item={"job_id": {"S": "#manifest:abc"}, "status": {"S": "RECEIVED"}})
    records = repository  # the sweeper scans the job table through the repository
    queue = SqsJobQueue(url, lambda: client)

    later = 4_000_000_000.0  # 2096: every record is old by then
    assert sweep_stale_received(records, queue, 900, now=later) == ["left-behind"]
    (document,) = drain(client, url)
    assert document == {"job_id": "left-behind", "request": {"model": "nano-banana", "input": {
        "prompt": "left-behind", "scale": 1.5}}, "output": {"prefix": "results/jobs/x/"}, "max_credits": 10}
    assert (repository.get("left-behind") or {}).get("swept_at")
    assert sweep_stale_received(records, queue, 900, now=later + 60) == []  # once per period


def test_sweeper_re_enqueued_job_is_taken_up_by_submit_as_the_same_job() -> None:
    from mediagen.provider import GenerateAccepted
    from mediagen.steps.accept import accept_job
    from mediagen.steps.submit import submit_job
    from tests.fakes import RecordingStarter, ScriptedProvider

    provider = ScriptedProvider(generate=[GenerateAccepted("t-1")])
    tasks, queue = SweepableTasks(), ListQueue()
    ports = Ports(settings=Settings(), jobs=tasks, events=RecordingEvents(), provider=lambda: provider,
                  executions=RecordingStarter())
    accepted = accept_job(line("left behind", job_id="lb-1"), fallback_job_id="x", ports=ports,
                          source={"channel": "api"}, prefix_base="results/jobs/y/")  # ... and the send failed
    tasks.items["lb-1"]["created_at"] = OLD
    assert accepted.created and sweep_stale_received(tasks, queue, 900, now=NOW) == ["lb-1"]

    (document,) = queue.batches[0]
    record = submit_job(json.dumps(document), delivery_id="m-1", ports=ports)
    assert record["status"] == "SUBMITTED" and len(provider.generate_bodies) == 1
    assert submit_job(json.dumps(document), delivery_id="m-2", ports=ports)["status"] == "SUBMITTED"
    assert len(provider.generate_bodies) == 1  # a second sweep or delivery sends nothing again


def test_sweeper_never_re_sends_or_ends_a_job_whose_stored_request_lost_a_presigned_signature(
        caplog: pytest.LogCaptureFixture) -> None:
    """Records never hold secrets: a job whose input is a presigned URL is stored with its signature redacted,
    so the stored copy is not the job (submit would ignore it as a different request). The sweeper skips it and
    says so -- it must not end it: a job waiting for a free in-flight slot looks the same, and its own message
    still submits it, signature and all. A job that asked for ``retry_unknown_outcome`` keeps it when re-sent."""
    from mediagen.steps.core import RetryLater, _terminal
    from mediagen.steps.submit import submit_job
    from tests.fakes import PortProvider, RecordingStarter

    provider = PortProvider("cliprise")
    tasks, queue = SweepableTasks(), ListQueue()
    ports = Ports(settings=Settings(MEDIAGEN_MAX_IN_FLIGHT=1), jobs=tasks, events=RecordingEvents(),
                  provider=lambda: None,  # type: ignore[arg-type,return-value]
                  providers=lambda name: provider, executions=RecordingStarter())
    signed = ("https://media.s3.amazonaws.com/ref.png?X-Amz-Algorithm=AWS4-HMAC-SHA256"
              "&X-Amz-Credential=AKIAEXAMPLE%2F20270115&X-Amz-Signature=" + "ab" * 32)
    waiting = json.dumps({"job_id": "signed", "request": {"model": "nano-banana", "input": {
        "prompt": "edit", "image_urls": [signed], "output_format": "png", "image_size": "1:1"}}})
    retrying = json.dumps({**json.loads(line("retry me", job_id="retry")), "retry_unknown_outcome": True})
    assert submit_job(line("first", job_id="first"), delivery_id="m-0", ports=ports)["status"] == "SUBMITTED"
    for document in (waiting, retrying):  # no free slot: back to the queue, never claimed
        with pytest.raises(RetryLater):
            submit_job(document, delivery_id="m-1", ports=ports)
        tasks.items[json.loads(document)["job_id"]]["created_at"] = OLD
    assert "ab" * 32 not in json.dumps(tasks.items["signed"])  # the secret is not stored

    assert sweep_stale_received(tasks, queue, 900, now=NOW) == ["retry"]
    (sent,) = queue.batches[0]
    assert sent["retry_unknown_outcome"] is True
    assert tasks.get("signed")["status"] == "RECEIVED" and tasks.get("signed").get("swept_at")
    assert [e["job_id"] for e in errors_logged(caplog)] == ["signed"]

    _terminal("first", JobStatus.SUCCEEDED, ports, expect={JobStatus.SUBMITTED})  # a slot is free again
    assert submit_job(waiting, delivery_id="m-1", ports=ports)["status"] == "SUBMITTED"  # its own message
    assert provider.submits[-1][0]["input"]["image_urls"] == [signed]
