"""Where the CPU of a webhook goes: py-spy on the Procfile's own processes under load.

    python -m bench.profile [--duration 20] [--rate 200]

Starts the stack as `bench.webhook_ingest` does (gunicorn and Dramatiq per Procfile, PostgreSQL,
Redis, one sandbox account with 50 ms latency), loads `POST /webhooks/amocrm/<token>` with wrk (one
talk per body, every second one closed, so the worker processes half of them) and samples every web
and worker process with py-spy meanwhile (`--nonblocking --gil`: only threads holding the GIL, so the
samples are the Python CPU time; waiting for PostgreSQL, Redis or amoCRM, GIL released, is not in them). Writes per process group one flame graph (`bench/results/profile-<group>-<pid>-<time>.svg`, of
a child process) and the collapsed stacks of all of them (`….txt`), and prints the share of
samples per part of the path (`PARTS`: the first rule a stack matches). py-spy is a dev dependency
(requirements-dev.in); it needs ptrace rights over the processes (root, or
`kernel.yama.ptrace_scope=0`).
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

from bench.harness import RESULTS, BenchError, Stack, cli, machine_info
from bench.loadgen import account_block, run_wrk, webhook_body_template

TALK_BASE = 3_000_000_000

# The parts of the path, first match wins; each is a regex over a stack's frames (outermost first,
# "function (file:line)" joined by ";"). Order matters: a ping inside a pool checkout inside the
# lookup is the ping.
PARTS: dict[str, list[tuple[str, str]]] = {
    "web": [
        ("pool pre-ping (SELECT 1)", r"_do_ping_w_event|do_ping"),
        ("access log line", r"glogging\.py|log_redaction|atoms \("),
        ("Redis enqueue (outbox)", r"workers/outbox\.py"),
        ("token lookup (SELECT integration)", r"find_integration_by_webhook_token"),
        ("form parsing (parse_qsl, nest_form, checks)", r"parse_qsl|parse_webhook|nest_form"),
        ("insert (multi-row INSERT … RETURNING)", r"store_webhook|store_talk_items"),
        ("commit", r"webhooks\.py:\d+\);.*commit|commit \(.*orm/session"),
        ("session end (close, return to pool)", r"remove \(|shutdown_session|teardown|_close_impl|_return_conn"),
        ("JSON answer (jsonify)", r"jsonify|dumps"),
        ("app log line", r"log\.info|logging/__init__"),
        ("Flask dispatch, hooks, request/response objects", r"flask/|werkzeug/"),
        ("gunicorn: HTTP parse, socket, threads", r"gunicorn/"),
    ],
    "worker": [
        ("click candidates (messenger_clicks)", r"_candidates|channels_with_clicks"),
        ("repeat flags (the contacts' series)", r"repeat_requests\.py"),
        ("request insert (multi-row) and roll-up", r"insert_many_ignoring_conflicts"),
        ("attribution (sessions, mappings, campaigns)", r"attribute \(|preload_for_batch|describe_target"),
        ("amoCRM calls (client, tokens, requests)", r"core/amocrm/"),
        ("rate limiter (Redis Lua)", r"ratelimit\.py"),
        ("batch lock (Redis)", r"locks\.py"),
        ("claim (UPDATE … RETURNING the batch)", r"claim_batch"),
        ("the rest of talk_processing (event read, commit)", r"talk_processing\.py"),
        ("Dramatiq: fetch, ack, middleware", r"dramatiq/"),
    ],
}


def descendants(root: int) -> list[int]:
    """Every process under *root* (ppid walk over /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == pid]
        found.extend(kids)
        frontier.extend(kids)
    return sorted(found)


def python_processes(root: int, marker: str) -> list[int]:
    out = []
    for pid in [root, *descendants(root)]:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmd and "python" in Path(f"/proc/{pid}/exe").resolve().name:
            out.append(pid)
    return out


def collapsed(path: Path) -> Counter:
    stacks: Counter = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] += int(count)
    return stacks


def shares(stacks: Counter, parts: list[tuple[str, str]]) -> list[tuple[str, int]]:
    compiled = [(name, re.compile(rx)) for name, rx in parts]
    by_part: Counter = Counter()
    for stack, count in stacks.items():
        by_part[next((name for name, rx in compiled if rx.search(stack)), "other")] += count
    return by_part.most_common()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds of load and of sampling (default 20)")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second (default 200)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    args = parser.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        raise BenchError("py-spy is not installed: `make setup` installs requirements-dev.txt, which has it")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    before = machine_info()
    with Stack("profile", accounts=1, sandbox_latency_ms=50) as stack:
        account = stack.accounts[0]
        url = stack.url + account.webhook_path
        env = {"BENCH_BODY": webhook_body_template(account_block(0, account.sandbox_url)), "BENCH_CLOSED_EVERY": "2"}
        run_wrk(url, duration_s=3, connections=args.connections, mode="webhook", env={**env, "BENCH_TALK_BASE": str(TALK_BASE // 2)})
        groups = {"web": python_processes(stack.web.pid, "gunicorn"), "worker": python_processes(stack.worker.pid, "dramatiq")}
        jobs = []
        for group, pids in groups.items():
            pictured = pids[1] if len(pids) > 1 else pids[0]  # a child: the first process is the master
            for pid in pids:
                fmt, ext = ("flamegraph", "svg") if pid == pictured else ("raw", "txt")
                out = RESULTS / f"profile-{group}-{pid}-{stamp}.{ext}"
                cmd = [spy, "record", "--pid", str(pid), "--duration", str(args.duration), "--rate", str(args.rate),
                       "--nonblocking", "--gil", "--format", fmt, "--output", str(out)]
                if fmt == "flamegraph":  # the same process also as collapsed stacks, for the table
                    jobs.append((group, None, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
                    raw = RESULTS / f"profile-{group}-{pid}-{stamp}.txt"
                    cmd = [*cmd[:-4], "--format", "raw", "--output", str(raw)]
                    out = raw
                jobs.append((group, out, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
        run_wrk(url, duration_s=args.duration, connections=args.connections, mode="webhook",
                env={**env, "BENCH_TALK_BASE": str(TALK_BASE)})  # while py-spy samples
        for _, _, proc in jobs:
            proc.wait(timeout=args.duration + 60)
    print(f"\nprofile: py-spy at {args.rate} Hz for {args.duration} s, wrk -c{args.connections} on the webhook url, "
          f"commit {before['commit']}, load {before['load_avg']}")
    for group in groups:
        stacks: Counter = Counter()
        for g, out, _ in jobs:
            if g == group and out is not None and out.exists():
                stacks.update(collapsed(out))
        total = sum(stacks.values()) or 1
        print(f"\n{group} ({len(groups[group])} processes, {total:,} samples)")
        for name, count in shares(stacks, PARTS[group]):
            print(f"  {100 * count / total:5.1f} %  {name}")
    print(f"\nflame graphs and stacks: {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}/profile-*-{stamp}.*")
    return 0


if __name__ == "__main__":
    sys.exit(cli(main))
