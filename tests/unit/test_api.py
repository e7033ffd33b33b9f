"""The jobs API on fakes: what a caller gets back when something on our side is wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mediagen.settings import Settings
from mediagen.steps.core import Ports
from tests.fakes import InMemoryJobs, MemoryOutputStore, RecordingEvents, RecordingQueue

EVENTS = Path(__file__).resolve().parents[2] / "events" / "aws"
#: The caller of the sample events (their ``requestContext.authorizer.iam.userArn``).
UPSTREAM = "arn:aws:iam::123456789012:user/upstream"


def _call(event_file: str, ports: Ports, monkeypatch: pytest.MonkeyPatch, **changes: Any) -> tuple[int, Any]:
    import mediagen.api as api

    monkeypatch.setattr(api, "_ports", lambda: ports)
    event = {**json.loads((EVENTS / event_file).read_text()), **changes}
    response = api.app.resolve(event, None)
    return response["statusCode"], json.loads(response["body"])


def _ports(jobs: InMemoryJobs) -> Ports:
    return Ports(settings=Settings(), jobs=jobs, events=RecordingEvents(), provider=lambda: None,  # type: ignore[arg-type,return-value]
                 outputs=MemoryOutputStore(), jobs_queue=RecordingQueue())


def test_a_stored_record_the_view_rejects_answers_500_not_a_bad_request(monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = InMemoryJobs()
    # e.g. written by a newer release with a status this one does not know
    jobs.create({"job_id": "demo-nano-banana-t2i", "status": "ARCHIVED", "model": "nano-banana", "owner": UPSTREAM})
    status, body = _call("apigateway-http-get-job.json", _ports(jobs), monkeypatch)
    assert status == 500
    assert body == {"code": "internal_error", "message": "the request could not be completed; try again later"}


def test_a_stored_record_is_shown_without_its_credentials_and_with_download_urls(
        monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = InMemoryJobs()
    jobs.create({"job_id": "demo-nano-banana-t2i", "status": "SUCCEEDED", "model": "nano-banana",
                 "callback_token": "SECRET", "owner": UPSTREAM, "outputs": [{"uri": "s3://outputs/k.png", "key": "k.png", "bytes": 3,
                                                          "content_type": "image/png", "sha256": "0" * 64}]})
    status, body = _call("apigateway-http-get-job.json", _ports(jobs), monkeypatch)
    assert status == 200 and body["terminal"] is True
    assert "SECRET" not in json.dumps(body)
    assert body["outputs"][0]["url"].startswith("https://outputs.s3.") and body["outputs"][0]["url_expires_in"] == 900


def test_a_body_that_cannot_be_decoded_is_still_the_callers_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    post = json.loads((EVENTS / "apigateway-http-post-job.json").read_text())
    headers = {**post["headers"], "content-type": "multipart/form-data"}
    status, body = _call("apigateway-http-post-job.json", _ports(InMemoryJobs()), monkeypatch, headers=headers)
    assert status == 400 and body["problems"] == [
        {"field": "body", "message": "not a JSON document (content-type application/json)"}]


def test_errors_map_to_http_through_one_table(monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = InMemoryJobs()
    ports = _ports(jobs)
    assert isinstance(ports.jobs_queue, RecordingQueue)
    ports.jobs_queue.fail = True
    status, body = _call("apigateway-http-post-job.json", ports, monkeypatch)
    assert status == 503 and body["code"] == "queue_unavailable" and "send the same job again" in body["message"]
    job_id = body["job_id"]
    assert jobs.get(job_id)["status"] == "RECEIVED"
    cancel = json.loads((EVENTS / "apigateway-http-cancel-job.json").read_text())
    path = f"/jobs/{job_id}/cancel"
    changes = {"rawPath": path, "pathParameters": {"job_id": job_id},
               "requestContext": {**cancel["requestContext"], "http": {**cancel["requestContext"]["http"], "path": path}}}
    assert _call("apigateway-http-cancel-job.json", ports, monkeypatch, **changes)[0] == 200
    status, body = _call("apigateway-http-cancel-job.json", ports, monkeypatch, **changes)
    assert (status, body["code"], body["job_id"], body["status"]) == (409, "already_ended", job_id, "CANCELLED")


# ------------------------------------------------------------------ finding 7: jobs belong to their caller

OTHER = "arn:aws:sts::123456789012:assumed-role/Other/session-7"
OPERATOR_ROLE = "arn:aws:iam::123456789012:role/ops/MediagenOperator"


def _as(event_file: str, principal: str | None, job_id: str | None = None, body: str | None = None) -> dict[str, Any]:
    """A sample event sent by ``principal`` (None: a route without IAM auth), for ``job_id``."""
    event = json.loads((EVENTS / event_file).read_text())
    context = event["requestContext"]
    if principal is None:
        context.pop("authorizer", None)
    else:
        context["authorizer"] = {"iam": {**context.get("authorizer", {}).get("iam", {}), "userArn": principal,
                                         "accountId": principal.split(":")[4]}}
    if job_id is not None and "job_id" in (event.get("pathParameters") or {}):
        path = event["rawPath"].replace("demo-nano-banana-t2i", job_id)
        event.update(rawPath=path, pathParameters={"job_id": job_id})
        context["http"]["path"] = path
    if body is not None:
        event["body"] = body
    return event


def _send(event: dict[str, Any], ports: Ports, monkeypatch: pytest.MonkeyPatch) -> tuple[int, Any]:
    import mediagen.api as api

    monkeypatch.setattr(api, "_ports", lambda: ports)
    response = api.handle(event, None)
    return response["statusCode"], json.loads(response["body"])


def _owned_ports(operators: str = "") -> tuple[InMemoryJobs, Ports]:
    jobs = InMemoryJobs()
    ports = _ports(jobs)
    ports.settings = Settings(MEDIAGEN_OPERATOR_PRINCIPALS=operators)
    return jobs, ports


def test_finding_07_another_caller_cannot_read_or_cancel_a_job_it_gets_what_a_missing_job_gets(
        monkeypatch: pytest.MonkeyPatch) -> None:
    jobs, ports = _owned_ports()
    status, accepted = _send(_as("apigateway-http-post-job.json", UPSTREAM), ports, monkeypatch)
    assert status == 202 and accepted["created"] is True
    job_id = accepted["job_id"]
    assert jobs.get(job_id)["owner"] == UPSTREAM

    missing_get = _send(_as("apigateway-http-get-job.json", OTHER, "no-such-job"), ports, monkeypatch)
    other_get = _send(_as("apigateway-http-get-job.json", OTHER, job_id), ports, monkeypatch)
    assert other_get[0] == missing_get[0] == 404
    assert other_get[1] == {**missing_get[1], "message": f"no job {job_id!r}", "job_id": job_id}
    missing_cancel = _send(_as("apigateway-http-cancel-job.json", OTHER, "no-such-job"), ports, monkeypatch)
    other_cancel = _send(_as("apigateway-http-cancel-job.json", OTHER, job_id), ports, monkeypatch)
    assert other_cancel[0] == missing_cancel[0] == 404
    assert other_cancel[1] == {**missing_cancel[1], "message": f"no job {job_id!r}", "job_id": job_id}
    assert jobs.get(job_id)["status"] == "RECEIVED"  # not cancelled by the other caller

    status, view = _send(_as("apigateway-http-get-job.json", UPSTREAM, job_id), ports, monkeypatch)
    assert status == 200 and view["owner"] == UPSTREAM and view["metadata"]
    assert _send(_as("apigateway-http-cancel-job.json", UPSTREAM, job_id), ports, monkeypatch)[0] == 200


def test_finding_07_a_reused_job_id_of_another_caller_reveals_nothing_and_is_not_queued(
        monkeypatch: pytest.MonkeyPatch) -> None:
    jobs, ports = _owned_ports()
    assert _send(_as("apigateway-http-post-job.json", UPSTREAM), ports, monkeypatch)[0] == 202
    queue = ports.jobs_queue
    assert isinstance(queue, RecordingQueue)
    sent = len(queue.sent)
    before = jobs.get("demo-nano-banana-t2i")
    post = json.loads((EVENTS / "apigateway-http-post-job.json").read_text())
    different = json.dumps({**json.loads(post["body"]), "metadata": {"mine": True}})
    for body in (post["body"], different):  # the same request, and a different one: one answer
        status, answer = _send(_as("apigateway-http-post-job.json", OTHER, body=body), ports, monkeypatch)
        assert (status, answer) == (409, {"code": "job_id_unavailable", "job_id": "demo-nano-banana-t2i",
                                          "message": "job id 'demo-nano-banana-t2i' cannot be used; choose "
                                                     "another job_id"})
    assert len(queue.sent) == sent and jobs.get("demo-nano-banana-t2i") == before
    # Its owner still gets the idempotent answer (with its status).
    status, again = _send(_as("apigateway-http-post-job.json", UPSTREAM), ports, monkeypatch)
    assert status == 202 and again["created"] is False


def test_finding_07_sessions_of_one_role_are_one_owner_and_operators_see_every_job(
        monkeypatch: pytest.MonkeyPatch) -> None:
    jobs, ports = _owned_ports(operators=f"{OPERATOR_ROLE}, arn:aws:iam::123456789012:user/auditor")
    session_1 = "arn:aws:sts::123456789012:assumed-role/Uploader/session-1"
    status, accepted = _send(_as("apigateway-http-post-job.json", session_1), ports, monkeypatch)
    assert status == 202 and jobs.get(accepted["job_id"])["owner"] == "arn:aws:iam::123456789012:role/Uploader"
    session_2 = "arn:aws:sts::123456789012:assumed-role/Uploader/session-2"
    assert _send(_as("apigateway-http-get-job.json", session_2, accepted["job_id"]), ports, monkeypatch)[0] == 200
    # Jobs of the S3 intake and the jobs queue: operators only (an assumed operator role, whatever its path).
    jobs.create({"job_id": "from-s3", "status": "RECEIVED", "model": "nano-banana", "owner": "s3:intake",
                 "source": {"channel": "s3-manifest", "bucket": "intake"}})
    jobs.create({"job_id": "from-sqs", "status": "RECEIVED", "model": "nano-banana"})
    operator = "arn:aws:sts::123456789012:assumed-role/MediagenOperator/alice"
    for job_id in ("from-s3", "from-sqs", accepted["job_id"]):
        assert _send(_as("apigateway-http-get-job.json", session_1 if job_id.startswith("from") else OTHER,
                         job_id), ports, monkeypatch)[0] == 404
        assert _send(_as("apigateway-http-get-job.json", operator, job_id), ports, monkeypatch)[0] == 200
    assert _send(_as("apigateway-http-cancel-job.json", operator, "from-sqs"), ports, monkeypatch)[0] == 200


def test_finding_07_a_caller_without_iam_identity_owns_nothing_it_did_not_send(
        monkeypatch: pytest.MonkeyPatch) -> None:
    jobs, ports = _owned_ports()
    assert _send(_as("apigateway-http-post-job.json", UPSTREAM), ports, monkeypatch)[0] == 202
    assert _send(_as("apigateway-http-get-job.json", None), ports, monkeypatch)[0] == 404
    assert _send(_as("apigateway-http-cancel-job.json", None), ports, monkeypatch)[0] == 404


# ---------------------------------------------------- finding 14: the body is decoded safely before routing


def test_finding_14_api_a_100000_deep_body_is_a_400_never_a_500(monkeypatch: pytest.MonkeyPatch) -> None:
    jobs, ports = _owned_ports()
    for body in ("[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000, "[" * 100_000):
        event = _as("apigateway-http-post-job.json", UPSTREAM, body=body)
        status, answer = _send(event, ports, monkeypatch)
        assert status == 400 and answer["code"] == "invalid_request"
        assert answer["problems"] and all(p["field"] == "body" for p in answer["problems"])
    assert jobs.items == {}
    encoded = _as("apigateway-http-post-job.json", UPSTREAM)
    import base64

    encoded.update(body=base64.b64encode(b'{"job_id": "x", "note": "\xff"}').decode(), isBase64Encoded=True)
    status, answer = _send(encoded, ports, monkeypatch)
    assert status == 400 and "UTF-8" in answer["message"]
