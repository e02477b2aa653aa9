"""Benchmark 1 — webhook ingest.

    python -m bench.webhook_ingest [--duration 20] [--connections 32] [--burst 10000]

Throughput and latency of `POST /webhooks/amocrm/<token>` with amoCRM's update_talk bodies (one talk
each, a new talk id every time, every second one closed so it is also queued for the worker), and of
the same app's trivial endpoint `GET /livez` in the same run as the yardstick, both with wrk. Then a
burst of 10,000 talk events over 100 connections: every answer's latency, and every event stored.
The worker runs as in production, so the closed talks are processed while the load goes on.
Targets (docs/benchmarks.md): ≥ 1,000 req/s and ≥ 0.5× the trivial endpoint, p99 < 100 ms; burst: every answer
under 2 s, all stored.
"""
from __future__ import annotations

import argparse
import os
import sys

from bench.harness import Stack, cli, machine_info
from bench.loadgen import account_block, http_post, run_wrk, send_requests, webhook_body, webhook_body_template
from bench.report import Report, percentile

WRK_TALK_BASE = 1_000_000_000
BURST_TALK_BASE = 9_000_000_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook_ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds of wrk load per endpoint (default 20)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--closed-every", type=int, default=2, help="every Nth talk event is a close (default 2)")
    parser.add_argument("--burst", type=int, default=10_000, help="talk events in the burst (default 10000; 0 = skip)")
    parser.add_argument("--burst-concurrency", type=int, default=100, help="connections of the burst (default 100)")
    parser.add_argument("--latency-ms", type=int, default=50, help="sandbox latency for the worker's amoCRM calls")
    parser.add_argument("--without-worker", action="store_true",
                        help="diagnosis: no Dramatiq worker, so the endpoint has the cores to itself and PostgreSQL")
    args = parser.parse_args(argv)

    before = machine_info()
    report = Report("webhook_ingest", "POST /webhooks/amocrm/<token> vs GET /livez (gunicorn per Procfile, PostgreSQL, Redis)")
    if args.without_worker:
        report.notes.append("run WITHOUT the worker (diagnosis): closed talks wait in the inbox, nothing is processed")
    with Stack("webhook_ingest", accounts=1, sandbox_latency_ms=args.latency_ms, worker=not args.without_worker) as stack:
        account = stack.accounts[0]
        amo_account = account_block(0, account.sandbox_url)
        webhook_url = stack.url + account.webhook_path
        wrk_env = {"BENCH_BODY": webhook_body_template(amo_account), "BENCH_CLOSED_EVERY": str(args.closed_every)}

        # Warm up both paths (imports, pools, PostgreSQL caches), then measure.
        run_wrk(f"{stack.url}/livez", duration_s=3, connections=args.connections, threads=args.threads)
        run_wrk(webhook_url, duration_s=3, connections=args.connections, threads=args.threads, mode="webhook",
                env={**wrk_env, "BENCH_TALK_BASE": str(WRK_TALK_BASE // 2)})

        with stack.cpu_meter() as trivial_cpu:
            trivial = run_wrk(f"{stack.url}/livez", duration_s=args.duration, connections=args.connections, threads=args.threads)
        with stack.cpu_meter() as hook_cpu:
            hook = run_wrk(webhook_url, duration_s=args.duration, connections=args.connections, threads=args.threads,
                           mode="webhook", env={**wrk_env, "BENCH_TALK_BASE": str(WRK_TALK_BASE)})
        trivial["cpu"] = trivial_cpu.summary(trivial["requests"])
        hook["cpu"] = hook_cpu.summary(hook["requests"])
        stored = stack.scalar("select count(*) from webhook_events where talk_id >= :lo and talk_id < :hi",
                              lo=WRK_TALK_BASE, hi=BURST_TALK_BASE)

        ratio = hook["rps"] / trivial["rps"] if trivial["rps"] else 0.0
        report.add("trivial GET /livez", round(trivial["rps"]), "req/s", "yardstick")
        report.add("trivial p50 / p99", f"{trivial['p50_ms']:.1f} / {trivial['p99_ms']:.1f}", "ms")
        report.add("webhook throughput", round(hook["rps"]), "req/s", "≥ 1,000", hook["rps"] >= 1000)
        report.add("webhook / trivial", round(ratio, 2), "×", "≥ 0.5", ratio >= 0.5)
        report.add("webhook p50", round(hook["p50_ms"], 1), "ms")
        report.add("webhook p99", round(hook["p99_ms"], 1), "ms", "< 100", hook["p99_ms"] < 100)
        report.add("webhook max", round(hook["max_ms"], 1), "ms")
        report.add("webhook errors (non-2xx, socket)", hook["errors"], "", "0", hook["errors"] == 0)
        report.add("events stored / 2xx answers", f"{stored:,} / {hook['ok']:,}", "", "all stored", stored >= hook["ok"])
        per = hook["cpu"]["cpu_ms_per_request"]
        report.add("CPU per webhook: web / worker / PostgreSQL",
                   f"{per['web']:.2f} / {per['worker']:.2f} / {per['postgres']:.2f}", "ms")
        report.add("CPU per trivial request: web", f"{trivial['cpu']['cpu_ms_per_request']['web']:.2f}", "ms")
        cores = os.cpu_count() or 1
        report.add("web alone on these cores (cores / web CPU per webhook)", round(cores * 1000 / per["web"]) if per["web"] else None,
                   "req/s", "projection: web dynos apart from worker and database")
        others = hook["cpu"]["cpu_s"]["everything else"] - hook["wrk_cpu_s"]
        share = 100 * others / (hook["cpu"]["seconds"] * (os.cpu_count() or 1))
        report.add("machine idle / CPU taken by everything else", f"{hook['cpu']['machine_idle_pct']:.0f} % / {share:.0f} %",
                   "", "else = Redis, the shell, other users")

        if args.burst:
            host_path = account.webhook_path

            def make(i: int, host_header: str) -> bytes:
                return http_post(host_path, host_header, webhook_body(amo_account, BURST_TALK_BASE + i, closed=i % args.closed_every == 0))

            answers, wall = send_requests(stack.url, make, args.burst, concurrency=args.burst_concurrency, timeout_s=30)
            ok = [a for a in answers if 200 <= a.status < 300]
            latencies = [a.latency_s * 1000 for a in answers]
            slowest = max(latencies) if latencies else 0.0
            burst_stored = stack.scalar("select count(*) from webhook_events where talk_id >= :lo", lo=BURST_TALK_BASE)
            report.add(f"burst: {args.burst:,} events answered 2xx", len(ok), "", f"{args.burst:,}", len(ok) == args.burst)
            report.add("burst: slowest answer", round(slowest, 1), "ms", "< 2,000", slowest < 2000)
            report.add("burst: p50 / p99", f"{percentile(latencies, 50):.1f} / {percentile(latencies, 99):.1f}", "ms")
            report.add("burst: stored", burst_stored, "", f"{args.burst:,}", burst_stored == args.burst)
            report.add("burst: wall time", round(wall, 2), "s", f"{args.burst / wall:,.0f} req/s from 1 client process")
            report.details["burst"] = {
                "count": args.burst, "concurrency": args.burst_concurrency, "wall_s": wall,
                "statuses": {str(s): sum(1 for a in answers if a.status == s) for s in {a.status for a in answers}},
                "retried_on_closed_connection": sum(1 for a in answers if a.retried),
                "errors": [a.error for a in answers if a.error][:20],
                "p50_ms": percentile(latencies, 50), "p90_ms": percentile(latencies, 90),
                "p99_ms": percentile(latencies, 99), "max_ms": slowest,
            }
        report.details.update(trivial=trivial, webhook=hook, stored=stored, stack={
            "web": "gunicorn per Procfile/gunicorn.conf.py", "worker": "dramatiq per Procfile", **stack.sizing,
            "closed_every": args.closed_every, "sandbox_latency_ms": args.latency_ms, "worker_running": not args.without_worker,
        })
        report.notes.append(f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s on loopback; "
                            f"the load generator shares the {before['cores']} cores with the stack")
    return report.finish(before)


if __name__ == "__main__":
    sys.exit(cli(main))
