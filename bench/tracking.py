"""Benchmark 4 — tracking: `POST /t/collect` requests/s and the tracking script's gzipped size.

    python -m bench.tracking [--duration 20] [--connections 32]

A site is created through the Data API; wrk posts the page view the tracking code sends
(`{"site_key", "url", "referrer", "title"}` as text/plain, with the site's Origin) — with no
visitor id, so every hit is a new visitor and a new session row (the costly case). `GET /livez`
in the same run is the yardstick. The script is fetched as a browser would (Accept-Encoding: gzip).
Targets (docs/benchmarks.md): the gzipped script ≤ 1,500 bytes; returning visitors ≥ 0.5× the trivial endpoint
and ≤ 1.0 ms of CPU per hit (web + PostgreSQL), each visitor seeded with its first page before the clock.
"""
from __future__ import annotations

import argparse
import json
import sys

from bench.harness import Stack, cli, machine_info
from bench.loadgen import run_wrk, send_requests
from bench.report import Report

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"  # as bench/wrk_load.lua


def _collect_request(host_header: str, body: bytes) -> bytes:
    return (f"POST /t/collect HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {BROWSER}\r\n"
            f"Origin: https://shop.example.ru\r\nContent-Type: text/plain;charset=UTF-8\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tracking", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds of wrk load per endpoint (default 20)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--visitors", type=int, default=1000,
                        help="returning visitors per wrk thread, each seeded with its first page (default 1000)")
    args = parser.parse_args(argv)

    before = machine_info()
    report = Report("tracking", "POST /t/collect vs GET /livez, and the tracking script's size")
    with Stack("tracking", accounts=0, worker=False) as stack:
        site = stack.api("POST", "/sites", {"name": "Магазин", "domain": "shop.example.ru"})
        script = stack.http.get(f"{stack.url}/t/{site['site_key']}.js", headers={"Accept-Encoding": "gzip"}, timeout=30,
                                stream=True)
        gzipped = len(script.raw.read(decode_content=False))
        encoding = script.headers.get("Content-Encoding")
        body = json.dumps({"site_key": site["site_key"], "event": "view",
                           "url": "https://shop.example.ru/catalog/?utm_source=yandex&utm_medium=cpc&utm_campaign=autumn",
                           "referrer": "https://yandex.ru/", "title": "Каталог — Магазин"}, ensure_ascii=False)
        env = {"BENCH_BODY": body, "BENCH_CONTENT_TYPE": "text/plain;charset=UTF-8", "BENCH_ORIGIN": "https://shop.example.ru"}
        run_wrk(f"{stack.url}/t/collect", duration_s=3, connections=args.connections, mode="post", env=env)  # warm-up
        with stack.cpu_meter() as trivial_cpu:
            trivial = run_wrk(f"{stack.url}/livez", duration_s=args.duration, connections=args.connections)
        with stack.cpu_meter() as collect_cpu:
            collect = run_wrk(f"{stack.url}/t/collect", duration_s=args.duration, connections=args.connections,
                              mode="post", env=env)
        sessions = stack.scalar("select count(*) from visitor_sessions")
        # Returning visitors: the next pages of 2,000 visitors (no campaign in the url), as most hits are.
        returning_body = json.dumps({"site_key": site["site_key"], "event": "view", "visitor_id": "VISITORID",
                                     "url": "https://shop.example.ru/catalog/sofas/", "referrer": "https://shop.example.ru/",
                                     "title": "Диваны — Магазин"}, ensure_ascii=False)
        returning_env = {**env, "BENCH_BODY": returning_body, "BENCH_VISITORS": str(args.visitors)}
        # Each visitor's first page once, before the clock starts (wrk's two threads name their visitors
        # bench-visitor-<thread>-<n>): on a loaded machine a timed warm-up did not reach them all, and
        # the "returning" run then measured new sessions.
        first_pages = [returning_body.replace("VISITORID", f"bench-visitor-{t}-{n}").encode()
                       for t in (0, 1) for n in range(args.visitors)]
        answers, _ = send_requests(f"{stack.url}/t/collect", lambda i, host: _collect_request(host, first_pages[i]),
                                   len(first_pages), concurrency=16)
        if any(a.status != 200 for a in answers):
            raise RuntimeError(f"first pages of the returning visitors: {[a.status for a in answers][:20]}")
        run_wrk(f"{stack.url}/t/collect", duration_s=3, connections=args.connections, mode="post", env=returning_env)
        sessions_before = stack.scalar("select count(*) from visitor_sessions")
        with stack.cpu_meter() as returning_cpu:
            returning = run_wrk(f"{stack.url}/t/collect", duration_s=args.duration, connections=args.connections,
                                mode="post", env=returning_env)
        started_meanwhile = stack.scalar("select count(*) from visitor_sessions") - sessions_before
        returning["cpu"] = returning_cpu.summary(returning["requests"])
        trivial["cpu"] = trivial_cpu.summary(trivial["requests"])
        collect["cpu"] = collect_cpu.summary(collect["requests"])

        report.add("tracking script, gzipped", gzipped, "bytes", "≤ 1,500", gzipped <= 1500 and encoding == "gzip")
        report.add("trivial GET /livez", round(trivial["rps"]), "req/s", "yardstick")
        report.add("collect throughput", round(collect["rps"]), "req/s")
        report.add("collect / trivial", round(collect["rps"] / trivial["rps"], 2) if trivial["rps"] else 0, "×")
        report.add("collect p50 / p99", f"{collect['p50_ms']:.1f} / {collect['p99_ms']:.1f}", "ms")
        report.add("collect errors (non-2xx, socket)", collect["errors"], "", "0", collect["errors"] == 0)
        report.add("sessions stored", sessions)
        per = collect["cpu"]["cpu_ms_per_request"]
        report.add("CPU per collect: web / PostgreSQL", f"{per['web']:.2f} / {per['postgres']:.2f}", "ms")
        report.add("collect, returning visitors (session continued)", round(returning["rps"]), "req/s")
        ratio = returning["rps"] / trivial["rps"] if trivial["rps"] else 0
        report.add("  / trivial", round(ratio, 2), "×", "≥ 0.5", ratio >= 0.5)
        report.add("  sessions started during it (all continued: 0)", started_meanwhile, "", "0", started_meanwhile == 0)
        report.add("  p50 / p99", f"{returning['p50_ms']:.1f} / {returning['p99_ms']:.1f}", "ms")
        report.add("  errors (non-2xx, socket)", returning["errors"], "", "0", returning["errors"] == 0)
        per = returning["cpu"]["cpu_ms_per_request"]
        total = per["web"] + per["postgres"] + per.get("redis", 0)
        report.add("  CPU per collect: web / PostgreSQL (sum)", f"{per['web']:.2f} / {per['postgres']:.2f} ({total:.2f})", "ms",
                   "≤ 1.0 (sum)", total <= 1.0)
        trivial_per = trivial["cpu"]["cpu_ms_per_request"]
        report.add("CPU per trivial request: web", f"{trivial_per['web']:.2f}", "ms")
        report.details.update(returning=returning, trivial=trivial, collect=collect, script_bytes_gzip=gzipped, content_encoding=encoding)
    return report.finish(before)


if __name__ == "__main__":
    sys.exit(cli(main))
