"""The Clipia adapter against the Clipia emulator (no orchestration): a submit whose first answer is lost --
dropped, or held past the client's timeout -- is retried by the adapter with the same Idempotency-Key and ends
with exactly one accepted (and charged) request at the emulator, whose id the adapter returns. The outputs of
that request then download through the adapter as real media."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mediagen.provider.clipia import ClipiaProvider, RetryPolicy
from mediagen.provider.port import Succeeded, idempotency_key
from mediagen.sandbox.clipia import ClipiaEmulator

KEY = "clipia_live_pairtest0123456789abcdef"


@pytest.fixture
def emu() -> Iterator[ClipiaEmulator]:
    with ClipiaEmulator(api_keys=[KEY], processing_seconds=0.2, stall_seconds=30) as emulator:
        yield emulator


def adapter(emu: ClipiaEmulator, *, read_timeout: float = 5.0) -> ClipiaProvider:
    return ClipiaProvider(KEY, base_url=emu.base_url, timeout=httpx.Timeout(read_timeout, connect=2.0),
                          retry=RetryPolicy(attempts=8, base_delay=0.05, max_delay=1.0, budget=10.0))


@pytest.mark.parametrize("fault", ["[sandbox:submit-drop]", "[sandbox:submit-timeout=1]"])
def test_a_lost_submit_answer_is_retried_with_its_key_and_makes_exactly_one_request(
        emu: ClipiaEmulator, fault: str) -> None:
    key = idempotency_key("clipia", "job-lost-answer")
    body = {"model": "nano-banana-2", "input": {"prompt": f"a lighthouse at dusk {fault}"}}
    with adapter(emu, read_timeout=0.3) as clipia:
        submitted = clipia.submit(body, idempotency_key=key)

    calls = emu.submit_calls()
    assert len(calls) >= 2 and {c["idempotency_key"] for c in calls} == {key}
    assert calls[0]["request_id"] == submitted.provider_task_id  # the request the lost answer was about
    assert emu.accepted_requests() == [submitted.provider_task_id]
    assert emu.charges(key) == 1


def test_the_request_s_outputs_download_as_real_media(emu: ClipiaEmulator) -> None:
    import time

    key = idempotency_key("clipia", "job-media")
    body = {"model": "nano-banana-2", "input": {"prompt": "two lighthouses", "num_images": 2}}
    with adapter(emu) as clipia:
        rid = clipia.submit(body, idempotency_key=key).provider_task_id
        deadline = time.monotonic() + 10
        while not isinstance(clipia.status(rid), Succeeded):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        outputs = clipia.result(rid)
        assert len(outputs) == 2
        for output in outputs:
            with clipia.open_download(rid, output) as download:
                assert b"".join(download.iter_bytes()).startswith(b"\x89PNG\r\n\x1a\n")
