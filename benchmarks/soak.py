"""Soak run (issue 5): N jobs through the local stack with duplicate deliveries and injected faults.

    .venv/bin/python benchmarks/soak.py [--jobs 1000] [--duplicates 0.2] [--faults 0.1] [--seed 7]
        [--aws-faults SPEC] [--max-in-flight N] [--budget CREDITS]

Provider faults are ``[sandbox:...]`` tokens in the prompts; AWS-side faults (``--aws-faults``, the
``MEDIAGEN_LOCAL_FAULTS`` syntax, on by default) make DynamoDB, EventBridge and SQS throttle, fail or lose
answers. After the run it checks the spend invariants: no job holds an in-flight slot (the counter is 0 and no
record holds one), and today's budget counter equals the sum of the charges on the records.

Prints jobs per terminal status, the most generate calls any job id got accepted (must be 1), outputs lost
(SUCCEEDED jobs whose S3 objects are missing or do not match their recorded size and SHA-256; must be 0), and
the wall time. Exit code 1 when an invariant is broken.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "shared"))

from mediagen.budget import today  # noqa: E402
from mediagen.local import EmbeddedStack  # noqa: E402
from mediagen.local.runner import _spend_counters, ensure_template, generate_calls_by_job  # noqa: E402
from mediagen.records import TERMINAL  # noqa: E402

FAULTS = ["[sandbox:fail]", "[sandbox:generate-500]", "[sandbox:429=1]", "[sandbox:code400]", "[sandbox:empty-400]",
          "[sandbox:no-callback]", "[sandbox:status-500=1]", "[sandbox:download-truncate]", "[sandbox:download-404]",
          "[sandbox:zip]"]
MODELS = [
    {"model": "nano-banana", "input": {"prompt": "{p}", "output_format": "png"}},
    {"model": "flux-kontext-pro", "prompt": "{p}", "aspectRatio": "16:9"},
    {"model": "seedance-v1-lite", "input": {"prompt": "{p}", "duration": "5", "resolution": "480p"}},
    {"model": "elevenlabs-tts", "input": {"text": "{p}", "voice": "Rachel"}},
]


def make_jobs(n: int, duplicates: float, faults: float, rng: random.Random) -> tuple[list[dict], Counter]:
    jobs, injected = [], Counter()
    for i in range(n):
        token = rng.choice(FAULTS) if rng.random() < faults else ""
        injected[token or "none"] += 1
        request = json.loads(json.dumps(rng.choice(MODELS)).replace("{p}", f"soak job {i} {token}".strip()))
        jobs.append({"job_id": f"soak-{i:05d}", "request": request, "output": {"prefix": "soak/"}})
    dupes = [dict(j) for j in jobs if rng.random() < duplicates]
    stream = jobs + dupes
    rng.shuffle(stream)
    return stream, injected


def _token(record: dict) -> str:
    text = json.dumps(record.get("request", {}))
    return next((t for t in FAULTS if t in text), "no fault")


#: AWS-side faults of ``make soak``: throttles on the calls every job makes, errors and lost answers now and then.
DEFAULT_AWS_FAULTS = ("events:PutEvents=throttle@0.3,dynamodb:UpdateItem=throttle@0.05,"
                      "dynamodb:TransactWriteItems=throttle@0.05,dynamodb:PutItem=timeout@0.02,"
                      "sqs:SendMessage=error@0.02")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--duplicates", type=float, default=0.2)
    parser.add_argument("--faults", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--aws-faults", default=DEFAULT_AWS_FAULTS,
                        help="AWS-side faults (MEDIAGEN_LOCAL_FAULTS syntax; '' for none)")
    parser.add_argument("--max-in-flight", type=int, default=8, help="MEDIAGEN_MAX_IN_FLIGHT (0: no limit)")
    parser.add_argument("--budget", type=int, default=0, help="MEDIAGEN_DAILY_CREDIT_BUDGET (0: no limit)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    stream, injected = make_jobs(args.jobs, args.duplicates, args.faults, rng)
    template = ensure_template(None, sys.stderr)
    start = time.monotonic()
    env = {"MEDIAGEN_READ_TIMEOUT_SECONDS": "2", "MEDIAGEN_MAX_IN_FLIGHT": str(args.max_in_flight),
           "MEDIAGEN_DAILY_CREDIT_BUDGET": str(args.budget)}
    with EmbeddedStack(template_path=template, processing_seconds=1.0, poll_initial_seconds=1, poll_max_seconds=4,
                       extra_env=env, faults=args.aws_faults or None) as stack:
        stack.send_jobs(stream)

        def progress(records: list[dict], elapsed: float) -> None:
            done = sum(r.get("status") in TERMINAL for r in records)
            print(f"  [{elapsed:6.0f}s] {done}/{len(records)} terminal, queue {stack.queue_depth()}", flush=True)

        records = stack.run_until_done(expected=args.jobs, timeout=args.timeout, on_progress=progress,
                                       progress_every=10)
        wall = time.monotonic() - start
        _, accepted = generate_calls_by_job(stack.emulator)
        lost = 0
        for record in records:
            if record["status"] != "SUCCEEDED":
                continue
            for output in record.get("outputs", []):
                try:
                    body = stack.read_object(output["key"])
                except Exception:  # noqa: BLE001
                    lost += 1
                    continue
                if len(body) != output["bytes"] or hashlib.sha256(body).hexdigest() != output["sha256"]:
                    lost += 1
        counters = _spend_counters(stack)
        aws_injected = stack.faults.injected() if stack.faults is not None else {}
    holding = sum(1 for r in records if r.get("holds_slot"))
    charged = sum(int(r.get("credits_charged") or 0) for r in records if r.get("charged_day") == today())
    statuses = Counter(r["status"] for r in records)
    reasons = Counter(f'{r["status"]}/{(r.get("error") or {}).get("code")}' for r in records
                      if r["status"] != "SUCCEEDED")
    by_token = Counter(f'{r["status"]} <- {_token(r)}' for r in records if r["status"] != "SUCCEEDED")
    non_terminal = sum(1 for r in records if r["status"] not in TERMINAL)
    max_accepted = max(accepted.values(), default=0)
    print(f"\nsoak: {args.jobs} jobs, {len(stream) - args.jobs} duplicate deliveries, "
          f"{args.jobs - injected['none']} with an injected fault (seed {args.seed})")
    print("injected faults: " + ", ".join(f"{k}={v}" for k, v in sorted(injected.items())))
    print("jobs per terminal status: " + ", ".join(f"{k}={v}" for k, v in sorted(statuses.items())))
    print("why: " + ", ".join(f"{k}={v}" for k, v in sorted(reasons.items())))
    print("from: " + ", ".join(f"{k}={v}" for k, v in sorted(by_token.items())))
    for r in [r for r in records if r["status"] != "SUCCEEDED" and _token(r) == "no fault"][:5]:
        print(f"unexpected: {r['job_id']} {r['status']} {r.get('error')}")
    print(f"task records: {len(records)}   non-terminal: {non_terminal}")
    print(f"max generate calls accepted per job id: {max_accepted}   (must be 1)")
    print(f"outputs lost: {lost}   (must be 0)")
    print(f"AWS-side faults injected ({args.aws_faults or 'none'}): "
          + (", ".join(f"{k}={v}" for k, v in sorted(aws_injected.items())) or "none"))
    print(f"in-flight counter: {counters['in_flight']}   records holding a slot: {holding}   (both must be 0)")
    print(f"budget counter today: {counters['credits_charged']}   sum of charges on the records: {charged}   "
          "(must be equal)")
    print(f"wall time: {wall:.1f} s   ({args.jobs / wall:.1f} jobs/s)")
    ok = (max_accepted == 1 and lost == 0 and non_terminal == 0 and len(records) == args.jobs
          and counters["in_flight"] == 0 and holding == 0 and counters["credits_charged"] == charged)
    print("RESULT: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
