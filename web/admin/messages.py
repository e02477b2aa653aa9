"""Core's messages for people, in the admin's language.

core says a problem as a `Message` (core/platform/messages.py): an error carries it as `said` (the conditions',
the catalog's and the integration settings' errors), activation's problems and connect warnings are
messages themselves. They are rendered with gettext; an error without one (English meant for the
Data API) is shown unchanged rather than hidden.
"""
from __future__ import annotations

from dataclasses import replace

from flask_babel import gettext

from core.platform.messages import Message
from core.platform.text import N_
from web.messages import say

# OAuth connect failures (core.integrations.connect.ConnectError.code); web/oauth.py shows the same texts.
CONNECT_ERRORS = {
    "yourdomain": N_("Replace YOURDOMAIN in «AmoCRM URL» and «Token URL» with your amoCRM account's domain."),
    "host_not_allowed": N_("This address is not an amoCRM or Kommo account; connecting to it is not allowed (AMOCRM_ALLOWED_HOSTS)."),
    "token_url_elsewhere": N_("The Token URL must be on the host of the AmoCRM URL: %(expected)s."),
    "no_client": N_("The integration has no client id and client secret."),
    "unknown_state": N_("This connection link is unknown. Start connecting again from the integration settings."),
    "state_reused": N_("This connection link was already used. Start connecting again."),
    "state_expired": N_("Connecting took longer than 30 minutes. Start again."),
    "denied": N_("Access in amoCRM was not granted. Connect again and press «Allow»."),
    "bad_callback": N_("amoCRM's answer is incomplete: no authorisation code or account address."),
    "code_rejected": N_("amoCRM rejected the authorisation code (it is valid for 20 minutes and only once). Connect again."),
    "amocrm_unavailable": N_("amoCRM did not answer. Try again in a minute."),
    "unknown_confirmation": N_("This confirmation link is unknown. Start connecting again from the integration settings."),
    "confirmation_used": N_("This connection was already confirmed or cancelled. Start connecting again."),
    "code_expired": N_("amoCRM's authorisation code is valid for 20 minutes and this one has expired. Connect again."),
    "wrong_account": N_("This amoCRM connection belongs to another Chatsource account: only its users can confirm it. Nothing was connected."),
}


def translate(message, rows: list[str] | None = None) -> str:
    """The message in the current language: a `Message`, an error's `said` message, else the text
    unchanged. `rows` names the messenger of each mapping row, so a mapping error (a message with an
    `index` param) names its table row."""
    said = message if isinstance(message, Message) else getattr(message, "said", None)
    if said is not None:
        index = said.params.get("index")
        if rows and isinstance(index, int) and 0 <= index < len(rows):
            said = replace(said, params={**said.params, "row": rows[index]})
        return say(said)
    message = getattr(message, "message", message)
    return str(message) if message else ""


def connect_error(code: str, fallback: str | None = None) -> str:
    msgid = CONNECT_ERRORS.get(code)
    if code == "token_url_elsewhere" and fallback:
        return gettext(msgid, expected=fallback.rsplit(": ", 1)[-1])
    return gettext(msgid) if msgid else (fallback or code)


def connect_error_fields(code: str, amocrm_url: str, token_url: str) -> list[str]:
    """The step 1 fields a connect failure is about, to mark them on the form."""
    if code == "yourdomain":
        return [name for name, value in (("amocrm_url", amocrm_url), ("token_url", token_url)) if "yourdomain" in value.lower()]
    if code == "host_not_allowed":
        return ["amocrm_url", "token_url"]
    if code == "token_url_elsewhere":
        return ["token_url"]
    if code == "no_client":
        return ["client_id", "client_secret"]
    return []
