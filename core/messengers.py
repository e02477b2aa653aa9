"""Talk `origin` codes amoCRM sends, and the chat channel each one means.

amoCRM documents only a few origin strings (amocrm-api.md §2); the rest come from public front-end
code or are unknown (VK, Viber, Avito and the site chat were found in no source). So the mapping is
data: known codes get a name and channel, and every unknown code is still recorded and can be
mapped by the admin from what production sends.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Messenger:
    origin: str
    name: str
    channel: str


KNOWN_MESSENGERS: tuple[Messenger, ...] = (
    Messenger("telegram", "Telegram", "telegram"),
    Messenger("waba", "WhatsApp Business (Cloud API)", "whatsapp"),
    Messenger("com.amocrm.amocrmwa", "WhatsApp Lite", "whatsapp"),
    Messenger("amochats.whatsapp", "WhatsApp", "whatsapp"),
    Messenger("instagram_business", "Instagram", "instagram"),
    Messenger("facebook", "Facebook Messenger", "facebook"),
    Messenger("vk", "ВКонтакте", "vk"),
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

# Origin substrings for codes we have not seen verbatim (guesses, documented in the README).
_CHANNEL_HINTS = (
    ("telegram", "telegram"),
    ("whatsapp", "whatsapp"),
    ("wa", "whatsapp"),
    ("instagram", "instagram"),
    ("facebook", "facebook"),
    ("viber", "viber"),
    ("vk", "vk"),
    ("avito", "avito"),
    ("tiktok", "tiktok"),
    ("livechat", "site_chat"),
    ("online_chat", "site_chat"),
    ("onlinechat", "site_chat"),
    ("crm_plugin", "site_chat"),
    ("amo_social_button", "site_chat"),
)


def channel_for_origin(origin: str | None) -> str:
    if not origin:
        return "unknown"
    origin = origin.strip().lower()
    known = _BY_ORIGIN.get(origin)
    if known:
        return known.channel
    for needle, channel in _CHANNEL_HINTS:
        if needle in origin:
            return channel
    return "other"


def messenger_name(origin: str) -> str:
    known = _BY_ORIGIN.get(origin)
    return known.name if known else origin
