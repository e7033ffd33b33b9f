"""The poll step on the provider port, and the schedule: with callbacks the first check comes near the job's
expected completion time; without, the bounded backoff (2 s, 4 s, ... 60 s) is kept."""

from __future__ import annotations

from typing import Any

import pytest

from mediagen.provider.errors import ProviderUnavailable, RateLimited
from mediagen.provider.port import Cancelled, Failed, Queued, Running, Succeeded
from mediagen.settings import Settings
from mediagen.steps.core import Ports
from mediagen.steps.phases import Phase
from mediagen.steps.poll import EXPECTED_SECONDS, check_status, expected_seconds, first_wait_seconds
from tests.fakes import InMemoryJobs, PortProvider, RecordingEvents

NOW = 1_000_000.0
CALLBACKS = {"MEDIAGEN_CALLBACK_BASE_URL": "https://hooks.example.com/callbacks"}


def ports_with(port: PortProvider, **settings: Any) -> Ports:
    jobs = InMemoryJobs()
    jobs.create({"job_id": "j-1", "status": "SUBMITTED", "provider": port.name, "provider_task_id": "req-1"})
    return Ports(settings=Settings(MEDIAGEN_POLL_JITTER=0, **settings), jobs=jobs, events=RecordingEvents(),
                 provider=lambda: pytest.fail("poll must use the provider port"),  # type: ignore[arg-type,return-value]
                 providers=lambda name: port if name == port.name else pytest.fail(f"wrong provider {name}"),
                 clock=lambda: NOW)


def state(provider: str = "clipia", **extra: Any) -> dict[str, Any]:
    return {"job_id": "j-1", "provider": provider, "provider_task_id": "req-1", "model": "flux",
            "modality": "image", "deadline": int(NOW) + 900, "wait_seconds": 20, "polls": 0, **extra}


def test_queued_and_running_keep_polling_and_record_queue_position_and_progress() -> None:
    port = PortProvider("clipia", status=[Queued(queue_position=3), Running(progress=40)])
    ports = ports_with(port)
    first = check_status(state(), ports)
    record = ports.jobs.get("j-1")
    assert first["phase"] == Phase.PROCESSING and record["queue_position"] == 3 and record["progress"] is None
    second = check_status(first, ports)
    record = ports.jobs.get("j-1")
    assert second["phase"] == Phase.PROCESSING and record["progress"] == 40 and record["polls"] == 2
    assert record["last_check_at"] and port.status_calls == 2


def test_succeeded_is_ready() -> None:
    ports = ports_with(PortProvider("clipia", status=[Succeeded(cost=4)]))
    assert check_status(state(), ports)["phase"] == Phase.READY
    assert ports.jobs.get("j-1")["provider_completed_at"]


@pytest.mark.parametrize("refunded", [True, None])
def test_failed_is_recorded_failed_with_the_providers_code_and_message(refunded: bool | None) -> None:
    ports = ports_with(PortProvider("clipia", status=[Failed("nsfw content", code="GENERATION_FAILED",
                                                             refunded=refunded)]))
    assert check_status(state(), ports)["phase"] == Phase.ENDED
    record = ports.jobs.get("j-1")
    assert record["status"] == "FAILED" and record["error"]["code"] == "GENERATION_FAILED"
    assert record["error"]["message"] == "nsfw content" and record["error"].get("refunded") == refunded
    assert ports.events.published[-1]["status"] == "FAILED"


def test_cancelled_at_the_provider_is_recorded_cancelled() -> None:
    ports = ports_with(PortProvider("clipia", status=[Cancelled(refunded=True)]))
    assert check_status(state(), ports)["phase"] == Phase.ENDED
    record = ports.jobs.get("j-1")
    assert record["status"] == "CANCELLED" and record["error"]["code"] == "provider_cancelled"


@pytest.mark.parametrize("error", [ProviderUnavailable("503"), RateLimited("slow down", retry_after=1)])
def test_a_transient_error_is_a_check_that_saw_nothing_new(error: Exception) -> None:
    ports = ports_with(PortProvider("cliprise", status=[error]))
    out = check_status(state("cliprise"), ports)
    assert out["phase"] == Phase.PROCESSING and ports.jobs.get("j-1")["status"] == "SUBMITTED"


def test_a_state_without_a_provider_is_a_cliprise_job() -> None:
    ports = ports_with(PortProvider("cliprise", status=[Succeeded()]))
    legacy = state()
    del legacy["provider"]
    assert check_status(legacy, ports)["phase"] == Phase.READY


def test_without_callbacks_the_first_check_keeps_the_bounded_schedule() -> None:
    settings = Settings()
    assert first_wait_seconds({"model": "veo", "modality": "video"}, settings) == 2


@pytest.mark.parametrize("modality", ["image", "audio", "video"])
def test_with_callbacks_the_first_check_comes_near_the_expected_completion(modality: str) -> None:
    settings = Settings(**CALLBACKS)
    assert first_wait_seconds({"model": "m", "modality": modality}, settings) == EXPECTED_SECONDS[modality]
    assert EXPECTED_SECONDS["image"] < EXPECTED_SECONDS["audio"] < EXPECTED_SECONDS["video"]


def test_the_first_wait_never_passes_the_deadline_and_an_unknown_modality_waits_as_video() -> None:
    assert first_wait_seconds({"modality": "video"}, Settings(MEDIAGEN_DEADLINE_VIDEO_SECONDS=60, **CALLBACKS)) == 60
    assert expected_seconds("unknown-model", "hologram") == EXPECTED_SECONDS["video"]


def test_with_callbacks_the_backoff_grows_on_from_the_first_check() -> None:
    ports = ports_with(PortProvider("clipia", status=[Running()]), **CALLBACKS)
    waits = []
    current = state()
    for _ in range(3):
        current = check_status(current, ports)
        waits.append(current["wait_seconds"])
    assert waits == [40, 60, 60]  # 20 s (image) x 2, then the 60 s cap
