"""The UI's catalogues: every string the code marks is in the Russian catalogue, translated, with the
same placeholders; and what core says in English reaches a Russian admin in Russian."""
from __future__ import annotations

import re

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from core.platform.settings import PROJECT_ROOT

TRANSLATIONS = PROJECT_ROOT / "web" / "translations"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _extracted() -> set:
    with open(PROJECT_ROOT / "babel.cfg") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    keywords = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
    found = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(str(PROJECT_ROOT), method_map, options_map, keywords):
        found.add(message if isinstance(message, str) else tuple(message))
    return found


def _catalogue(locale: str):
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", "rb") as fh:
        return read_po(fh, locale=locale)


def _key(message):
    return message.id if isinstance(message.id, str) else tuple(message.id)


@pytest.mark.parametrize("locale", ["ru", "en"])
def test_every_marked_string_is_in_the_catalogue(locale):
    catalogue = {_key(m) for m in _catalogue(locale) if m.id}
    missing = _extracted() - catalogue
    assert not missing, f"run `pybabel extract` + `pybabel update` (babel.cfg) and translate: {sorted(map(str, missing))[:10]}"


# Latin words a Russian string may keep: product names, addresses, code and settings.
TECHNICAL = {"amocrm", "kommo", "chatsource", "yourdomain", "webhook", "json", "origin", "client", "secret", "token", "oauth", "callback",
             "allowed", "hosts", "host", "http", "https", "localhost", "mycompany", "example", "shop", "mail", "telegram", "whatsapp",
             "yandex", "param", "value", "exclude", "false", "head", "update", "talk", "account",  # GET /api/v4/account
             "excel",  # the CSV export «для Excel»
             "worker", "procfile", "make"}  # «запустите процесс worker из Procfile (или «make run»)»


def test_the_russian_catalogue_is_complete_and_keeps_the_placeholders():
    problems = []
    for message in _catalogue("ru"):
        if not message.id:
            continue
        source = message.id if isinstance(message.id, str) else message.id[-1]
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        if not all(strings) or message.fuzzy:
            problems.append(f"untranslated: {source!r}")
            continue
        for string in strings:
            if set(PLACEHOLDER.findall(string)) != set(PLACEHOLDER.findall(source)):
                problems.append(f"placeholders differ: {source!r} → {string!r}")
            words = re.findall(r"[A-Za-z][A-Za-z_]{3,}", PLACEHOLDER.sub("", string))
            latin = {w.lower() for w in words if "_" not in w} - TECHNICAL  # utm_source & co. are code
            if latin:
                problems.append(f"English left in {string!r}: {sorted(latin)}")
    assert problems == []


def test_the_spec_wording_is_the_russian_ui_wording():
    spec = {"Connect account": "Подключить учетную запись", "Authorisation name": "Название авторизации", "Connect": "Подключить",
            "Session custom field": "Кастомное поле для сессии", "Traffic type": "Тип трафика",
            "Messengers and sources": "Соответствие мессенджеров и источников", "Active": "Активен", "Save": "Сохранить",
            "Script for your site": "Скрипт для вашего сайта", "Check the integration": "Проверить интеграцию",
            "Credentials": "Учетные данные", "Set up the webhook in amoCRM": "Настройте Webhook в amoCRM"}
    catalogue = {m.id: m.string for m in _catalogue("ru") if isinstance(m.id, str)}
    assert {k: catalogue.get(k) for k in spec} == spec


def test_core_messages_reach_the_admin_in_russian(app):
    from core.integrations.settings import ActivationBlocked, activation_problems
    from core.models import Integration
    from web.admin.messages import translate

    with app.test_request_context("/"):
        for traffic_type in ("campaign", "source_site"):
            integration = Integration(status="new", traffic_type=traffic_type)
            for message in activation_problems(None, integration):
                assert translate(message) != message and not re.search(r"\b(the|choose|connect)\b", translate(message)), message
        assert translate(ActivationBlocked(["x"]).message.split(": ")[-1]) == "x"  # unknown text passes through unchanged
        # A regex mistake is named in our words, not in RE2's English («missing ): (abc»).
        from core.tracking.conditions import ConditionError, validate_conditions

        with pytest.raises(ConditionError) as info:
            validate_conditions([[{"param": "utm_source", "op": "eq", "value": "x"}],
                                 [{"param": "utm_source", "op": "regex", "value": "(abc"}]])
        assert translate(info.value) == "Группа 2, условие 1: регулярное выражение с ошибкой: открывающая скобка ( не закрыта " \
                                        "(рядом с «(abc»)."


def test_missing_compiled_catalogues_are_compiled_on_start(tmp_path):
    from web.i18n import compile_catalogues

    target = tmp_path / "ru" / "LC_MESSAGES"
    target.mkdir(parents=True)
    (target / "messages.po").write_bytes((TRANSLATIONS / "ru" / "LC_MESSAGES" / "messages.po").read_bytes())
    assert {target / "messages.mo", target / "admin.mo"} <= set(compile_catalogues(tmp_path))
    assert compile_catalogues(tmp_path) == []  # up to date: nothing to do
    from babel.support import Translations

    assert Translations.load(str(tmp_path), ["ru"]).gettext("Traffic type") == "Тип трафика"
    # Flask-Admin's own catalogue, compiled fresh: its shipped .mo misses this one.
    assert Translations.load(str(tmp_path), ["ru"], "admin").gettext("Failed to create record.") == "Не удалось создать запись."


def test_our_corrections_to_flask_admins_russian_win(tmp_path):
    """Flask-Admin says «50 элементы» and «Добавить Фильтр»; flask_admin_overrides.po corrects them."""
    from babel.support import Translations

    from web.i18n import OVERRIDES, compile_catalogues

    target = tmp_path / "ru" / "LC_MESSAGES"
    target.mkdir(parents=True)
    (target / OVERRIDES).write_bytes((TRANSLATIONS / "ru" / "LC_MESSAGES" / OVERRIDES).read_bytes())
    written = compile_catalogues(tmp_path)
    assert target / "admin.mo" in written and not (target / "flask_admin_overrides.mo").exists()
    admin = Translations.load(str(tmp_path), ["ru"], "admin")
    assert (admin.gettext("items"), admin.gettext("Add Filter")) == ("записей", "Добавить фильтр")
    assert admin.gettext("Failed to create record.") == "Не удалось создать запись."  # the rest is Flask-Admin's
