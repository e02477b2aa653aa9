"""Reading amoCRM entities: the contact's name, first phone (E.164) and first email, and a custom
field's value (the session id). Field values come in the v4 shape `custom_fields_values[{field_id,
field_code, values[{value, enum_code|enum}]}]`, which may be null (amocrm-api.md §4)."""
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


def normalise_phone(raw: str | None, region: str = "RU") -> str | None:
    """E.164 when the number parses (8 915… and 915… are Russian numbers); otherwise the raw text trimmed."""
    if not raw:
        return None
    text = raw.strip()
    try:
        number = phonenumbers.parse(text, region)
        if phonenumbers.is_possible_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    return text[:40] or None


def contact_name(contact: dict | None) -> str | None:
    if not contact:
        return None
    name = (contact.get("name") or "").strip()
    if not name:
        name = " ".join(p for p in ((contact.get("first_name") or "").strip(), (contact.get("last_name") or "").strip()) if p)
    return name[:300] or None


def contact_phone(contact: dict | None, region: str = "RU") -> str | None:
    return normalise_phone(_first_of(contact, "PHONE", PHONE_NAMES), region)


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
