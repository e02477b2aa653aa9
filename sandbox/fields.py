"""Custom fields of leads and contacts (§4): their definitions (with the seeded ones), the values a
caller writes into an entity, and how values are rendered in ``custom_fields_values``."""

from __future__ import annotations

import copy
import threading
from typing import Any

from .account import AccountStore
from .errors import SandboxError

#: Custom field types (PHP CustomFieldModel).
FIELD_TYPES: tuple[str, ...] = (
    "text", "numeric", "checkbox", "select", "multiselect", "multitext", "date", "url", "textarea",
    "radiobutton", "streetaddress", "smart_address", "birthday", "legal_entity", "date_time", "items",
    "category", "price", "tracking_data", "linked_entity", "org_legal_name", "monetary", "chained_list",
    "file", "payer", "supplier",
)
ENUM_TYPES = {"select", "multiselect", "radiobutton", "multitext"}

PHONE_ENUMS = ("WORK", "WORKDD", "MOB", "FAX", "HOME", "OTHER")
EMAIL_ENUMS = ("WORK", "PRIV", "OTHER")

#: tracking_data fields seen in a real account export.
TRACKING_FIELDS = (
    "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "utm_referrer",
    "referrer", "gclid", "yclid", "fbclid", "roistat", "_ym_uid", "_ym_counter",
    "openstat_service", "openstat_campaign", "openstat_ad", "openstat_source", "from", "gclientid",
)


class FieldStore:
    """The field definitions per entity (``fields["leads"]``, ``fields["contacts"]``) and their values."""

    def __init__(self, lock: threading.RLock, account: AccountStore) -> None:
        self.lock = lock
        self.account = account

    def reset_locked(self) -> None:
        """Only the predefined and tracking fields (and «Сессия UIS») remain."""
        self.fields: dict[str, list[dict[str, Any]]] = {"leads": [], "contacts": []}
        self._ids = {"field": 845001, "enum": 1650001}
        self._seed_locked()

    def _next_id(self, kind: str) -> int:
        value = self._ids[kind]
        self._ids[kind] = value + 1
        return value

    def add_field_locked(self, entity: str, name: str, type_: str, code: str | None = None,
                         enums: list[Any] | None = None, sort: int | None = None,
                         is_api_only: bool = False, predefined: bool = False) -> dict[str, Any]:
        fid = self._next_id("field")
        enum_list = None
        if type_ in ENUM_TYPES:
            enum_list = []
            for i, e in enumerate(enums or []):
                if isinstance(e, dict):
                    value, ecode = str(e.get("value", "")), e.get("code")
                else:
                    value, ecode = str(e), None
                enum_list.append({"id": self._next_id("enum"), "value": value, "sort": (i + 1) * 2, "code": ecode})
        field = {
            "id": fid,
            "name": name,
            "type": type_,
            "code": code,
            "sort": sort if sort is not None else 500 + len(self.fields[entity]) * 2,
            "is_api_only": bool(is_api_only),
            "enums": enum_list,
            "group_id": None,
            "required_statuses": [],
            "is_deletable": not predefined,
            "is_predefined": predefined,
            "entity_type": entity,
            "remind": None,
            "currency": None,
            "tracking_callback": None,
            "search_in": None,
        }
        self.fields[entity].append(field)
        return field

    def _seed_locked(self) -> None:
        self.add_field_locked("contacts", "Должность", "text", "POSITION", sort=2, predefined=True)
        self.add_field_locked("contacts", "Телефон", "multitext", "PHONE", enums=list(PHONE_ENUMS), sort=4,
                              predefined=True)
        self.add_field_locked("contacts", "Email", "multitext", "EMAIL", enums=list(EMAIL_ENUMS), sort=6,
                              predefined=True)
        for entity in ("leads", "contacts"):
            for i, name in enumerate(TRACKING_FIELDS):
                self.add_field_locked(entity, name, "tracking_data", name.upper(), sort=1000 + i * 2)
        self.add_field_locked("leads", "Сессия UIS", "text", None, sort=510)

    def add_custom_field(self, entity: str, name: str, type: str = "text", code: str | None = None,
                         enums: list[Any] | None = None, sort: int | None = None,
                         is_api_only: bool = False) -> dict[str, Any]:
        if entity not in self.fields:
            raise SandboxError("entity must be 'leads' or 'contacts'")
        if not name:
            raise SandboxError("name is required")
        if type not in FIELD_TYPES:
            raise SandboxError(f"unknown field type {type!r}")
        with self.lock:
            if code and any(f["code"] == code for f in self.fields[entity]):
                raise SandboxError(f"code {code!r} already used")
            return copy.deepcopy(self.add_field_locked(entity, name, type, code, enums, sort, is_api_only))

    def list_fields(self, entity: str) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self.fields.get(entity, []))

    def find_locked(self, entity: str, key: Any) -> dict[str, Any] | None:
        fields = self.fields[entity]
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            for f in fields:
                if f["id"] == int(key):
                    return f
        for f in fields:
            if f["code"] and str(key) == f["code"]:
                return f
        for f in fields:
            if str(key) == f["name"]:
                return f
        return None

    def field_json(self, field: dict[str, Any]) -> dict[str, Any]:
        entity = field["entity_type"]
        out: dict[str, Any] = {
            "id": field["id"],
            "name": field["name"],
            "type": field["type"],
            "account_id": self.account.settings["account_id"],
            "code": field["code"],
            "sort": field["sort"],
            "is_api_only": field["is_api_only"],
            "enums": copy.deepcopy(field["enums"]),
            "group_id": field["group_id"],
            "required_statuses": list(field["required_statuses"]),
            "is_deletable": field["is_deletable"],
        }
        if entity == "contacts":
            out["is_predefined"] = field["is_predefined"]
        out["entity_type"] = entity
        out["remind"] = field["remind"]
        out["currency"] = field["currency"]
        if field["type"] == "tracking_data":
            out["tracking_callback"] = field["tracking_callback"]
        if entity == "leads":
            out["is_computed"] = False
            out["hidden_statuses"] = []
            out["chained_lists"] = None
        out["search_in"] = field["search_in"]
        out["_links"] = {"self": {"href": f"{self.account.base_url}/api/v4/{entity}/custom_fields/{field['id']}"}}
        return out

    def input_values(self, field: dict[str, Any], raw: Any) -> list[dict[str, Any]]:
        items = raw.get("values", raw) if isinstance(raw, dict) and "values" in raw else raw
        if not isinstance(items, list):
            items = [items]
        out: list[dict[str, Any]] = []
        for item in items:
            if isinstance(item, dict):
                value = item.get("value")
                enum_code = item.get("enum_code", item.get("enum"))
                enum_id = item.get("enum_id")
            else:
                value, enum_code, enum_id = item, None, None
            if value is None or value == "":
                continue
            rec: dict[str, Any] = {"value": value}
            if field["type"] == "checkbox":
                rec["value"] = bool(value) and value not in ("0", "false")
            elif field["type"] == "numeric":
                rec["value"] = str(value)
            elif field["type"] not in ("date", "date_time", "birthday"):
                rec["value"] = str(value)
            if field["enums"] is not None:
                enums = field["enums"]
                chosen = None
                if enum_id is not None:
                    chosen = next((e for e in enums if e["id"] == int(enum_id)), None)
                if chosen is None and enum_code is not None:
                    chosen = next((e for e in enums if e["value"] == enum_code or e["code"] == enum_code), None)
                if chosen is None and field["type"] != "multitext":
                    chosen = next((e for e in enums if e["value"] == str(value)), None)
                    if chosen is None:
                        raise SandboxError(f"value {value!r} is not an enum of field {field['id']}")
                if chosen is None:
                    chosen = enums[0] if enums else None
                if chosen is not None:
                    rec["enum_id"] = chosen["id"]
                    rec["enum_code"] = chosen["code"] if field["type"] != "multitext" else chosen["value"]
            out.append(rec)
        return out

    def apply_locked(self, entity: str, target: dict[str, Any], custom_fields: Any) -> None:
        if not custom_fields:
            return
        if isinstance(custom_fields, dict):
            items = list(custom_fields.items())
        elif isinstance(custom_fields, list):  # v4 style [{field_id|field_code, values}]
            items = [(cf.get("field_id", cf.get("field_code", cf.get("id"))), cf) for cf in custom_fields]
        else:
            raise SandboxError("custom_fields must be an object {field_id: value} or a v4 list")
        for key, raw in items:
            field = self.find_locked(entity, key)
            if field is None:
                raise SandboxError(f"unknown {entity} custom field {key!r}")
            values = self.input_values(field, raw)
            if values:
                target["cf"][field["id"]] = values
            else:
                target["cf"].pop(field["id"], None)

    def cf_json(self, entity: str, cf: dict[int, list[dict[str, Any]]]) -> list[dict[str, Any]] | None:
        if not cf:
            return None
        by_id = {f["id"]: f for f in self.fields[entity]}
        key_mode = self.account.settings["multitext_enum_key"]
        out = []
        for fid, values in cf.items():
            field = by_id.get(fid)
            if field is None:
                continue
            rendered = []
            for v in values:
                item: dict[str, Any] = {"value": v["value"]}
                if "enum_id" in v:
                    item["enum_id"] = v["enum_id"]
                    if field["type"] == "multitext" and key_mode in ("enum", "both"):
                        item["enum"] = v["enum_code"]
                    if field["type"] != "multitext" or key_mode in ("enum_code", "both"):
                        item["enum_code"] = v["enum_code"]
                rendered.append(item)
            out.append({
                "field_id": fid,
                "field_name": field["name"],
                "field_code": field["code"],
                "field_type": field["type"],
                "values": rendered,
            })
        return out or None
