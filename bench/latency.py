"""Benchmark 3 — latency: webhook received → request row committed, with 50 ms sandbox latency.

    python -m bench.latency [--rate 5] [--duration 60] [--latency-ms 50]

Managers close chats at a steady `--rate` per second for `--duration` seconds in one account (the
sandbox posts each update_talk to our webhook at once); every amoCRM call the worker makes takes
`--latency-ms` longer. Per talk, the time from the inbox row's `received_at` to the request's
`recorded_at` (set just before its commit). Targets (docs/benchmarks.md): p50 < 1 s, p99 < 5 s.
"""
from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from bench.harness import Stack, cli, machine_info
from bench.report import Report, percentile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=5.0, help="closes per second (default 5)")
    parser.add_argument("--duration", type=int, default=60, help="seconds of closing (default 60)")
    parser.add_argument("--latency-ms", type=int, default=50, help="sandbox latency of every amoCRM call (default 50)")
    args = parser.parse_args(argv)

    before = machine_info()
    count = max(1, int(args.rate * args.duration))
    report = Report("latency", f"webhook received → request committed, {args.rate:g} closes/s for {args.duration} s, "
                               f"amoCRM latency {args.latency_ms} ms")
    with Stack("latency", accounts=1, sandbox_latency_ms=args.latency_ms) as stack:
        account = stack.accounts[0]
        chats = account.create_chats(count)
        talk_ids = [c["talk_id"] for c in chats]
        account.reset_stats()
        interval = 1.0 / args.rate
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:  # a slow delivery must not delay the next close
            futures = []
            for i, talk_id in enumerate(talk_ids):
                delay = started + i * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                futures.append(pool.submit(account.close_talk, talk_id))
            deliveries = [d for f in futures for d in f.result().get("deliveries") or []]
        stack.wait_recorded(account.integration_id, count, timeout_s=120)
        latencies = stack.latencies_s(account.integration_id, talk_ids)
        stats = account.stats()

        p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
        report.add("talks closed / recorded", f"{count:,} / {len(latencies):,}", "", "all", len(latencies) == count)
        report.add("received → committed p50", round(p50, 3), "s", "< 1", p50 < 1)
        report.add("received → committed p90", round(percentile(latencies, 90), 3), "s")
        report.add("received → committed p99", round(p99, 3), "s", "< 5", p99 < 5)
        report.add("received → committed max", round(max(latencies), 3), "s")
        slowest_hook = max((d["duration_ms"] or 0) for d in deliveries)
        report.add("slowest webhook answer", round(slowest_hook, 1), "ms", "< 2,000 (amoCRM's limit)", slowest_hook < 2000)
        from bench.processing_economy import PROCESSING_ENDPOINTS

        fetches = sum(n for endpoint, n in stats["calls_by_endpoint"].items() if endpoint.startswith(PROCESSING_ENDPOINTS))
        report.add("amoCRM calls per talk", round(fetches / count, 3), "", "")
        report.add("peak amoCRM calls in any 1 s", stats["peak_calls_per_second"], "", "≤ 7", stats["peak_calls_per_second"] <= 7)
        report.details.update(rate=args.rate, duration=args.duration, sandbox_latency_ms=args.latency_ms,
                              latencies_s=sorted(latencies), sandbox_stats=stats)
    return report.finish(before)


if __name__ == "__main__":
    sys.exit(cli(main))
