"""Issue 10 §2: a tenant's regex cannot stall the service. Conditions run on RE2 (linear time, no
backtracking), so the classic catastrophic patterns are accepted and answer at once on the longest
input we match (`REGEX_INPUT_LIMIT`, 2,000 characters); what RE2 cannot run is refused naming the
construct, in the admin in Russian."""
from __future__ import annotations

import json

import pytest

from core.tracking.conditions import REGEX_INPUT_LIMIT, ConditionError, _compiled, matches, validate_conditions
from tests.helpers.admin_helpers import post_form, signed_in, text
from tests.helpers.tracking_http import send

# (pattern, an input that backtracks exponentially in Python's `re` and does not match, one that matches)
CATASTROPHIC = [
    (r"a.*a.*a.*a.*a.*!", "a" * REGEX_INPUT_LIMIT, "a" * (REGEX_INPUT_LIMIT - 1) + "!"),
    (r"(a|aa)+$", "a" * (REGEX_INPUT_LIMIT - 1) + "!", "b" + "a" * (REGEX_INPUT_LIMIT - 1)),
    (r"(x+x+)+y", "x" * REGEX_INPUT_LIMIT, "x" * (REGEX_INPUT_LIMIT - 1) + "y"),
]


def rule(pattern, param="entrance_page"):
    return [[{"param": param, "op": "regex", "value": pattern}]]


@pytest.mark.parametrize("pattern, miss, hit", CATASTROPHIC)
def test_catastrophic_patterns_are_accepted_and_run_by_re2(pattern, miss, hit):
    assert validate_conditions(rule(pattern)) == [[{"param": "entrance_page", "op": "regex", "value": pattern, "exclude": False}]]
    assert type(_compiled(pattern)).__module__.split(".")[0] == "re2"  # not Python's backtracking `re`
    assert not matches(rule(pattern), {"entrance_page": miss})
    assert matches(rule(pattern), {"entrance_page": hit})


def test_the_matched_input_is_capped_at_2000_characters():
    pattern = r"(a|aa)+!"
    assert matches(rule(pattern), {"entrance_page": "a" * (REGEX_INPUT_LIMIT - 1) + "!"})
    assert not matches(rule(pattern), {"entrance_page": "a" * REGEX_INPUT_LIMIT + "!"})  # the "!" is past the cap


@pytest.mark.parametrize("pattern, construct", [
    (r"^(?=.*utm)", "a lookahead (?=…)"),
    (r"^/(?!admin)", "a negative lookahead (?!…)"),
    (r"(?<=utm_source=)google", "a lookbehind (?<=…)"),
    (r"(?<!www\.)google", "a negative lookbehind (?<!…)"),
    (r"(a)\1", "a backreference \\1"),
    (r"(?P<x>a)(?P=x)", "a backreference (?P=name)"),
    (r"a++b", "a possessive quantifier (a++, a*+)"),
    (r"(?>a+)b", "an atomic group (?>…)"),
])
def test_what_re2_cannot_run_is_refused_naming_the_construct(pattern, construct):
    with pytest.raises(ConditionError) as info:
        validate_conditions([[{"param": "utm_source", "op": "eq", "value": "x"}], rule(pattern)[0]])
    assert info.value.path == (1, 0, "value")
    assert info.value.message == (f"Group 2, condition 1: the regular expression uses {construct}, which conditions do not "
                                  f"support (they use RE2 syntax, as Google Analytics filters do).")
    assert not matches(rule(pattern), {"entrance_page": "aab"})  # a stored rule RE2 refuses never matches


def test_the_admin_names_the_construct_in_russian(app):
    client = signed_in(app)
    response = post_form(client, "/admin/campaigns/new/", {
        "name": "Просмотр", "priority": "1", "conditions": json.dumps(rule(r"(?<=utm_source=)google"))})
    assert response.status_code == 200
    assert ("Группа 1, условие 1: в регулярном выражении есть ретроспективная проверка (?&lt;=…), а условия его не "
            "поддерживают (они записываются в синтаксисе RE2).") in text(response)


def test_the_api_refuses_it_with_a_422_naming_the_field(client, api):
    response = client.post("/api/v1/sources", headers=api, json={"name": "x", "conditions": rule(r"(a)\1")})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["field"] == "conditions" and "a backreference \\1" in error["message"]


PAGE = "https://www.shop.example.ru/?q="
ROOM = REGEX_INPUT_LIMIT - len(PAGE)  # the url is the whole matched input


@pytest.mark.parametrize("pattern, miss, hit", [
    (r"a.*a.*a.*a.*a.*!", "a" * ROOM, "a" * (ROOM - 1) + "!"),
    (r"(a|aa)+$", "a" * (ROOM - 1) + "!", "a" * ROOM),
])
def test_a_public_collect_hit_with_a_long_url_against_a_catastrophic_rule(client, api, pattern, miss, hit):
    """The attack of the issue: a tenant's rule plus public `POST /t/collect` hits carrying long urls."""
    site = client.post("/api/v1/sites", headers=api, json={"name": "Магазин", "domain": "shop.example.ru"}).get_json()
    campaign = client.post("/api/v1/campaigns", headers=api, json={
        "name": "Ловушка", "site_id": site["id"], "conditions": rule(pattern)}).get_json()
    assert campaign.get("id"), campaign
    for value, attributed in ((miss, None), (hit, campaign["id"])):
        response = send(client, site["site_key"], {"url": PAGE + value})
        assert response.status_code == 200, response.get_json()
        session = client.get(f"/api/v1/sessions/{response.get_json()['session_id']}", headers=api).get_json()
        assert session["campaign_id"] == attributed
