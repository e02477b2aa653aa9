"""The account's dictionaries: sites, sources and ad campaigns. Every lookup is scoped to an account."""
from __future__ import annotations

import re
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.access.ownership import get_owned
from core.models import Campaign, Site, Source
from core.platform.errors import NotFound, ValidationFailed
from core.platform.messages import N_, define
from core.tracking.conditions import ConditionError, validate_conditions

# What the admin says about a refused value (`ValidationFailed.said`), in the reader's language.
NAME_REQUIRED = define("catalog.name_required", N_("Enter a name."))
NAME_TOO_LONG = define("catalog.name_too_long", N_("The name is longer than 200 characters."))
BAD_PRIORITY = define("catalog.bad_priority", N_("The priority is a whole number from 0 to 1000000 (lower goes first)."))
DOMAIN_REQUIRED = define("catalog.domain_required", N_("Enter the site's domain, e.g. example.ru."))
DOMAIN_TAKEN = define("catalog.domain_taken", N_(
    "The site «%(site)s» already has the domain %(domain)s: page views of a domain go to one site only."))
NOT_A_DOMAIN = define("catalog.not_a_domain", N_("%(value)s is not a domain name; enter one like example.ru."))
SITE_REQUIRED = define("catalog.site_required", N_("Choose the site: an ad campaign belongs to a site."))
NO_SUCH_SITE = define("catalog.no_such_site", N_("The site %(id)s does not exist in this account."))

_DOMAIN = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")


def _name(value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed("name is required", "name", NAME_REQUIRED())
    if len(value.strip()) > 200:
        raise ValidationFailed("name is longer than 200 characters", "name", NAME_TOO_LONG())
    return value.strip()


def _priority(value) -> int:
    if value is None:
        return 100
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
        raise ValidationFailed("priority must be a whole number from 0 to 1000000 (lower goes first)", "priority",
                               BAD_PRIORITY())
    return value


def _conditions(value) -> list:
    try:
        return validate_conditions(value if value is not None else [])
    except ConditionError as exc:
        raise ValidationFailed(str(exc), "conditions", exc.said) from exc


def normalise_domain(value) -> str:
    if not isinstance(value, str):
        raise ValidationFailed("domain is required, e.g. example.ru", "domain", DOMAIN_REQUIRED())
    domain = value.strip().lower()
    domain = re.sub(r"^https?://", "", domain).split("/")[0].split(":")[0]
    if domain.startswith("www."):
        domain = domain[4:]
    try:
        domain = domain.encode("idna").decode()
    except UnicodeError:
        raise ValidationFailed(f"{value!r} is not a domain name", "domain", NOT_A_DOMAIN(value=repr(value)))
    if not _DOMAIN.match(domain):
        raise ValidationFailed(f"{value!r} is not a domain name, e.g. example.ru", "domain",
                               NOT_A_DOMAIN(value=repr(value)))
    return domain


def _unique_domain(session: Session, account_id: int, domain: str, site_id: int | None = None) -> str:
    """One site per domain in an account: page views and CORS are matched to a site by its domain, so
    a second site with the same one would never get them (the first one found wins)."""
    other = session.scalar(sa.select(Site.name).where(Site.account_id == account_id, Site.domain == domain,
                                                      Site.id != (site_id or 0)).limit(1))
    if other is not None:
        raise ValidationFailed(f"the site {other} already has the domain {domain}", "domain",
                               DOMAIN_TAKEN(site=other, domain=domain))
    return domain


def create_site(session: Session, account_id: int, name, domain) -> Site:
    domain = _unique_domain(session, account_id, normalise_domain(domain))
    site = Site(account_id=account_id, name=_name(name), domain=domain, site_key=secrets.token_hex(12))
    session.add(site)
    session.flush()
    return site


def create_source(session: Session, account_id: int, name, priority=None, conditions=None) -> Source:
    source = Source(account_id=account_id, name=_name(name), priority=_priority(priority), conditions=_conditions(conditions))
    session.add(source)
    session.flush()
    return source


def create_campaign(session: Session, account_id: int, name, site_id, priority=None, conditions=None) -> Campaign:
    if site_id is None:
        raise ValidationFailed("site_id is required: an ad campaign belongs to a site", "site_id", SITE_REQUIRED())
    try:
        site = get_owned(session, Site, account_id, site_id)
    except NotFound:
        raise ValidationFailed(f"site {site_id} does not exist in this account", "site_id", NO_SUCH_SITE(id=site_id))
    campaign = Campaign(
        account_id=account_id, site_id=site.id, name=_name(name), priority=_priority(priority), conditions=_conditions(conditions)
    )
    session.add(campaign)
    session.flush()
    return campaign


def list_rows(session: Session, model, account_id: int, limit: int = 100, offset: int = 0):
    order = [model.priority, model.id] if hasattr(model, "priority") else [model.id]
    query = sa.select(model).where(model.account_id == account_id)
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    rows = list(session.scalars(query.order_by(*order).limit(limit).offset(offset)))
    return rows, total


def site_to_dict(site: Site) -> dict:
    return {"id": site.id, "name": site.name, "domain": site.domain, "site_key": site.site_key}


def source_to_dict(source: Source) -> dict:
    return {"id": source.id, "name": source.name, "priority": source.priority, "conditions": source.conditions or []}


def campaign_to_dict(campaign: Campaign) -> dict:
    return {
        "id": campaign.id,
        "name": campaign.name,
        "site_id": campaign.site_id,
        "priority": campaign.priority,
        "conditions": campaign.conditions or [],
    }


# --- editing (the admin's edit forms) ---------------------------------------------------------

def update_site(session: Session, account_id: int, site_id, name, domain) -> Site:
    site = get_owned(session, Site, account_id, site_id)
    site.name, site.domain = _name(name), _unique_domain(session, account_id, normalise_domain(domain), site.id)
    session.flush()
    return site


def update_source(session: Session, account_id: int, source_id, name, priority=None, conditions=None) -> Source:
    source = get_owned(session, Source, account_id, source_id)
    source.name, source.priority, source.conditions = _name(name), _priority(priority), _conditions(conditions)
    session.flush()
    return source


def update_campaign(session: Session, account_id: int, campaign_id, name, site_id, priority=None, conditions=None) -> Campaign:
    campaign = get_owned(session, Campaign, account_id, campaign_id)
    try:
        site = get_owned(session, Site, account_id, site_id)
    except NotFound:
        raise ValidationFailed(f"site {site_id} does not exist in this account", "site_id", NO_SUCH_SITE(id=site_id))
    campaign.name, campaign.site_id = _name(name), site.id
    campaign.priority, campaign.conditions = _priority(priority), _conditions(conditions)
    session.flush()
    return campaign
