"""What a request shows of its contact: the name, the first phone in E.164 and the first email."""
import pytest

from core.amocrm.contact_data import (
    contact_email,
    contact_name,
    contact_phone,
    contact_phone_raw,
    custom_field_value,
    normalise_phone,
)


def contact(phones=(), emails=(), name="Анна", enum_key="enum_code"):
    fields = []
    if phones:
        fields.append({"field_id": 1, "field_code": "PHONE", "field_name": "Телефон", "field_type": "multitext",
                       "values": [{"value": p, enum_key: "MOB"} for p in phones]})
    if emails:
        fields.append({"field_id": 2, "field_code": "EMAIL", "field_name": "Email", "field_type": "multitext",
                       "values": [{"value": e, enum_key: "WORK"} for e in emails]})
    return {"id": 7, "name": name, "custom_fields_values": fields or None}


@pytest.mark.parametrize("raw, expected", [
    ("+7 (915) 123-45-67", "+79151234567"),
    ("8 915 123 45 67", "+79151234567"),
    ("89151234567", "+79151234567"),
    ("9151234567", "+79151234567"),
    ("+375 29 123-45-67", "+375291234567"),
    ("+1 650 253 0000", "+16502530000"),
    ("доб. 12", "доб. 12"),
    ("  ", None),
    # foreign numbers written without "+", as messenger-created contacts hold them
    ("5521912345678", "+5521912345678"),
    ("380501234567", "+380501234567"),
    ("77011234567", "+77011234567"),
    ("4915112345678", "+4915112345678"),
    ("16502530000", "+16502530000"),
    # Russian national forms stay Russian
    ("8 916 123-45-67", "+79161234567"),
    ("916 123 45 67", "+79161234567"),
    ("79161234567", "+79161234567"),
    ("8 (800) 555-35-35", "+78005553535"),
])
def test_phone_formats(raw, expected):
    assert normalise_phone(raw) == expected


def test_first_phone_and_first_email_win():
    c = contact(phones=["8 (916) 000-00-01", "+79160000002"], emails=["Anna@Example.RU", "b@example.ru"])
    assert contact_phone(c) == "+79160000001"
    assert contact_email(c) == "anna@example.ru"
    assert contact_name(c) == "Анна"


def test_old_enum_key_and_missing_values_are_read():
    c = contact(phones=["+79161112233"], enum_key="enum")
    assert contact_phone(c) == "+79161112233"
    empty = {"id": 1, "name": "", "first_name": "Иван", "last_name": "Петров", "custom_fields_values": None}
    assert (contact_name(empty), contact_phone(empty), contact_email(empty)) == ("Иван Петров", None, None)
    assert contact_name(None) is None


def test_custom_field_value_by_id():
    lead = {"custom_fields_values": [{"field_id": 555, "values": [{"value": " 12345 "}]}]}
    assert custom_field_value(lead, 555) == "12345"
    assert custom_field_value(lead, 556) is None
    assert custom_field_value(None, 555) is None


def test_the_phone_as_amocrm_held_it_is_kept():
    c = contact(phones=[" 5521912345678 "])
    assert (contact_phone(c), contact_phone_raw(c)) == ("+5521912345678", "5521912345678")
    assert contact_phone_raw(None) is None


@pytest.mark.parametrize("raw, expected", [
    ("12345", 12345), (" 12345 ", 12345), ("#12345", 12345), (" #12345\n", 12345), ("%31%32", 12),
    ("%2531%2532", 12), ("null", None), ("NULL", None), ("undefined", None), ("", None), ("   ", None), (None, None),
    ("abc", None), ("12 34", None),
])
def test_session_ids_as_live_accounts_hold_them(raw, expected):
    from core.inbox.attribution import parse_session_id

    assert parse_session_id(raw) == expected


def test_null_and_undefined_are_empty_not_a_bad_number():
    from core.inbox.attribution import clean_session_value

    assert [clean_session_value(v) for v in ("null", "undefined", " ", "%20")] == [None, None, None, None]
    assert clean_session_value(" abc ") == "abc"
