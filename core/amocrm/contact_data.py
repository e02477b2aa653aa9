"""Reading amoCRM entities: the contact's name, first phone (E.164, and as held) and first email, and a custom
field's value (the session id). Field values come in the v4 shape `custom_fields_values[{field_id,
field_code, values[{value, enum_code|enum}]}]`, which may be null (https://www.amocrm.ru/developers/content/crm_platform/contacts-api)."""
from __future__ import annotations

import phonenumbers

PHONE_NAMES = {"телефон", "phone", "тел.", "телефон контакта"}
EMAIL_NAMES = {"email", "e-mail", "почта", "эл. почта"}


def _fields(entity: dict | None) -> list[dict]:
    if not entity:
        return []
    values = entity.get("custom_fields_values")
    return values if isinstance(values, list) else []


def _first_value(field: dict) -> str | None:
    for v in field.get("values") or []:
        if isinstance(v, dict) and v.get("value") not in (None, ""):
            return str(v["value"]).strip()
    return None


def _first_of(entity: dict | None, code: str, names: set[str]) -> str | None:
    fields = _fields(entity)
    by_code = [f for f in fields if str(f.get("field_code") or "").upper() == code]
    by_name = [f for f in fields if str(f.get("field_name") or "").strip().lower() in names]
    for field in by_code + by_name:
        value = _first_value(field)
        if value:
            return value
    return None


def _parse(text: str, region: str | None):
    try:
        return phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None


def normalise_phone(raw: str | None, region: str = "RU") -> str | None:
    """E.164 when the number parses; otherwise the raw text trimmed.

    A number without "+" is read two ways: as written with a "+" in front (messenger-created
    contacts hold `5521912345678`, Brazil) and as a national number of `region` (`8 916…`, `916…`,
    `7916…`). The reading that phonenumbers calls valid wins. When both are valid the national one
    wins, because the account's own country is the likelier one and a foreign number written in full
    is seldom also a valid Russian one; when neither is valid, the national reading is kept if it is
    a possible number (as before). The value as amoCRM held it is kept next to it (`phone_raw`)."""
    if not raw:
        return None
    text = raw.strip()
    if not text:
        return None
    if text.startswith("+"):
        written = _parse(text, None)
        if written is not None and phonenumbers.is_possible_number(written):
            return phonenumbers.format_number(written, phonenumbers.PhoneNumberFormat.E164)
        return text[:40]
    national = _parse(text, region)
    digits = "".join(ch for ch in text if ch.isdigit())
    international = _parse("+" + digits, None) if digits else None
    if national is not None and phonenumbers.is_valid_number(national):
        best = national
    elif international is not None and phonenumbers.is_valid_number(international):
        best = international
    elif national is not None and phonenumbers.is_possible_number(national):
        best = national
    else:
        return text[:40]
    return phonenumbers.format_number(best, phonenumbers.PhoneNumberFormat.E164)


def contact_name(contact: dict | None) -> str | None:
    if not contact:
        return None
    name = (contact.get("name") or "").strip()
    if not name:
        name = " ".join(p for p in ((contact.get("first_name") or "").strip(), (contact.get("last_name") or "").strip()) if p)
    return name[:300] or None


def contact_phone(contact: dict | None, region: str = "RU") -> str | None:
    return normalise_phone(contact_phone_raw(contact), region)


def contact_phone_raw(contact: dict | None) -> str | None:
    """The first phone exactly as amoCRM holds it (trimmed), so a wrong E.164 guess loses nothing."""
    raw = _first_of(contact, "PHONE", PHONE_NAMES)
    return raw[:100] if raw else None


def contact_email(contact: dict | None) -> str | None:
    email = _first_of(contact, "EMAIL", EMAIL_NAMES)
    return email.lower()[:254] if email else None


def custom_field_value(entity: dict | None, field_id: int | None) -> str | None:
    if not field_id:
        return None
    for field in _fields(entity):
        try:
            if int(field.get("field_id")) == int(field_id):
                return _first_value(field)
        except (TypeError, ValueError):
            continue
    return None


def custom_field_value_by_name(entity: dict | None, field_name: str | None) -> str | None:
    """The first value of the field called `field_name` (case and spaces ignored): the way to find
    "the same" field on another entity, whose fields have ids of their own."""
    wanted = (field_name or "").strip().casefold()
    if not wanted:
        return None
    for field in _fields(entity):
        if str(field.get("field_name") or "").strip().casefold() == wanted:
            return _first_value(field)
    return None
