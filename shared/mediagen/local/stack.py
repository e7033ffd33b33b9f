"""EmbeddedStack: moto + in-process handlers + the sandbox emulator, running the synthesized state machine.

Usage::

    with EmbeddedStack(template_path=default_template_path()) as stack:
        stack.send_jobs([{"request": {...}}])
        records = stack.run_until_done(timeout=120)

Only loopback addresses are used; nothing leaves the machine unless ``real_api=True``. The parts:
:mod:`mediagen.local.patches` (moto made to behave like AWS), :mod:`mediagen.local.provisioning` (the
template's resources), :mod:`mediagen.local.gateway` (API Gateway), :mod:`mediagen.local.queries` (reads).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from unittest import mock

from mediagen.errors import ConfigurationError
from mediagen.local.faults import ENV_FAULTS_SEED, FaultInjector, installed
from mediagen.local.gateway import ACCOUNT, Gateway
from mediagen.local.patches import REGION, FakeContext, route_lambda_invoke, start_moto
from mediagen.local.provisioning import (
    EVENT_BUS,
    INTAKE_BUCKET,
    OUTPUTS_BUCKET,
    STACK_NAME,
    TASK_TABLE,
    Resources,
    default_template_path,
    inbox_rules,
    provision,
    repo_root,
)
from mediagen.local.queries import StackQueries
from mediagen.local.template import Template
from mediagen.records import TERMINAL

__all__ = ["ACCOUNT", "INTAKE_BUCKET", "OUTPUTS_BUCKET", "REGION", "STACK_NAME", "TASK_TABLE", "EmbeddedStack",
           "default_template_path", "repo_root"]


class EmbeddedStack(StackQueries):
    """The pipeline on moto, with the real handlers and the sandbox emulator.

    Args:
        template_path: the synthesized template whose state machine definition is executed.
        api_key: the key the pipeline uses (stored in the moto Secrets Manager secret, as deployed).
            Defaults to ``$MEDIAGEN_LOCAL_API_KEY``, else a random sandbox key.
        real_api: talk to the real provider APIs instead of the emulators: Cliprise with ``CLIPRISE_API_KEY``
            (required; ``MEDIAGEN_CLIPRISE_BASE_URL`` when set), Clipia with ``CLIPIA_API_KEY``,
            ``CLIPIA_WEBHOOK_SECRET`` and ``MEDIAGEN_CLIPIA_BASE_URL`` when set (without a key Clipia is off:
            a job naming it is refused). Every request sent to a provider is counted (:attr:`sent`).
        clipia_api_key: the key the pipeline uses for Clipia's emulator (default: a random live-looking
            ``clipia_live_...`` key, so the emulator behaves like the paid path: charges, queue, webhooks).
        processing_seconds: how long the emulators' tasks stay "processing".
        poll_initial_seconds: the first wait of the polling schedule (real time; small for local runs).
        log_path: where the handlers' structured logs go (default: discarded into memory).
        faults: AWS-side faults (:mod:`mediagen.local.faults`): a ``MEDIAGEN_LOCAL_FAULTS`` spec or an injector;
            ``None`` reads ``MEDIAGEN_LOCAL_FAULTS`` / ``MEDIAGEN_LOCAL_FAULTS_SEED`` from the environment.

    Attributes:
        emulator: the Cliprise emulator (``generate_calls()``), ``None`` with ``real_api``.
        clipia: the Clipia emulator (``submit_calls()``, ``accepted_requests()``, ``charges(key)``), ``None``
            with ``real_api``.
        sent: every HTTP request the pipeline sent to a provider's API (both modes), oldest first:
            ``{"provider", "method", "path", "body", "idempotency_key", "status"}`` (no headers: they hold keys).
        faults: the fault injector in effect (``faults.injected()`` counts what it injected), or ``None``.

    Raises:
        FaultSpecError: the fault spec is malformed (names the entry and the allowed kinds).
    """

    def __init__(self, *, template_path: Path | None = None, api_key: str | None = None, real_api: bool = False,
                 processing_seconds: float = 2.0, poll_initial_seconds: int = 1, poll_max_seconds: int = 10,
                 send_callbacks: bool = True, log_path: Path | None = None,
                 extra_env: dict[str, str] | None = None, faults: str | FaultInjector | None = None,
                 clipia_api_key: str | None = None) -> None:
        self.template = Template.load(template_path or default_template_path())
        if real_api and not (api_key or os.environ.get("CLIPRISE_API_KEY")):
            raise ConfigurationError("real_api needs CLIPRISE_API_KEY")
        if real_api:
            self.api_key = api_key or os.environ.get("CLIPRISE_API_KEY", "")
        else:  # the sandbox's key: given, or MEDIAGEN_LOCAL_API_KEY (secret-hygiene runs), or a random one
            self.api_key = api_key or os.environ.get("MEDIAGEN_LOCAL_API_KEY") or f"sandbox-{uuid.uuid4().hex}"
        if real_api:
            self.clipia_api_key = clipia_api_key or os.environ.get("CLIPIA_API_KEY", "")
            self.clipia_webhook_secret = os.environ.get("CLIPIA_WEBHOOK_SECRET", "")
        else:
            self.clipia_api_key = clipia_api_key or f"clipia_live_{uuid.uuid4().hex}"
            self.clipia_webhook_secret = f"whsec_{uuid.uuid4().hex}"
        self.real_api = real_api
        self.clipia: Any = None
        self.sent: list[dict[str, Any]] = []
        self.processing_seconds = processing_seconds
        self.poll_initial_seconds = poll_initial_seconds
        self.poll_max_seconds = poll_max_seconds
        self.send_callbacks = send_callbacks
        self.log_path = log_path
        self.extra_env = extra_env or {}
        self.log_buffer = io.StringIO()
        self.emulator: Any = None
        self.names: dict[str, str] = {}
        self.callbacks = Gateway(self.invoke, self.names)
        self._exit = ExitStack()
        self._handlers: dict[str, Callable[[dict[str, Any], Any], Any]] = {}
        self.state_machine_definition: dict[str, Any] = {}
        if isinstance(faults, str):
            faults = FaultInjector.from_spec(faults, seed=os.environ.get(ENV_FAULTS_SEED))
        self.faults: FaultInjector | None = faults or FaultInjector.from_environment(os.environ)

    # ------------------------------------------------------------------------------------------ lifecycle

    def __enter__(self) -> EmbeddedStack:
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._exit.close()

    def _start(self) -> None:
        start_moto(self._exit)
        import boto3

        self.session = boto3.session.Session(region_name=REGION)
        if not self.real_api:
            from mediagen.sandbox import Emulator

            self.emulator = Emulator(api_keys=[self.api_key], processing_seconds=self.processing_seconds,
                                     send_callbacks=self.send_callbacks, modality_of=_catalog_modality,
                                     fetch_inputs=True, fetcher=_local_fetcher())
            self.emulator.start()
            self._exit.callback(self.emulator.stop)
            from mediagen.sandbox.clipia import ClipiaEmulator

            self.clipia = ClipiaEmulator(api_keys=[self.clipia_api_key], processing_seconds=self.processing_seconds,
                                         webhook_secret=self.clipia_webhook_secret)
            self.clipia.start()
            self._exit.callback(self.clipia.stop)
        self._exit.enter_context(_counting_provider_requests(self.sent))
        self.callbacks.start()
        self._exit.callback(self.callbacks.stop)
        self._create_resources()
        if self.faults is not None:  # after provisioning: the resources exist as deployed, then AWS misbehaves
            self._exit.enter_context(installed(self.faults))
        self._route_logs()
        self._exit.callback(_reset_wiring)

    def _create_resources(self) -> None:
        resources = provision(self.session, self.template, api_key=self.api_key,
                              resources=Resources(handlers=self._handlers, names=self.names))
        route_lambda_invoke(self._exit, self._handlers)
        clipia_env = self._clipia_environment()
        self.queue_url, self.queue_arn, self.dlq_url = resources.queue_url, resources.queue_arn, resources.dlq_url
        self.intake_queue_url, self.intake_queue_arn = resources.intake_queue_url, resources.intake_queue_arn
        self.events_tap_url = resources.events_tap_url
        self.state_machine_arn = resources.state_machine_arn
        self.state_machine_definition = resources.state_machine_definition
        os.environ.update({
            "MEDIAGEN_TASK_TABLE": TASK_TABLE, "MEDIAGEN_OUTPUTS_BUCKET": OUTPUTS_BUCKET,
            "MEDIAGEN_EVENT_BUS": EVENT_BUS, "MEDIAGEN_STATE_MACHINE_ARN": self.state_machine_arn,
            "MEDIAGEN_API_KEY_SECRET_ID": resources.secret_arn,
            "MEDIAGEN_POLL_INITIAL_SECONDS": str(self.poll_initial_seconds),
            "MEDIAGEN_POLL_MAX_SECONDS": str(self.poll_max_seconds),
            "MEDIAGEN_CALLBACK_BASE_URL": self.callbacks.base_url,
            "MEDIAGEN_REQUEUE_DELAY_SECONDS": "1",
            "MEDIAGEN_JOBS_QUEUE_URL": self.queue_url, "MEDIAGEN_INTAKE_BUCKET": INTAKE_BUCKET,
            "MEDIAGEN_INBOX_RULES": self.inbox_rules(),
            **({} if self.real_api else {"MEDIAGEN_CLIPRISE_BASE_URL": self.emulator.base_url}),
            **clipia_env,
            # The providers the embedded deployment offers (the template offers Cliprise only by default).
            "MEDIAGEN_PROVIDERS": "cliprise,clipia" if clipia_env else "cliprise",
            **self.extra_env,
        })
        # The pipeline reads the keys and the signing secret from their secrets, as deployed.
        for name in ("CLIPRISE_API_KEY", "CLIPIA_API_KEY", "CLIPIA_WEBHOOK_SECRETS"):
            os.environ.pop(name, None)
        if not clipia_env:
            for name in ("MEDIAGEN_CLIPIA_API_KEY_SECRET_ID", "MEDIAGEN_CLIPIA_WEBHOOK_SECRET_ID"):
                os.environ.pop(name, None)
        _reset_wiring()

    def _clipia_environment(self) -> dict[str, str]:
        """Clipia's key and webhook signing secret in moto's Secrets Manager (as deployed) and the variables that
        point the functions at them and at the emulator (or, with ``real_api``, ``MEDIAGEN_CLIPIA_BASE_URL`` when
        set). Empty without a key: Clipia is off."""
        if not self.clipia_api_key:
            return {}
        secrets = self.session.client("secretsmanager")
        env = {"MEDIAGEN_CLIPIA_API_KEY_SECRET_ID": secrets.create_secret(
            Name="mediagen/clipia-api-key", SecretString=self.clipia_api_key)["ARN"]}
        if self.clipia_webhook_secret:
            env["MEDIAGEN_CLIPIA_WEBHOOK_SECRET_ID"] = secrets.create_secret(
                Name="mediagen/clipia-webhook-secret", SecretString=self.clipia_webhook_secret)["ARN"]
        if self.clipia is not None:
            env["MEDIAGEN_CLIPIA_BASE_URL"] = self.clipia.base_url
        return env

    def provider_requests(self, provider: str, job_id: str, *, path_part: str = "") -> list[dict[str, Any]]:
        """The requests :attr:`sent` to ``provider`` for ``job_id`` whose path contains ``path_part`` (Cliprise:
        by the ``callBackUrl`` token of a generate; Clipia: by the job's ``Idempotency-Key``)."""
        from mediagen.completion import job_id_from_token
        from mediagen.provider.port import idempotency_key

        key = idempotency_key(provider, job_id)
        found = []
        for request in self.sent:
            if request["provider"] != provider or path_part not in request["path"]:
                continue
            url = str((request.get("body") or {}).get("callBackUrl") or "")
            token_job = job_id_from_token(url.rstrip("/").rsplit("/", 1)[-1]) if url else None
            if request.get("idempotency_key") == key or token_job == job_id:
                found.append(request)
        return found

    def inbox_rules(self) -> str:
        """``MEDIAGEN_INBOX_RULES`` of the template's intake function (the rules the construct was given)."""
        return inbox_rules(self.template)

    def _route_logs(self) -> None:
        """Send the handlers' JSON logs to ``log_path`` (or memory) instead of the terminal."""
        from mediagen.observability import get_logger

        get_logger()
        stream: Any = self.log_buffer
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            stream = self._exit.enter_context(self.log_path.open("w"))
        for handler in logging.getLogger("mediagen").handlers:
            if isinstance(handler, logging.StreamHandler):
                # Swapped without setStream's flush: the stream it had may be closed by now (a finished test's
                # captured stdout), and flushing a closed stream raises.
                previous = _swap_stream(handler, stream)
                self._exit.callback(_swap_stream, handler, previous)

    # ------------------------------------------------------------------------------------------ running

    @contextlib.contextmanager
    def configured(self, **env: str) -> Iterator[EmbeddedStack]:
        """Run with some pipeline settings changed (environment variable names, e.g.
        ``MEDIAGEN_POLL_INITIAL_SECONDS="20"``); restored afterwards. Only one local stack can exist in a
        process at a time (moto's state is global), so tests vary settings with this instead."""
        with mock.patch.dict(os.environ, env):
            _reset_wiring()
            try:
                yield self
            finally:
                _reset_wiring()
        _reset_wiring()

    @contextlib.contextmanager
    def faults_injected(self, spec: str, *, seed: int | None = None) -> Iterator[FaultInjector]:
        """Inject the AWS-side faults of ``spec`` (``MEDIAGEN_LOCAL_FAULTS`` syntax) for the block, on top of any
        the stack runs with; yields the injector (``injected()`` gives its counts).

        Raises:
            FaultSpecError: ``spec`` is malformed.
        """
        with installed(FaultInjector.from_spec(spec, seed=seed)) as injector:
            yield injector

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """Call a pipeline function's real handler in-process (``function``: submit|poll|persist|finalize)."""
        logical_id = self.names[function]
        return self._handlers[logical_id](event, FakeContext(function_name=logical_id))

    def send_jobs(self, jobs: Iterable[dict[str, Any] | str]) -> list[str]:
        """Put jobs on the jobs queue (dicts are JSON-encoded; strings are sent as they are)."""
        sqs = self.session.client("sqs")
        ids = []
        for job in jobs:
            body = job if isinstance(job, str) else json.dumps(job)
            ids.append(sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)["MessageId"])
        return ids

    def pump_queue(self, *, max_batches: int = 10) -> int:
        """Deliver queued messages as the SQS event source mappings would: the intake queue to ``intake``
        (when the template has it), then the jobs queue to ``submit`` (batches of up to 10, partial batch
        failures honoured: failed records become visible again after 1 s).

        Returns: the number of records delivered to ``submit``.
        """
        if "intake" in self.names:
            self._pump(self.intake_queue_url, self.intake_queue_arn, "intake", max_batches)
        return self._pump(self.queue_url, self.queue_arn, "submit", max_batches)

    def _pump(self, queue_url: str, queue_arn: str, function: str, max_batches: int) -> int:
        sqs = self.session.client("sqs")
        delivered = 0
        for _ in range(max_batches):
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                           AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
            if not messages:
                break
            delivered += len(messages)
            event = {"Records": [self._sqs_record(m, queue_arn) for m in messages]}
            try:
                response = self.invoke(function, event)
                failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
            except Exception:  # noqa: BLE001 - the whole batch failed (Powertools raises when all records fail)
                failed = {m["MessageId"] for m in messages}
            for m in messages:
                if m["MessageId"] in failed:
                    sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"],
                                                  VisibilityTimeout=1)
                else:
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        return delivered

    def _sqs_record(self, message: dict[str, Any], queue_arn: str | None = None) -> dict[str, Any]:
        attrs = message.get("Attributes", {})
        return {
            "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
            "attributes": {
                "ApproximateReceiveCount": attrs.get("ApproximateReceiveCount", "1"),
                "SentTimestamp": attrs.get("SentTimestamp", str(int(time.time() * 1000))),
                "SenderId": attrs.get("SenderId", ACCOUNT),
                "ApproximateFirstReceiveTimestamp": attrs.get("ApproximateFirstReceiveTimestamp",
                                                              str(int(time.time() * 1000))),
            },
            "messageAttributes": {}, "md5OfBody": message.get("MD5OfBody", ""), "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn or self.queue_arn, "awsRegion": REGION,
        }


    def put_object(self, key: str, body: bytes, *, metadata: dict[str, str] | None = None,
                   content_type: str = "application/octet-stream") -> str | None:
        """Put an object into the intake bucket, as an upstream system would (S3 notifies the intake queue).
        Returns its version id."""
        response = self.session.client("s3").put_object(Bucket=INTAKE_BUCKET, Key=key, Body=body,
                                                        Metadata=metadata or {}, ContentType=content_type)
        return response.get("VersionId")

    @property
    def api_url(self) -> str:
        """The local jobs API endpoint (``http://127.0.0.1:<port>``)."""
        return self.callbacks.api_url

    def run_until_done(self, *, expected: int | None = None, timeout: float = 300.0,
                       on_progress: Callable[[list[dict[str, Any]], float], None] | None = None,
                       interval: float = 0.2, progress_every: float = 0.0) -> list[dict[str, Any]]:
        """Deliver the queue and wait until every job is terminal and its execution has stopped.

        Args:
            expected: how many task records to wait for (default: as many as there were messages sent).
            on_progress: called with the task records and the elapsed seconds, on every round or at most every
                ``progress_every`` seconds (reading every record each round costs what the table holds: a long
                run wants a period).

        Returns: the task records.

        Raises:
            TimeoutError: not everything finished within ``timeout`` seconds (names the stuck jobs).
        """
        start = time.monotonic()
        reported = -math.inf
        while True:
            self.pump_queue()
            # In this order: an execution publishes its job's event before it ends, and the event lands in the
            # intake queue before the execution is seen as stopped, so nothing can slip between the checks.
            idle = not self._running_executions()
            drained = self.queue_depth(intake=True) == 0
            elapsed = time.monotonic() - start
            report_due = on_progress is not None and elapsed - reported >= progress_every
            if not (idle and drained) and not report_due and elapsed <= timeout:
                time.sleep(interval)
                continue
            records = self.records()
            if on_progress and report_due:
                reported = elapsed
                on_progress(records, elapsed)
            done = idle and drained and all(r.get("status") in TERMINAL for r in records)
            if done and (expected is None or len(records) >= expected):
                return records
            if elapsed > timeout:
                stuck = [f"{r['job_id']}={r.get('status')}" for r in records if r.get("status") not in TERMINAL]
                raise TimeoutError(f"jobs not finished after {timeout:.0f}s: {', '.join(stuck) or 'queue not drained'}")
            time.sleep(interval)



@contextlib.contextmanager
def _counting_provider_requests(sent: list[dict[str, Any]]) -> Iterator[None]:
    """Record every request the pipeline's HTTP clients send to a provider API (Cliprise ``/generate`` and
    ``/status``, Clipia ``/v1/...``) into ``sent``: method, path, JSON body, ``Idempotency-Key`` and the answer's
    status (``None`` when no answer came). Headers and query strings are not kept (they carry the keys)."""
    import threading

    import httpx

    lock = threading.Lock()
    original = httpx.HTTPTransport.handle_request

    def handle_request(transport: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        provider = "clipia" if path.startswith("/v1/") else "cliprise" if path.endswith(("/generate", "/status")) \
            else None
        if provider is None:
            return original(transport, request)
        try:
            body = json.loads(request.content) if request.content else None
        except (ValueError, httpx.RequestNotRead):
            body = None
        entry: dict[str, Any] = {"provider": provider, "method": request.method, "path": path, "body": body,
                                 "idempotency_key": request.headers.get("idempotency-key"), "status": None}
        with lock:
            sent.append(entry)
        response = original(transport, request)
        entry["status"] = response.status_code
        return response

    with mock.patch.object(httpx.HTTPTransport, "handle_request", handle_request):
        yield


def _swap_stream(handler: logging.StreamHandler[Any], stream: Any) -> Any:
    with handler.lock or contextlib.nullcontext():
        previous, handler.stream = handler.stream, stream
    return previous



def _local_fetcher() -> Callable[[str], bytes]:
    """How the emulator fetches input URLs locally: S3 URLs (the presigned URLs of ``s3://`` inputs) from moto,
    through ``requests``, which moto intercepts like the provider's fetch would reach S3; anything else over
    the network (fails fast on this machine's closed network; the emulator records the failure)."""
    from mediagen.sandbox.inputs import HttpFetcher

    network = HttpFetcher()

    def fetch(url: str) -> bytes:
        from urllib.parse import urlsplit

        if (urlsplit(url).hostname or "").endswith(".amazonaws.com"):
            import requests

            response = requests.get(url, timeout=10)
            response.raise_for_status()
            return response.content
        return network(url)

    return fetch


def _catalog_modality(model: str) -> str | None:
    from mediagen.catalog import get_catalog

    return get_catalog().modality(model)


def _reset_wiring() -> None:
    from mediagen import wiring
    from mediagen.settings import get_settings

    wiring.ports.cache_clear()
    get_settings.cache_clear()

