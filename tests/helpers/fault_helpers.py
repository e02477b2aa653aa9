"""Private servers and processes for the fault tests: a redis-server and a PostgreSQL cluster of our
own (never the shared ones, which other suites use at the same time), and the Procfile's Dramatiq
worker as a real subprocess that can be SIGKILLed. The two servers listen on unix sockets only, in
directories of their own: no TCP port is picked before the server binds it, so no other process can
take it in between (and a restart finds its address free)."""
from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

from bench.harness import wait_until

ROOT = Path(__file__).resolve().parents[2]


class ServiceMissing(RuntimeError):
    """A binary the fault tests need is not installed; the message says which and how to get it."""


def wait_for(predicate, timeout_s: float, what: str, interval_s: float = 0.05):
    """bench's poll loop (bench may not import tests; tests may import bench), failing the test."""
    return wait_until(predicate, timeout_s, what, interval_s, error=AssertionError)


def _socket_answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(0.2)
        return s.connect_ex(str(path)) == 0


def _short_temp_dir(prefix: str) -> Path:
    """A unix socket path must fit in 107 bytes; pytest's tmp_path of a long test name may not."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp" if os.path.isdir("/tmp") else None))


class PrivateRedis:
    """`redis-server --port 0 --unixsocket <own dir>/redis.sock --save '' --appendonly no` (no TCP):
    stop() is a crash (SIGKILL), start() brings it back empty at the same socket, as a restarted Redis
    without persistence would be. close() stops it and removes its socket directory."""

    def __init__(self, workdir: Path):
        self.binary = shutil.which("redis-server")
        if not self.binary:
            raise ServiceMissing("redis-server is not installed (apt-get install redis-server)")
        self.socket_dir = _short_temp_dir("cs-redis-")
        self.socket = self.socket_dir / "redis.sock"
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}?db=0"

    def start(self) -> "PrivateRedis":
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        wait_for(lambda: _socket_answers(self.socket), 10, f"redis-server on {self.socket}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None
        wait_for(lambda: not _socket_answers(self.socket), 10, "redis-server to stop")

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.socket_dir, ignore_errors=True)


def _pg_bin(name: str) -> str:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    path = candidates[0] if candidates else shutil.which(name)
    if not path:
        raise ServiceMissing(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")
    return path


class PrivatePostgres:
    """A throwaway PostgreSQL cluster (initdb in a temp dir, fsync off), listening only on the unix
    socket in its own directory (`listen_addresses=''`, so its port number is only the socket's name),
    run as the `postgres` OS user when we are root, since the server refuses to run as root."""

    SOCKET_PORT = 5432  # names the socket file .s.PGSQL.5432 in our own directory; no TCP port is bound

    def __init__(self):
        self.initdb, self.pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        self.base = _short_temp_dir("cs-faults-pg-")
        self.data = self.base / "data"
        self.sockets = self.base / "sockets"
        self.log = self.base / "postgres.log"
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.base, "postgres", "postgres")

    def _run(self, args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = (["runuser", "-u", "postgres", "--"] if self.as_postgres else []) + args
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({result.returncode}): {result.stderr[-1500:]}\n{self._log_tail()}")
        return result

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])
        except OSError:
            return ""

    def init(self) -> "PrivatePostgres":
        self._run(["mkdir", "-p", str(self.sockets)])
        self._run([self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                   "--locale=C", "--no-sync"], timeout=120)
        return self

    def start(self) -> None:
        options = (f"-p {self.SOCKET_PORT} -k {self.sockets} -c listen_addresses='' -c fsync=off "
                   "-c full_page_writes=off -c max_connections=60")
        # Not synchronous_commit=off: a crash would lose commits already acknowledged, i.e. webhooks
        # answered 200 (this test caught exactly that). fsync=off only risks an OS crash.
        self._run([self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "30", "start"])

    def stop(self, mode: str = "immediate") -> None:
        """`immediate` is a crash as far as clients can tell: connections drop, recovery on start."""
        self._run([self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop"])

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@/{database}?host={self.sockets}&port={self.SOCKET_PORT}"

    def create_database(self, name: str) -> str:
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(f'create database "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)

    def destroy(self) -> None:
        if self.running():
            try:
                self.stop("immediate")
            except Exception:
                pass
        shutil.rmtree(self.base, ignore_errors=True)


class WorkerProcess:
    """The Procfile's worker (`dramatiq workers.broker:broker workers.actors`), one process, as a subprocess
    in its own process group: kill9() takes down the dramatiq parent and its worker child at once."""

    def __init__(self, env: dict, log_path: Path, threads: int = 2):
        self.env = env
        self.log_path = log_path
        self.threads = threads
        self.proc: subprocess.Popen | None = None
        self._offset = 0

    def start(self, timeout_s: float = 30) -> "WorkerProcess":
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dramatiq", "workers.broker:broker", "workers.actors", "--processes", "1",
             "--threads", str(self.threads), "--queues", "talks", "maintenance", "--worker-shutdown-timeout", "5000"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        wait_for(lambda: "ready for action" in self.log() or self.proc.poll() is not None, timeout_s,
                 "the Dramatiq worker to boot")
        if self.proc.poll() is not None:
            raise AssertionError(f"the worker exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
        return self

    def log(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    pass
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait(10)


# -- what every fault test checks at the end ---------------------------------------------------------------
def requests_per_talk(services, integration_id: int) -> dict[int, int]:
    from core.models import ChatRequest

    with services.session_factory() as session:
        rows = session.execute(
            sa.select(ChatRequest.talk_id, sa.func.count()).where(ChatRequest.integration_id == integration_id)
            .group_by(ChatRequest.talk_id)
        ).all()
    return {talk_id: n for talk_id, n in rows}


def event_statuses(services, integration_id: int) -> dict[int, list[str]]:
    """talk id → statuses of its closed-talk events, oldest first."""
    from core.inbox.webhooks import is_closed_item
    from core.models import WebhookEvent

    out: dict[int, list[str]] = {}
    with services.session_factory() as session:
        for event in session.scalars(sa.select(WebhookEvent).where(WebhookEvent.integration_id == integration_id)
                                     .order_by(WebhookEvent.id)):
            if is_closed_item(event.item):
                out.setdefault(event.talk_id, []).append(event.status)
    return out


def assert_each_closed_talk_recorded_once(services, integration_id: int, talk_ids) -> None:
    """Exactly one request per closed talk, none for anything else, and no closed-talk event left
    waiting, stuck, parked or failed."""
    expected = sorted(set(talk_ids))
    per_talk = requests_per_talk(services, integration_id)
    statuses = event_statuses(services, integration_id)
    missing = sorted(set(expected) - set(per_talk))
    assert per_talk == {t: 1 for t in expected}, (
        f"requests per talk differ: missing {missing} (their events: {[statuses.get(t) for t in missing]}), "
        f"extra {sorted(set(per_talk) - set(expected))}, duplicated {sorted(t for t, n in per_talk.items() if n > 1)}"
    )
    unsettled = {t: s for t, s in statuses.items() if set(s) - {"done"}}
    assert not unsettled, f"closed-talk events not done: {unsettled}"


def wait_recorded(services, integration_id: int, count: int, timeout_s: float) -> None:
    wait_for(lambda: sum(requests_per_talk(services, integration_id).values()) >= count, timeout_s,
             f"{count} requests of integration {integration_id}", interval_s=0.2)


def open_and_close(amo, setup, count: int, prefix: str = "Клиент") -> list[int]:
    """Chats with a contact and a lead in the sandbox, closed by a manager: each close posts
    update_talk (is_in_work=0) to our webhook. Returns the talk ids."""
    talk_ids = []
    for i in range(count):
        chat = amo.state.create_chat(contact={"name": f"{prefix} {i}", "phones": [f"+7916{len(prefix) % 10}{i:06d}"]},
                                     lead={}, origin="telegram")
        talk_ids.append(chat["talk_id"])
    for talk_id in talk_ids:
        amo.state.close_talk(talk_id, force_close=True, control=True)
    return talk_ids


def delivery_codes(amo, talk_ids) -> list[int | None]:
    wanted = set(talk_ids)
    return [d["status_code"] for d in amo.state.list_deliveries() if wanted & set(d.get("talk_ids") or [])]
