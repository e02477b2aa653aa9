"""The sandbox's stores guard their data with one lock, so an operation that spans stores (a talk's change
and its event-log entry, a reset, knobs that touch OAuth and the rate window) is atomic."""
from __future__ import annotations

import threading

from sandbox.state import SandboxState


def test_every_store_shares_the_states_one_lock():
    state = SandboxState()
    stores = {name: getattr(state, name) for name in ("account", "traffic", "oauth", "custom_fields", "event_log",
                                                       "crm", "hooks")}
    assert {name: store.lock is state.lock for name, store in stores.items()} == dict.fromkeys(stores, True)


def test_a_chat_started_while_another_thread_holds_the_lock_waits_for_it():
    state = SandboxState()
    started = threading.Event()
    with state.lock:
        worker = threading.Thread(target=lambda: (state.create_chat({"name": "Анна"}, notify=False), started.set()))
        worker.start()
        assert not started.wait(0.5)  # the CRM store waits for the lock the test holds
        assert len(state.talks) == 0 and state.event_log.events == []
    assert started.wait(10)
    worker.join(10)
    assert len(state.talks) == 1
