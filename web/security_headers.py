"""Browser-side defences of our own pages: a Content-Security-Policy without inline script, and HSTS.

Every HTML page we render (the admin, the sign-in page, the OAuth result) runs only scripts served
from our own origin: an injected `<script>` or `onclick=` in a page — say, through a talk's contact
name shown in Raw data — does not run. Our pages keep their data in `data-*` attributes and
`<script type="application/json">` blocks (never executed) and their code in web/static/admin/.
Styles stay allowed inline: Flask-Admin and Bootstrap write `style=` attributes, and a style cannot
run code. HSTS goes out in production only (PUBLIC_URL is https there); browsers ignore it over http."""
from __future__ import annotations

from flask import Flask

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'self'",
    "frame-ancestors 'none'",
))
HSTS = "max-age=31536000; includeSubDomains"


def install(app: Flask, production: bool) -> None:
    @app.after_request
    def _security_headers(response):
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if production:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response
