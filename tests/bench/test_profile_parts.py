"""bench.profile's table: py-spy's collapsed stacks read, each stack counted in the first part it matches."""
from __future__ import annotations

from bench.profile import PARTS, collapsed, shares

PING = ("handle (gunicorn/workers/gthread.py:553);amocrm_webhook (web/webhooks.py:44);"
        "find_integration_by_webhook_token (core/inbox/webhooks.py:185);do_ping (sqlalchemy/dialects/postgresql/_psycopg_common.py:190)")
LOOKUP = "handle (gunicorn/workers/gthread.py:553);amocrm_webhook (web/webhooks.py:44);find_integration_by_webhook_token (core/inbox/webhooks.py:185)"
GUNICORN = "handle (gunicorn/workers/gthread.py:553);parse_headers (gunicorn/http/message.py:120)"


def test_collapsed_stacks_are_read_and_counted_in_their_first_part(tmp_path):
    raw = tmp_path / "web.txt"
    raw.write_text(f"{PING} 3\n{LOOKUP} 5\n{LOOKUP} 2\n{GUNICORN} 4\nmystery (x.py:1) 1\n"
                   "py-spy> Wrote raw flamegraph data\n")
    stacks = collapsed(raw)
    assert sum(stacks.values()) == 15
    table = dict(shares(stacks, PARTS["web"]))
    # The ping inside the lookup is the ping; the lookup's own samples are the lookup.
    assert table == {"pool pre-ping (SELECT 1)": 3, "token lookup (SELECT integration)": 7,
                     "gunicorn: HTTP parse, socket, threads": 4, "other": 1}
