"""``python -m sandbox --host 127.0.0.1 --port 8765 [--client-id X --client-secret Y --redirect-uri URL] [--seed demo]``"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .settings import SETTINGS_SCHEMA, SettingsError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sandbox", description="amoCRM (Kommo) API sandbox: one account.")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765,
                   help="port (default 8765); 0 = one the system picks, printed on the first line")
    p.add_argument("--account-host", help="host:port used as OAuth referer and in links (default HOST:PORT)")
    p.add_argument("--client-id", default=os.environ.get("SANDBOX_CLIENT_ID"), help="env SANDBOX_CLIENT_ID")
    p.add_argument("--client-secret", default=os.environ.get("SANDBOX_CLIENT_SECRET"),
                   help="env SANDBOX_CLIENT_SECRET")
    p.add_argument("--redirect-uri", default=os.environ.get("SANDBOX_REDIRECT_URI"), help="env SANDBOX_REDIRECT_URI")
    p.add_argument("--client-name", default=os.environ.get("SANDBOX_CLIENT_NAME"), help="app name on the consent page")
    p.add_argument("--seed", choices=["demo"], help="add demo contacts, leads and open talks")
    p.add_argument("--subdomain", help="account subdomain")
    p.add_argument("--account-name", help="account name")
    p.add_argument("--account-id", type=int, help="account id")
    p.add_argument("--auto-approve", action="store_true", help="skip the OAuth consent page")
    p.add_argument("--refresh-grace", action="store_true", help="Kommo refresh rule (old token valid until new used)")
    p.add_argument("--rate-limit", type=int, help="requests per sliding second (default 7; 0 = off)")
    p.add_argument("--latency-ms", type=int, help="latency added to every API call")
    p.add_argument("--deliver-async", action="store_true", help="send webhooks from a background thread")
    p.add_argument("--allow-remote-control", action="store_true",
                   help="serve / and /_sandbox to non-loopback clients (e.g. inside a container)")
    p.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE",
                   help="any knob of /_sandbox/settings, repeatable (lists: comma separated)")
    return p


def settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for item in args.set:
        if "=" not in item:
            raise SettingsError(f"--set expects KNOB=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        key = key.strip()
        if key not in SETTINGS_SCHEMA:
            raise SettingsError(f"unknown knob {key!r}")
        settings[key] = value
    mapping = {
        "client_id": args.client_id, "client_secret": args.client_secret, "redirect_uri": args.redirect_uri,
        "client_name": args.client_name, "seed": args.seed, "subdomain": args.subdomain,
        "account_name": args.account_name, "account_id": args.account_id, "rate_limit": args.rate_limit,
        "latency_ms": args.latency_ms,
    }
    for key, value in mapping.items():
        if value is not None:
            settings[key] = value
    for flag in ("auto_approve", "refresh_grace", "deliver_async", "allow_remote_control"):
        if getattr(args, flag):
            settings[flag] = True
    # With --port 0 the port is known once bound: main() sets the host then (SandboxState.ensure_host).
    settings["account_host"] = args.account_host or (f"{args.host}:{args.port}" if args.port else None)
    return settings


# The sandbox hands out tokens for a fake account and lets anyone on loopback drive it: it is a
# development tool. Like the product, an unset APP_ENV means production, so it must be asked for.
RUNS_IN = ("development", "test")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    app_env = (os.environ.get("APP_ENV") or "production").strip().lower()
    if app_env not in RUNS_IN:
        print(f"sandbox: runs only in development (APP_ENV is {app_env!r}); "
              "start it with APP_ENV=development, as `make sandbox` and `make demo` do", file=sys.stderr)
        return 2
    try:
        settings = settings_from_args(args)
        from .app import create_sandbox_app
        from .state import SandboxState

        state = SandboxState(**settings)
    except SettingsError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2
    if any(settings.get(k) for k in ("client_id", "client_secret", "redirect_uri")) and not state.clients:
        print("sandbox: --client-id, --client-secret and --redirect-uri must be given together", file=sys.stderr)
        return 2
    app = create_sandbox_app(state)
    from werkzeug.serving import make_server

    server = make_server(args.host, args.port, app, threaded=True)
    state.ensure_host(f"{args.host}:{server.server_port}")
    base = f"http://{state.account_host}"
    print(f"amoCRM sandbox «{state.settings['account_name']}» on {base}", flush=True)
    print(f"  demo page        {base}/", flush=True)
    print(f"  authorize        {base}/oauth?client_id=...&state=...", flush=True)
    print(f"  token endpoint   {base}/oauth2/access_token   (referer = {state.account_host})", flush=True)
    print(f"  control API      {base}/_sandbox/settings", flush=True)
    for c in state.clients.values():
        print(f"  OAuth app        {c['client_id']} -> {c['redirect_uri']}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        state.deliverer.stop()
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
