"""The job repository's contract, run on the in-memory fake and on the DynamoDB adapter (moto) alike: the
fake the step tests rely on behaves like production."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mediagen.errors import JobNotFound, StatusConflict
from mediagen.records import TERMINAL, DynamoJobRepository, JobStatus, public_view
from tests.fakes import InMemoryJobs


@pytest.fixture(params=["memory", "dynamodb"])
def jobs(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "memory":
        yield InMemoryJobs()
        return
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName="jobs", KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST")
        # a spend-guard counter shares the table: never a job
        client.put_item(TableName="jobs", Item={"job_id": {"S": "#in-flight"}, "n": {"N": "1"}})
        yield DynamoJobRepository("jobs", client)


def test_create_is_first_writer_wins_and_fills_the_bookkeeping(jobs: Any) -> None:
    assert jobs.create({"job_id": "a", "status": "RECEIVED", "model": "m", "credits_estimate": 1.5}) is None
    existing = jobs.create({"job_id": "a", "status": "REJECTED", "model": "other"})
    assert existing["status"] == "RECEIVED" and existing["model"] == "m"
    record = jobs.get("a")
    assert record["polls"] == 0 and record["callbacks"] == 0 and "RECEIVED" in record["transitions"]
    assert record["credits_estimate"] == 1.5
    assert jobs.get("nobody") is None


def test_a_transition_from_an_unexpected_status_changes_nothing(jobs: Any) -> None:
    jobs.create({"job_id": "a", "status": "RECEIVED"})
    moved = jobs.transition("a", JobStatus.SUBMITTING, expect={JobStatus.RECEIVED}, set_fields={"holds_slot": True},
                            add={"polls": 2})
    assert moved["status"] == "SUBMITTING" and moved["holds_slot"] is True and moved["polls"] == 2
    assert "SUBMITTING" in moved["transitions"]
    with pytest.raises(StatusConflict):
        jobs.transition("a", JobStatus.SUBMITTED, expect={JobStatus.RECEIVED}, set_fields={"x": 1})
    assert jobs.get("a")["status"] == "SUBMITTING" and "x" not in jobs.get("a")
    with pytest.raises(JobNotFound):
        jobs.transition("nobody", None, set_fields={"x": 1})


def test_unless_set_is_a_first_time_only_write_and_take_hands_a_value_out_once(jobs: Any) -> None:
    jobs.create({"job_id": "a", "status": "SUCCEEDED"})
    jobs.transition("a", None, set_fields={"event_published": True}, unless_set="event_published")
    with pytest.raises(StatusConflict):
        jobs.transition("a", None, set_fields={"event_published": True}, unless_set="event_published")
    jobs.transition("a", None, set_fields={"wake_token": "t"})
    assert jobs.take("a", "wake_token") == "t"
    assert jobs.take("a", "wake_token") is None
    jobs.transition("a", None, remove=("event_published",))
    assert "event_published" not in jobs.get("a")


def test_scan_lists_jobs_newest_first_filtered_and_limited_without_reserved_items(jobs: Any) -> None:
    for job_id, status, created in (("mid", "SUCCEEDED", "2026-12-01T10:00:00.000Z"),
                                    ("new", "REJECTED", "2026-12-02T10:00:00.000Z"),
                                    ("old", "REJECTED", "2026-11-30T10:00:00.000Z")):
        jobs.create({"job_id": job_id, "status": status, "created_at": created})
    assert [r["job_id"] for r in jobs.scan()] == ["new", "mid", "old"]
    assert [r["job_id"] for r in jobs.scan(status="REJECTED")] == ["new", "old"]
    assert [r["job_id"] for r in jobs.scan(limit=1)] == ["new"]


def test_a_counter_version_shows_a_change_that_came_back_and_guards_the_reconcilers_write(jobs: Any) -> None:
    from mediagen.budget import CounterChange

    key = "#in-flight:cliprise"
    assert jobs.counter_state(key) == (0, 0)
    jobs.create({"job_id": "a", "status": "RECEIVED"})
    jobs.transition("a", JobStatus.SUBMITTING, counters=[CounterChange(key, 1)])
    jobs.transition("a", JobStatus.RECEIVED, counters=[CounterChange(key, -1)])
    value, version = jobs.counter_state(key)
    assert value == 0 and version == 2  # a claim and a release: the value is back, the version is not
    assert jobs.set_counter(key, 7, version=1) is False and jobs.counter(key) == 0  # a stale read never overwrites
    assert jobs.set_counter(key, 7, version=2) is True and jobs.counter_state(key) == (7, 3)
    assert jobs.set_counter("#in-flight", 3, version=0) is True  # a counter from before versions existed


def test_the_public_view_hides_credentials_and_bookkeeping() -> None:
    record = {"job_id": "a", "status": "SUCCEEDED", "callback_token": "SECRET", "wake_token": "T", "holds_slot": True,
              "outputs": [{"key": "a/output.png", "uri": "s3://b/a/output.png"}]}
    view = public_view(record, lambda key, seconds: f"https://b.example/{key}?e={seconds}", 60)
    assert view["terminal"] is (JobStatus.SUCCEEDED in TERMINAL)
    assert not {"callback_token", "wake_token", "holds_slot"} & set(view)
    assert view["outputs"][0]["url"] == "https://b.example/a/output.png?e=60"
    assert record["outputs"][0] == {"key": "a/output.png", "uri": "s3://b/a/output.png"}  # the record is unchanged
