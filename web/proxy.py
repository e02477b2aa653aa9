"""X-Forwarded-* headers count only when they come from a proxy we were told to trust.

`request.remote_addr` keys the rate limits and the visitor IP hash (web/tracking.py); with ProxyFix
always on, any client could pick its own address with one header. The trusted peers are the same
FORWARDED_ALLOW_IPS that gunicorn uses for the scheme (gunicorn.conf.py): addresses or networks, or
`*` behind a router that always overwrites the headers (Heroku). Empty — the default — trusts none."""
from __future__ import annotations

import ipaddress

from werkzeug.middleware.proxy_fix import ProxyFix


def parse_trusted(entries) -> tuple:
    """`*`, or networks; raises ValueError naming a bad entry."""
    networks = []
    for entry in entries:
        if entry == "*":
            return ("*",)
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network") from None
    return tuple(networks)


class TrustedProxyFix:
    def __init__(self, app, trusted: tuple):
        self.app = app
        self.trusted = trusted
        self.fixed = ProxyFix(app, x_for=1, x_proto=1, x_host=1)

    def peer_trusted(self, peer: str | None) -> bool:
        if not self.trusted:
            return False
        if self.trusted == ("*",):
            return True
        try:
            address = ipaddress.ip_address((peer or "").strip())
        except ValueError:
            return False  # a unix socket peer has no address: not trusted unless '*'
        return any(address in network for network in self.trusted)

    def __call__(self, environ, start_response):
        if self.peer_trusted(environ.get("REMOTE_ADDR")):
            return self.fixed(environ, start_response)
        return self.app(environ, start_response)
