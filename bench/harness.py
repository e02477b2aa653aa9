"""The benchmark stack: PostgreSQL + Redis, the Procfile's `web` (gunicorn) and `worker` (Dramatiq)
commands, and one amoCRM sandbox process per amoCRM account — everything on loopback.

    with Stack("webhook_ingest", accounts=1) as stack:
        account = stack.accounts[0]          # a connected, active integration on its own sandbox
        stack.url, account.webhook_path      # where to post
        stack.scalar("select count(*) from webhook_events")

A fresh database (`BENCH_DATABASE_URL`, default `chatsource_bench` on the local server) is created
for every run and migrated with `flask db upgrade`; the Redis database (`BENCH_REDIS_URL`, default
db 14) is flushed. Each sandbox listens on its own loopback address (127.0.0.2, 127.0.0.3, …) because
the product keys its amoCRM rate limit by the account's host name, as real accounts have one each.
Process logs are kept in `bench/results/runs/<name>-<time>/`.
"""
from __future__ import annotations

import html
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(os.environ.get("BENCH_RESULTS_DIR") or ROOT / "bench" / "results")  # the smoke test writes elsewhere
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/chatsource_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
CLIENT_ID = "chatsource-bench"
CLIENT_SECRET = "chatsource-bench-secret"
# Fixed keys: web and worker processes must share them (tokens are encrypted at rest).
SECRET_KEY = "bench-secret-key-not-for-production-0123456789abcdef"
TOKEN_KEY = "hLd0dZC6pI0kCSEg1r2T6_1pJgqGvl7dO5Ue6ZZ2x3M="
BENCH_ADMIN_EMAIL = "bench@example.ru"
BENCH_ADMIN_PASSWORD = "bench-admin-password"
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def _csrf(page_html: str) -> str:
    match = _CSRF.search(page_html)
    if not match:
        raise BenchError("the page has no CSRF token")
    return html.unescape(match.group(1) or match.group(2))


class BenchError(RuntimeError):
    """The stack could not be set up or a benchmark's precondition failed; the message says which."""


def cli(main: Callable[[list[str] | None], int]) -> int:
    """Run a benchmark's main() as a command: a stack that cannot start is one clear line, not a traceback."""
    try:
        return main(None)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def listening_socket(host: str = "127.0.0.1") -> socket.socket:
    """Bound to a port the kernel picks, and listening: the child gets this very socket (gunicorn's
    `--bind fd://N`), so no other process can take the port between choosing and binding it."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, 0))
    listener.listen(2048)
    listener.set_inheritable(True)
    return listener


SANDBOX_ADDRESS = re.compile(r" on (http://\S+)")


def announced_url(proc: "Proc") -> str | None:
    """The address a sandbox started with `--port 0` names on its first line, once it listens."""
    found = SANDBOX_ADDRESS.search(proc.log_path.read_text(errors="replace"))
    return found.group(1) if found else None


def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # loopback only: never a proxy
    return session


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.1,
               error: type[Exception] = BenchError):
    """`predicate()`'s first truthy value, polled every `interval_s`; an exception from it counts as
    «not yet». After `timeout_s`, `error` (the tests pass AssertionError) names `what` and the last
    exception. The one poll loop of bench and tests (tests/helpers/fault_helpers.wait_for)."""
    deadline = time.monotonic() + timeout_s
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # not ready yet
            last_exc = exc
        time.sleep(interval_s)
    raise error(f"timed out after {timeout_s:g} s waiting for {what}" + (f" (last error: {last_exc!r})" if last_exc else ""))


def procfile_command(kind: str) -> str:
    """The command of one Procfile process type, run through bash so `${VAR:-default}` expands."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == kind:
            return command.strip()
    raise BenchError(f"the Procfile has no {kind!r} process")


def psycopg_url(url: str) -> str:
    from core.platform.settings import normalise_database_url

    return normalise_database_url(url)


class Proc:
    """A child process in its own session (so a stop reaches its children), output to a log file."""

    def __init__(self, name: str, command: list[str] | str, env: dict, log_dir: Path, pass_fds: tuple[int, ...] = ()):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")
        args = ["bash", "-c", "exec " + command] if isinstance(command, str) else command
        self.popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                      start_new_session=True, pass_fds=pass_fds)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout_s: float = 25) -> None:
        if self.alive():
            self.signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.popen.wait(5)
        self.signal_group(signal.SIGKILL)  # leftovers of the group, if any
        self._log.close()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Account:
    """One amoCRM account (a sandbox process) and our integration connected to it."""

    index: int
    sandbox_url: str
    proc: Proc
    integration_id: int = 0
    webhook_url: str = ""
    session_field_id: int = 0
    site_id: int = 0
    _http: requests.Session = field(default_factory=http)

    @property
    def webhook_path(self) -> str:
        return urlsplit(self.webhook_url).path

    def control(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        response = self._http.request(method, f"{self.sandbox_url}/_sandbox{path}", json=body, timeout=timeout)
        if response.status_code >= 400:
            raise BenchError(f"sandbox {method} {path} → {response.status_code}: {response.text[:300]}")
        return response.json() if response.content else None

    def configure(self, **knobs) -> dict:
        return self.control("POST", "/settings", knobs)

    def stats(self) -> dict:
        return self.control("GET", "/stats")

    def reset_stats(self) -> dict:
        return self.control("POST", "/stats/reset")

    def create_chats(self, count: int, *, threads: int = 8, with_session: int | None = None) -> list[dict]:
        """Open `count` chats (contact + lead) without sending add_talk; returns their talk records."""

        def one(i: int) -> dict:
            lead = {"custom_fields": {str(self.session_field_id): str(with_session)}} if with_session else {}
            return self.control("POST", "/chats", {
                "contact": {"name": f"Клиент {self.index}-{i}", "phones": [f"+7916{(self.index * 1_000_000 + i) % 10_000_000:07d}"],
                            "emails": [f"client{self.index}-{i}@example.ru"]},
                "lead": lead, "origin": "telegram", "notify": False,
            })

        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(one, range(count)))

    def close_talk(self, talk_id: int) -> dict:
        """Close as a manager would: the sandbox posts update_talk (is_in_work=0) to our webhook."""
        return self.control("POST", f"/talks/{talk_id}/close", {})

    def close_talks(self, talk_ids: list[int], *, threads: int = 8) -> list[dict]:
        """Close many talks at once; returns the webhook deliveries (status_code, duration_ms)."""
        with ThreadPoolExecutor(threads) as pool:
            answers = list(pool.map(self.close_talk, talk_ids))
        return [d for a in answers for d in a.get("deliveries") or []]


class Stack:
    def __init__(self, name: str, *, accounts: int = 1, sandbox_latency_ms: int = 0, worker: bool = True,
                 web_concurrency: int | None = None, web_threads: int | None = None,
                 worker_processes: int | None = None, worker_threads: int | None = None,
                 sandbox_knobs: dict | None = None, extra_env: dict | None = None):
        self.name = name
        self.account_count = accounts
        self.sandbox_latency_ms = sandbox_latency_ms
        self.want_worker = worker
        self.sizing = {k: v for k, v in {
            "WEB_CONCURRENCY": web_concurrency, "WEB_THREADS": web_threads,
            "WORKER_PROCESSES": worker_processes, "WORKER_THREADS": worker_threads,
        }.items() if v is not None}
        self.sandbox_knobs = sandbox_knobs or {}
        self.extra_env = extra_env or {}
        self.database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
        self.redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
        self.run_dir = RESULTS / "runs" / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
        self.listener = listening_socket()  # the web's socket, held for the stack's lifetime
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.accounts: list[Account] = []
        self.procs: list[Proc] = []
        self.web: Proc | None = None
        self.worker: Proc | None = None
        self.engine: sa.Engine | None = None
        self.http = http()
        self.api_token = ""

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> "Stack":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        print(f"[bench] {self.name}: stack logs in {self.run_dir.relative_to(ROOT) if self.run_dir.is_relative_to(ROOT) else self.run_dir}", flush=True)
        self._fresh_database()
        self._flush_redis()
        env = self.env()
        for args in (["db", "upgrade"], ["bootstrap"]):
            self._flask(env, args)
        self.api_token = self._flask(env, ["api-tokens", "create", "bench"]).strip().splitlines()[-1]
        self._flask(env, ["users", "set", BENCH_ADMIN_EMAIL, "--password", BENCH_ADMIN_PASSWORD])
        self._start_sandboxes(env)
        self.start_web()
        if self.want_worker:
            self.start_worker()
        self.engine = sa.create_engine(psycopg_url(self.database_url), pool_size=2)
        for account in self.accounts:
            self._connect(account)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None
        self.listener.close()

    def env(self) -> dict:
        sandbox_hosts = ",".join(f"127.0.0.{2 + i}" for i in range(self.account_count))
        env = dict(os.environ)
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        env.update({
            "APP_ENV": "development",
            "PORT": str(self.port),
            "BIND_HOST": "127.0.0.1",
            "PUBLIC_URL": self.url,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "SECRET_KEY": SECRET_KEY,
            "TOKEN_ENCRYPTION_KEYS": TOKEN_KEY,
            "AMOCRM_CLIENT_ID": CLIENT_ID,
            "AMOCRM_CLIENT_SECRET": CLIENT_SECRET,
            "AMOCRM_ALLOWED_HOSTS": f"*.amocrm.ru,*.amocrm.com,*.kommo.com,{sandbox_hosts}",
            "INSTANCE_DIR": str(self.run_dir / "instance"),
            "PYTHONUNBUFFERED": "1",
            # Every benchmark client is 127.0.0.1: the per-IP quotas of /t/collect and sign-in would
            # measure the limiter, not the endpoint (tests/security covers the limits themselves).
            "TRACKING_HITS_PER_IP_PER_MINUTE": "100000000",
            "TRACKING_NEW_SESSIONS_PER_IP_PER_MINUTE": "100000000",
            "TRACKING_HITS_PER_SITE_PER_SECOND": "100000000",
            "LOGIN_ATTEMPTS_PER_IP": "100000",
        })
        env.update(self.sizing)
        env.update(self.extra_env)
        return env

    def _flask(self, env: dict, args: list[str]) -> str:
        result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise BenchError(f"flask {' '.join(args)} failed:\n{result.stderr[-2000:]}")
        return result.stdout

    def _fresh_database(self) -> None:
        url = sa.make_url(psycopg_url(self.database_url))
        if not url.drivername.startswith("postgresql"):
            raise BenchError("the benchmarks need PostgreSQL: set BENCH_DATABASE_URL=postgresql://…")
        admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sa.text("select pg_terminate_backend(pid) from pg_stat_activity where datname = :d and pid <> pg_backend_pid()"),
                             {"d": url.database})
                conn.execute(sa.text(f'drop database if exists "{url.database}"'))
                conn.execute(sa.text(f'create database "{url.database}"'))
        except sa.exc.OperationalError as exc:
            raise BenchError(f"PostgreSQL at {url.host}:{url.port} is not reachable: {exc.orig}") from None
        finally:
            admin.dispose()

    def _flush_redis(self) -> None:
        import redis

        client = redis.Redis.from_url(self.redis_url)
        try:
            client.flushdb()
        except redis.RedisError as exc:
            raise BenchError(f"Redis at {self.redis_url} is not reachable: {exc}") from None
        finally:
            client.close()

    def _spawn(self, name: str, command, env: dict, pass_fds: tuple[int, ...] = ()) -> Proc:
        proc = Proc(name, command, env, self.run_dir, pass_fds)
        self.procs.append(proc)
        return proc

    def _start_sandboxes(self, env: dict) -> None:
        for i in range(self.account_count):
            host = f"127.0.0.{2 + i}"
            args = [sys.executable, "-m", "sandbox", "--host", host, "--port", "0",
                    "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET,
                    "--redirect-uri", f"{self.url}/oauth/amocrm/callback", "--auto-approve",
                    "--account-id", str(31_000_000 + i), "--subdomain", f"bench{i}",
                    "--account-name", f"Бенчмарк {i}", "--latency-ms", str(self.sandbox_latency_ms)]
            for knob, value in self.sandbox_knobs.items():
                args += ["--set", f"{knob}={value}"]
            proc = self._spawn(f"sandbox-{i}", args, env)
            self.accounts.append(Account(index=i, sandbox_url="", proc=proc))
        for account in self.accounts:
            # --port 0: the sandbox binds, then names its address (never a port picked for it beforehand).
            account.sandbox_url = wait_until(lambda account=account: announced_url(account.proc), 30,
                                             f"sandbox {account.index} to start:\n{account.proc.tail()}")

    def start_web(self) -> Proc:
        # The Procfile's web, handed our already listening socket (the flag overrides gunicorn.conf.py's bind).
        fd = self.listener.fileno()
        self.web = self._spawn("web", f"{procfile_command('web')} --bind fd://{fd}", self.env(), pass_fds=(fd,))
        wait_until(lambda: self.http.get(f"{self.url}/livez", timeout=2).ok, 60,
                   f"gunicorn to answer on {self.url}:\n{self.web.tail()}")
        return self.web

    def start_worker(self) -> Proc:
        self.worker = self._spawn("worker", procfile_command("worker"), self.env())
        wait_until(lambda: "worker process is ready" in self.worker.log_path.read_text(errors="replace").lower()
                   or "worker is ready" in self.worker.log_path.read_text(errors="replace").lower(),
                   60, f"the Dramatiq worker to boot:\n{self.worker.tail()}")
        return self.worker

    # -- the Data API, as an admin would use it -------------------------------------------------
    def api(self, method: str, path: str, body: Any = None, ok=(200, 201, 202)) -> Any:
        response = self.http.request(method, f"{self.url}/api/v1{path}", json=body, timeout=60,
                                     headers={"Authorization": f"Bearer {self.api_token}"})
        if response.status_code not in ok:
            raise BenchError(f"{method} /api/v1{path} → {response.status_code}: {response.text[:500]}")
        return response.json()

    def _confirm_connect(self, page):
        """A connect started through the API is confirmed by a signed-in user of the account (issue 10 §1)."""
        if "/login" in page.url:
            page = self.http.post(page.url, timeout=60, data={
                "email": BENCH_ADMIN_EMAIL, "password": BENCH_ADMIN_PASSWORD, "csrf_token": _csrf(page.text)})
        if 'data-result="confirm"' in page.text:
            page = self.http.post(page.url, data={"csrf_token": _csrf(page.text)}, timeout=60)
        return page

    def _connect(self, account: Account) -> None:
        i = account.index
        site = self.api("POST", "/sites", {"name": f"Сайт {i}", "domain": f"shop{i}.example.ru"})
        default = self.api("POST", "/campaigns", {"name": "Без РК", "site_id": site["id"], "priority": 1000})
        telegram = self.api("POST", "/campaigns", {"name": "Telegram", "site_id": site["id"]})
        integration = self.api("POST", "/integrations", {
            "name": f"amoCRM {i}", "amocrm_url": account.sandbox_url, "token_url": f"{account.sandbox_url}/oauth2/access_token",
        })
        authorize = self.api("POST", f"/integrations/{integration['id']}/connect", {})["authorize_url"]
        page = self.http.get(authorize, timeout=60)  # the sandbox approves and redirects to our callback
        page = self._confirm_connect(page)
        if 'data-result="connected"' not in page.text:
            raise BenchError(f"OAuth connect of account {i} failed ({page.status_code}):\n{page.text[:800]}")
        fields = self.api("GET", f"/integrations/{integration['id']}/custom-fields")["data"]
        session_field = next(f for f in fields if f["entity"] == "leads" and f["name"] == "Сессия UIS")
        body = self.api("PATCH", f"/integrations/{integration['id']}", {
            "session_field_id": session_field["id"], "session_field_entity": "leads", "traffic_type": "campaign",
            "default_campaign_id": default["id"],
            "messenger_mappings": [{"origin": "telegram", "campaign_id": telegram["id"]}],
            "is_active": True,
        })
        account.integration_id = integration["id"]
        account.webhook_url = body["webhook_url"]
        account.session_field_id = session_field["id"]
        account.site_id = site["id"]

    def cpu_meter(self) -> CpuMeter:
        return CpuMeter(self)

    # -- the database ---------------------------------------------------------------------------
    def scalar(self, sql: str, **params) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def rows(self, sql: str, **params) -> list:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))

    def latencies_s(self, integration_id: int, talk_ids: list[int] | None = None) -> list[float]:
        """Seconds from the webhook's arrival (inbox row) to the request's commit, per recorded talk."""
        rows = self.rows(
            "select r.talk_id, extract(epoch from (r.recorded_at - e.received_at)) from requests r "
            "join webhook_events e on e.request_id = r.id and e.talk_id = r.talk_id where r.integration_id = :i "
            "and e.id = (select min(e2.id) from webhook_events e2 where e2.request_id = r.id)", i=integration_id)
        wanted = set(talk_ids) if talk_ids is not None else None
        return [float(seconds) for talk_id, seconds in rows if wanted is None or talk_id in wanted]

    def wait_recorded(self, integration_id: int, count: int, timeout_s: float) -> float:
        """Wait until `count` requests of the integration are committed; returns the seconds waited."""
        started = time.monotonic()
        wait_until(lambda: self.scalar("select count(*) from requests where integration_id = :i", i=integration_id) >= count,
                   timeout_s, f"{count} requests of integration {integration_id}", interval_s=0.2)
        return time.monotonic() - started


# -- where the CPU went -----------------------------------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK")


def _proc_stats() -> dict[int, tuple[int, int, int]]:
    """pid → (process group, CPU ticks used so far, ticks of its exited children it has reaped)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(entry)] = (int(fields[2]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14]))
    return out


def _machine_ticks() -> tuple[int, int]:
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return values[3] + values[4], sum(values)  # idle + iowait, all


class CpuMeter:
    """CPU seconds used during a measurement by the stack's processes (web, worker, sandboxes), by
    its PostgreSQL backends, and by everything else on the machine (other users included)."""

    def __init__(self, stack: "Stack"):
        self.stack = stack

    def _groups(self) -> dict[str, set[int]]:
        groups = {"web": {self.stack.web.pid} if self.stack.web else set(),
                  "worker": {self.stack.worker.pid} if self.stack.worker else set(),
                  "sandbox": {a.proc.pid for a in self.stack.accounts}}
        return groups

    def _pg_pids(self) -> set[int]:
        name = sa.make_url(psycopg_url(self.stack.database_url)).database
        return {int(r[0]) for r in self.stack.rows("select pid from pg_stat_activity where datname = :d", d=name)}

    def __enter__(self) -> "CpuMeter":
        self.pg_before = self._pg_pids()
        self.before = _proc_stats()
        self.machine_before = _machine_ticks()
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        after = _proc_stats()
        idle1, all1 = _machine_ticks()
        idle0, all0 = self.machine_before
        self.seconds = time.monotonic() - self.started
        pg = self._pg_pids() | self.pg_before
        used = {name: 0 for name in ("web", "worker", "sandbox", "postgres")}
        # A group's own processes plus the children they reaped, after minus before: gunicorn and
        # Dramatiq replace worker processes, whose CPU then shows in their parent's reaped-children time.
        for name, leaders in self._groups().items():
            total = lambda stats, leaders=leaders: sum(own + reaped for pgrp, own, reaped in stats.values() if pgrp in leaders)  # noqa: E731
            used[name] = total(after) - total(self.before)
        for pid in pg:
            if pid in after:
                used["postgres"] += after[pid][1] - self.before.get(pid, (0, 0, 0))[1]
        busy = (all1 - all0) - (idle1 - idle0)
        self.cpu_s = {name: ticks / _TICK for name, ticks in used.items()}
        self.cpu_s["everything else"] = max(busy - sum(used.values()), 0) / _TICK
        self.idle_pct = 100 * (idle1 - idle0) / max(all1 - all0, 1)

    def summary(self, requests: int | None = None) -> dict:
        out = {"seconds": round(self.seconds, 2), "machine_idle_pct": round(self.idle_pct, 1),
               "cpu_s": {k: round(v, 2) for k, v in self.cpu_s.items()}}
        if requests:
            out["cpu_ms_per_request"] = {k: round(v * 1000 / requests, 3) for k, v in self.cpu_s.items()}
        return out


# -- the machine, for the record ---------------------------------------------------------------------
def machine_info() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        mem_gib = None
    commit = os.environ.get("BENCH_COMMIT") or subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    if dirty and "BENCH_COMMIT" not in os.environ:
        commit += "+uncommitted"
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": mem_gib,
        "python": platform.python_version(), "platform": platform.platform(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "commit": commit,
    }


def dump_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str))
