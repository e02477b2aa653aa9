"""core's messages (core/platform/messages.py) in a person's language.

`say(message)` renders in the current request's language (flask-babel's catalogue, so our
messages.po decides). `translations_for(lang)` gives the catalogue of a language named by the
caller — the CSV export and the Data API's `lang` parameter, which may differ from the admin's — as
an object core's `render`, `channel_label` and the CSV writer accept.
"""
from __future__ import annotations

from functools import lru_cache

from babel.support import NullTranslations, Translations

from core.platform.messages import Message, render
from web.i18n import DEFAULT_LOCALE, LOCALES, TRANSLATIONS_DIR, compile_catalogues


def say(message: Message | None) -> str:
    from flask_babel import get_translations

    return render(message, get_translations())


def catalogues() -> dict[str, NullTranslations]:
    """Every language's catalogue, for core code that says a text in several (the dashboard)."""
    return {lang: translations_for(lang) for lang in LOCALES}


@lru_cache(maxsize=len(LOCALES))
def translations_for(lang: str | None) -> NullTranslations:
    lang = lang if lang in LOCALES else DEFAULT_LOCALE
    compile_catalogues(with_flask_admin=False)
    return Translations.load(str(TRANSLATIONS_DIR), [lang], domain="messages")
