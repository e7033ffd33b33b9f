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
    jobs.create({"job_id": "demo-nano-banana-t2i", "status": "ARCHIVED", "model": "nano-banana"})
    status, body = _call("apigateway-http-get-job.json", _ports(jobs), monkeypatch)
    assert status == 500
    assert body == {"code": "internal_error", "message": "the request could not be completed; try again later"}


def test_a_stored_record_is_shown_without_its_credentials_and_with_download_urls(
        monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = InMemoryJobs()
    jobs.create({"job_id": "demo-nano-banana-t2i", "status": "SUCCEEDED", "model": "nano-banana",
                 "callback_token": "SECRET", "outputs": [{"uri": "s3://outputs/k.png", "key": "k.png", "bytes": 3,
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
