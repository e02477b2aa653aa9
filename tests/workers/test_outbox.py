"""The one enqueue path (workers/outbox.py): sent by actor name, after the request or job that asked,
never when it failed; and the wiring that keeps it the only path (no broker built at import, no
function-level import of workers)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import dramatiq
import pytest

from core.platform.settings import PROJECT_ROOT
from workers import outbox
from workers.broker import OutboxMiddleware, make_broker


def queued(broker, queue=outbox.TALK_QUEUE) -> list[tuple[str, tuple]]:
    return [(m.actor_name, tuple(m.args)) for m in map(dramatiq.Message.decode, list(broker.queues[queue].queue))]


@pytest.fixture
def fresh_app(db_url, tmp_path):
    from tests.helpers.apps import dispose, make_app

    app = make_app(db_url, tmp_path)
    yield app
    dispose(app)


def test_a_request_sends_after_its_response_and_not_when_it_failed(fresh_app):
    broker = fresh_app.extensions["chatsource.broker"]
    seen_inside = []

    def ok():
        outbox.enqueue_talk_events([11, 12])
        seen_inside.append(queued(broker))  # nothing is sent while the view still runs
        return "ok"

    def boom():
        outbox.enqueue_talk_events([13])
        raise RuntimeError("the view failed after asking")

    fresh_app.add_url_rule("/_outbox/ok", "outbox_ok", ok)
    fresh_app.add_url_rule("/_outbox/boom", "outbox_boom", boom)
    client = fresh_app.test_client()
    assert client.get("/_outbox/ok").status_code == 200
    assert seen_inside == [[]]
    assert queued(broker) == [(outbox.PROCESS_TALK_EVENT, (11,)), (outbox.PROCESS_TALK_EVENT, (12,))]
    fresh_app.config["PROPAGATE_EXCEPTIONS"] = False
    assert client.get("/_outbox/boom").status_code == 500
    assert queued(broker) == [(outbox.PROCESS_TALK_EVENT, (11,)), (outbox.PROCESS_TALK_EVENT, (12,))]


@pytest.mark.parametrize("shape", ["embedded", "redis"])
def test_a_job_sends_when_it_returned_and_drops_when_it_raised(shape, fake_redis):
    broker = make_broker(redis_client=fake_redis if shape == "redis" else None)
    middleware = OutboxMiddleware()
    failed = dramatiq.Message(queue_name=outbox.TALK_QUEUE, actor_name=outbox.PROCESS_TALK_EVENT, args=(1,), kwargs={},
                              options={})
    middleware.before_process_message(broker, failed)
    assert dramatiq.Message.decode(failed.encode()) == failed  # a retried message is encoded again, options and all
    outbox.enqueue_talk_events([21])
    middleware.after_process_message(broker, failed, exception=RuntimeError("the job failed"))
    ok = failed.copy(args=(2,))
    middleware.before_process_message(broker, ok)
    outbox.enqueue_talk_event_retry(22, 0.5)
    outbox.enqueue_reconcile(7)
    middleware.after_process_message(broker, ok, result=None)
    if shape == "embedded":
        assert queued(broker) == []
        assert queued(broker, "talks.DQ") == [(outbox.PROCESS_TALK_EVENT, (22,))]  # delayed, by name
        assert queued(broker, outbox.MAINTENANCE_QUEUE) == [(outbox.RECONCILE_INTEGRATION, (7,))]
    else:
        names = {key.decode() for key in fake_redis.keys("chatsource:*")}
        assert {"chatsource:talks.DQ", "chatsource:maintenance"} <= names and "chatsource:talks" not in names


def test_outside_a_request_or_job_it_sends_at_once_and_a_broker_down_loses_nothing_silently(caplog):
    class Down(dramatiq.brokers.stub.StubBroker):
        def enqueue(self, message, *, delay=None):
            raise ConnectionError("redis is down")

    previous = dramatiq.broker.global_broker
    broker = make_broker()
    dramatiq.set_broker(broker)
    try:
        assert outbox.enqueue_talk_events([31, 32]) == 2
        assert queued(broker) == [(outbox.PROCESS_TALK_EVENT, (31,)), (outbox.PROCESS_TALK_EVENT, (32,))]
        dramatiq.set_broker(Down())
        assert outbox.enqueue_talk_events([33, 34]) == 0  # stops at the first failure: the sweeper sends them
        assert "the sweeper will pick it up" in caplog.text
    finally:
        dramatiq.set_broker(previous) if previous is not None else None
    with pytest.raises(ValueError):
        outbox.enqueue("chatsource.no_such_actor", 1)


def test_importing_the_app_builds_no_broker():
    """The web process builds its one broker in create_app; importing web/ and workers/ builds none
    (the worker CLI builds its own through `workers.broker:broker`)."""
    code = ("import dramatiq.broker, web, workers.actors, workers.broker, workers.embedded, workers.sweeper; "
            "print(dramatiq.broker.global_broker is None)")
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "True", result.stderr[-2000:]


def _function_level_imports_of_workers(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                names = ([a.name for a in inner.names] if isinstance(inner, ast.Import)
                         else [inner.module or ""] if isinstance(inner, ast.ImportFrom) else [])
                found += [f"{path.relative_to(PROJECT_ROOT)}:{inner.lineno} {n}" for n in names
                          if n == "workers" or n.startswith("workers.")]
    return found


def test_no_function_level_import_of_workers():
    """Enqueueing goes through workers/outbox.py imported at the top; nothing reaches for the actors
    (or the broker) from inside a function."""
    files = [p for top in ("core", "web", "workers") for p in (PROJECT_ROOT / top).rglob("*.py")]
    assert [hit for path in files for hit in _function_level_imports_of_workers(path)] == []
