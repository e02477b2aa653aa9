"""gunicorn settings (Heroku's python-getting-started shape, plus Redash's max_requests)."""
import os
import sys

from gunicorn.glogging import Logger

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the console script's path is its bin dir
from core.platform.log_redaction import CONFIRM_TOKEN, OAUTH_CALLBACK, OAUTH_SECRETS, WEBHOOK_TOKEN, RedactSecrets

bind = [f"{os.environ.get('BIND_HOST', '0.0.0.0')}:{os.environ.get('PORT', '5000')}"]
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = 20
graceful_timeout = 20  # Heroku sends SIGKILL 30 s after SIGTERM
keepalive = 5
# Recycle workers now and then (Redash's guard against slow leaks), but rarely: a restart re-imports
# the app (~1 s of CPU), and at 1,000 webhooks/s a limit of 1,000 restarted a worker every second and
# halved the throughput (bench.webhook_ingest, docs/benchmarks.md).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "50000"))
max_requests_jitter = max_requests // 10
accesslog = "-"
errorlog = "-"
preload_app = False  # no DB or Redis connection may be shared across the fork
# gunicorn 27's control socket lives at one path per user (~/.gunicorn/gunicorn.ctl), shared by every
# gunicorn on the machine (benchmarks, tests and a dev server side by side); we never use it.
control_socket_disable = True
# Whose X-Forwarded-Proto/-For to believe: nobody unless told (the app reads the same variable for
# X-Forwarded-For, web/proxy.py). Heroku's router overwrites those headers: FORWARDED_ALLOW_IPS='*' there.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "")

class RedactingLogger(Logger):
    """The webhook url's path is its secret: the access log shows /webhooks/amocrm/***, and so does the
    error log ("Error handling request /webhooks/amocrm/…" and its traceback). The OAuth callback's
    one-time code and state likewise."""

    def setup(self, cfg):
        super().setup(cfg)
        if not any(isinstance(f, RedactSecrets) for f in self.error_log.filters):
            self.error_log.addFilter(RedactSecrets())

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        callback = OAUTH_CALLBACK in str(atoms.get("U", ""))
        for key in ("r", "U", "q"):
            if key in atoms and isinstance(atoms[key], str):
                atoms[key] = WEBHOOK_TOKEN.sub(r"\1***", atoms[key])
                atoms[key] = CONFIRM_TOKEN.sub(r"\1***", atoms[key])
                if callback:
                    atoms[key] = OAUTH_SECRETS.sub(r"\1***", atoms[key])
        return atoms


logger_class = RedactingLogger


def post_worker_init(worker):
    """Embedded mode (no REDIS_URL): each web process runs its own Dramatiq worker thread."""
    from web import start_embedded_worker

    start_embedded_worker(worker.wsgi)
