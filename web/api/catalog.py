"""Sites, sources and ad campaigns: the account's dictionaries that attribution works with."""
from __future__ import annotations

from flask import g

from core.models import Campaign, Site, Source
from core.tracking import catalog
from web.api import models as m
from web.api.blueprint import bp, created_json, listing
from web.api.contract import contract, created, ok, query, read_body
from web.extensions import db

TAGS = ("catalog",)


@bp.get("/sites")
@contract("List sites", ok(m.SiteList), tags=TAGS, query=m.Paging)
def list_sites():
    page = query()
    return listing(*catalog.list_rows(db.session, Site, g.account_id, page.limit, page.offset), catalog.site_to_dict)


@bp.post("/sites")
@contract("Create a site", created(m.Site), tags=TAGS, body=m.SiteCreate, errors=(422,))
def create_site():
    data = read_body()
    return created_json(catalog.site_to_dict(catalog.create_site(db.session, g.account_id, data.name, data.domain)))


@bp.get("/sources")
@contract("List sources", ok(m.SourceList), tags=TAGS, query=m.Paging)
def list_sources():
    page = query()
    return listing(*catalog.list_rows(db.session, Source, g.account_id, page.limit, page.offset), catalog.source_to_dict)


@bp.post("/sources")
@contract("Create a source", created(m.Source), tags=TAGS, body=m.SourceCreate, errors=(422,))
def create_source():
    data = read_body()
    row = catalog.create_source(db.session, g.account_id, data.name, data.priority, _conditions(data))
    return created_json(catalog.source_to_dict(row))


@bp.get("/campaigns")
@contract("List ad campaigns", ok(m.CampaignList), tags=TAGS, query=m.Paging)
def list_campaigns():
    page = query()
    return listing(*catalog.list_rows(db.session, Campaign, g.account_id, page.limit, page.offset), catalog.campaign_to_dict)


@bp.post("/campaigns")
@contract("Create an ad campaign", created(m.Campaign), tags=TAGS, body=m.CampaignCreate, errors=(422,))
def create_campaign():
    data = read_body()
    row = catalog.create_campaign(db.session, g.account_id, data.name, data.site_id, data.priority, _conditions(data))
    return created_json(catalog.campaign_to_dict(row))


def _conditions(data) -> list | None:
    """The conditions as core reads them: plain lists of dicts."""
    return None if data.conditions is None else [[c.model_dump() for c in group] for group in data.conditions]
