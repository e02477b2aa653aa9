"""`python -m bench [NAME ...]`: run the named benchmarks (default: all), one after the other.

Each is also its own command, `python -m bench.<name> --help` for its options. A new benchmark is a
module with `main(argv) -> int` that uses `bench.harness.Stack` and `bench.report.Report`, plus
one line in BENCHMARKS below.
"""
from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "webhook_ingest": "bench.webhook_ingest",          # 1. POST /webhooks/amocrm/<token> throughput, burst
    "processing_economy": "bench.processing_economy",  # 2. amoCRM calls per closed talk, rate limit
    "latency": "bench.latency",                        # 3. webhook received → request committed
    "tracking": "bench.tracking",                      # 4. POST /t/collect, the script's gzipped size
    "reports": "bench.reports",                        # 5. Raw data, dashboard, CSV on 1M requests
}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        try:
            code = importlib.import_module(BENCHMARKS[name]).main([])
        except Exception as exc:  # one broken run (BenchError included) must not hide the others' figures
            print(f"{name} could not run: {exc}", file=sys.stderr, flush=True)
            code = 1
        if code:
            failed.append(name)
    if failed:
        print(f"\nthese benchmarks could not run: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
