"""Where a finished chat came from: (1) the visitor session named in the amoCRM custom field, when it
exists in this account; else (2) the messenger mapping for the talk's origin; else (3) the default of
the integration's traffic type. Every answer carries its reason as a `Message` (core/inbox/attribution_reasons.py),
stored as code + params and said in the reader's language."""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from sqlalchemy.orm import Session

from core.amocrm.messengers import messenger_said
from core.inbox import attribution_reasons as reasons
from core.models import Campaign, Integration, MessengerMapping, Site, Source, VisitorSession
from core.platform.messages import Message

_SESSION_ID = re.compile(r"#?(\d{1,18})\Z")
# What the site's own scripts write into the field when they had no session (JavaScript's String(null)…).
_EMPTY_WORDS = {"", "null", "undefined", "none", "nan", "false"}


@dataclass
class Attribution:
    kind: str  # session | messenger | default
    reason: Message
    session: VisitorSession | None = None
    site_id: int | None = None
    campaign_id: int | None = None
    source_id: int | None = None


def clean_session_value(raw: str | None) -> str | None:
    """The field's value as our script meant it, or None when it holds nothing. Live accounts hold
    the id padded, after a "#", percent-encoded (`%31%32`), or the string "null"/"undefined"."""
    if raw is None:
        return None
    text = str(raw)
    for _ in range(2):  # encoded once by a site script, sometimes twice by a tag manager
        if "%" not in text:
            break
        text = unquote(text)
    text = text.strip()
    return None if text.lower() in _EMPTY_WORDS else text


def parse_session_id(raw: str | None) -> int | None:
    text = clean_session_value(raw)
    if not text:
        return None
    m = _SESSION_ID.match(text)
    return int(m.group(1)) if m else None


def _name(session: Session, model, id_: int | None):
    """A catalog entry's name as the request saw it (kept in the reason), or the id of a deleted one."""
    if not id_:
        return "—"
    row = session.get(model, id_)
    return f"«{row.name}»" if row is not None else reasons.DELETED(id=id_)


def describe_target(session: Session, campaign_id, source_id, site_id) -> Message:
    if campaign_id:
        return reasons.TO_CAMPAIGN(name=_name(session, Campaign, campaign_id))
    source = reasons.TO_SOURCE(name=_name(session, Source, source_id)) if source_id else None
    site = None
    if site_id:
        row = session.get(Site, site_id)
        site = reasons.TO_SITE(name=row.name if row else f"#{site_id}")
    if source and site:
        return reasons.TO_SOURCE_AND_SITE(source=source, site=site)
    return source or site or reasons.TO_NOTHING()


def attribute(
    session: Session,
    integration: Integration,
    *,
    session_field_value: str | None,
    origin: str | None,
    mappings: dict[str, MessengerMapping] | None = None,
    field_note: Message | None = None,
) -> Attribution:
    """`field_note` says where the field's value was found when it was not the chosen entity."""
    notes = [field_note] if field_note else []
    session_field_value = clean_session_value(session_field_value)
    session_id = parse_session_id(session_field_value)
    if session_field_value and session_id is None:
        notes.append(reasons.FIELD_NOT_A_NUMBER(value=repr(session_field_value[:40])))
    if session_id is not None:
        vs = session.get(VisitorSession, session_id)
        if vs is not None and vs.account_id == integration.account_id:
            target = describe_target(session, vs.campaign_id, vs.source_id, vs.site_id)
            return Attribution(
                kind="session",
                reason=(reasons.SESSION_NOTED(session=vs.id, note=field_note, target=target) if field_note
                        else reasons.SESSION(session=vs.id, target=target)),
                session=vs,
                site_id=vs.site_id,
                campaign_id=vs.campaign_id,
                source_id=vs.source_id,
            )
        notes.append(reasons.SESSION_NOT_FOUND(session=session_id))
    elif not session_field_value and not field_note:
        notes.append(reasons.FIELD_EMPTY())

    if mappings is None:
        mappings = {m.origin: m for m in integration.mappings}
    mapping = mappings.get(origin or "")
    if mapping is not None:
        site_id = mapping.site_id
        if mapping.campaign_id and not site_id:
            campaign = session.get(Campaign, mapping.campaign_id)
            site_id = campaign.site_id if campaign else None
        return Attribution(
            kind="messenger",
            reason=reasons.MESSENGER(notes=notes, messenger=messenger_said(origin),
                                     target=describe_target(session, mapping.campaign_id, mapping.source_id, mapping.site_id)),
            site_id=site_id,
            campaign_id=mapping.campaign_id,
            source_id=mapping.source_id,
        )

    if origin:
        notes.append(reasons.NO_MAPPING(messenger=messenger_said(origin)))
    if integration.traffic_type == "campaign":
        campaign_id = integration.default_campaign_id
        campaign = session.get(Campaign, campaign_id) if campaign_id else None
        return Attribution(
            kind="default",
            reason=reasons.DEFAULT(notes=notes, target=describe_target(session, campaign_id, None, None)),
            site_id=campaign.site_id if campaign else None,
            campaign_id=campaign_id if campaign else None,
        )
    return Attribution(
        kind="default",
        reason=reasons.DEFAULT(notes=notes, target=describe_target(session, None, integration.default_source_id,
                                                             integration.default_site_id)),
        site_id=integration.default_site_id,
        source_id=integration.default_source_id,
    )
