"""Benchmark: how long validating (and encoding, estimating) one job takes.

    .venv/bin/python scripts/catalog/bench_validate.py [--rounds 2000]

Prints the catalog load time (what a Lambda cold start pays once) and, per operation, the mean and the
99th percentile time per job over a mix of requests: one valid example per block of every model (101),
plus a few invalid ones. Not part of pytest.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

from mediagen.catalog import load_catalog  # noqa: E402
from mediagen.catalog.examples import example_request  # noqa: E402
from mediagen.errors import InvalidJob  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000, help="timed validations per operation")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    catalog = load_catalog()
    load_ms = (time.perf_counter() - started) * 1000
    requests: list[dict[str, object]] = []
    for model in catalog.models():
        for block in model.blocks:
            requests.append(example_request(model, block, full=True))
    requests += [
        {"model": "seedance-v1-pro", "input": {"prompt": "x", "resolution": "4k", "aspectRatio": "16:9"}},
        {"model": "nano-bananna", "input": {"prompt": "x"}},
        {"model": "flux-kontext-max", "prompt": "x", "options": {"model": 0}},
    ]
    for request in requests:  # warm the per-model lookups, as a warm Lambda would have them
        catalog.validate(request)

    def timed(operation: str) -> list[float]:
        samples = []
        for index in range(args.rounds):
            request = requests[index % len(requests)]
            t0 = time.perf_counter()
            if operation == "validate":
                catalog.validate(request)
            elif operation == "estimate":
                catalog.estimate(request)
            else:
                with contextlib.suppress(InvalidJob):  # invalid requests raise; the time still counts
                    catalog.encode(request)
            samples.append((time.perf_counter() - t0) * 1e6)
        return samples

    print(f"catalog load (json.loads of catalog.json): {load_ms:.1f} ms")
    print(f"requests in the mix: {len(requests)} ({len(requests) - 3} valid, one per block; 3 invalid)")
    for operation in ("validate", "encode", "estimate"):
        samples = sorted(timed(operation))
        p99 = samples[int(len(samples) * 0.99) - 1]
        print(
            f"{operation:<9} mean {statistics.fmean(samples):7.1f} us   p99 {p99:7.1f} us   "
            f"max {samples[-1]:7.1f} us  per job"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
