"""Callbacks only wake; they never decide. Forged, unknown, late and duplicate ones change nothing."""

from __future__ import annotations

import copy

from mediagen.completion import arm_wakeup, job_id_from_token, new_callback_token, receive_callback
from tests.fakes import InMemoryJobs


class Waker:
    def __init__(self, valid: bool = True) -> None:
        self.valid = valid
        self.woken: list[str] = []

    def wake(self, task_token: str, output: dict) -> bool:
        if not self.valid:
            return False
        self.woken.append(task_token)
        return True


def submitted(jobs: InMemoryJobs, job_id: str = "orders:42") -> str:
    token = new_callback_token(job_id)
    jobs.create({"job_id": job_id, "status": "SUBMITTED", "callback_token": token})
    return token


def test_tokens_carry_the_job_id_and_an_unguessable_secret() -> None:
    a, b = new_callback_token("orders:42"), new_callback_token("orders:42")
    assert a != b and job_id_from_token(a) == "orders:42" and len(a.split(".")[1]) >= 40
    assert job_id_from_token("garbage") is None and job_id_from_token("%%%.x") is None


def test_a_callback_wakes_the_armed_execution_once() -> None:
    jobs, waker = InMemoryJobs(), Waker()
    token = submitted(jobs)
    arm_wakeup({"job_id": "orders:42", "task_token": "sfn-token-1", "wait_seconds": 8}, jobs=jobs, waker=waker)
    assert receive_callback(token, '{"status":"success"}', jobs=jobs, waker=waker) == "woken"
    assert waker.woken == ["sfn-token-1"]
    record = jobs.get("orders:42")
    assert record["callbacks"] == 1 and "wake_token" not in record and record["callback_received_at"]
    assert record["provider_reported"] == {"status": "success"}
    before = copy.deepcopy(jobs.items)
    assert receive_callback(token, '{"status":"success"}', jobs=jobs, waker=waker) == "duplicate"
    assert jobs.items == before and waker.woken == ["sfn-token-1"]


def test_a_callback_before_the_wait_is_armed_ends_the_next_wait_at_once() -> None:
    jobs, waker = InMemoryJobs(), Waker()
    token = submitted(jobs)
    assert receive_callback(token, None, jobs=jobs, waker=waker) == "pending"
    arm_wakeup({"job_id": "orders:42", "task_token": "sfn-token-2", "wait_seconds": 8}, jobs=jobs, waker=waker)
    assert waker.woken == ["sfn-token-2"] and "wake_pending" not in jobs.get("orders:42")


def test_a_stale_wait_token_leaves_the_wake_up_pending() -> None:
    jobs = InMemoryJobs()
    token = submitted(jobs)
    arm_wakeup({"job_id": "orders:42", "task_token": "timed-out", "wait_seconds": 1}, jobs=jobs, waker=Waker())
    assert receive_callback(token, None, jobs=jobs, waker=Waker(valid=False)) == "pending"
    assert jobs.get("orders:42")["wake_pending"] is True


def test_forged_unknown_and_late_callbacks_change_nothing() -> None:
    jobs, waker = InMemoryJobs(), Waker()
    token = submitted(jobs)
    jobs.create({"job_id": "done", "status": "SUCCEEDED", "callback_token": (late := new_callback_token("done"))})
    before = copy.deepcopy(jobs.items)
    forged = token.split(".")[0] + ".not-the-secret-at-all-xxxxxxxx"
    assert receive_callback(forged, None, jobs=jobs, waker=waker) == "forged"
    assert receive_callback(new_callback_token("nobody"), None, jobs=jobs, waker=waker) == "forged"
    assert receive_callback("", None, jobs=jobs, waker=waker) == "forged"
    assert receive_callback(late, '{"status":"success"}', jobs=jobs, waker=waker) == "late"
    assert jobs.items == before and waker.woken == []


def test_arming_a_job_that_is_no_longer_waiting_ends_the_wait_immediately() -> None:
    jobs, waker = InMemoryJobs(), Waker()
    jobs.create({"job_id": "j", "status": "SUCCEEDED", "callback_token": new_callback_token("j")})
    assert arm_wakeup({"job_id": "j", "task_token": "t", "wait_seconds": 30}, jobs=jobs, waker=waker) == {"armed": False}
    assert waker.woken == ["t"]
