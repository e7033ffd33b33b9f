"""mediagen benchmark suite (issue 8): one table, every figure against a baseline measured in the same run.

    .venv/bin/python benchmarks/bench.py                 # everything (2-3 minutes on 2 cores)
    .venv/bin/python benchmarks/bench.py --quick         # fewer rounds
    .venv/bin/python benchmarks/bench.py --assets cdk.out --only cold,size   # reuse a bundled cloud assembly
    .venv/bin/python benchmarks/bench.py --json bench.json                   # raw figures as JSON too

Figures (see docs/performance.md for what each one means and the targets):

* cold init per handler (imports + module-level setup, fresh interpreter, Lambda environment, median of
  interleaved runs) / a bare ``import boto3``  -- target <= 2x, callback <= 1.5x   (benchmarks/bench_cold.py)
* catalog load and single-job validation                                          (benchmarks/bench_stack.py)
* submit handler: 10-record batch / 1 record, sandbox generate latency 500 ms     -- target <= 2x
* poll and persist invocation duration on the local stack / the bare provider request they make
* deployment package size per function (code asset + dependencies layer, from a bundled synth)
                                                                                  (benchmarks/bench_size.py)

The table goes to stdout (markdown); progress goes to stderr. Exit status 0, or with ``--check`` 1 when a
target is not met. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "shared"))

import bench_cold  # noqa: E402
import bench_size  # noqa: E402
import bench_stack  # noqa: E402

PHASES = ("cold", "catalog", "stack", "size")


@dataclass
class Row:
    figure: str
    value: str
    baseline: str
    ratio: float | None
    target: float | None = None

    @property
    def met(self) -> bool | None:
        if self.target is None or self.ratio is None:
            return None
        return self.ratio <= self.target

    def cells(self) -> list[str]:
        ratio = f"{self.ratio:.2f}×" if self.ratio is not None else "–"
        target = f"≤ {self.target:g}×" if self.target is not None else "–"
        met = {True: "yes", False: "**no**", None: "–"}[self.met]
        return [self.figure, self.value, self.baseline, ratio, target, met]


def ms(seconds: float) -> str:
    value = seconds * 1000
    return f"{value:.0f} ms" if value >= 100 else f"{value:.1f} ms"


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} µs" if seconds >= 1e-4 else f"{seconds * 1e6:.1f} µs"


def mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} KB"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(h.ljust(widths[i]) for i, h in enumerate(headers)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(r)) + " |" for r in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ rows


def cold_rows(result: bench_cold.ColdResult) -> list[Row]:
    base = result.warm[bench_cold.BASELINE]
    rows = []
    for name in bench_cold.HANDLERS:
        s = result.warm[name]
        rows.append(Row(f"cold init: {name}", ms(s.wall_ms / 1000), f"import boto3 {ms(base.wall_ms / 1000)}",
                        s.wall_ms / base.wall_ms, bench_cold.TARGETS.get(name, bench_cold.DEFAULT_TARGET)))
    return rows


def catalog_rows(c: bench_stack.CatalogResult) -> list[Row]:
    return [
        Row("catalog load (`load_catalog()`)", ms(c.load_s), f"read + json.loads of catalog.json {ms(c.parse_s)}",
            c.load_s / c.parse_s),
        Row("validate one job, first call on a fresh catalog", us(c.first_validate_s),
            f"warm validate {us(c.validate_s)}", c.first_validate_s / c.validate_s),
        Row("validate one job (warm)", us(c.validate_s), f"json.loads of the SQS body {us(c.body_parse_s)}",
            c.validate_s / c.body_parse_s),
    ]


def stack_rows(s: bench_stack.StackResult) -> list[Row]:
    rows = []
    if s.submit is not None:
        rows.append(Row(f"submit batch: 10 records, generate {s.latency_s * 1000:.0f} ms", f"{s.submit.ten_s:.2f} s",
                        f"1 record {s.submit.one_s:.2f} s", s.submit.ten_s / s.submit.one_s, 2.0))
    if s.submit_no_latency is not None:
        z = s.submit_no_latency
        rows.append(Row("submit batch: 10 records, generate 0 ms (own work)", f"{z.ten_s:.2f} s",
                        f"1 record {z.one_s:.2f} s", z.ten_s / z.one_s))
    rows.append(Row("poll invocation (finished task)", ms(s.poll_s), f"bare status request {ms(s.status_s)}",
                    s.poll_s / s.status_s))
    rows.append(Row(f"persist invocation ({mb(s.persist_bytes)} result)", ms(s.persist_s),
                    f"bare download + SHA-256 {ms(s.download_s)}", s.persist_s / s.download_s))
    return rows


def size_rows(r: bench_size.SizeResult) -> list[Row]:
    layer_unzipped = r.layer.unzipped if r.layer else 0
    quota = f"quota {bench_size.UNZIPPED_QUOTA_BYTES / 1e6:.0f} MB unzipped"
    rows = []
    for name in bench_cold.HANDLERS:
        a = r.functions.get(name)
        if a is None:
            continue
        rows.append(Row(f"package: {name} code (+ layer)", f"{mb(a.zipped)} zip, {mb(a.unzipped)} unzipped", quota,
                        (a.unzipped + layer_unzipped) / bench_size.UNZIPPED_QUOTA_BYTES, 1.0))
    if r.layer is not None:
        rows.append(Row("package: dependencies layer (shared)", f"{mb(r.layer.zipped)} zip, {mb(r.layer.unzipped)} "
                        "unzipped", quota, r.layer.unzipped / bench_size.UNZIPPED_QUOTA_BYTES, 1.0))
    return rows


# ------------------------------------------------------------------------------------------ details


def cold_details(result: bench_cold.ColdResult, top: int) -> str:
    out = []
    base = result.warm[bench_cold.BASELINE]
    nopyc = result.nopyc or {}
    nbase = nopyc.get(bench_cold.BASELINE)
    headers = ["import", "wall (median)", "CPU (median)", "ratio wall", "ratio CPU", "peak RSS",
               "+ clients (1st call)", "peak RSS then"]
    if nopyc:
        headers += ["no .pyc (no 3.12 at synth)", "ratio no .pyc", "no .pyc / with"]
    rows = []
    for name in (bench_cold.BASELINE, *bench_cold.HANDLERS):
        s = result.warm[name]
        row = [bench_cold.module_of(name), f"{s.wall_ms:.0f} ms", f"{s.cpu_ms:.0f} ms",
               f"{s.wall_ms / base.wall_ms:.2f}×", f"{s.cpu_ms / base.cpu_ms:.2f}×", f"{s.rss_mib:.0f} MiB",
               f"{s.setup_ms:.0f} ms", f"{s.setup_rss_mib:.0f} MiB"]
        if nopyc and nbase is not None:
            n = nopyc[name]
            row += [f"{n.wall_ms:.0f} ms", f"{n.wall_ms / nbase.wall_ms:.2f}×", f"{n.wall_ms / s.wall_ms:.2f}×"]
        rows.append(row)
    out.append(f"Cold init detail (layout `{result.layout}`: {result.description}; {result.runs} rounds"
               + (f", {len(nbase.wall)} no-.pyc rounds" if nbase else "") + "):\n")
    out.append(table(headers, rows))
    if result.offenders:
        out.append("\nImport-time offenders per handler: what each handler imports beyond `import boto3`'s own "
                   "modules, by summed self time (median of `-X importtime` runs; first-party modules listed "
                   "one by one, module-level setup such as a pydantic model counts as its module's time).\n")
        for name in bench_cold.HANDLERS:
            info = result.offenders.get(name)
            if not info:
                continue
            out.append(f"- **{name}**: {info['extra_ms']:.0f} ms beyond boto3's modules "
                       f"({info['shared_ms']:.0f} ms in modules boto3 also imports)")
            for o in info["offenders"][:top]:
                tag = " (stdlib)" if o.stdlib else ""
                out.append(f"  - {o.package}{tag}: {o.ms:.0f} ms, {o.modules} module(s) — via `{o.chain}`")
    return "\n".join(out)


def stack_details(s: bench_stack.StackResult) -> str:
    lines = []
    if s.submit is not None:
        b = s.submit
        lines.append(f"Submit batch detail (generate {s.latency_s * 1000:.0f} ms, {b.rounds} rounds): generate "
                     f"requests in flight at once during a 10-record batch: at most {b.max_in_flight} of 10; CPU "
                     f"of this process during the batch {b.ten_cpu_s * 1000:.0f} ms (10 records) vs "
                     f"{b.one_cpu_s * 1000:.0f} ms (1 record).")
    if s.submit_no_latency is not None:
        z = s.submit_no_latency
        lines.append(f"At 0 ms generate latency the batch is CPU-bound: {z.ten_cpu_s * 100:.0f} ms CPU per record "
                     "(handler, boto3 and, here only, moto and the sandbox in the same process and GIL).")
    mib_s = s.persist_bytes / s.persist_s / 2**20
    lines.append(f"Persist moved {s.persist_bytes / 2**20:.0f} MiB at {mib_s:.0f} MiB/s into moto's in-process S3 "
                 f"(bare download {s.persist_bytes / s.download_s / 2**20:.0f} MiB/s).")
    return "\n".join(lines)


def size_details(r: bench_size.SizeResult) -> str:
    if r.layer is None:
        return ""
    biggest = sorted(r.layer.top.items(), key=lambda kv: kv[1], reverse=True)[:8]
    parts = ", ".join(f"{name} {mb(size)}" for name, size in biggest)
    code = next(iter(r.functions.values()), None)
    text = f"Layer content (unzipped, largest first): {parts}."
    if code is not None:
        inner = sorted(code.top.items(), key=lambda kv: kv[1], reverse=True)
        text += " Code asset: " + ", ".join(f"{n} {mb(s)}" for n, s in inner) + f" ({code.files} files)."
    return text


# ------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(PHASES), help=f"comma-separated phases of {', '.join(PHASES)}")
    parser.add_argument("--quick", action="store_true", help="fewer rounds everywhere (noisier)")
    parser.add_argument("--runs", type=int, default=None, help="cold init: warm rounds (default 9, quick 7)")
    parser.add_argument("--nopyc-runs", type=int, default=None,
                        help="cold init without .pyc: rounds (default 5; 0 = skip)")
    parser.add_argument("--importtime-runs", type=int, default=None, help="-X importtime runs per handler (default 3)")
    parser.add_argument("--layout", choices=("lambda", "repo"), default="lambda",
                        help="cold init interpreter layout (see benchmarks/bench_cold.py)")
    parser.add_argument("--latency", type=float, default=0.5, help="sandbox generate latency, seconds")
    parser.add_argument("--submit-rounds", type=int, default=None,
                        help="submit: rounds of 1 and 10 records (default 5)")
    parser.add_argument("--poll-rounds", type=int, default=None, help="poll invocations (default 21)")
    parser.add_argument("--persist-rounds", type=int, default=None, help="persist invocations (default 5)")
    parser.add_argument("--persist-size", default="16MiB", help="size of the persisted result (sandbox size= token)")
    parser.add_argument("--run-executions", action="store_true",
                        help="let moto run the Step Functions executions submit starts (in this process)")
    parser.add_argument("--assets", type=Path, default=None,
                        help="read package sizes from this bundled cloud assembly instead of synthesizing")
    parser.add_argument("--top", type=int, default=6, help="import offenders listed per handler")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw figures here")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is not met")
    args = parser.parse_args(argv)
    phases = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
    q = args.quick

    def pick(value: int | None, normal: int, quick: int) -> int:
        return value if value is not None else (quick if q else normal)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    started = time.monotonic()
    rows: list[Row] = []
    details: list[str] = []
    raw: dict[str, Any] = {"python": platform.python_version(), "machine": platform.machine()}

    if "cold" in phases:
        from mediagen.local.runner import ensure_template

        log("cold init ...")
        template = ensure_template(None, sys.stderr) if args.layout == "repo" else None  # lambda: its own synth
        cold = bench_cold.measure(template, layout_name=args.layout,
                                  runs=pick(args.runs, 9, 7), nopyc_runs=pick(args.nopyc_runs, 5, 3),
                                  importtime_runs=pick(args.importtime_runs, 3, 1), log=log)
        rows += cold_rows(cold)
        details.append(cold_details(cold, args.top))
        raw["cold"] = {"layout": cold.layout,
                       "warm": {k: dataclasses.asdict(v) for k, v in cold.warm.items()},
                       "nopyc": {k: dataclasses.asdict(v) for k, v in (cold.nopyc or {}).items()},
                       "offenders": {k: {**v, "offenders": [dataclasses.asdict(o) for o in v["offenders"]]}
                                     for k, v in cold.offenders.items()}}
    if "catalog" in phases:
        log("catalog ...")
        catalog = bench_stack.measure_catalog(loads=pick(None, 21, 11), validations=pick(None, 3001, 1001))
        rows += catalog_rows(catalog)
        raw["catalog"] = dataclasses.asdict(catalog)
    if "stack" in phases:
        log("local stack (submit, poll, persist) ...")
        stack = bench_stack.measure_stack(latency=args.latency, submit_rounds=pick(args.submit_rounds, 5, 3),
                                          zero_latency_rounds=pick(args.submit_rounds, 5, 3),
                                          poll_rounds=pick(args.poll_rounds, 21, 9),
                                          persist_rounds=pick(args.persist_rounds, 5, 3),
                                          persist_size=args.persist_size, run_executions=args.run_executions,
                                          log=log)
        rows += stack_rows(stack)
        details.append(stack_details(stack))
        raw["stack"] = dataclasses.asdict(stack)
    if "size" in phases:
        log("package size ...")
        try:
            sizes = bench_size.measure(args.assets, log=log)
        except RuntimeError as exc:
            log(f"  package size not measured: {exc}")
            rows.append(Row("package size", "not measured (see stderr)", "–", None))
        else:
            rows += size_rows(sizes)
            details.append(size_details(sizes))
            raw["size"] = {"source": sizes.source,
                           "functions": {k: {"zipped": v.zipped, "unzipped": v.unzipped, "files": v.files}
                                         for k, v in sizes.functions.items()},
                           "layer": {"zipped": sizes.layer.zipped, "unzipped": sizes.layer.unzipped,
                                     "top": sizes.layer.top} if sizes.layer else None}

    print(table(["figure", "value", "baseline", "ratio", "target", "met?"], [r.cells() for r in rows]))
    for block in details:
        if block:
            print()
            print(block)
    met = [r.met for r in rows if r.met is not None]
    print(f"\n{sum(met)}/{len(met)} targets met; {time.monotonic() - started:.0f} s; Python {platform.python_version()}"
          f" on {platform.machine()}")
    if args.json:
        raw["rows"] = [{**dataclasses.asdict(r), "met": r.met} for r in rows]
        args.json.write_text(json.dumps(raw, indent=2, default=str))
    return 1 if args.check and not all(met) else 0


if __name__ == "__main__":
    sys.exit(main())
