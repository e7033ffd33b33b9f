"""Settings and wiring: a missing resource name fails early naming the variable; a step builds only the AWS
clients it uses; a job that must wait goes back to the queue the right way."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from mediagen.errors import ConfigurationError
from mediagen.settings import REQUIRED, Settings, settings_for
from mediagen.steps.core import RetryLater
from tests.fakes import RecordingQueue

FULL_ENV = {"MEDIAGEN_TASK_TABLE": "jobs", "MEDIAGEN_EVENT_BUS": "bus", "MEDIAGEN_OUTPUTS_BUCKET": "outputs",
            "MEDIAGEN_STATE_MACHINE_ARN": "arn:aws:states:eu-west-1:123456789012:stateMachine:sm",
            "MEDIAGEN_JOBS_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs",
            "MEDIAGEN_INTAKE_BUCKET": "intake"}


@pytest.mark.parametrize("function", sorted(REQUIRED))
def test_each_function_names_every_missing_variable(function: str) -> None:
    assert settings_for(function, FULL_ENV).job_table == "jobs"
    for variable in REQUIRED[function]:
        env = {k: v for k, v in FULL_ENV.items() if k != variable}
        with pytest.raises(ConfigurationError, match=variable):
            settings_for(function, env)


def test_no_resource_name_has_a_plausible_default() -> None:
    settings = Settings.from_env({})
    assert (settings.job_table, settings.outputs_bucket, settings.event_bus, settings.jobs_queue_url) == ("", "", "", "")


@pytest.fixture
def constructed(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts the boto3 clients made (by service)."""
    import boto3

    made: Counter[str] = Counter()
    real = boto3.client

    def counting(service: str, *args: Any, **kwargs: Any) -> Any:
        made[service] += 1
        return real(service, *args, **kwargs)

    monkeypatch.setattr(boto3, "client", counting)
    return made


def test_building_the_ports_makes_no_client_and_each_step_only_the_ones_it_uses(constructed: Counter[str]) -> None:
    from mediagen.wiring import build_ports

    ports = build_ports(settings_for("persist", FULL_ENV))
    assert constructed == Counter()
    assert ports.outputs is not None
    ports.outputs.presigned_url("k", 60)
    assert constructed == Counter({"s3": 1})
    ports.outputs.presigned_url("k2", 60)  # built once
    ports.events._bus  # noqa: B018 - touching the port builds its adapter
    assert constructed == Counter({"s3": 1, "events": 1})


def test_a_waiting_job_is_resent_and_a_failing_one_requeued() -> None:
    from mediagen.queue import put_back

    queue = RecordingQueue()
    waiting = RetryLater("no slot", code="in_flight_limit", resend=True, job_document={"job_id": "j"})
    assert put_back(waiting, queue, receipt_handle="r-1", delay_seconds=30) is True
    failing = RetryLater("provider unreachable", code="provider_unavailable")
    assert put_back(failing, queue, receipt_handle="r-2", delay_seconds=30) is False
    assert queue.resent == [({"job_id": "j"}, 30)] and queue.requeued == [("r-2", 30)]


def test_the_sqs_queue_uses_the_configured_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from mediagen.queue import SqsJobQueue

    calls: list[tuple[str, dict[str, Any]]] = []

    class Sqs:
        def send_message(self, **kwargs: Any) -> None:
            calls.append(("send", kwargs))

        def change_message_visibility(self, **kwargs: Any) -> None:
            calls.append(("visibility", kwargs))

    queue = SqsJobQueue(FULL_ENV["MEDIAGEN_JOBS_QUEUE_URL"], Sqs)
    queue.resend({"job_id": "j"}, 5000)
    queue.requeue("r", 30)
    url = FULL_ENV["MEDIAGEN_JOBS_QUEUE_URL"]
    assert [(name, kw["QueueUrl"]) for name, kw in calls] == [("send", url), ("visibility", url)]
    assert calls[0][1]["DelaySeconds"] == 900  # SQS's maximum


# ------------------------------------------------------------------------------------------ providers offered


def test_a_provider_is_offered_only_when_its_key_or_secret_is_configured() -> None:
    from mediagen.wiring import configured_providers

    assert configured_providers(Settings.from_env({})) == frozenset()
    assert configured_providers(Settings.from_env({"CLIPRISE_API_KEY": "k"})) == {"cliprise"}
    assert configured_providers(Settings.from_env({"MEDIAGEN_API_KEY_SECRET_ID": "s",
                                                   "MEDIAGEN_CLIPIA_API_KEY_SECRET_ID": "c"})) == {"cliprise", "clipia"}
    assert configured_providers(Settings.from_env({"CLIPIA_API_KEY": "  "})) == frozenset()


def test_the_construct_s_provider_list_wins_and_an_unknown_name_is_a_configuration_error() -> None:
    from mediagen.wiring import configured_providers

    assert configured_providers(Settings.from_env({"MEDIAGEN_PROVIDERS": "cliprise, clipia"})) == {"cliprise", "clipia"}
    with pytest.raises(ConfigurationError, match="falai"):
        configured_providers(Settings.from_env({"MEDIAGEN_PROVIDERS": "cliprise,falai"}))


def test_the_clipia_adapter_is_configured_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from mediagen.provider.clipia import ClipiaProvider, ClipiaSettings
    from mediagen.wiring import build_ports

    monkeypatch.delenv("CLIPIA_API_KEY", raising=False)
    env = {**FULL_ENV, "CLIPIA_API_KEY": "clipia_live_abc123", "MEDIAGEN_CLIPIA_BASE_URL": "http://127.0.0.1:9",
           "MEDIAGEN_CLIPIA_AUTH_SCHEME": "Bearer", "MEDIAGEN_CLIPIA_ATTEMPTS": "2"}
    settings = settings_for("persist", env)
    assert ClipiaSettings.from_settings(settings) == ClipiaSettings.from_env(env)
    assert "clipia_live_abc123" not in repr(settings)
    ports = build_ports(settings)
    assert ports.providers is not None
    clipia = ports.providers("clipia")
    assert isinstance(clipia, ClipiaProvider)
    assert (clipia.base_url, clipia.auth_scheme) == ("http://127.0.0.1:9", "Bearer")
    assert ports.providers("clipia") is clipia


def test_the_callback_gets_the_webhook_secrets_without_any_api_key() -> None:
    from mediagen.wiring import clipia_webhook_secrets

    settings = Settings.from_env({"CLIPIA_WEBHOOK_SECRETS": "whsec_new_1, whsec_old_2"})
    assert clipia_webhook_secrets(settings) == ("whsec_new_1", "whsec_old_2")
    with pytest.raises(ConfigurationError, match="CLIPIA_WEBHOOK_SECRETS"):
        clipia_webhook_secrets(Settings.from_env({}))
    with pytest.raises(ConfigurationError):  # a readable placeholder never verifies a delivery
        clipia_webhook_secrets(Settings.from_env({"CLIPIA_WEBHOOK_SECRETS": "REPLACE_ME_WITH_THE_SECRET"}))


@pytest.mark.parametrize("handler", ["poll", "submit", "api", "callback", "sweep"])
def test_a_missing_variable_fails_the_lambda_init_naming_it(handler: str) -> None:
    """Inside Lambda the handler module checks its settings when the container starts: an init without
    MEDIAGEN_TASK_TABLE fails with that name (not a job later, nor a write to a plausible default table)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAGEN_")}
    env.update({"AWS_LAMBDA_FUNCTION_NAME": f"mediagen-{handler}", "AWS_DEFAULT_REGION": "eu-west-1",
                "PYTHONPATH": f"{repo}{os.pathsep}{repo / 'shared'}", "POWERTOOLS_TRACE_DISABLED": "1"})
    done = subprocess.run([sys.executable, "-c", f"import functions.{handler}.app"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "ConfigurationError" in done.stderr and "MEDIAGEN_TASK_TABLE" in done.stderr
