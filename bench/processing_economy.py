"""Benchmark 2 — processing economy: amoCRM calls per closed talk, counted by the sandbox.

    python -m bench.processing_economy [--burst 1000] [--accounts 5] [--latency-ms 50]

Three scenes on one stack (gunicorn + Dramatiq worker per Procfile, PostgreSQL, Redis), each amoCRM
account a separate sandbox process with its own rate-limit counter:
1. one talk closed on its own;
2. a burst: `--burst` talks closed at once in one account (16 managers closing in parallel);
3. `--accounts` accounts bursting together, `--burst` talks each.
The chats (contacts with phones and emails, leads) are created in the sandbox first; the sandbox's
counters are reset just before the closes, so only the processing's calls are counted. Targets
(docs/benchmarks.md): ≤ 2 calls for a single talk, ≤ 0.05 per talk in the burst, never over 7 calls in any
1-second window of an account, zero 429s.
"""
from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from bench.harness import Account, Stack, cli, machine_info
from bench.report import Report, percentile

PROCESSING_ENDPOINTS = ("GET /api/v4/contacts", "GET /api/v4/leads", "GET /api/v4/talks")


def close_burst(accounts: list[Account], chats: dict[int, list[dict]], threads: int) -> dict[int, list[dict]]:
    """Close every account's chats at the same time; returns each account's webhook deliveries."""
    with ThreadPoolExecutor(len(accounts)) as pool:
        futures = {a.index: pool.submit(a.close_talks, [c["talk_id"] for c in chats[a.index]], threads=threads)
                   for a in accounts}
        return {i: f.result() for i, f in futures.items()}


def scene(stack: Stack, accounts: list[Account], per_account: int, threads: int,
          timeout_s: float) -> dict:
    chats = {a.index: a.create_chats(per_account, threads=8) for a in accounts}
    already = {a.index: stack.scalar("select count(*) from requests where integration_id = :i", i=a.integration_id)
               for a in accounts}
    for a in accounts:
        a.reset_stats()
    started = time.monotonic()
    # Every talk is one webhook and one request: the CPU from the first close to the last request
    # recorded, per talk, is the whole path's cost (web + worker + PostgreSQL; the sandbox apart).
    with stack.cpu_meter() as cpu:
        deliveries = close_burst(accounts, chats, threads)
        closed_in = time.monotonic() - started
        for a in accounts:
            stack.wait_recorded(a.integration_id, already[a.index] + per_account, timeout_s)
        recorded_in = time.monotonic() - started
    time.sleep(1.5)  # a late call would still count
    result = {"closed_in_s": closed_in, "recorded_in_s": recorded_in, "accounts": {},
              "cpu": cpu.summary(per_account * len(accounts))}
    for a in accounts:
        stats = a.stats()
        talk_ids = [c["talk_id"] for c in chats[a.index]]
        latencies = stack.latencies_s(a.integration_id, talk_ids)
        codes = [d["status_code"] for d in deliveries[a.index]]
        # Calls that fetch talk data; anything else (the periodic webhook check, token refreshes) is
        # not caused by the talks and is reported apart.
        processing = sum(n for endpoint, n in stats["calls_by_endpoint"].items() if endpoint.startswith(PROCESSING_ENDPOINTS))
        result["accounts"][a.index] = {
            "talks": per_account, "api_calls": processing, "calls_per_talk": processing / per_account,
            "other_calls": stats["api_calls"] - processing,
            "peak_calls_per_second": stats["peak_calls_per_second"], "responses_429": stats["responses_429"],
            "calls_by_endpoint": stats["calls_by_endpoint"], "token_refreshes": stats["token_refreshes"],
            "webhook_2xx": sum(1 for c in codes if c and 200 <= c < 300), "webhooks": len(codes),
            "webhook_slowest_ms": max((d["duration_ms"] or 0 for d in deliveries[a.index]), default=0),
            "latency_p50_s": percentile(latencies, 50), "latency_p99_s": percentile(latencies, 99),
            "recorded_once": stack.scalar("select count(distinct talk_id) = count(*) from requests where integration_id = :i",
                                          i=a.integration_id),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.processing_economy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--burst", type=int, default=1000, help="talks per account in the bursts (default 1000)")
    parser.add_argument("--accounts", type=int, default=5, help="accounts bursting together (default 5)")
    parser.add_argument("--threads", type=int, default=16, help="parallel closes per account (default 16)")
    parser.add_argument("--latency-ms", type=int, default=50, help="sandbox latency of every amoCRM call (default 50)")
    args = parser.parse_args(argv)

    before = machine_info()
    report = Report("processing_economy", "amoCRM calls per closed talk and per account-second, counted by the sandbox")
    with Stack("processing_economy", accounts=args.accounts, sandbox_latency_ms=args.latency_ms) as stack:
        first = stack.accounts[0]
        single = scene(stack, [first], 1, 1, 60)
        s = single["accounts"][0]
        report.add("one talk: amoCRM calls", s["api_calls"], "", "≤ 2", s["api_calls"] <= 2)
        if s["other_calls"]:
            report.add("  other calls meanwhile (webhook check, tokens)", s["other_calls"])

        burst = scene(stack, [first], args.burst, args.threads, 600)
        b = burst["accounts"][0]
        report.add(f"burst of {args.burst:,} (1 account): calls per talk", round(b["calls_per_talk"], 4), "",
                   "≤ 0.05", b["calls_per_talk"] <= 0.05)
        report.add("  calls in all", b["api_calls"])
        if b["other_calls"]:
            report.add("  other calls meanwhile (webhook check, tokens)", b["other_calls"])
        report.add("  closes arrived over", round(burst["closed_in_s"], 1), "s")
        report.add("  peak calls in any 1 s", b["peak_calls_per_second"], "", "≤ 7", b["peak_calls_per_second"] <= 7)
        report.add("  429 answers", b["responses_429"], "", "0", b["responses_429"] == 0)
        report.add("  webhooks answered 2xx", f"{b['webhook_2xx']:,} / {b['webhooks']:,}", "", "all", b["webhook_2xx"] == b["webhooks"])
        report.add("  slowest webhook answer", round(b["webhook_slowest_ms"]), "ms", "< 2,000", b["webhook_slowest_ms"] < 2000)
        report.add("  all recorded, once each, after", round(burst["recorded_in_s"], 1), "s", "",
                   None if b["recorded_once"] else False)
        report.add("  received → recorded p50 / p99", f"{b['latency_p50_s']:.2f} / {b['latency_p99_s']:.2f}", "s")
        per = burst["cpu"]["cpu_ms_per_request"]
        report.add("  CPU per talk, webhook → request: web / worker / PostgreSQL (sum)",
                   f"{per['web']:.2f} / {per['worker']:.2f} / {per['postgres']:.2f} "
                   f"({per['web'] + per['worker'] + per['postgres']:.2f})", "ms", "≤ 1.5 (sum)",
                   per["web"] + per["worker"] + per["postgres"] <= 1.5)

        if args.accounts > 1:
            multi = scene(stack, stack.accounts, args.burst, args.threads, 900)
            accs = multi["accounts"].values()
            worst = max(a["calls_per_talk"] for a in accs)
            peak = max(a["peak_calls_per_second"] for a in accs)
            n429 = sum(a["responses_429"] for a in accs)
            # The issue sets the 0.05 goal for the one-account burst; here it is the figure to watch.
            report.add(f"{args.accounts} accounts × {args.burst:,} together: worst calls per talk", round(worst, 4))
            report.add("  closes arrived over", round(multi["closed_in_s"], 1), "s")
            report.add("  calls per account", ", ".join(str(a["api_calls"]) for a in accs))
            report.add("  peak calls in any 1 s, worst account", peak, "", "≤ 7", peak <= 7)
            report.add("  429 answers", n429, "", "0", n429 == 0)
            ok = sum(a["webhook_2xx"] for a in accs)
            total = sum(a["webhooks"] for a in accs)
            report.add("  webhooks answered 2xx", f"{ok:,} / {total:,}", "", "all", ok == total)
            slowest = max(a["webhook_slowest_ms"] for a in accs)
            report.add("  slowest webhook answer", round(slowest), "ms", "< 2,000", slowest < 2000)
            report.add("  received → recorded p50 / p99, worst account",
                       f"{max(a['latency_p50_s'] for a in accs):.2f} / {max(a['latency_p99_s'] for a in accs):.2f}", "s")
            report.add("  all recorded, once each, after", round(multi["recorded_in_s"], 1), "s", "",
                       None if all(a["recorded_once"] for a in accs) else False)
            report.details["multi"] = multi
        report.details.update(single=single, burst=burst, sandbox_latency_ms=args.latency_ms, threads=args.threads)
    return report.finish(before)


if __name__ == "__main__":
    sys.exit(cli(main))
