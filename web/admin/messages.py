"""Core's messages for people, in the admin's language.

An error that carries `said` (a core/messages.py message: the conditions' errors) is rendered with
gettext directly. The rest of core still raises English text only (the Data API returns it as it
is); for those, each known shape below is an English msgid of our catalogue with the variable parts
as `%(name)s` — a table that shrinks as core's errors get codes; an unknown message is shown
unchanged rather than hidden.
"""
from __future__ import annotations

import re

from flask_babel import gettext

from core.text import N_
from web.messages import say

_PATTERNS: list[tuple[re.Pattern, str]] = [(re.compile(p, re.S), m) for p, m in (
    # catalog
    (r"name is required(?: \(Название авторизации\))?", N_("Enter a name.")),
    (r"name cannot be empty", N_("Enter a name.")),
    (r"name is longer than 200 characters", N_("The name is longer than 200 characters.")),
    (r"priority must be a whole number from 0 to 1000000 \(lower goes first\)",
     N_("The priority is a whole number from 0 to 1000000 (lower goes first).")),
    (r"domain is required, e\.g\. example\.ru", N_("Enter the site's domain, e.g. example.ru.")),
    (r"the site (?P<site>.+) already has the domain (?P<domain>\S+)",
     N_("The site «%(site)s» already has the domain %(domain)s: page views of a domain go to one site only.")),
    (r"(?P<value>.+) is not a domain name(?:, e\.g\. example\.ru)?", N_("%(value)s is not a domain name; enter one like example.ru.")),
    (r"site_id is required: an ad campaign belongs to a site", N_("Choose the site: an ad campaign belongs to a site.")),
    (r"(?:site|default_site_id:) (?P<id>\S+) does not exist in this account", N_("The site %(id)s does not exist in this account.")),
    # integrations
    (r"(?:amocrm_url|token_url) is required", N_("Enter the address.")),
    (r"client_id is amoCRM's integration ID.*", N_("The integration ID is amoCRM's ID of your integration "
                                                  "(Latin letters, digits and dashes, no spaces).")),
    (r"click_window_minutes must be a whole number of minutes from 0 \(off\) to (?P<max>\d+)",
     N_("The click window is a whole number of minutes from 0 (off) to %(max)s.")),
    (r"(?:amocrm_url|token_url): The amoCRM address is empty\.", N_("Enter the address.")),
    (r"(?:amocrm_url|token_url): The amoCRM address contains spaces or control characters\.",
     N_("The address contains spaces or control characters.")),
    (r"(?:amocrm_url|token_url): The amoCRM address is not a valid URL \((?P<error>.*)\)\.", N_("This is not a valid address (%(error)s).")),
    (r"(?:amocrm_url|token_url): The amoCRM address must start with https://\.", N_("The address must start with https://.")),
    (r"(?:amocrm_url|token_url): The amoCRM address must not contain a user name or password\.",
     N_("The address must not contain a user name or password.")),
    (r"(?:amocrm_url|token_url): The amoCRM address has no host name\.", N_("The address has no host name.")),
    (r"(?:amocrm_url|token_url): The host (?P<host>.+?) is not an amoCRM host we may send credentials to \(allowed: (?P<allowed>.*); set AMOCRM_ALLOWED_HOSTS to change this\)\.",
     N_("%(host)s is not an amoCRM or Kommo address, so we will not send credentials there (allowed: %(allowed)s; the server's AMOCRM_ALLOWED_HOSTS setting)."
        )),
    (r"(?:amocrm_url|token_url): Plain http is only allowed to this machine \(127\.0\.0\.1, localhost\); use https://(?P<host>.+)\.",
     N_("Plain http is allowed only to this machine (127.0.0.1, localhost); use https://%(host)s.")),
    (r"default_campaign_id: (?P<id>\S+) does not exist in this account", N_("The ad campaign %(id)s does not exist in this account.")),
    (r"default_source_id: (?P<id>\S+) does not exist in this account", N_("The source %(id)s does not exist in this account.")),
    (r"messenger_mappings\[(?P<i>\d+)\]: give a campaign_id, or a source_id and a site_id",
     N_("Messenger %(row)s: choose an ad campaign, or a source and a site.")),
    (r"messenger_mappings\[(?P<i>\d+)\]: give a campaign_id or a source \+ site, not both",
     N_("Messenger %(row)s: choose an ad campaign or a source and a site, not both.")),
    (r"messenger_mappings\[(?P<i>\d+)\]: origin (?P<origin>.+) is mapped twice", N_("The messenger %(origin)s is listed twice.")),
    (r"messenger_mappings\[(?P<i>\d+)\]\.origin is required.*", N_("Messenger %(row)s: enter the amoCRM origin code, e.g. telegram.")),
    (r"messenger_mappings\[(?P<i>\d+)\]\.\w+: (?P<id>\S+) does not exist in this account",
     N_("Messenger %(row)s: the chosen entity %(id)s does not exist in this account.")),
    (r"Token URL corrected to (?P<url>\S+) \(the account chosen in amoCRM\)\.",
     N_("Token URL corrected to %(url)s (the account chosen in amoCRM).")),
    # activation (core.integrations.activation_problems)
    (r"connect the amoCRM account first \(Подключить\)", N_("connect the amoCRM account first («Connect»)")),
    (r"reconnect the amoCRM account: its authorisation was revoked", N_("reconnect the amoCRM account: its authorisation was revoked")),
    (r"choose the session custom field \(Кастомное поле для сессии\)", N_("choose the session custom field («Session custom field»)")),
    (r"choose the default ad campaign \(Тип трафика\)", N_("choose the default ad campaign («Traffic type»)")),
    (r"choose the default source \(Тип трафика\)", N_("choose the default source («Traffic type»)")),
    (r"choose the default site \(Тип трафика\)", N_("choose the default site («Traffic type»)")),
)]

# OAuth connect failures (core.oauth_connect.ConnectError.code); web/oauth.py shows the same texts.
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
    """The message in the current language: an error's `said` message, else a text whose shape is
    known, else the text unchanged. `rows` names the messenger of each `messenger_mappings[i]`, so a
    mapping error names the table row."""
    said = getattr(message, "said", None)
    if said is not None:
        return say(said)
    message = getattr(message, "message", message)
    if not message:
        return ""
    text = str(message)
    for pattern, msgid in _PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            params = match.groupdict()
            if "i" in params:
                i = int(params.pop("i"))
                params["row"] = rows[i] if rows and i < len(rows) else str(i + 1)
            return gettext(msgid, **params) if params else gettext(msgid)
    return text


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
