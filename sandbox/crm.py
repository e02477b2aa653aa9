"""CRM entities of the account: contacts and leads (§4) and talks (§2), with their REST shapes.

Talks created or closed are logged in the event log.  Webhooks are not sent from here: the
operations that change a talk return its snapshot, and the façade (``sandbox.state``) hands it to
the webhook store once the lock is released.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from .account import AccountStore
from .errors import ApiProblem, SandboxError
from .events import EventLog
from .fields import FieldStore

#: Chat origins offered by the demo page (https://www.amocrm.ru/developers/content/crm_platform/talks-api;
#: site chat / VK / Viber / Avito codes unknown).
KNOWN_ORIGINS = (
    "telegram", "waba", "com.amocrm.amocrmwa", "amochats.whatsapp", "instagram_business", "facebook",
    "tiktok-kommo", "mercado-libre", "lazada-integration",
)

PIPELINE_ID = 7012345
FIRST_STATUS_ID = 61234567


class CrmStore:
    """Contacts, leads and talks; their custom field values live in the entities (``cf``), typed by the field store."""

    def __init__(self, lock: threading.RLock, account: AccountStore, custom_fields: FieldStore,
                 event_log: EventLog) -> None:
        self.lock = lock
        self.account = account
        self.custom_fields = custom_fields
        self.event_log = event_log

    def reset_locked(self) -> None:
        self.contacts: dict[int, dict[str, Any]] = {}
        self.leads: dict[int, dict[str, Any]] = {}
        self.talks: dict[int, dict[str, Any]] = {}
        self._ids = {"contact": 21000001, "lead": 32000001, "talk": 101}

    def _next_id(self, kind: str) -> int:
        value = self._ids[kind]
        self._ids[kind] = value + 1
        return value

    # ------------------------------------------------------------------ contacts and leads --
    def add_contact_locked(self, name: str | None, phones: Any = None, emails: Any = None,
                           custom_fields: Any = None) -> dict[str, Any]:
        now = self.account.now()
        name = (name or "").strip() or "Контакт без имени"
        first, _, last = name.partition(" ")
        contact = {
            "id": self._next_id("contact"), "name": name, "first_name": first, "last_name": last,
            "created_at": now, "updated_at": now, "cf": {}, "lead_ids": [],
        }
        for code, items in (("PHONE", phones), ("EMAIL", emails)):
            if not items:
                continue
            if isinstance(items, (str, dict)):
                items = [items]
            field = self.custom_fields.find_locked("contacts", code)
            if field is None:
                continue
            norm = [i if isinstance(i, dict) else {"value": i, "enum_code": "WORK" if code == "PHONE" else "WORK"}
                    for i in items]
            values = self.custom_fields.input_values(field, norm)
            if values:
                contact["cf"][field["id"]] = values
        self.custom_fields.apply_locked("contacts", contact, custom_fields)
        self.contacts[contact["id"]] = contact
        return contact

    def add_contact(self, name: str | None = None, phones: Any = None, emails: Any = None,
                    custom_fields: Any = None) -> dict[str, Any]:
        with self.lock:
            contact = self.add_contact_locked(name, phones, emails, custom_fields)
            return self.contact_json(contact, {"leads"})

    def add_lead_locked(self, name: str | None, contact_id: int | None, custom_fields: Any = None,
                        price: int = 0) -> dict[str, Any]:
        now = self.account.now()
        lead_id = self._next_id("lead")
        lead = {
            "id": lead_id, "name": (name or "").strip() or f"Сделка #{lead_id}", "price": int(price or 0),
            "status_id": FIRST_STATUS_ID, "pipeline_id": PIPELINE_ID,
            "created_at": now, "updated_at": now, "cf": {}, "contacts": [],
        }
        self.custom_fields.apply_locked("leads", lead, custom_fields)
        if contact_id is not None:
            contact = self.contacts.get(int(contact_id))
            if contact is None:
                raise SandboxError(f"unknown contact {contact_id}", 404)
            lead["contacts"].append({"id": contact["id"], "is_main": True})
            contact["lead_ids"].append(lead_id)
        self.leads[lead_id] = lead
        return lead

    def add_lead(self, name: str | None = None, contact_id: int | None = None, custom_fields: Any = None,
                 price: int = 0) -> dict[str, Any]:
        with self.lock:
            lead = self.add_lead_locked(name, contact_id, custom_fields, price)
            return self.lead_json(lead, {"contacts"})

    def update_lead_fields(self, lead_id: int, custom_fields: Any) -> dict[str, Any]:
        with self.lock:
            lead = self.leads.get(int(lead_id))
            if lead is None:
                raise SandboxError("lead not found", 404)
            self.custom_fields.apply_locked("leads", lead, custom_fields)
            lead["updated_at"] = self.account.now()
            return self.lead_json(lead, {"contacts"})

    def contact_json(self, c: dict[str, Any], with_: set[str] | None = None) -> dict[str, Any]:
        with_ = with_ or set()
        s = self.account.settings
        data = {
            "id": c["id"], "name": c["name"], "first_name": c["first_name"], "last_name": c["last_name"],
            "responsible_user_id": s["current_user_id"], "group_id": 0,
            "created_by": s["current_user_id"], "updated_by": s["current_user_id"],
            "created_at": c["created_at"], "updated_at": c["updated_at"], "closest_task_at": None,
            "is_deleted": False, "is_unsorted": False,
            "custom_fields_values": self.custom_fields.cf_json("contacts", c["cf"]),
            "account_id": s["account_id"],
            "_links": self.account.link(f"/api/v4/contacts/{c['id']}"),
        }
        embedded: dict[str, Any] = {"tags": [], "companies": []}
        if "leads" in with_:
            embedded["leads"] = [{"id": lid, "_links": self.account.link(f"/api/v4/leads/{lid}")} for lid in c["lead_ids"]]
        if "customers" in with_:
            embedded["customers"] = []
        if "catalog_elements" in with_:
            embedded["catalog_elements"] = []
        data["_embedded"] = embedded
        return data

    def lead_json(self, lead: dict[str, Any], with_: set[str] | None = None) -> dict[str, Any]:
        with_ = with_ or set()
        s = self.account.settings
        data: dict[str, Any] = {
            "id": lead["id"], "name": lead["name"], "price": lead["price"],
            "responsible_user_id": s["current_user_id"], "group_id": 0,
            "status_id": lead["status_id"], "pipeline_id": lead["pipeline_id"], "loss_reason_id": None,
        }
        if "source_id" in with_:
            data["source_id"] = None
        data.update({
            "created_by": s["current_user_id"], "updated_by": s["current_user_id"],
            "created_at": lead["created_at"], "updated_at": lead["updated_at"], "closed_at": None,
            "closest_task_at": None, "is_deleted": False,
            "custom_fields_values": self.custom_fields.cf_json("leads", lead["cf"]),
            "score": None, "account_id": s["account_id"], "labor_cost": None,
        })
        if "is_price_modified_by_robot" in with_:
            data["is_price_modified_by_robot"] = False
        data["_links"] = self.account.link(f"/api/v4/leads/{lead['id']}")
        embedded: dict[str, Any] = {"tags": [], "companies": []}
        if "contacts" in with_:
            embedded["contacts"] = [
                {"id": c["id"], "is_main": c["is_main"], "_links": self.account.link(f"/api/v4/contacts/{c['id']}")}
                for c in lead["contacts"]
            ]
        if "catalog_elements" in with_:
            embedded["catalog_elements"] = []
        data["_embedded"] = embedded
        return data

    def get_contact(self, contact_id: int, with_: set[str] | None = None) -> dict[str, Any] | None:
        with self.lock:
            c = self.contacts.get(int(contact_id))
            return self.contact_json(c, with_) if c else None

    def get_lead(self, lead_id: int, with_: set[str] | None = None) -> dict[str, Any] | None:
        with self.lock:
            lead = self.leads.get(int(lead_id))
            return self.lead_json(lead, with_) if lead else None

    def query_entities(self, entity: str, ids: list[int] | None, query: str | None,
                       order: tuple[str, str] | None, with_: set[str]) -> list[dict[str, Any]]:
        """All matching contacts/leads (REST shape), filtered and ordered; the caller pages."""
        with self.lock:
            store = self.contacts if entity == "contacts" else self.leads
            rows = list(store.values())
            if ids is not None:
                wanted = set(ids)
                rows = [r for r in rows if r["id"] in wanted]
            if query:
                q = query.lower()

                def hit(r: dict[str, Any]) -> bool:
                    if q in r["name"].lower() or q == str(r["id"]):
                        return True
                    digits = "".join(ch for ch in q if ch.isdigit())
                    for values in r["cf"].values():
                        for v in values:
                            text = str(v["value"]).lower()
                            if q in text:
                                return True
                            if len(digits) >= 5 and digits in "".join(ch for ch in text if ch.isdigit()):
                                return True
                    return False

                rows = [r for r in rows if hit(r)]
            key, direction = order or ("id", "asc")
            rows.sort(key=lambda r: (r.get(key, 0), r["id"]), reverse=(direction == "desc"))
            render = self.contact_json if entity == "contacts" else self.lead_json
            return [render(r, with_) for r in rows]

    # -------------------------------------------------------------------------------- talks --
    def talk_json(self, t: dict[str, Any]) -> dict[str, Any]:
        leads = []
        if t["entity_type"] == "lead" and t["entity_id"]:
            leads = [{"id": t["entity_id"], "_links": self.account.link(f"/api/v4/leads/{t['entity_id']}")}]
        return {
            "talk_id": t["talk_id"],
            "created_at": t["created_at"],
            "updated_at": t["updated_at"],
            "rate": t["rate"],
            "contact_id": t["contact_id"],
            "chat_id": t["chat_id"],
            "entity_id": t["entity_id"],
            "entity_type": t["entity_type"],
            "is_in_work": t["is_in_work"],
            "is_read": t["is_read"],
            "origin": t["origin"],
            "missed_at": t["missed_at"],
            "account_id": self.account.settings["account_id"],
            "status": self._talk_status(t),
            "_links": self.account.link(f"/api/v4/talks/{t['talk_id']}"),
            "_embedded": {
                "contacts": [{"id": t["contact_id"], "_links": self.account.link(f"/api/v4/contacts/{t['contact_id']}")}],
                "leads": leads,
                "customers": [],
            },
        }

    @staticmethod
    def _talk_status(t: dict[str, Any]) -> str:
        """Live talks carry `status` (in_work | closed | nps_scheduled | nps_in_progress | with_error,
        seen on live accounts, undocumented); the sandbox's NPS bot keeps a talk in work while it asks, so "closing" is nps_in_progress."""
        if not t["is_in_work"]:
            return "closed"
        return "nps_in_progress" if t["closing"] else "in_work"

    def query_talks(self) -> list[dict[str, Any]]:
        """`GET /api/v4/talks`: every talk, newest first [inf: the order is not documented]."""
        with self.lock:
            return [self.talk_json(t) for t in sorted(self.talks.values(), key=lambda t: t["talk_id"], reverse=True)]

    def get_talk(self, talk_id: int) -> dict[str, Any] | None:
        with self.lock:
            t = self.talks.get(int(talk_id))
            return self.talk_json(t) if t else None

    def list_talks(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(self.talk_json(t), closing=t["closing"]) for t in
                    sorted(self.talks.values(), key=lambda t: t["talk_id"], reverse=True)]

    def add_talk_locked(self, contact_id: int, lead_id: int | None, origin: str, chat_id: str | None = None,
                        is_read: bool = False, created_at: int | None = None) -> dict[str, Any]:
        now = self.account.now()
        talk = {
            "talk_id": self._next_id("talk"),
            "created_at": int(created_at) if created_at else now,
            "updated_at": int(created_at) if created_at else now,
            "rate": 0,
            "contact_id": contact_id,
            "chat_id": chat_id or str(uuid.uuid4()),
            "entity_id": lead_id,
            "entity_type": "lead" if lead_id else None,
            "is_in_work": True,
            "is_read": bool(is_read),
            "origin": origin,
            "missed_at": None,
            "closing": False,
        }
        self.talks[talk["talk_id"]] = talk
        self.event_log.log_talk_locked("talk_created", talk, talk["created_at"])
        return talk

    def start_chat(self, contact: dict[str, Any] | None = None, lead: Any = ..., origin: str = "telegram",
                   entity_type: str | None = "lead", contact_id: int | None = None,
                   lead_id: int | None = None, chat_id: str | None = None, is_read: bool = False,
                   created_at: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Contact (+ lead) + open talk.  Returns the ids and the talk's snapshot (for ``add_talk``).

        ``lead`` omitted -> a new lead; ``None`` -> no lead (talk without entity);
        a dict ``{name?, custom_fields?}`` -> a new lead with those values.
        ``contact_id`` / ``lead_id`` / ``chat_id`` reuse existing ones.
        """
        if entity_type not in ("lead", None):
            raise SandboxError("entity_type must be 'lead' or null (customers are not emulated)")
        if not origin:
            raise SandboxError("origin is required")
        with self.lock:
            if contact_id is not None:
                c = self.contacts.get(int(contact_id))
                if c is None:
                    raise SandboxError(f"unknown contact {contact_id}", 404)
            else:
                spec = contact or {}
                c = self.add_contact_locked(spec.get("name"), spec.get("phones"), spec.get("emails"),
                                            spec.get("custom_fields"))
            lead_obj = None
            if lead_id is not None:
                lead_obj = self.leads.get(int(lead_id))
                if lead_obj is None:
                    raise SandboxError(f"unknown lead {lead_id}", 404)
            elif lead is not None and entity_type == "lead":
                spec = lead if isinstance(lead, dict) else {}
                name = spec.get("name") or f"Сделка из чата {c['name']}"
                lead_obj = self.add_lead_locked(name, c["id"], spec.get("custom_fields"), spec.get("price", 0))
            talk = self.add_talk_locked(c["id"], lead_obj["id"] if lead_obj else None, origin, chat_id,
                                        is_read, created_at)
            result = {
                "talk_id": talk["talk_id"], "chat_id": talk["chat_id"], "contact_id": c["id"],
                "lead_id": lead_obj["id"] if lead_obj else None,
            }
            return result, self.talk_json(talk)

    def _talk_locked(self, talk_id: int) -> dict[str, Any]:
        t = self.talks.get(int(talk_id))
        if t is None:
            raise ApiProblem("Talk not found", 404)
        return t

    def finish_talk(self, talk_id: int, force_close: bool = False, control: bool = False) -> tuple[str, dict[str, Any]]:
        """POST /api/v4/talks/{id}/close.  Returns ``("closed" | "closing", snapshot)``; only "closed" is notified."""
        with self.lock:
            t = self._talk_locked(talk_id)
            if not t["is_in_work"] or (t["closing"] and not control):
                raise ApiProblem("Talk is already closed or closing", 422)
            if self.account.settings["nps_bot"] and not force_close and not control:
                t["closing"] = True
                return "closing", self.talk_json(t)
            t["is_in_work"] = False
            t["closing"] = False
            t["updated_at"] = self.account.now()
            self.event_log.log_talk_locked("talk_closed", t, t["updated_at"])
            return "closed", self.talk_json(t)

    def mark_read(self, talk_id: int) -> tuple[dict[str, Any], bool]:
        """The manager read the talk.  Returns ``(snapshot, changed)``: a talk already read does not change."""
        with self.lock:
            t = self._talk_locked(talk_id)
            if t["is_read"]:
                return self.talk_json(t), False
            t["is_read"] = True
            t["updated_at"] = self.account.now()
            return self.talk_json(t), True

    def set_rate(self, talk_id: int, rate: int) -> dict[str, Any]:
        """The NPS bot got a rating: set ``rate``; a talk that was closing closes.  Returns the snapshot."""
        with self.lock:
            t = self._talk_locked(talk_id)
            t["rate"] = int(rate)
            t["updated_at"] = self.account.now()
            if t["closing"]:
                t["closing"] = False
                t["is_in_work"] = False
                self.event_log.log_talk_locked("talk_closed", t, t["updated_at"])
            return self.talk_json(t)

    def talk_snapshots(self, talk_ids: list[Any]) -> list[dict[str, Any]]:
        """The current REST shape of each of *talk_ids* (an unknown one: 404)."""
        with self.lock:
            items = []
            for tid in talk_ids:
                t = self.talks.get(int(tid))
                if t is None:
                    raise SandboxError(f"unknown talk {tid}", 404)
                items.append(self.talk_json(t))
            return items
