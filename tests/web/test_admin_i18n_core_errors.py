"""core's catalog and integration-settings errors reach the admin as messages: Russian in Russian,
proper English in English (no Russian left in it), a messenger row named by its messenger."""
from __future__ import annotations

import re

import pytest

from core.amocrm.errors import HostNotAllowed
from core.amocrm.hosts import check_url
from core.integrations.settings import _click_window, activation_problems, set_mappings
from core.models import Integration
from core.platform.errors import ValidationFailed
from core.tracking.catalog import normalise_domain
from web.i18n import LOCALE_COOKIE

CYRILLIC = re.compile("[А-Яа-яЁё]")


def _said(call, *args):
    with pytest.raises((ValidationFailed, HostNotAllowed)) as info:
        call(*args)
    return info.value


def _errors():
    return [
        _said(normalise_domain, "not a domain"),
        _said(_click_window, -1),
        _said(check_url, "http://evil.example.com/", ("*.amocrm.ru",)),
        _said(set_mappings, None, Integration(account_id=1), [{"origin": " "}]),
        *activation_problems(None, Integration(status="new", traffic_type="source_site")),
    ]


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_core_errors_are_said_in_the_admins_language(app, lang):
    from web.admin.messages import translate

    with app.test_request_context("/", headers={"Cookie": f"{LOCALE_COOKIE}={lang}"}):
        said = [translate(e) for e in _errors()]
        assert all(said)
        if lang == "ru":
            assert said[0] == "'not a domain' — не доменное имя; укажите домен вида example.ru."
            assert all(CYRILLIC.search(s) for s in said), said
        else:
            assert said[0] == "'not a domain' is not a domain name; enter one like example.ru."
            assert said[1] == "The click window is a whole number of minutes from 0 (off) to 1440."
            assert not any(CYRILLIC.search(s) for s in said), said
            assert said[-4:] == ["connect the amoCRM account first («Connect»)",
                                 "choose the session custom field («Session custom field»)",
                                 "choose the default source («Traffic type»)", "choose the default site («Traffic type»)"]


def test_a_messenger_rows_error_names_its_messenger_else_its_number(app):
    from web.admin.messages import translate

    error = _said(set_mappings, None, Integration(account_id=1), [{"origin": "telegram", "campaign_id": None}])
    with app.test_request_context("/", headers={"Cookie": f"{LOCALE_COOKIE}=ru"}):
        assert translate(error, rows=["Telegram"]).startswith("Мессенджер Telegram: ")
        assert translate(error).startswith("Мессенджер 1: ")
    # The Data API keeps its English for programs.
    assert error.message == "messenger_mappings[0]: give a campaign_id, or a source_id and a site_id"
