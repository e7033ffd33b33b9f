"""``mediagen`` -- the command line.

Commands: ``demo``, ``run-local FILE…``, ``submit FILE… [--wait] [--local]``, ``status``, ``jobs``, ``redrive``,
``emulator``, and the catalog's ``models``, ``validate``,
``estimate``, ``schema`` (from :mod:`mediagen.catalog.commands`). Exit codes: 0 success, 1 a job or
file was invalid / did not succeed, 2 usage error or unreadable input.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mediagen import __version__
from mediagen.ops.display import clean
from mediagen.redact import RedactingFilter

#: ``--real`` of demo and run-local.
REAL_HELP = ("talk to the real provider APIs: Cliprise (needs CLIPRISE_API_KEY; MEDIAGEN_CLIPRISE_BASE_URL) and "
             "Clipia when CLIPIA_API_KEY is set (CLIPIA_WEBHOOK_SECRET, MEDIAGEN_CLIPIA_BASE_URL)")


def _base_urls(args: argparse.Namespace) -> None:
    """``--cliprise-base-url`` / ``--clipia-base-url``: the providers' API base URLs for a ``--real`` run (the
    same variables a deployment gets from the construct's ``cliprise_base_url`` / ``clipia_base_url``)."""
    for flag, variable in (("cliprise_base_url", "MEDIAGEN_CLIPRISE_BASE_URL"),
                           ("clipia_base_url", "MEDIAGEN_CLIPIA_BASE_URL")):
        value = getattr(args, flag, None)
        if value:
            os.environ[variable] = value


def _demo(args: argparse.Namespace) -> int:
    from mediagen.local.runner import demo

    _base_urls(args)

    if args.real and not os.environ.get("CLIPRISE_API_KEY"):
        print("mediagen demo --real needs CLIPRISE_API_KEY in the environment", file=sys.stderr)
        return 2
    return demo(job_files=[Path(p) for p in args.files] or None, output_dir=Path(args.output_dir),
                real_api=args.real, processing_seconds=args.processing_seconds, timeout=args.timeout,
                faults=args.faults)


def _run_local(args: argparse.Namespace) -> int:
    from mediagen.local.runner import run_local

    _base_urls(args)

    return run_local(job_files=[Path(p) for p in args.files], real_api=args.real,
                     processing_seconds=args.processing_seconds, timeout=args.timeout, faults=args.faults)


def _aws(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """What to talk to: boto3 (a deployed stack) or, with ``--local``, the clients of the running local stack and
    its resource names (``mediagen local up``'s state)."""
    if not args.local:
        import boto3

        return boto3, {}
    from mediagen.local.runner import local_clients, read_local_state

    state = read_local_state(Path(args.state_file))
    return local_clients(state), state


def _redrive(args: argparse.Namespace) -> int:
    from mediagen.ops import redrive, stack_outputs

    dlq_url, queue_url = args.dlq_url, args.queue_url
    clients, local = _aws(args)
    if local:
        dlq_url, queue_url = local["dlq_url"], local["queue_url"]
    elif not (dlq_url and queue_url):
        outputs = stack_outputs(args.stack)
        dlq_url, queue_url = dlq_url or outputs["JobsDlqUrl"], queue_url or outputs["JobsQueueUrl"]
    moved = redrive(clients.client("sqs"), dlq_url=dlq_url, queue_url=queue_url, limit=args.max)
    print(f"redrive done: {moved} message(s) moved")
    return 0


def _status(args: argparse.Namespace) -> int:
    import json

    from mediagen.ops import job_status, table_and_bucket

    clients, local = _aws(args)
    if local:
        table, bucket = local["table"], local["bucket"]
    else:
        table, bucket = table_and_bucket(args.stack, args.table, args.bucket)
    record = job_status(args.job_id, table=table, bucket=bucket, dynamodb=clients.client("dynamodb"),
                        s3=clients.client("s3"))
    if record is None:
        print(f"mediagen: no job {clean(args.job_id)} in {table}", file=sys.stderr)
        return 1
    if args.json:  # JSON escapes every control character itself
        print(json.dumps(record, indent=2, sort_keys=True, default=str))
        return 0
    print(f"{clean(record['job_id'])}  {clean(record.get('model'))}  {clean(record.get('status'))}  "
          f"polls={clean(record.get('polls', 0))}")
    for status, at in sorted(record.get("transitions", {}).items(), key=lambda kv: str(kv[1])):
        print(f"  {clean(at)}  {clean(status)}")
    if record.get("error"):
        print(f"  error: {clean(record['error'].get('code'))}: {clean(record['error'].get('message'))}")
        for problem in record["error"].get("problems", []):
            print(f"    {clean(problem.get('field'))}: {clean(problem.get('message'))}")
    for output in record.get("outputs", []):
        print(f"  {clean(output.get('uri'))}  {clean(output.get('content_type'))}  {clean(output.get('bytes'))} bytes  "
              f"sha256 {clean(output.get('sha256'))}")
        print(f"    {clean(output.get('url'))}")
    return 0


def _jobs(args: argparse.Namespace) -> int:
    import json

    from mediagen.ops import list_jobs, stack_outputs

    clients, local = _aws(args)
    table = local["table"] if local else args.table or stack_outputs(args.stack)["TaskTableName"]
    records = list_jobs(table=table, dynamodb=clients.client("dynamodb"), status=args.status, limit=args.limit)
    if args.json:
        print(json.dumps(records, indent=2, sort_keys=True, default=str))
        return 0
    for r in records:
        print(f"{clean(r.get('created_at')):<25} {clean(r.get('job_id')):<40} {clean(r.get('model')):<24} "
              f"{clean(r.get('status'))}")
    print(f"{len(records)} job(s)")
    return 0


def _submit(args: argparse.Namespace) -> int:
    files = [Path(p) for p in args.files]
    state_file = Path(args.state_file)
    if args.local and state_file.exists():  # a running `mediagen local up`
        from mediagen.local.runner import load_job_files, read_local_state, served_target
        from mediagen.ops.submit import submit as submit_jobs

        state = read_local_state(state_file)
        return submit_jobs(load_job_files(files), lambda: served_target(state), via=args.via, wait_for=args.wait,
                           output_dir=Path(args.output_dir), timeout=args.timeout, out=sys.stdout)
    if args.local:
        from mediagen.local.runner import submit_local

        if not args.wait:
            print("--local without `mediagen local up` running: an embedded local stack lives for this command, "
                  "so it waits for the jobs (as with --wait)")
        return submit_local(job_files=files, via=args.via, output_dir=Path(args.output_dir), timeout=args.timeout,
                            processing_seconds=args.processing_seconds,
                            template_path=Path(args.template) if args.template else None)
    from mediagen.local.runner import load_job_files
    from mediagen.ops.submit import deployed_target, submit

    return submit(load_job_files(files), lambda: deployed_target(args.stack), via=args.via, wait_for=args.wait,
                  output_dir=Path(args.output_dir), timeout=args.timeout, out=sys.stdout)


def _local_up(args: argparse.Namespace) -> int:
    from mediagen.local.runner import serve_local

    return serve_local(state_file=Path(args.state_file), port=args.port, processing_seconds=args.processing_seconds,
                       template_path=Path(args.template) if args.template else None)


def _emulator(args: argparse.Namespace) -> int:
    try:
        return _serve_emulator(args)
    except ValueError as exc:  # a --fault token of the other provider, a bad rate
        print(f"mediagen emulator: {exc}", file=sys.stderr)
        return 2


def _serve_emulator(args: argparse.Namespace) -> int:
    if args.provider == "clipia":
        from mediagen.sandbox.clipia import serve_clipia

        keys = [args.api_key or os.environ.get("CLIPIA_API_KEY") or "clipia_live_sandbox", "clipia_test_sandbox"]
        serve_clipia(host=args.host, port=args.port, processing_seconds=args.processing_seconds, api_keys=keys,
                     webhook_secret=args.webhook_secret or os.environ.get("CLIPIA_WEBHOOK_SECRET"),
                     faults=args.fault or [], seed=args.fault_seed)
        return 0
    from mediagen.sandbox import serve

    key = args.api_key or os.environ.get("CLIPRISE_API_KEY") or "sandbox-key"
    serve(host=args.host, port=args.port, processing_seconds=args.processing_seconds, api_key=key,
          send_callbacks=not args.no_callbacks, callback_mode=args.callback_mode, faults=args.fault or [],
          seed=args.fault_seed)
    return 0


def _fault_spec(text: str) -> str:
    from mediagen.sandbox import parse_fault_rate
    from mediagen.sandbox.clipia_faults import normalise_clipia_token

    try:
        parse_fault_rate(text)
    except ValueError as exc:
        token, _, _ = text.rpartition("=")
        try:  # a Clipia token (checked again, with its rate, when the Clipia emulator starts)
            normalise_clipia_token(token)
        except ValueError as clipia_exc:
            raise argparse.ArgumentTypeError(f"{exc}; for --provider clipia: {clipia_exc}") from exc
    return text


def _add_local_stack_flags(p: argparse.ArgumentParser) -> None:
    """The local stack's AWS-side faults and, with ``--real``, the providers' base URLs (demo and run-local)."""
    p.add_argument("--faults", metavar="SPEC", help="AWS-side faults, service:Operation=kind@rate,... (kinds: "
                   "throttle, error, timeout; default: $MEDIAGEN_LOCAL_FAULTS; seed: $MEDIAGEN_LOCAL_FAULTS_SEED)")
    p.add_argument("--cliprise-base-url", metavar="URL",
                   help="with --real: the Cliprise API base URL (default: $MEDIAGEN_CLIPRISE_BASE_URL or Cliprise's)")
    p.add_argument("--clipia-base-url", metavar="URL",
                   help="with --real: the Clipia API base URL (default: $MEDIAGEN_CLIPIA_BASE_URL, else Clipia's)")


def build_parser() -> argparse.ArgumentParser:
    from mediagen.local.runner import DEFAULT_STATE_FILE

    parser = argparse.ArgumentParser(prog="mediagen", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"mediagen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="run the sample jobs through the whole pipeline locally (moto + sandbox)")
    p.add_argument("files", nargs="*", help="job files (default: events/jobs/*.json)")
    p.add_argument("--output-dir", default="demo-output",
                   help="where the outputs are copied: a new or empty folder, or one an earlier demo made (it is "
                        "replaced); any other folder is refused (default: %(default)s)")
    p.add_argument("--real", action="store_true", help=REAL_HELP)
    p.add_argument("--processing-seconds", type=float, default=2.0, help="sandbox processing time per task")
    p.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    _add_local_stack_flags(p)
    p.set_defaults(func=_demo)

    p = sub.add_parser("run-local", help="run job files (JSON or JSON Lines) through the local stack; "
                                         "one JSON line per job, then a summary")
    p.add_argument("files", nargs="+")
    p.add_argument("--real", action="store_true", help=REAL_HELP)
    p.add_argument("--processing-seconds", type=float, default=1.0)
    p.add_argument("--timeout", type=float, default=600.0)
    _add_local_stack_flags(p)
    p.set_defaults(func=_run_local)

    p = sub.add_parser("submit", help="send job files (JSON or JSON Lines) to a deployed stack (or, with --local, "
                                      "the local one); --wait shows progress and downloads the outputs")
    p.add_argument("files", nargs="+")
    p.add_argument("--wait", action="store_true", help="follow the jobs until they end, then download the outputs")
    p.add_argument("--via", choices=["queue", "api"], default="queue",
                   help="the jobs queue (SQS) or the jobs API (POST /jobs, SigV4-signed) (default: %(default)s)")
    p.add_argument("--local", action="store_true", help="run against the local stack: the one `mediagen local up` "
                   "runs, else an embedded one for this command (moto + sandbox)")
    p.add_argument("--stack", default="MediaGen-dev", help="stack whose outputs name the queue/API")
    p.add_argument("--output-dir", default="mediagen-output", help="where --wait downloads outputs")
    p.add_argument("--timeout", type=float, default=900.0, help="give up waiting after this many seconds")
    p.add_argument("--processing-seconds", type=float, default=1.0, help="--local: sandbox processing time per task")
    p.add_argument("--template", default=None, help="--local: the synthesized template to run (default: cdk.out/)")
    p.add_argument("--state-file", default=str(DEFAULT_STATE_FILE), help=argparse.SUPPRESS)
    p.set_defaults(func=_submit)

    p = sub.add_parser("local", help="`mediagen local up`: keep a local stack running for --local commands")
    p.add_argument("action", choices=["up"])
    p.add_argument("--port", type=int, default=0, help="port of the local AWS endpoint (default: any free one)")
    p.add_argument("--processing-seconds", type=float, default=2.0, help="sandbox processing time per task")
    p.add_argument("--template", default=None, help="the synthesized template to run (default: cdk.out/)")
    p.add_argument("--state-file", default=str(DEFAULT_STATE_FILE), help="where to write how to reach it")
    p.set_defaults(func=_local_up)

    p = sub.add_parser("redrive", help="move dead-letter messages back to the jobs queue of a deployed stack")
    p.add_argument("--stack", default="MediaGen-dev", help="stack whose outputs name the queues (default: %(default)s)")
    p.add_argument("--dlq-url", default=None, help="dead-letter queue URL (default: the stack's JobsDlqUrl)")
    p.add_argument("--queue-url", default=None, help="jobs queue URL (default: the stack's JobsQueueUrl)")
    p.add_argument("--max", type=int, default=None, help="move at most this many messages")
    p.add_argument("--local", action="store_true", help="run against the local stack of `mediagen local up`")
    p.add_argument("--state-file", default=str(DEFAULT_STATE_FILE), help=argparse.SUPPRESS)
    p.set_defaults(func=_redrive)

    p = sub.add_parser("status", help="a job's status, timeline, error and outputs (with download URLs) "
                                      "in a deployed stack")
    p.add_argument("job_id")
    p.add_argument("--stack", default="MediaGen-dev", help="stack whose outputs name the table (default: %(default)s)")
    p.add_argument("--table", default=None, help="job table name (default: the stack's TaskTableName)")
    p.add_argument("--bucket", default=None, help="outputs bucket (default: the stack's OutputsBucketName)")
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    p.add_argument("--local", action="store_true", help="run against the local stack of `mediagen local up`")
    p.add_argument("--state-file", default=str(DEFAULT_STATE_FILE), help=argparse.SUPPRESS)
    p.set_defaults(func=_status)

    p = sub.add_parser("jobs", help="recent jobs of a deployed stack, newest first")
    p.add_argument("--status", default=None, choices=["RECEIVED", "SUBMITTING", "SUBMITTED", "PERSISTING",
                                                       "SUCCEEDED", "REJECTED", "FAILED", "PIPELINE_FAILED",
                                                       "TIMED_OUT", "OUTCOME_UNKNOWN", "CANCELLED"])
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--stack", default="MediaGen-dev")
    p.add_argument("--table", default=None, help="job table name (default: the stack's TaskTableName)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--local", action="store_true", help="run against the local stack of `mediagen local up`")
    p.add_argument("--state-file", default=str(DEFAULT_STATE_FILE), help=argparse.SUPPRESS)
    p.set_defaults(func=_jobs)

    p = sub.add_parser("emulator", help="serve a sandbox provider emulator (Cliprise or Clipia) on loopback")
    p.add_argument("--provider", choices=["cliprise", "clipia"], default="cliprise",
                   help="which API to play (default: %(default)s; see docs/sandbox.md)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8787)
    p.add_argument("--processing-seconds", type=float, default=5.0)
    p.add_argument("--api-key", default=None, help="the key it accepts (default: $CLIPRISE_API_KEY or 'sandbox-key'; "
                   "clipia: $CLIPIA_API_KEY or 'clipia_live_sandbox', plus the test key 'clipia_test_sandbox')")
    p.add_argument("--webhook-secret", default=None,
                   help="clipia: the webhook signing secret (default: $CLIPIA_WEBHOOK_SECRET, else random)")
    p.add_argument("--no-callbacks", action="store_true", help="never POST to callBackUrl")
    p.add_argument("--callback-mode", default="normal",
                   help="normal, or a comma-separated mix of none, delay:S, duplicate:N, late:S, early, forged")
    p.add_argument("--fault", action="append", type=_fault_spec, metavar="TOKEN=RATE",
                   help="inject a fault into this share of jobs, e.g. fail=0.05 (repeatable; see docs/sandbox.md)")
    p.add_argument("--fault-seed", type=int, default=None, help="make --fault draws reproducible")
    p.set_defaults(func=_emulator)

    try:
        from mediagen.catalog.commands import register
    except ImportError:  # the catalog commands are optional while the catalog is being built
        pass
    else:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mediagen`` console script."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's one place that turns errors into messages
        from mediagen.errors import MediagenError
        from mediagen.redact import redact_text

        if isinstance(exc, MediagenError):
            print(f"mediagen: {clean(redact_text(exc.message))}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
