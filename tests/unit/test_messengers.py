"""Talk origin codes → channels, as live amoCRM and Kommo accounts send them (seen on live accounts; the docs name few)."""
import pytest

from core.amocrm.messengers import CHANNEL_LABELS, channel_for_origin, channel_label, messenger_name
from web.messages import translations_for


@pytest.mark.parametrize("origin, channel", [
    ("telegram", "telegram"),
    ("waba", "whatsapp"),
    ("com.amocrm.amocrmwa", "whatsapp"),
    ("instagram_business", "instagram"),
    ("facebook", "facebook"),
    ("onlinechat", "site_chat"),
    ("com.wazzup24.wz", "whatsapp"),
    ("com.wazzup24.insta", "instagram"),  # was WhatsApp: the "wa" substring of "wazzup"
    ("com.wazzup.whatsapp", "whatsapp"),
    ("com.wazzup.instagram", "instagram"),
    ("com.amocrm.mail", "email"),
    ("tech.widget.e-chat", "other"),
    ("com.ringcentral.sms", "sms"),
    ("com.apple.bm", "apple_messages"),
])
def test_live_origin_codes(origin, channel):
    assert channel_for_origin(origin) == channel


@pytest.mark.parametrize("origin", ["amo.ext.12345", "com.example.swap", "wave", "kvk.chat", "gmail.widget"])
def test_codes_that_merely_contain_a_messenger_s_letters_stay_other(origin):
    assert channel_for_origin(origin) == "other"


def test_a_whole_word_in_an_unknown_code_still_names_its_messenger():
    assert channel_for_origin("com.example.whatsapp") == "whatsapp"
    assert channel_for_origin("ru.partner.Telegram-bot") == "telegram"


def test_no_origin_is_unknown():
    assert channel_for_origin(None) == channel_for_origin("") == channel_for_origin("  ") == "unknown"


def test_names_keep_their_capitals_and_unknown_codes_show_as_sent():
    assert messenger_name("com.wazzup24.insta") == "Wazzup Instagram"
    assert messenger_name("com.amocrm.mail") == "Email"
    assert messenger_name("amo.ext.MyChannel") == "amo.ext.MyChannel"


def test_every_channel_has_a_label_in_both_languages():
    from core.amocrm.messengers import KNOWN_MESSENGERS

    assert {m.channel for m in KNOWN_MESSENGERS} <= set(CHANNEL_LABELS)
    ru, en = translations_for("ru"), translations_for("en")
    assert channel_label("email", ru) == "Электронная почта" and channel_label("site_chat", en) == "Website chat"
    assert channel_label("site_chat", ru) == "Онлайн-чат на сайте" and channel_label("vk", en) == "VK"
    assert channel_label("brand_new", ru) == "brand_new"


def test_messenger_names_keep_their_capitals_in_reasons():
    """Issue 15 item 16: an origin amoCRM sends in lower case is named as the messenger is written."""
    from core.inbox import attribution_reasons
    from core.platform.messages import render

    assert messenger_name("instagram") == "Instagram" and messenger_name("FACEBOOK") == "Facebook Messenger"
    assert messenger_name("com.example.facebook") == "Facebook Messenger (com.example.facebook)"
    assert messenger_name("com.example.unknown") == "com.example.unknown"  # nothing to go on: the code as sent
    note = attribution_reasons.NO_MAPPING(messenger=messenger_name("instagram"))
    reason = attribution_reasons.DEFAULT(notes=[attribution_reasons.FIELD_EMPTY(), note],
                                         target=attribution_reasons.TO_NOTHING())
    assert render(reason, translations_for("ru")) == \
        "Поле сессии пусто; для мессенджера Instagram нет соответствия. По умолчанию: не задано"
    assert render(reason, translations_for("en")) == \
        "The session field is empty; there is no mapping for the messenger Instagram. By default: not set"


def test_the_site_chat_and_email_are_named_in_the_readers_language():
    """Issue 15 items 9/16: «Online chat» and «E-mail» were English words in the Russian reasons; the
    messengers without a brand are their channel's message, the brands stay as written."""
    from core.amocrm.messengers import messenger_said
    from core.inbox import attribution_reasons
    from core.platform.messages import Message, render

    ru, en = translations_for("ru"), translations_for("en")
    assert messenger_name("onlinechat", ru) == "Онлайн-чат на сайте" and messenger_name("onlinechat", en) == "Website chat"
    assert messenger_name("com.amocrm.mail", ru) == "Электронная почта" and messenger_name("com.amocrm.mail", en) == "Email"
    assert messenger_name("telegram", ru) == "Telegram" and messenger_said("telegram") == "Telegram"
    note = attribution_reasons.NO_MAPPING(messenger=messenger_said("onlinechat"))
    stored = Message.from_json(**dict(zip(("code", "params"), (note.to_json()["code"], note.to_json()["params"]))))
    assert render(stored, ru) == "для мессенджера Онлайн-чат на сайте нет соответствия"
    assert render(stored, en) == "there is no mapping for the messenger Website chat"
