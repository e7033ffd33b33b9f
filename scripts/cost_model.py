"""Cost model for completion detection: status calls, Lambda invocations and Step Functions state
transitions per job, and AWS cost per 1,000 jobs, from the pipeline's real backoff schedule.

    .venv/bin/python scripts/cost_model.py [--minutes 10] [--markdown]

The counts follow the state machine in infra/mediagen_infra/state_machine.py:
  per check cycle: WaitForResult (arm λ) -> CheckStatus (poll λ) -> Route      = 3 transitions, 2 λ, 1 status call
  at the end:      Persist (persist λ, 1 status call + download) -> JobSucceeded = 2 transitions, 1 λ
The naive loop it is compared with: Wait 15 s -> CheckStatus (λ) -> Route, i.e. 3 transitions and 1 λ a cycle.
Jitter (up to MEDIAGEN_POLL_JITTER shorter waits) is left out: it adds at most one check.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from mediagen.settings import Settings
from mediagen.steps.poll import backoff_seconds

# List prices, us-east-1, as published by AWS (per unit).
PRICE_SFN_TRANSITION = 0.025 / 1000          # Standard workflows, per state transition
PRICE_LAMBDA_REQUEST = 0.20 / 1_000_000      # per invocation
PRICE_LAMBDA_GB_S_ARM = 0.0000133334         # per GB-second, arm64
PRICE_HTTP_API_REQUEST = 1.00 / 1_000_000    # API Gateway HTTP API, per request (callbacks)
PRICE_DDB_WRITE = 0.625 / 1_000_000          # DynamoDB on-demand, per write request unit
PRICE_DDB_READ = 0.125 / 1_000_000           # DynamoDB on-demand, per read request unit

# Assumed Lambda durations (measured ranges on the local stack are far below these; Lambda bills per ms).
SMALL_FN_GB_S = 0.256 * 0.100                # poll / arm / callback: 256 MB for 100 ms
PERSIST_GB_S = 1.024 * 5.0                   # persist: 1024 MB for 5 s (a ~100 MB video)
# DynamoDB units per step (records are a few KB: ~3 WRU per write, 1 RRU per strongly consistent read of <4 KB).
DDB_WRU_PER_WRITE, DDB_RRU_PER_READ = 3, 1


@dataclass
class Scenario:
    name: str
    status_calls: int
    lambda_invocations: int
    transitions: int
    callbacks: int
    ddb_writes: int
    ddb_reads: int
    detection_delay_s: float
    worst_delay: str

    def cost_per_1000(self) -> float:
        small = self.lambda_invocations - 1  # all but persist
        per_job = (self.transitions * PRICE_SFN_TRANSITION
                   + self.lambda_invocations * PRICE_LAMBDA_REQUEST
                   + small * SMALL_FN_GB_S * PRICE_LAMBDA_GB_S_ARM + PERSIST_GB_S * PRICE_LAMBDA_GB_S_ARM
                   + self.callbacks * PRICE_HTTP_API_REQUEST
                   + self.ddb_writes * DDB_WRU_PER_WRITE * PRICE_DDB_WRITE
                   + self.ddb_reads * DDB_RRU_PER_READ * PRICE_DDB_READ)
        return per_job * 1000


def check_times(duration: float, settings: Settings) -> list[float]:
    """When the status checks happen (seconds after submit) until one sees the job finished."""
    t, polls, times = 0.0, 0, []
    while True:
        t += max(1, backoff_seconds(polls, settings))
        times.append(t)
        polls += 1
        if t >= duration:
            return times


def ours(duration: float, settings: Settings, *, callbacks: bool) -> Scenario:
    times = check_times(duration, settings)
    if callbacks:  # the wait that spans the completion ends when the callback arrives
        times = [t for t in times if t < duration] + [duration]
        delay = 0.5
        worst = f"~1 s ({settings.poll_max_seconds} s if the callback is lost)"
    else:
        delay = times[-1] - duration
        worst = f"{settings.poll_max_seconds} s"
    cycles = len(times)
    return Scenario(
        name=f"mediagen, backoff {settings.poll_initial_seconds}s x{settings.poll_factor:g} "
             f"cap {settings.poll_max_seconds}s, {'with' if callbacks else 'no'} callbacks",
        status_calls=cycles + 1, lambda_invocations=2 * cycles + 1 + (1 if callbacks else 0),
        transitions=3 * cycles + 2, callbacks=1 if callbacks else 0,
        ddb_writes=2 * cycles + 3 + (2 if callbacks else 0), ddb_reads=cycles + (1 if callbacks else 0),
        detection_delay_s=delay, worst_delay=worst)


def naive(duration: float, interval: int = 15) -> Scenario:
    cycles = -(-int(duration) // interval)
    return Scenario(name=f"naive fixed {interval}s polling loop", status_calls=cycles + 1,
                    lambda_invocations=cycles + 1, transitions=3 * cycles + 2, callbacks=0,
                    ddb_writes=cycles + 2, ddb_reads=0, detection_delay_s=cycles * interval - duration,
                    worst_delay=f"{interval} s")


def table(minutes: float) -> str:
    duration = minutes * 60
    rows = [naive(duration), ours(duration, Settings(MEDIAGEN_POLL_JITTER=0), callbacks=False),
            ours(duration, Settings(MEDIAGEN_POLL_JITTER=0), callbacks=True),
            ours(duration, Settings(MEDIAGEN_POLL_JITTER=0, MEDIAGEN_POLL_MAX_SECONDS=300), callbacks=True)]
    lines = [f"Job that takes {minutes:g} minutes at the provider:", "",
             "| scenario | status calls | Lambda invocations | state transitions | detection delay "
             "(worst case) | AWS cost / 1,000 jobs |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r.name} | {r.status_calls} | {r.lambda_invocations} | {r.transitions} | "
                     f"{r.worst_delay} | ${r.cost_per_1000():.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    print(table(args.minutes))


if __name__ == "__main__":
    main()
