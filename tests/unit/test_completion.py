"""Callbacks only wake; they never decide. Each callback before completion can end a wait, at most once per
wait; one that finds no wait armed (even before the job is SUBMITTED) ends the next wait at once; forged,
unknown and late ones change nothing; a signed webhook (Clipia) changes nothing unless it verifies, and a
replayed delivery changes nothing."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest

from mediagen.completion import (
    WebhookRefused,
    arm_wakeup,
    callback_unseen,
    job_id_from_token,
    new_callback_token,
    receive_callback,
)
from mediagen.provider.clipia import ClipiaProvider
from mediagen.provider.clipia_webhooks import signature
from mediagen.records import utcnow
from tests.fakes import InMemoryJobs, RecordingWaker

SECRET, OLD_SECRET = "whsec_current_0123456789", "whsec_previous_0123456789"


def submitted(jobs: InMemoryJobs, job_id: str = "orders:42", status: str = "SUBMITTED", **extra: Any) -> str:
    token = new_callback_token(job_id)
    jobs.create({"job_id": job_id, "status": status, "callback_token": token, **extra})
    return token


def arm(jobs: InMemoryJobs, waker: RecordingWaker, task_token: str, job_id: str = "orders:42") -> dict:
    return arm_wakeup({"job_id": job_id, "task_token": task_token, "wait_seconds": 8}, jobs=jobs, waker=waker)


def now_after(stamp: str) -> str:
    """``utcnow()`` once it is later than ``stamp`` (times have millisecond resolution)."""
    while (now := utcnow()) <= stamp:
        pass
    return now


def checked(jobs: InMemoryJobs, job_id: str = "orders:42") -> None:
    """What the poll step writes when its status check starts after everything so far."""
    started = now_after(str((jobs.get(job_id) or {}).get("wake_pending_at") or ""))
    jobs.transition(job_id, None, set_fields={"last_check_at": started}, add={"polls": 1})


def test_tokens_carry_the_job_id_and_an_unguessable_secret() -> None:
    a, b = new_callback_token("orders:42"), new_callback_token("orders:42")
    assert a != b and job_id_from_token(a) == "orders:42" and len(a.split(".")[1]) >= 40
    assert job_id_from_token("garbage") is None and job_id_from_token("%%%.x") is None


def test_a_callback_wakes_the_armed_wait_and_a_duplicate_wakes_nothing_more() -> None:
    jobs, waker = InMemoryJobs(), RecordingWaker()
    token = submitted(jobs)
    arm(jobs, waker, "sfn-token-1")
    assert receive_callback(token, '{"status":"success"}', jobs=jobs, waker=waker) == "woken"
    record = jobs.get("orders:42")
    assert waker.woken == ["sfn-token-1"] and "wake_token" not in record
    assert record["callbacks"] == 1 and record["callback_received_at"] == record["wake_pending_at"]
    assert record["provider_reported"] == {"status": "success"}
    # a duplicate before the woken check starts: nothing more to wake, and the check covers it
    assert receive_callback(token, '{"status":"success"}', jobs=jobs, waker=waker) == "pending"
    checked(jobs)
    assert arm(jobs, waker, "sfn-token-2") == {"armed": True, "woken": False}
    assert waker.woken == ["sfn-token-1"]


def test_an_early_callback_does_not_use_up_the_wake_up_of_the_real_one() -> None:
    jobs, waker = InMemoryJobs(), RecordingWaker()
    token = submitted(jobs)
    arm(jobs, waker, "wait-1")
    assert receive_callback(token, '{"status":"success"}', jobs=jobs, waker=waker) == "woken"  # early
    first = jobs.get("orders:42")["callback_received_at"]
    checked(jobs)  # ... which saw the job still running
    arm(jobs, waker, "wait-2")
    now_after(first)
    assert receive_callback(token, '{"status":"success"}', jobs=jobs, waker=waker) == "woken"  # the real one
    record = jobs.get("orders:42")
    assert waker.woken == ["wait-1", "wait-2"]
    assert record["callbacks"] == 2 and record["callback_received_at"] > first  # the lag counts from the last


def test_a_callback_during_a_check_ends_the_next_wait_at_once() -> None:
    jobs, waker = InMemoryJobs(), RecordingWaker()
    token = submitted(jobs)
    started = utcnow()  # the check calls status here, the provider finishes just after
    now_after(started)
    assert receive_callback(token, None, jobs=jobs, waker=waker) == "pending"
    jobs.transition("orders:42", None, set_fields={"last_check_at": started}, add={"polls": 1})
    assert callback_unseen(jobs.get("orders:42"))
    assert arm(jobs, waker, "wait-2") == {"armed": True, "woken": True} and waker.woken == ["wait-2"]


def test_a_callback_before_the_job_is_submitted_is_remembered_for_the_first_wait() -> None:
    jobs, waker = InMemoryJobs(), RecordingWaker()
    token = submitted(jobs, status="SUBMITTING")
    assert receive_callback(token, '{"status":"success"}', jobs=jobs, waker=waker) == "pending"
    assert jobs.get("orders:42")["wake_pending_at"] and waker.woken == []
    jobs.transition("orders:42", None, set_fields={"status": "SUBMITTED"})
    assert arm(jobs, waker, "first-wait") == {"armed": True, "woken": True} and waker.woken == ["first-wait"]


def test_racing_callbacks_end_one_wait_once() -> None:
    import threading

    jobs, waker = InMemoryJobs(), RecordingWaker()
    token = submitted(jobs)
    arm(jobs, waker, "wait-1")
    outcomes: list[str] = []
    threads = [threading.Thread(target=lambda: outcomes.append(receive_callback(token, None, jobs=jobs,
                                                                                waker=waker))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert waker.woken == ["wait-1"] and sorted(outcomes).count("woken") == 1


def test_a_stale_wait_token_leaves_the_wake_up_pending() -> None:
    jobs = InMemoryJobs()
    token = submitted(jobs)
    arm(jobs, RecordingWaker(), "timed-out")
    assert receive_callback(token, None, jobs=jobs, waker=RecordingWaker(valid=False)) == "pending"
    assert callback_unseen(jobs.get("orders:42"))


def test_forged_unknown_and_late_callbacks_change_nothing() -> None:
    jobs, waker = InMemoryJobs(), RecordingWaker()
    token = submitted(jobs)
    late = submitted(jobs, "done", status="SUCCEEDED")
    before = copy.deepcopy(jobs.items)
    forged = token.split(".")[0] + ".not-the-secret-at-all-xxxxxxxx"
    assert receive_callback(forged, None, jobs=jobs, waker=waker) == "forged"
    assert receive_callback(new_callback_token("nobody"), None, jobs=jobs, waker=waker) == "forged"
    assert receive_callback("", None, jobs=jobs, waker=waker) == "forged"
    assert receive_callback(late, '{"status":"success"}', jobs=jobs, waker=waker) == "late"
    assert jobs.items == before and waker.woken == []


def test_a_deeply_nested_payload_is_only_ignored() -> None:
    jobs, waker = InMemoryJobs(), RecordingWaker()
    token = submitted(jobs)
    arm(jobs, waker, "wait-1")
    assert receive_callback(token, "[" * 100_000 + "]" * 100_000, jobs=jobs, waker=waker) == "woken"
    assert "provider_reported" not in jobs.get("orders:42")


def test_arming_a_job_that_is_no_longer_waiting_ends_the_wait_immediately() -> None:
    jobs, waker = InMemoryJobs(), RecordingWaker()
    submitted(jobs, "j", status="SUCCEEDED")
    assert arm(jobs, waker, "t", job_id="j")["armed"] is False
    assert waker.woken == ["t"]


# ------------------------------------------------------------------------------------------ Clipia webhooks


def clipia(now: float | None = None) -> ClipiaProvider:
    return ClipiaProvider("clipia_live_unit", base_url="http://127.0.0.1:9", webhook_secrets=(SECRET, OLD_SECRET),
                          clock=(lambda: now) if now is not None else time.time)


def delivery(request_id: str = "req-1", *, secret: str = SECRET, at: float | None = None,
             webhook_id: str = "wh-1", status: str = "OK") -> tuple[bytes, dict[str, str]]:
    body = {"request_id": request_id, "status": status}
    body |= ({"payload": {"model": "flux", "output": {"images": [{"url": "https://media.example/1.png"}]},
                          "cost": 4}} if status == "OK" else {"error": {"code": "GENERATION_FAILED", "message": "x"}})
    raw = json.dumps(body).encode()
    t = int(time.time() if at is None else at)
    return raw, {"x-clipia-signature": f"t={t},v1={signature(secret, t, raw)}", "x-clipia-webhook-id": webhook_id,
                 "content-type": "application/json"}


def clipia_job(jobs: InMemoryJobs, status: str = "SUBMITTED") -> str:
    return submitted(jobs, "clip-1", status=status, provider="clipia", provider_task_id="req-1")


def verifiers(name: str) -> Any:
    return clipia() if name == "clipia" else None


@pytest.mark.parametrize("case", ["bad-signature", "unknown-secret", "stale", "future", "unsigned", "tampered"])
def test_a_webhook_that_does_not_verify_changes_nothing(case: str) -> None:
    jobs, waker = InMemoryJobs(), RecordingWaker()
    token = clipia_job(jobs)
    arm(jobs, waker, "wait-1", job_id="clip-1")
    raw, headers = delivery(secret="whsec_someone_else" if case == "unknown-secret" else SECRET,
                            at=time.time() - 310 if case == "stale" else time.time() + 310 if case == "future"
                            else None)
    if case == "bad-signature":
        headers["x-clipia-signature"] = headers["x-clipia-signature"][:-4] + "0000"
    if case == "unsigned":
        del headers["x-clipia-signature"]
    if case == "tampered":
        raw = raw.replace(b"req-1", b"req-2")
    before = copy.deepcopy(jobs.items)
    with pytest.raises(WebhookRefused):
        receive_callback(token, raw, jobs=jobs, waker=waker, headers=headers, verifiers=verifiers)
    assert jobs.items == before and waker.woken == []


def test_a_verified_webhook_wakes_the_job_and_a_replay_changes_nothing() -> None:
    jobs, waker = InMemoryJobs(), RecordingWaker()
    token = clipia_job(jobs)
    arm(jobs, waker, "wait-1", job_id="clip-1")
    raw, headers = delivery()
    assert receive_callback(token, raw, jobs=jobs, waker=waker, headers=headers, verifiers=verifiers) == "woken"
    record = jobs.get("clip-1")
    assert waker.woken == ["wait-1"] and record["callbacks"] == 1 and record["webhook_deliveries"] == ["wh-1"]
    checked(jobs, "clip-1")
    arm(jobs, waker, "wait-2", job_id="clip-1")
    before = copy.deepcopy(jobs.items)
    raw, headers = delivery()  # the provider's retry: same delivery id, fresh timestamp and signature
    assert receive_callback(token, raw, jobs=jobs, waker=waker, headers=headers, verifiers=verifiers) == "replayed"
    assert jobs.items == before and waker.woken == ["wait-1"]


def test_a_webhook_signed_with_the_previous_secret_is_accepted_during_a_rotation() -> None:
    jobs, waker = InMemoryJobs(), RecordingWaker()
    token = clipia_job(jobs)
    raw, headers = delivery(secret=OLD_SECRET)
    assert receive_callback(token, raw, jobs=jobs, waker=waker, headers=headers, verifiers=verifiers) == "pending"
    assert callback_unseen(jobs.get("clip-1"))


def test_a_verified_webhook_about_another_request_changes_nothing() -> None:
    jobs, waker = InMemoryJobs(), RecordingWaker()
    token = clipia_job(jobs)
    before = copy.deepcopy(jobs.items)
    raw, headers = delivery("req-other")
    assert receive_callback(token, raw, jobs=jobs, waker=waker, headers=headers, verifiers=verifiers) == "mismatch"
    assert jobs.items == before


def test_a_cliprise_job_needs_no_signature() -> None:
    jobs, waker = InMemoryJobs(), RecordingWaker()
    token = submitted(jobs)
    arm(jobs, waker, "wait-1")
    assert receive_callback(token, b'{"status":"success"}', jobs=jobs, waker=waker, headers={},
                            verifiers=verifiers) == "woken"


def test_a_correctly_signed_body_that_is_not_the_documented_payload_is_only_ignored() -> None:
    jobs, waker = InMemoryJobs(), RecordingWaker()
    token = clipia_job(jobs)
    raw = b'{"request_id": "req-1", "status": "SOMETHING"}'
    t = int(time.time())
    headers = {"x-clipia-signature": f"t={t},v1={signature(SECRET, t, raw)}"}
    before = copy.deepcopy(jobs.items)
    assert receive_callback(token, raw, jobs=jobs, waker=waker, headers=headers, verifiers=verifiers) == "unreadable"
    assert jobs.items == before
