"""Load on loopback: `wrk` (C, so the load generator takes little of the 2 cores) for throughput over a
fixed time, and a small asyncio HTTP/1.1 client for an exact number of requests (a burst of N
webhooks) with every answer's latency kept. Both keep connections alive, as amoCRM's sender may.
"""
from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

from bench.harness import ROOT, BenchError
from sandbox.webhook_format import encode_talk_body

WRK_SCRIPT = ROOT / "bench" / "wrk_load.lua"


# -- realistic amoCRM bodies ---------------------------------------------------------------------------
def account_block(index: int, sandbox_url: str) -> dict:
    host = urlsplit(sandbox_url).netloc
    return {"id": 31_000_000 + index, "subdomain": f"bench{index}", "_links": {"self": f"http://{host}"}}


def talk_fields(talk_id, closed, chat_id=None, contact_id=11_018_118, created_at=1_763_900_000,
                updated_at=1_763_900_600) -> dict:
    """One talk item as amoCRM sends it in update_talk (https://www.amocrm.ru/developers/content/crm_platform/webhooks-format)."""
    return dict(talk_id=talk_id, created_at=created_at, updated_at=updated_at, rate=0, contact_id=contact_id,
                chat_id=chat_id or f"33b4c1d2-bench-{talk_id}", entity_id=9_276_114, entity_type="lead",
                is_in_work=not closed if isinstance(closed, bool) else closed, is_read=True, origin="telegram")


def webhook_body_template(account: dict) -> str:
    """An update_talk body with TALKID / CHATID / INWORK / CONTACTID / CREATEDAT / UPDATEDAT placeholders,
    filled in by the wrk script: each talk its own chat, contact and minute, as most chats are (one
    contact for every talk made its series of repeat requests the worker's main cost, an artefact)."""
    return encode_talk_body("update", [talk_fields("TALKID", "INWORK", chat_id="CHATID", contact_id="CONTACTID",
                                                   created_at="CREATEDAT", updated_at="UPDATEDAT")], account)


def webhook_body(account: dict, talk_id: int, closed: bool) -> bytes:
    return encode_talk_body("update", [talk_fields(talk_id, closed)], account).encode()


# -- wrk -------------------------------------------------------------------------------------------------
def wrk_path() -> str:
    path = shutil.which("wrk")
    if not path:
        raise BenchError("wrk is not installed: `apt-get install -y wrk` (or `make bench`, which installs it)")
    return path


def run_wrk(url: str, *, duration_s: int, connections: int, threads: int = 2, mode: str = "get",
            env: dict | None = None, timeout_s: int = 10) -> dict:
    """Run wrk with bench/wrk_load.lua; returns its counts, req/s and latency percentiles (ms)."""
    cmd = [wrk_path(), f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", f"--timeout={timeout_s}s",
           "-s", str(WRK_SCRIPT), url]
    run_env = dict(os.environ, BENCH_MODE=mode, **(env or {}))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(cmd, capture_output=True, text=True, env=run_env, timeout=duration_s + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((out for out in result.stdout.splitlines() if out.startswith("BENCH_JSON ")), None)
    if result.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({result.returncode}):\n{result.stdout[-1500:]}\n{result.stderr[-1500:]}")
    data = json.loads(line[len("BENCH_JSON "):])
    seconds = data["duration_us"] / 1e6
    errors = sum(data[k] for k in ("errors_connect", "errors_read", "errors_write", "errors_status", "errors_timeout"))
    return {
        "requests": data["requests"],
        "errors": errors,
        "errors_detail": {k[len("errors_"):]: data[k] for k in data if k.startswith("errors_")},
        "ok": data["requests"] - data["errors_status"],
        "seconds": round(seconds, 2),
        "rps": data["requests"] / seconds if seconds else 0.0,
        "p50_ms": data["latency_p50_us"] / 1000,
        "p90_ms": data["latency_p90_us"] / 1000,
        "p99_ms": data["latency_p99_us"] / 1000,
        "max_ms": data["latency_max_us"] / 1000,
        "mean_ms": data["latency_mean_us"] / 1000,
        "wrk_cpu_s": round((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), 2),
        "connections": connections,
        "threads": threads,
        "command": " ".join(cmd[:-1] + [url.split("/webhooks/amocrm/")[0] + ("/webhooks/amocrm/***" if "/webhooks/amocrm/" in url else "")]),
    }


# -- an exact number of requests ---------------------------------------------------------------------------
@dataclass
class Answer:
    index: int
    status: int  # 0: no answer (error)
    latency_s: float
    error: str | None = None
    retried: bool = False


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        raise BenchError("chunked responses are not expected from the app")
    close = headers.get("connection", "").lower() == "close"
    return status, close


async def _run(host: str, port: int, make_request: Callable[[int], bytes], count: int, concurrency: int,
               timeout_s: float) -> list[Answer]:
    indices = iter(range(count))
    answers: list[Answer] = []

    async def connection() -> None:
        reader = writer = None
        for index in indices:
            payload = make_request(index)
            started = time.perf_counter()
            answer = None
            for attempt in (1, 2):
                try:
                    if writer is None:
                        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
                    writer.write(payload)
                    await writer.drain()
                    status, close = await asyncio.wait_for(_read_response(reader), timeout_s)
                    answer = Answer(index, status, time.perf_counter() - started, retried=attempt == 2)
                    if close:
                        writer.close()
                        writer = None
                    break
                except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
                    # The server closed a kept-alive connection (worker recycled): send again on a new
                    # one, as amoCRM would retry. Webhooks are deduplicated, so this is safe.
                    if writer is not None:
                        writer.close()
                    writer = None
                    if attempt == 2:
                        answer = Answer(index, 0, time.perf_counter() - started, f"{type(exc).__name__}: {exc}", True)
                except asyncio.TimeoutError:
                    if writer is not None:
                        writer.close()
                    writer = None
                    answer = Answer(index, 0, time.perf_counter() - started, f"no answer in {timeout_s} s")
                    break
            answers.append(answer)
        if writer is not None:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return sorted(answers, key=lambda a: a.index)


def send_requests(url: str, make_request: Callable[[int, str], bytes], count: int, *, concurrency: int = 64,
                  timeout_s: float = 30.0) -> tuple[list[Answer], float]:
    """Send `count` requests over `concurrency` kept-alive connections; returns the answers and the
    wall time. `make_request(i, host_header)` returns the raw HTTP/1.1 request bytes."""
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or 80
    host_header = parts.netloc
    started = time.perf_counter()
    answers = asyncio.run(_run(host, port, lambda i: make_request(i, host_header), count, concurrency, timeout_s))
    return answers, time.perf_counter() - started


def http_post(path: str, host_header: str, body: bytes, content_type: str = "application/x-www-form-urlencoded") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: amoCRM-Webhooks/3.0\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body

