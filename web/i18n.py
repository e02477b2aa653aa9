"""Russian first, English switchable (flask-babel 4).

The locale of a request is, in order: the choice made with the language switch (kept in the Flask
session and in a one-year cookie, so it survives logout), the logged-in user's saved `locale`, then
Russian. Our strings are English msgids with a complete Russian catalogue in
`web/translations/ru/LC_MESSAGES/messages.po`; Flask-Admin brings its own Russian catalogue.

`.mo` files are build products (git-ignored): `make setup` compiles them with `pybabel compile`, and
`compile_catalogues()` compiles any missing or stale one when the app starts, so a checkout that
skipped `make setup` (or a test run) still speaks Russian.
"""
from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, Flask, redirect, request, session, url_for

log = logging.getLogger(__name__)

LOCALES = ("ru", "en")
DEFAULT_LOCALE = "ru"
LOCALE_COOKIE = "cs_locale"
TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"

bp = Blueprint("i18n", __name__)


def select_locale() -> str:
    chosen = session.get("locale") or request.cookies.get(LOCALE_COOKIE)
    if chosen in LOCALES:
        return chosen
    try:
        from flask_login import current_user

        if current_user and current_user.is_authenticated and current_user.locale in LOCALES:
            return current_user.locale
    except Exception:  # noqa: BLE001 - no login manager (CLI) or no request user: fall through
        pass
    return DEFAULT_LOCALE


def current_locale() -> str:
    from flask_babel import get_locale

    locale = get_locale()
    return str(locale) if locale else DEFAULT_LOCALE


def safe_next(target: str | None, default: str) -> str:
    """Only a relative path on this site: no scheme, no host, no `//host` or `/\\host` tricks."""
    if not target or not isinstance(target, str) or len(target) > 2000:
        return default
    target = target.strip()
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(c) < 32 for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


@bp.route("/lang/<code>", methods=["GET", "POST"])
def switch(code: str):
    """The language switch: remembered in the session, a cookie, and the user's profile."""
    back = safe_next(request.values.get("next") or _referrer_path(), url_for("admin.index"))
    if code not in LOCALES:
        return redirect(back)
    session["locale"] = code
    try:
        from flask_login import current_user

        from web.extensions import db

        if current_user.is_authenticated:
            current_user.row.locale = code
            current_user.locale = code
            db.session.commit()
    except Exception:  # noqa: BLE001 - the choice still holds through the session and cookie
        log.warning("could not save the language choice", exc_info=True)
    response = redirect(back)
    response.set_cookie(LOCALE_COOKIE, code, max_age=365 * 24 * 3600, samesite="Lax", httponly=True,
                        secure=request.is_secure)
    return response


def _referrer_path() -> str | None:
    ref = request.referrer
    if not ref:
        return None
    parts = urlsplit(ref)
    if parts.netloc and parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _flask_admin_catalogues() -> dict[str, Path]:
    """Flask-Admin's own `admin.po` per locale we serve. Its shipped `.mo` files lag behind the `.po`
    (2.2.1's Russian `.mo` lacks e.g. «Не удалось создать запись.»), so we compile them ourselves
    into our translations folder, which `Admin(translations_path=…)` reads first."""
    import flask_admin

    root = Path(flask_admin.__file__).resolve().parent / "translations"
    return {locale: root / locale / "LC_MESSAGES" / "admin.po" for locale in LOCALES
            if (root / locale / "LC_MESSAGES" / "admin.po").exists()}


OVERRIDES = "flask_admin_overrides.po"  # our corrections to Flask-Admin's wording, per locale


def compile_catalogues(directory: Path = TRANSLATIONS_DIR, with_flask_admin: bool = True) -> list[Path]:
    """Compile our `messages.po` files (and Flask-Admin's `admin.po`, with our `flask_admin_overrides.po`
    on top) whose `.mo` is missing or older. Returns the files written."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    jobs = [(po, po.with_suffix(".mo"), po.parent.parent.name, None)
            for po in sorted(directory.glob("*/LC_MESSAGES/*.po")) if po.name != OVERRIDES]
    if with_flask_admin:
        for locale, po in _flask_admin_catalogues().items():
            overrides = directory / locale / "LC_MESSAGES" / OVERRIDES
            jobs.append((po, directory / locale / "LC_MESSAGES" / "admin.mo", locale,
                         overrides if overrides.exists() else None))
    written = []
    for po_path, mo_path, locale, overrides in jobs:
        newest = max(po_path.stat().st_mtime, overrides.stat().st_mtime if overrides else 0)
        if mo_path.exists() and mo_path.stat().st_mtime >= newest:
            continue
        try:
            with po_path.open("rb") as fh:
                catalog = read_po(fh, locale=locale)
            if overrides:
                with overrides.open("rb") as fh:
                    for message in read_po(fh, locale=locale):
                        if message.id:
                            catalog.delete(message.id)  # setting an existing id would keep its old string
                            catalog[message.id] = message
            mo_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = mo_path.with_name(mo_path.stem + ".tmp.mo")  # git-ignored like the .mo
            with tmp.open("wb") as fh:
                write_mo(fh, catalog, use_fuzzy=False)
            tmp.replace(mo_path)
            written.append(mo_path)
        except OSError as exc:  # a read-only deployment must have run `make setup`
            log.warning("cannot compile %s (%s); run `make setup` (pybabel compile -d web/translations)", po_path, exc)
    return written


if __name__ == "__main__":  # `python -m web.i18n`: what `make setup` runs after `pybabel compile`
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for path in compile_catalogues():
        log.info("compiled %s", path.relative_to(TRANSLATIONS_DIR.parent.parent))


def _account_zone() -> str:
    """Flask-Babel's `datetimeformat` and `format_datetime` show times in the account's zone."""
    from web.admin.dashboard_views import zone_name

    return zone_name()


def init_i18n(app: Flask) -> None:
    from web.extensions import babel

    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LOCALE)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR))
    compile_catalogues()
    babel.init_app(app, locale_selector=select_locale, timezone_selector=_account_zone)
    app.register_blueprint(bp)

    from web.messages import say

    app.jinja_env.filters["say"] = say  # {{ message|say }}: a core message in the page's language

    @app.context_processor
    def _locale_context():
        return {"current_locale": current_locale, "available_locales": LOCALES}
