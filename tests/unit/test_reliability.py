"""Money safety: one generate per job id under concurrent deliveries, spend guards (on moto DynamoDB) that
hold jobs back or reject them with the figures, refunds when nothing was spent.

moto does not make a conditional write atomic across threads (DynamoDB does), so the concurrency test
runs on the in-memory repository, which gives the same guarantee DynamoDB documents for conditional writes.
"""

from __future__ import annotations

import json
import threading

import boto3
import pytest
from moto import mock_aws

from mediagen.budget import CounterLimitReached, budget_key, charge, in_flight_key, release_slot, take_slot
from mediagen.errors import StatusConflict
from mediagen.provider import AmbiguousSubmit, GenerateAccepted, ProviderRejected
from mediagen.records import DynamoJobRepository, JobStatus
from mediagen.settings import Settings
from mediagen.steps.core import Ports, RetryLater
from mediagen.steps.submit import submit_job
from tests.fakes import InMemoryJobs, RecordingEvents, RecordingStarter, ScriptedProvider

JOB = {"job_id": "job-1", "request": {"model": "seedance-v1-pro", "input": {
    "prompt": "a fox", "duration": "5", "resolution": "720p", "aspect_ratio": "16:9"}}}


@pytest.fixture
def dynamodb():
    with mock_aws():
        resource = boto3.resource("dynamodb", region_name="us-east-1")
        resource.create_table(TableName="jobs", KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
                              BillingMode="PAY_PER_REQUEST")
        yield resource


def ports_for(dynamodb, provider: ScriptedProvider, **settings: object) -> Ports:
    return Ports(settings=Settings(**settings), jobs=DynamoJobRepository("jobs", dynamodb),
                 events=RecordingEvents(), provider=lambda: provider, executions=RecordingStarter())


def job(job_id: str) -> str:
    return json.dumps({**JOB, "job_id": job_id})


def test_concurrent_deliveries_of_one_job_call_generate_once() -> None:
    provider = ScriptedProvider(generate=[GenerateAccepted("t-1")])
    ports = Ports(settings=Settings(), jobs=InMemoryJobs(), events=RecordingEvents(), provider=lambda: provider,
                  executions=RecordingStarter())
    barrier = threading.Barrier(8)

    def deliver(n: int) -> None:
        barrier.wait()
        try:
            submit_job(job("job-1"), delivery_id=f"m-{n}", ports=ports)
        except RetryLater as exc:  # another worker holds the claim: looked at again after the lease
            assert exc.code == "claim_in_progress" and exc.resend

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(provider.generate_bodies) == 1
    assert ports.jobs.get("job-1")["status"] == "SUBMITTED"


def test_jobs_over_the_in_flight_limit_wait_in_the_queue_until_a_slot_frees(dynamodb) -> None:
    provider = ScriptedProvider(generate=[GenerateAccepted("t-1"), GenerateAccepted("t-2")])
    ports = ports_for(dynamodb, provider, MEDIAGEN_MAX_IN_FLIGHT=1)
    submit_job(job("a"), delivery_id="m-a", ports=ports)
    with pytest.raises(RetryLater, match="in flight"):
        submit_job(job("b"), delivery_id="m-b", ports=ports)
    assert ports.jobs.get("b")["status"] == "RECEIVED" and len(provider.generate_bodies) == 1
    # job a ends (any terminal status gives the slot back) -> b goes through on its next delivery
    from mediagen.records import JobStatus
    from mediagen.steps.core import _terminal

    _terminal("a", JobStatus.FAILED, ports, error={"code": "x", "message": "y"})
    assert submit_job(job("b"), delivery_id="m-b", ports=ports)["status"] == "SUBMITTED"


def test_the_daily_budget_rejects_with_the_figures_and_refunds_what_was_not_spent(dynamodb) -> None:
    provider = ScriptedProvider(generate=[ProviderRejected("This field is required", http_status=200),
                                          GenerateAccepted("t-2"), GenerateAccepted("t-3")])
    estimate = 81  # seedance-v1-pro 720p 5 s, from the documents' pricing
    ports = ports_for(dynamodb, provider, MEDIAGEN_DAILY_CREDIT_BUDGET=2 * estimate)
    assert submit_job(job("rejected"), delivery_id="m1", ports=ports)["status"] == "REJECTED"  # refunded
    assert submit_job(job("ok-1"), delivery_id="m2", ports=ports)["status"] == "SUBMITTED"
    assert submit_job(job("ok-2"), delivery_id="m3", ports=ports)["status"] == "SUBMITTED"
    over = submit_job(job("over"), delivery_id="m4", ports=ports)
    assert over["status"] == "REJECTED" and over["error"]["code"] == "over_daily_budget"
    assert f"{2 * estimate} of {2 * estimate}" in over["error"]["message"]
    assert len(provider.generate_bodies) == 3
    # I2: the counter is the sum of the charges on the records
    from mediagen.budget import today

    charged = sum(ports.jobs.get(j).get("credits_charged", 0) for j in ("rejected", "ok-1", "ok-2", "over"))
    assert ports.jobs.counter(budget_key("cliprise", today())) == charged == 2 * estimate


def test_an_unknown_outcome_keeps_the_charge_unless_the_job_opted_into_retry(dynamodb) -> None:
    provider = ScriptedProvider(generate=[AmbiguousSubmit("read timeout"), GenerateAccepted("t-2")])
    ports = ports_for(dynamodb, provider)
    opted = {**JOB, "job_id": "opted", "retry_unknown_outcome": True}
    with pytest.raises(RetryLater):
        submit_job(json.dumps(opted), delivery_id="m1", ports=ports)
    record = submit_job(json.dumps(opted), delivery_id="m1", ports=ports)
    assert record["status"] == "SUBMITTED" and record["unknown_outcomes"] == 1
    assert len(provider.generate_bodies) == 2


def test_status_and_counters_commit_together_or_not_at_all_on_dynamodb(dynamodb) -> None:
    jobs = DynamoJobRepository("jobs", dynamodb)
    day = "2026-11-21"
    for name in ("a", "b"):
        jobs.create({"job_id": name, "status": "RECEIVED"})
    jobs.transition("a", JobStatus.SUBMITTING, expect={JobStatus.RECEIVED}, set_fields={"holds_slot": "cliprise"},
                    counters=[take_slot("cliprise", 1), charge("cliprise", day, 50, 55)])
    assert jobs.counter(in_flight_key("cliprise")) == 1 and jobs.counter(budget_key("cliprise", day)) == 50
    # the slot limit refuses b: nothing of the transaction is written
    with pytest.raises(CounterLimitReached) as refused:
        jobs.transition("b", JobStatus.SUBMITTING, expect={JobStatus.RECEIVED},
                        counters=[take_slot("cliprise", 1), charge("cliprise", day, 1, 55)])
    assert refused.value.key == in_flight_key("cliprise")
    assert jobs.get("b")["status"] == "RECEIVED" and jobs.counter(budget_key("cliprise", day)) == 50
    # the budget limit refuses too, and names its counter
    with pytest.raises(CounterLimitReached) as over:
        jobs.transition("b", JobStatus.SUBMITTING, expect={JobStatus.RECEIVED},
                        counters=[take_slot("cliprise", 2), charge("cliprise", day, 10, 55)])
    assert over.value.key == budget_key("cliprise", day) and jobs.counter(in_flight_key("cliprise")) == 1
    # a failed status condition is a StatusConflict and changes no counter
    with pytest.raises(StatusConflict):
        jobs.transition("a", JobStatus.FAILED, expect={JobStatus.RECEIVED}, counters=[release_slot("cliprise")])
    assert jobs.counter(in_flight_key("cliprise")) == 1
    ended = jobs.transition("a", JobStatus.FAILED, expect={JobStatus.SUBMITTING}, remove=("holds_slot",),
                            if_fields={"holds_slot": "cliprise"}, counters=[release_slot("cliprise")])
    assert ended["status"] == "FAILED" and "holds_slot" not in ended and jobs.counter(in_flight_key("cliprise")) == 0
    # a provider's counters are its own: Clipia's budget is untouched
    assert jobs.counter(budget_key("clipia", day)) == 0


def test_a_transaction_cancelled_by_a_concurrent_one_is_tried_again(dynamodb) -> None:
    """Every claim touches the same counter item: DynamoDB cancels concurrent transactions on it with
    TransactionConflict (nothing written); the repository tries again instead of failing the delivery."""
    from botocore.exceptions import ClientError

    client = boto3.client("dynamodb", region_name="us-east-1")

    class Contended:
        conflicts = 2

        def __getattr__(self, name: str) -> object:
            return getattr(client, name)

        def transact_write_items(self, **kwargs: object) -> object:
            if self.conflicts:
                self.conflicts -= 1
                raise ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                                   "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}]},
                                  "TransactWriteItems")
            return client.transact_write_items(**kwargs)

    contended = Contended()
    jobs = DynamoJobRepository("jobs", contended)
    jobs.create({"job_id": "a", "status": "RECEIVED"})
    moved = jobs.transition("a", JobStatus.SUBMITTING, expect={JobStatus.RECEIVED}, counters=[take_slot("cliprise", 2)])
    assert moved["status"] == "SUBMITTING" and contended.conflicts == 0 and jobs.counter(in_flight_key("cliprise")) == 1
