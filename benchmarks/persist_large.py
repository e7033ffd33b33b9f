"""Persist a large sandbox result into S3 and measure the persisting process's peak memory growth and the
throughput (issue 4: "a 1 GiB result must not need 1 GiB of RAM"; target: growth under 64 MiB).

    .venv/bin/python benchmarks/persist_large.py [--size 1GiB]

The emulator and S3 (moto's server) run in their own processes, so the figure is the persist step's own:
mediagen.steps.persist.persist_result -> ClipriseClient.open_download (streaming) -> S3OutputStore.put_stream
(multipart upload, 8 MiB parts, SHA-256 on the fly).
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "shared"))
sys.path.insert(0, str(REPO))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def wait_http(url: str, timeout: float = 30) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def parse_size(text: str) -> int:
    units = {"KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "K": 1000, "M": 1000**2, "G": 1000**3}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1GiB")
    args = parser.parse_args()
    size = parse_size(args.size)
    key, s3_port, emu_port = "bench-key-0123456789", free_port(), free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    procs = [subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(s3_port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
             subprocess.Popen([sys.executable, "-m", "mediagen.cli", "emulator", "--port", str(emu_port),
                               "--processing-seconds", "0.2", "--api-key", key, "--no-callbacks"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        wait_http(f"http://127.0.0.1:{s3_port}/")
        wait_http(f"http://127.0.0.1:{emu_port}/")
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        import boto3

        from mediagen.provider import ClipriseClient, Succeeded
        from mediagen.settings import Settings
        from mediagen.steps.core import Ports
        from mediagen.steps.persist import persist_result
        from mediagen.storage import S3OutputStore
        from tests.fakes import InMemoryJobs, RecordingEvents

        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3_port}", region_name="us-east-1")
        s3.create_bucket(Bucket="bench")
        client = ClipriseClient(key, base_url=f"http://127.0.0.1:{emu_port}/app/cliprise")
        accepted = client.generate({"model": "seedance-v1-lite", "input": {
            "prompt": f"large result [sandbox:size={size}]", "duration": "5", "resolution": "480p"}})
        while not isinstance(client.status(accepted.task_id), Succeeded):
            time.sleep(0.1)
        jobs = InMemoryJobs()
        jobs.create({"job_id": "big", "status": "SUBMITTED", "model": "seedance-v1-lite"})
        ports = Ports(settings=Settings(), jobs=jobs, events=RecordingEvents(), provider=lambda: client,
                      outputs=S3OutputStore("bench", s3))
        # warm up the code path (imports, connection pools) before taking the baseline
        baseline = rss_kib()
        peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.monotonic()
        persist_result({"job_id": "big", "provider_task_id": accepted.task_id}, ports)
        seconds = time.monotonic() - start
        peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, peak_before)
        output = jobs.get("big")["outputs"][0]
        head = s3.head_object(Bucket="bench", Key=output["key"])
        growth_mib = (peak - baseline) / 1024
        print(f"persisted {output['bytes']:,} bytes ({output['content_type']}) to s3://bench/{output['key']}")
        parts = head.get("ETag", "").strip('"').rsplit("-", 1)[-1]
        print(f"S3 object size {head['ContentLength']:,}  sha256 {output['sha256'][:16]}…  multipart parts {parts}")
        print(f"peak memory growth: {growth_mib:.1f} MiB (baseline RSS {baseline / 1024:.1f} MiB)  "
              f"target < 64 MiB: {'met' if growth_mib < 64 else 'NOT met'}")
        print(f"throughput: {output['bytes'] / seconds / 1e6:.0f} MB/s ({seconds:.1f} s)")
        ok = output["bytes"] == size == head["ContentLength"] and growth_mib < 64
        return 0 if ok else 1
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
