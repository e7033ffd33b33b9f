"""The provider port: both adapters satisfy it (statically and at run time), and the Cliprise adapter maps
its transport onto the port's states and outputs (seeds 000-003 shapes, see test_cliprise_transport)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from mediagen.provider import ClipiaProvider, ClipriseClient, ClipriseProvider, ResultNotReady
from mediagen.provider.port import (
    TERMINAL_STATES,
    Cancelled,
    Failed,
    Provider,
    ResultOutput,
    Running,
    Submitted,
    Succeeded,
    SupportsCancel,
    SupportsEstimate,
    SupportsWebhooks,
    idempotency_key,
)
from mediagen.settings import CLIPRISE_BASE_URL

CLIPRISE_KEY = "sk-live-PORTSENTINEL-4b7d"
CLIPIA_KEY = "clipia_test_PORTSENTINEL_93ab"
TASK = "f11021d5b56bc19932b336ac0dbf413f"


class Recorder:
    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def cliprise(*answers: httpx.Response) -> tuple[ClipriseProvider, Recorder]:
    recorder = Recorder(*answers)
    return ClipriseProvider(ClipriseClient(CLIPRISE_KEY, transport=httpx.MockTransport(recorder))), recorder


def clipia() -> ClipiaProvider:
    return ClipiaProvider(CLIPIA_KEY, transport=httpx.MockTransport(Recorder(httpx.Response(200, json={}))))


def _uses_the_port(provider: Provider) -> str:
    """Type-checked use: both adapters must be accepted where a Provider is expected (mypy on this file)."""
    return provider.name


def test_both_adapters_satisfy_the_port() -> None:
    adapters: list[Provider] = [cliprise(httpx.Response(200))[0], clipia()]
    assert [_uses_the_port(p) for p in adapters] == ["cliprise", "clipia"]
    assert all(isinstance(p, Provider) for p in adapters)
    assert [p.native_idempotency for p in adapters] == [False, True]


def test_capabilities_are_declared_by_the_adapter_that_has_them() -> None:
    cliprise_provider, provider = cliprise(httpx.Response(200))[0], clipia()
    for capability in (SupportsCancel, SupportsEstimate, SupportsWebhooks):
        assert isinstance(provider, capability)
        assert not isinstance(cliprise_provider, capability)
    # the API (which holds no provider key) tells a cancelling caller about refunds from this set
    from mediagen.steps.cancel import CANCELLING_PROVIDERS

    assert {p.name for p in (cliprise_provider, provider) if isinstance(p, SupportsCancel)} == CANCELLING_PROVIDERS


def test_terminal_states() -> None:
    assert all(isinstance(s, TERMINAL_STATES) for s in (Succeeded(), Failed(message="x"), Cancelled()))
    assert not isinstance(Running(), TERMINAL_STATES)


def test_idempotency_key_needs_both_parts() -> None:
    with pytest.raises(ValueError):
        idempotency_key("clipia", "")


# ------------------------------------------------------------------------------------ Cliprise adapter


def test_cliprise_submit_sends_the_body_with_the_callback_and_no_idempotency_header() -> None:
    provider, recorder = cliprise(httpx.Response(200, json=[{"code": 200, "taskId": TASK}]))
    body: dict[str, Any] = {"model": "qwen-image-2", "input": {"prompt": "a lake"}}
    submitted = provider.submit(body, idempotency_key=idempotency_key("cliprise", "job-1"),
                                webhook_url="https://hooks.example.com/cb/tok")
    assert submitted == Submitted(provider_task_id=TASK)
    (request,) = recorder.requests
    assert json.loads(request.content) == {**body, "callBackUrl": "https://hooks.example.com/cb/tok"}
    assert "Idempotency-Key" not in request.headers
    assert body == {"model": "qwen-image-2", "input": {"prompt": "a lake"}}  # the caller's body is untouched


@pytest.mark.parametrize(("answer", "state"), [
    (httpx.Response(300, json=[{"status": "processing"}]), Running()),
    (httpx.Response(200, json=[{"status": "success", "fileURL": "https://cdn.example.com/a.mp4"}]), Succeeded()),
    (httpx.Response(400, json={"status": "fail", "failMsg": "content policy"}),
     Failed(message="content policy", code=None, refunded=None)),
])
def test_cliprise_status_maps_onto_the_port(answer: httpx.Response, state: object) -> None:
    provider, _ = cliprise(answer)
    assert provider.status(TASK) == state


def test_cliprise_result_is_one_output_and_downloads_through_the_client() -> None:
    provider, recorder = cliprise(
        httpx.Response(200, json=[{"status": "success", "fileURL": "https://cdn.example.com/a.mp4"}]),
        httpx.Response(200, content=b"MP4", headers={"Content-Type": "video/mp4"}))
    (output,) = provider.result(TASK)
    assert output == ResultOutput(url="https://cdn.example.com/a.mp4", index=0)
    with provider.open_download(TASK, output) as download:
        assert b"".join(download.iter_bytes()) == b"MP4"
    assert str(recorder.requests[-1].url) == "https://cdn.example.com/a.mp4"
    assert "Authorization" not in recorder.requests[-1].headers


def test_cliprise_result_without_file_url_downloads_from_the_status_endpoint() -> None:
    provider, recorder = cliprise(httpx.Response(200, json={"status": "success"}), httpx.Response(200, content=b"x"))
    (output,) = provider.result(TASK)
    assert output.url is None
    with provider.open_download(TASK, output) as download:
        b"".join(download.iter_bytes())
    assert recorder.requests[-1].url.params["download"] == "true"
    assert f"{CLIPRISE_BASE_URL}/status" in str(recorder.requests[-1].url)


def test_cliprise_result_while_processing_is_not_ready() -> None:
    provider, _ = cliprise(httpx.Response(300, json=[{"status": "processing"}]))
    with pytest.raises(ResultNotReady) as caught:
        provider.result(TASK)
    assert caught.value.state == Running()


def test_result_output_repr_hides_a_key_in_the_url() -> None:
    output = ResultOutput(url=f"{CLIPRISE_BASE_URL}/status?apiKey={CLIPRISE_KEY}&taskId={TASK}&download=true")
    assert CLIPRISE_KEY not in repr(output)
