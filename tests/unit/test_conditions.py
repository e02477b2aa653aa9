"""Condition rules of campaigns and sources, as a marketer would notice them."""
from __future__ import annotations

import re

import pytest

from core.tracking.conditions import (
    CONDITION_PARAMS,
    MAX_CONDITIONS_PER_GROUP,
    MAX_GROUPS,
    REGEX_INPUT_LIMIT,
    ConditionError,
    first_match,
    matches,
    validate_conditions,
)


def cond(param, op, value, exclude=False):
    return {"param": param, "op": op, "value": value, "exclude": exclude}


YANDEX_DIRECT = [
    [cond("utm_source", "eq", "yandex"), cond("utm_medium", "eq", "cpc")],
    [cond("yclid", "regex", r".+")],
]


def test_params_are_the_documented_ones():
    assert CONDITION_PARAMS == (
        "entrance_page", "referrer", "referrer_domain", "utm_source", "utm_medium", "utm_campaign",
        "utm_term", "utm_content", "channel", "search_engine", "gclid", "yclid",
    )


# --- OR of groups, AND inside a group -----------------------------------------------------------


def test_all_conditions_of_a_group_must_hold():
    assert matches(YANDEX_DIRECT, {"utm_source": "yandex", "utm_medium": "cpc"})
    assert not matches(YANDEX_DIRECT, {"utm_source": "yandex", "utm_medium": "organic"})


def test_any_group_is_enough():
    assert matches(YANDEX_DIRECT, {"yclid": "123456"})
    assert not matches(YANDEX_DIRECT, {"utm_source": "google", "utm_medium": "cpc"})


def test_no_groups_match_nothing_and_empty_groups_are_ignored():
    assert not matches([], {"utm_source": "yandex"})
    assert not matches(None, {"utm_source": "yandex"})
    assert not matches([[]], {})
    assert matches([[], [cond("utm_source", "eq", "yandex")]], {"utm_source": "yandex"})


# --- operators ------------------------------------------------------------------------------------


def test_eq_and_contains_ignore_case_and_surrounding_spaces():
    params = {"utm_campaign": "  Summer_SALE_2026 ", "referrer": "https://WWW.Google.com/search?q=x"}
    assert matches([[cond("utm_campaign", "eq", "summer_sale_2026")]], params)
    assert matches([[cond("utm_campaign", "eq", " SUMMER_sale_2026  ")]], params)
    assert not matches([[cond("utm_campaign", "eq", "summer_sale")]], params)
    assert matches([[cond("referrer", "contains", "google.com")]], params)
    assert matches([[cond("utm_campaign", "contains", "Sale")]], params)


def test_regex_searches_case_insensitively():
    params = {"entrance_page": "https://shop.example.ru/Promo/winter?utm_source=vk"}
    assert matches([[cond("entrance_page", "regex", r"/promo/(winter|spring)")]], params)
    assert matches([[cond("entrance_page", "regex", r"^https://shop\.")]], params)
    assert not matches([[cond("entrance_page", "regex", r"^/promo")]], params)


def test_the_common_dot_star_wrapping_means_contains():
    rules = [[cond("referrer", "regex", ".*google.*")]]
    assert matches(rules, {"referrer": "https://google.com/"})
    assert not matches(rules, {"referrer": "https://yandex.ru/"})
    assert matches([[cond("referrer", "regex", "^.*$")]], {"referrer": ""})


def test_missing_parameter_is_the_empty_string():
    assert not matches([[cond("gclid", "contains", "a")]], {})
    assert not matches([[cond("gclid", "regex", ".")]], {"gclid": None})
    assert matches([[cond("gclid", "regex", "^$")]], {"gclid": None})


def test_exclude_negates_a_condition():
    not_yandex = [[cond("utm_medium", "eq", "cpc"), cond("utm_source", "eq", "yandex", exclude=True)]]
    assert matches(not_yandex, {"utm_source": "google", "utm_medium": "cpc"})
    assert not matches(not_yandex, {"utm_source": "Yandex", "utm_medium": "cpc"})
    # A missing parameter is "", so "does not contain x" holds.
    assert matches([[cond("utm_term", "contains", "x", exclude=True)]], {})


def test_regex_sees_only_the_start_of_a_very_long_value():
    tail = "x" * (REGEX_INPUT_LIMIT + 100) + "needle"
    assert not matches([[cond("entrance_page", "regex", "needle")]], {"entrance_page": tail})
    assert matches([[cond("entrance_page", "contains", "needle")]], {"entrance_page": tail})


# --- priority ---------------------------------------------------------------------------------------


def test_lowest_priority_number_wins_and_ties_go_to_the_lower_id():
    google = [[cond("referrer_domain", "contains", "google")]]
    anything = [[cond("channel", "regex", ".")]]
    rules = [(7, 100, anything), (3, 10, google), (2, 10, google), (1, 50, anything)]
    assert first_match(rules, {"referrer_domain": "google.com", "channel": "organic"}) == 2
    assert first_match(rules, {"referrer_domain": "bing.com", "channel": "organic"}) == 1
    assert first_match(rules, {"referrer_domain": "", "channel": ""}) is None
    assert first_match([], {"channel": "direct"}) is None


def test_campaign_without_rules_never_matches():
    assert first_match([(1, 0, []), (2, 5, [[]])], {"channel": "direct"}) is None


# --- validation ----------------------------------------------------------------------------------


def test_validation_normalises():
    raw = [[{"param": " UTM_Source ", "op": "EQ", "value": "  yandex "}], [],
           [{"param": "referrer", "op": "regex", "value": " google\\. ", "exclude": True}]]
    assert validate_conditions(raw) == [
        [{"param": "utm_source", "op": "eq", "value": "yandex", "exclude": False}],
        [],
        [{"param": "referrer", "op": "regex", "value": " google\\. ", "exclude": True}],
    ]
    assert validate_conditions(None) == []
    assert validate_conditions('[[{"param": "channel", "op": "eq", "value": "paid"}]]') == [
        [{"param": "channel", "op": "eq", "value": "paid", "exclude": False}]
    ]


def _error(raw) -> ConditionError:
    with pytest.raises(ConditionError) as info:
        validate_conditions(raw)
    return info.value


def test_bad_regex_names_the_condition():
    raw = [[cond("utm_source", "eq", "vk")], [cond("utm_source", "eq", "ok"), cond("referrer", "regex", "(google")]]
    err = _error(raw)
    assert err.path == (1, 1, "value")
    assert "Group 2, condition 2" in err.message
    assert "does not compile" in err.message
    assert str(err) == err.message


@pytest.mark.parametrize(
    "condition, path_end, words",
    [
        (cond("city", "eq", "Moscow"), "param", "unknown parameter 'city'"),
        (cond("utm_source", "startswith", "ya"), "op", "unknown operator 'startswith'"),
        ({"param": "utm_source", "value": "ya"}, "op", "operator is missing"),
        (cond("utm_source", "eq", 5), "value", "must be a string"),
        (cond("utm_source", "eq", None), "value", "must be a string"),
        (cond("utm_source", "eq", "   "), "value", "is empty"),
        (cond("referrer", "regex", "a" * 501), "value", "too long"),
        (cond("utm_source", "eq", "ya", exclude="yes"), "exclude", "true or false"),
        ({"param": "utm_source", "op": "eq", "value": "ya", "exlude": True}, "exlude", "unknown field"),
    ],
)
def test_each_problem_is_named(condition, path_end, words):
    err = _error([[cond("channel", "eq", "paid"), condition]])
    assert err.path == (0, 1, path_end)
    assert err.message.startswith("Group 1, condition 2: ")
    assert words in err.message


def test_structure_problems():
    assert "list of condition groups" in _error({"param": "utm_source"}).message
    assert "Group 1: must be a list" in _error([cond("utm_source", "eq", "x")]).message
    assert "Group 1, condition 1: must be an object" in _error([["utm_source"]]).message
    assert "not valid JSON" in _error("[[{").message
    assert "Too many condition groups" in _error([[]] * (MAX_GROUPS + 1)).message
    err = _error([[cond("channel", "eq", "paid")] * (MAX_CONDITIONS_PER_GROUP + 1)])
    assert "too many conditions" in err.message and err.path == (0,)
    validate_conditions([[cond("channel", "eq", "paid")] * MAX_CONDITIONS_PER_GROUP] * MAX_GROUPS)


# --- RE2 syntax ------------------------------------------------------------------------------------
# Backtracking patterns are the security suite's (tests/security/test_regex_conditions.py); here, the
# syntax marketers write keeps working under RE2.


@pytest.mark.parametrize(
    "pattern",
    [r"^https?://(www\.)?google\.", r"([a-z0-9-]+\.)+example\.ru", r"(\d{1,3}\.){3}\d{1,3}", r".*utm.*google.*",
     r"[a-z]+[0-9]+", r"(foo|bar)+", r"(?P<host>[^/]+)\.ru", r"\bpromo\b", r"^/catalog/[^?]*$"],
)
def test_ordinary_regexes_are_accepted(pattern):
    validate_conditions([[cond("entrance_page", "regex", pattern)]])


def test_cyrillic_matches_case_insensitively():
    assert matches([[cond("utm_campaign", "regex", "^ЛЕТО-[0-9]+$")]], {"utm_campaign": "лето-2026"})


def test_stored_rules_that_are_broken_do_not_match_and_do_not_raise():
    params = {"utm_source": "yandex"}
    assert not matches([[cond("utm_source", "regex", "(yandex")]], params)
    assert matches([[cond("utm_source", "regex", "(yandex", exclude=True)]], params)
    assert not matches([[cond("nope", "eq", "yandex")]], params)
    assert not matches([["junk", 5]], params)
    assert not matches("junk", params)


@pytest.mark.parametrize("pattern, problem", [
    ("(abc", "missing_paren"), ("abc)", "unexpected_paren"), ("[abc", "missing_bracket"), ("[z-a]", "bad_range"),
    ("*a", "nothing_to_repeat"), ("a**", "double_repeat"), ("a{1001}", "bad_count"), ("abc\\", "trailing_backslash"),
    ("\\q", "bad_escape"), ("(?<n", "bad_group_name"),
])
def test_a_regex_mistake_is_named_by_our_own_message(pattern, problem):
    """The admin names the mistake in its own words (issue 15 item 9), not RE2's English «missing ): (abc»;
    the API keeps RE2's words in `message`."""
    from core.platform.messages import render
    from web.messages import translations_for

    err = _error([[cond("utm_source", "regex", pattern)]])
    assert err.said.code.startswith("conditions.regex_invalid") and err.said.params["problem"].code.endswith("." + problem)
    for lang in ("ru", "en"):
        text = render(err.said, translations_for(lang))
        said = text.split(": ", 2)[-1]  # after «Group 1, condition 1: the regular expression is invalid»
        assert not re.search(r"missing|unexpected|invalid|bad|argument|repetition operator:", said), said
    assert not re.search(r"[a-z]{4,}", render(err.said, translations_for("ru")).replace("utm_source", ""))
