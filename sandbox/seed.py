"""`--seed demo`: a few contacts, leads and open talks to play with (no webhooks are sent)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .crm import CrmStore

DEMO_PEOPLE = [
    ("Анна Смирнова", "+79161234567", "anna@example.ru", "telegram"),
    ("Игорь Петров", "+79031112233", "igor.petrov@example.ru", "waba"),
    ("Мария Козлова", "+79265554433", None, "instagram_business"),
]


def seed_demo_locked(crm: "CrmStore") -> None:
    """Called with the lock held, right after a reset."""
    lead_fields = crm.custom_fields.fields["leads"]
    session_field = next(f for f in lead_fields if f["name"] == "Сессия UIS")
    utm_source = next(f for f in lead_fields if f["code"] == "UTM_SOURCE")
    for i, (name, phone, email, origin) in enumerate(DEMO_PEOPLE):
        contact = crm.add_contact_locked(name, [phone], [email] if email else None)
        cf = {utm_source["id"]: "yandex"} if i == 0 else {}
        if i == 1:
            cf[session_field["id"]] = "demo-session-1"
        lead = crm.add_lead_locked(f"Сделка из чата {name}", contact["id"], cf)
        if i < 2:
            crm.add_talk_locked(contact["id"], lead["id"], origin)
    # one contact without any custom field values (custom_fields_values: null)
    crm.add_contact_locked("Без телефона")
