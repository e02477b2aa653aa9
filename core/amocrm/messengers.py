"""Talk `origin` codes amoCRM sends, the chat channel each one means, and the channels' names.

amoCRM documents only a few origin strings (https://www.amocrm.ru/developers/content/crm_platform/talks-api);
the codes below are the ones seen on live accounts and in integrators' fixtures, plus Kommo's international channels from its
front-end bundle. The rest (VK, Viber, Avito and the amoCRM.ru site chat were found in no source)
stay data: an unknown code is recorded as channel "other" and the admin maps it from what
production sends. Guessing by substring misfired ("wa" made com.wazzup24.insta WhatsApp), so the
only guess left matches whole words of the code (`com.example.whatsapp` → WhatsApp).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from core.inbox.event_reasons import CHANNEL_EXCLUDED
from core.platform.messages import N_, Message, MessageKind, Translations, define, render


@dataclass(frozen=True)
class Messenger:
    origin: str
    name: str
    channel: str


KNOWN_MESSENGERS: tuple[Messenger, ...] = (
    Messenger("onlinechat", "Online chat", "site_chat"),  # Kommo's site chat
    Messenger("telegram", "Telegram", "telegram"),
    Messenger("waba", "WhatsApp Business (Cloud API)", "whatsapp"),
    Messenger("com.amocrm.amocrmwa", "WhatsApp Lite", "whatsapp"),
    Messenger("amochats.whatsapp", "WhatsApp", "whatsapp"),
    Messenger("com.wazzup24.wz", "Wazzup WhatsApp", "whatsapp"),
    Messenger("com.wazzup.whatsapp", "Wazzup WhatsApp", "whatsapp"),
    Messenger("instagram_business", "Instagram", "instagram"),
    Messenger("com.wazzup24.insta", "Wazzup Instagram", "instagram"),
    Messenger("com.wazzup.instagram", "Wazzup Instagram", "instagram"),
    Messenger("facebook", "Facebook Messenger", "facebook"),
    Messenger("com.apple.bm", "Apple Messages for Business", "apple_messages"),
    Messenger("com.ringcentral.sms", "RingCentral SMS", "sms"),
    Messenger("com.amocrm.mail", "E-mail", "email"),  # e-mail conversations are talks too (live accounts)
    Messenger("tech.widget.e-chat", "E-chat", "other"),  # a widget for several messengers: which one is not in the code
    Messenger("vk", "VK", "vk"),  # the brand, the same in both languages
    Messenger("viber", "Viber", "viber"),
    Messenger("avito", "Avito", "avito"),
    Messenger("tiktok-kommo", "TikTok", "tiktok"),
    Messenger("com.kommo.tiktokint", "TikTok", "tiktok"),
    Messenger("tiktok_kommo", "TikTok", "tiktok"),
    Messenger("mercado-libre", "Mercado Libre", "mercadolibre"),
    Messenger("mercadol", "Mercado Libre", "mercadolibre"),
    Messenger("lazada", "Lazada", "lazada"),
    Messenger("com.lazada.kommo", "Lazada", "lazada"),
    Messenger("lazada-integration", "Lazada", "lazada"),
)
_BY_ORIGIN = {m.origin: m for m in KNOWN_MESSENGERS}

# Whole words of an unknown code that name their messenger and nothing else.
_CHANNEL_WORDS = {
    "telegram": "telegram", "whatsapp": "whatsapp", "instagram": "instagram", "facebook": "facebook",
    "viber": "viber", "avito": "avito", "tiktok": "tiktok", "vkontakte": "vk",
}
_WORD = re.compile(r"[a-z0-9]+")

# The channels of requests, as the reports, the dashboard and the channel setting name them: one
# message each ("channel.<key>", English msgid; the Russian is in the catalogue).
CHANNEL_LABELS: dict[str, MessageKind] = {key: define(f"channel.{key}", name) for key, name in (
    ("site_chat", N_("Website chat")),
    ("vk", N_("VK")),
    ("avito", N_("Avito")),
    ("email", N_("Email")),
    ("other", N_("Other channel")),
    ("unknown", N_("Unknown channel")),
)}
# Brand names are the same in every language: said as they are, never looked up in a catalogue.
CHANNEL_LABELS.update({key: define(f"channel.{key}", name, literal=True) for key, name in (
    ("telegram", "Telegram"), ("whatsapp", "WhatsApp"), ("instagram", "Instagram"), ("facebook", "Facebook Messenger"),
    ("viber", "Viber"), ("tiktok", "TikTok"), ("mercadolibre", "Mercado Libre"), ("lazada", "Lazada"),
    ("apple_messages", "Apple Messages for Business"), ("sms", "SMS"),
)})
# Channels an integration does not pass until the admin switches them on: the spec passes chats
# (the site chat and messengers), and e-mail conversations are not chats.
DEFAULT_EXCLUDED_CHANNELS = ("email",)


def _known(origin: str | None) -> Messenger | None:
    if not origin:
        return None
    origin = origin.strip()
    return _BY_ORIGIN.get(origin) or _BY_ORIGIN.get(origin.lower())


def channel_for_origin(origin: str | None) -> str:
    if not origin or not origin.strip():
        return "unknown"
    known = _known(origin)
    if known:
        return known.channel
    for word in _WORD.findall(origin.lower()):
        if word in _CHANNEL_WORDS:
            return _CHANNEL_WORDS[word]
    return "other"


# Messengers without a brand of their own (the site chat, e-mail) are named by their channel, in the
# reader's language; every other name is a brand, the same in every language.
_NAMED_BY_CHANNEL = ("site_chat", "email")


def messenger_said(origin: str) -> Message | str:
    """The messenger of `origin` as a message param: the channel's message for the site chat and
    e-mail (rendered in the reader's language), the brand name as it is written otherwise."""
    known = _known(origin)
    if known and known.channel in _NAMED_BY_CHANNEL:
        return CHANNEL_LABELS[known.channel]()
    return _brand_name(origin)


def messenger_name(origin: str, translations: Translations | None = None) -> str:
    """The messenger of `origin` in the language of `translations` (English without): see `messenger_said`."""
    said = messenger_said(origin)
    return render(said, translations) if isinstance(said, Message) else said


def _brand_name(origin: str) -> str:
    """A known code's messenger name; an unknown code whose words name a messenger says that name
    with its capitals (`instagram` → «Instagram», `com.x.facebook` → «Facebook Messenger (com.x.facebook)»);
    anything else is the code as amoCRM sent it."""
    known = _known(origin)
    if known:
        return known.name
    channel = channel_for_origin(origin)
    if channel in ("other", "unknown"):
        return origin
    name = CHANNEL_LABELS[channel].template  # brand names (literal); the others are not found by words
    return name if name.casefold() == origin.strip().casefold() else f"{name} ({origin})"


def channel_message(channel: str | None) -> Message | None:
    kind = CHANNEL_LABELS.get(channel or "unknown")
    return kind() if kind else None


def channel_label(channel: str | None, translations: Translations | None = None) -> str:
    """The channel's name in the language of `translations` (English without)."""
    message = channel_message(channel)
    return render(message, translations) if message else (channel or "")


def excluded_channel_reason(excluded_channels, origin: str | None) -> Message | None:
    """Why a talk from `origin` is not passed (its channel is switched off in the integration), or
    None when it is passed. Shown on the event; switching the channel on and replaying records it."""
    channel = channel_for_origin(origin)
    if channel not in (excluded_channels or ()):
        return None
    return CHANNEL_EXCLUDED(channel=channel_message(channel))


# The `service` amoCRM's site button passes to `onButtonClick(service, link)` (amocrm-api.md §6) and
# the channel of the chat it opens. Only `livechat` (the button's own online chat) was seen in public
# code (§2 [obs]); the messenger names are guesses from the icons' names and the talk origins, so the
# link the button opens is read as well (`t.me/…` is Telegram whatever the service was called).
BUTTON_SERVICES = {
    "livechat": "site_chat", "onlinechat": "site_chat",
    "telegram": "telegram", "tg": "telegram",
    "whatsapp": "whatsapp", "wa": "whatsapp", "waba": "whatsapp",
    "viber": "viber",
    "vk": "vk", "vkontakte": "vk",
    "facebook": "facebook", "messenger": "facebook", "fb": "facebook",
    "instagram": "instagram", "instagram_business": "instagram",
    "avito": "avito",
}
_LINK_HOSTS = {
    "t.me": "telegram", "telegram.me": "telegram", "wa.me": "whatsapp", "api.whatsapp.com": "whatsapp",
    "vk.me": "vk", "vk.com": "vk", "m.me": "facebook", "ig.me": "instagram", "instagram.com": "instagram",
    "avito.ru": "avito",
}
_LINK_SCHEMES = {"tg": "telegram", "whatsapp": "whatsapp", "viber": "viber"}


def channel_for_button(service: str | None, link: str | None = None) -> str:
    """The channel a click on the button's icon opens: by the service's name, else by its link's
    host or scheme, else the talk-origin rules; "other" when nothing names it."""
    name = (service or "").strip().lower()
    if name in BUTTON_SERVICES:
        return BUTTON_SERVICES[name]
    by_link = _channel_for_link(link)
    if by_link:
        return by_link
    channel = channel_for_origin(name) if name else "unknown"
    return "other" if channel == "unknown" else channel


def _channel_for_link(link: str | None) -> str | None:
    text = (link or "").strip().lower()
    scheme, sep, rest = text.partition(":")
    if not sep:
        return None
    if scheme in _LINK_SCHEMES:
        return _LINK_SCHEMES[scheme]
    host = rest.lstrip("/").split("/", 1)[0].split("?", 1)[0].split(":", 1)[0]
    host = host[4:] if host.startswith("www.") else host
    return _LINK_HOSTS.get(host)
