"""Benchmark 4 — tracking: `POST /t/collect` requests/s and the tracking script's gzipped size.

    python -m bench.tracking [--duration 20] [--connections 32]

A site is created through the Data API; wrk posts the page view the tracking code sends
(`{"site_key", "url", "referrer", "title"}` as text/plain, with the site's Origin) — with no
visitor id, so every hit is a new visitor and a new session row (the costly case). `GET /livez`
in the same run is the yardstick. The script is fetched as a browser would (Accept-Encoding: gzip).
Target (docs/benchmarks.md): the gzipped script under 2 KB; req/s is reported against the trivial endpoint.
"""
from __future__ import annotations

import argparse
import json
import sys

from bench.harness import Stack, cli, machine_info
from bench.loadgen import run_wrk
from bench.report import Report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tracking", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds of wrk load per endpoint (default 20)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
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
        returning_env = {**env, "BENCH_BODY": returning_body, "BENCH_VISITORS": "1000"}
        run_wrk(f"{stack.url}/t/collect", duration_s=3, connections=args.connections, mode="post", env=returning_env)
        with stack.cpu_meter() as returning_cpu:
            returning = run_wrk(f"{stack.url}/t/collect", duration_s=args.duration, connections=args.connections,
                                mode="post", env=returning_env)
        returning["cpu"] = returning_cpu.summary(returning["requests"])
        trivial["cpu"] = trivial_cpu.summary(trivial["requests"])
        collect["cpu"] = collect_cpu.summary(collect["requests"])

        report.add("tracking script, gzipped", gzipped, "bytes", "< 2,048", gzipped < 2048 and encoding == "gzip")
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
