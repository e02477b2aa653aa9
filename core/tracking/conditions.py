"""Condition rules of ad campaigns and sources: which visitor sessions they take.

Rules are a list of *groups*; a session matches when **any** group matches (OR), and a group matches
when **all** of its conditions hold (AND)::

    [
        [{"param": "utm_source", "op": "eq", "value": "yandex"},
         {"param": "utm_medium", "op": "eq", "value": "cpc"}],
        [{"param": "yclid", "op": "regex", "value": ".+"}],
    ]

A condition is ``{"param", "op", "value", "exclude"}``:

* ``param`` — one of `CONDITION_PARAMS` (the session's entrance page, referrer, UTM tags, …);
* ``op`` — ``eq`` (equals) or ``contains``: case-insensitive, both sides stripped; ``regex``:
  an RE2 search, case-insensitive, over the first `REGEX_INPUT_LIMIT` characters;
* ``exclude`` — negates the condition ("utm_source is not yandex").

A missing or None parameter is the empty string. An empty list of groups matches nothing (a campaign
without rules never takes sessions); an empty group is ignored.

Regexes are the marketer's and the matched text is the visitor's (public `POST /t/collect` hits), so
no pattern may stall session creation. They run on RE2 (google-re2), a linear-time engine with no
backtracking — the syntax Google Analytics filters use — case-insensitively over the first
`REGEX_INPUT_LIMIT` characters of the value. What RE2 cannot run (backreferences, lookaround,
possessive quantifiers, atomic groups, conditionals) is refused at validation with the construct named;
a stored rule that never went through validation simply does not match.
"""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Hashable, Iterable, Mapping

import re2

from core.platform.messages import N_, Message, define

CONDITION_PARAMS = (
    "entrance_page",
    "referrer",
    "referrer_domain",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "channel",
    "search_engine",
    "gclid",
    "yclid",
)
CONDITION_OPS = ("eq", "contains", "regex")

MAX_GROUPS = 50
MAX_CONDITIONS_PER_GROUP = 50
MAX_REGEX_LENGTH = 500
MAX_VALUE_LENGTH = 2000
REGEX_INPUT_LIMIT = 2000

_CONDITION_KEYS = frozenset(("param", "op", "value", "exclude"))


# What the admin says about a problem (`ConditionError.said`), in the reader's language.
NOT_JSON = define("conditions.not_json", N_("The rules could not be read; reload the page and try again."))
NOT_A_LIST = define("conditions.not_a_list", N_("The rules must be a list of condition groups."))
TOO_MANY_GROUPS = define("conditions.too_many_groups", N_("Too many condition groups: %(n)s (at most %(max)s)."))
GROUP_NOT_A_LIST = define("conditions.group_not_a_list", N_("Group %(g)s: must be a list of conditions."))
TOO_MANY_CONDITIONS = define("conditions.too_many_conditions", N_("Group %(g)s: too many conditions: %(n)s (at most %(max)s)."))
NOT_AN_OBJECT = define("conditions.not_an_object",
                       N_("Group %(g)s, condition %(c)s: must be an object with param, op and value."))
UNKNOWN_FIELD = define("conditions.unknown_field",
                       N_("Group %(g)s, condition %(c)s: unknown field %(field)s (expected param, op, value, exclude)."))
NO_PARAM = define("conditions.no_param", N_("Group %(g)s, condition %(c)s: choose the parameter."))
UNKNOWN_PARAM = define("conditions.unknown_param", N_("Group %(g)s, condition %(c)s: unknown parameter %(p)s."))
NO_OP = define("conditions.no_op", N_("Group %(g)s, condition %(c)s: choose the operator (equals, contains or regex)."))
UNKNOWN_OP = define("conditions.unknown_op",
                    N_("Group %(g)s, condition %(c)s: unknown operator %(op)s (equals, contains or regex)."))
VALUE_NOT_TEXT = define("conditions.value_not_text", N_("Group %(g)s, condition %(c)s: the value must be text."))
NO_VALUE = define("conditions.no_value", N_("Group %(g)s, condition %(c)s: enter the value."))
VALUE_TOO_LONG = define("conditions.value_too_long",
                        N_("Group %(g)s, condition %(c)s: the value is too long: %(n)s characters (at most %(max)s)."))
REGEX_TOO_LONG = define("conditions.regex_too_long", N_(
    "Group %(g)s, condition %(c)s: the regular expression is too long: %(n)s characters (at most %(max)s)."))
REGEX_UNSUPPORTED = define("conditions.regex_unsupported", N_(
    "Group %(g)s, condition %(c)s: the regular expression uses %(construct)s, which conditions do not support "
    "(they use RE2 syntax, as Google Analytics filters do)."))
REGEX_INVALID = define("conditions.regex_invalid", N_(
    "Group %(g)s, condition %(c)s: the regular expression is invalid: %(problem)s (near «%(fragment)s»)."))
REGEX_INVALID_HERE = define("conditions.regex_invalid_here", N_(
    "Group %(g)s, condition %(c)s: the regular expression is invalid: %(problem)s."))
BAD_EXCLUDE = define("conditions.bad_exclude", N_("Group %(g)s, condition %(c)s: exclude must be true or false."))
CONSTRUCT = "conditions.construct"  # a construct's name (a msgid of _UNSUPPORTED) as a message

# RE2's own words for a mistake (the text before ": ") and how we name the problem to a person.
_RE2_PROBLEMS = {key: define(f"conditions.regex_problem.{code}", text) for key, code, text in (
    ("missing )", "missing_paren", N_("an opening bracket ( is not closed")),
    ("unexpected )", "unexpected_paren", N_("a closing bracket ) has no opening one")),
    ("missing ]", "missing_bracket", N_("a square bracket [ is not closed")),
    ("invalid character class range", "bad_range", N_("a range in square brackets is wrong (such as z-a)")),
    ("invalid character class", "bad_class", N_("a character class in square brackets is wrong")),
    ("no argument for repetition operator", "nothing_to_repeat", N_("*, + or ? stands where there is nothing to repeat")),
    ("missing argument to repetition operator", "nothing_to_repeat", N_("*, + or ? stands where there is nothing to repeat")),
    ("bad repetition operator", "double_repeat", N_("two repetition operators in a row (such as **)")),
    ("invalid nested repetition operator", "double_repeat", N_("two repetition operators in a row (such as **)")),
    ("invalid repetition size", "bad_count", N_("a count in curly brackets is wrong or above 1000")),
    ("trailing \\", "trailing_backslash", N_("the expression ends with a lone backslash \\")),
    ("invalid escape sequence", "bad_escape", N_("a backslash escape is unknown")),
    ("invalid named capture group", "bad_group_name", N_("a named group is written wrongly")),
    ("invalid perl operator", "bad_operator", N_("a (?…) construct is unknown")),
    ("invalid UTF-8", "bad_utf8", N_("the text is not valid UTF-8")),
)}
_RE2_UNKNOWN = define("conditions.regex_problem.other", N_("the syntax is wrong"))


def regex_problem(reason: str) -> tuple[Message, str]:
    """(what is wrong, in words; the part of the pattern RE2 pointed at, or "") for RE2's error text."""
    head, _sep, fragment = reason.partition(": ")
    kind = _RE2_PROBLEMS.get(head.strip())
    return (kind() if kind else _RE2_UNKNOWN()), fragment[:60]


class ConditionError(ValueError):
    """The rules are not valid. `message` is the English for programs (the Data API); `said` is the
    same problem as a message for people (core/platform/messages.py); `path` locates the problem.

    `path` is a tuple of 0-based indices and a field name, e.g. ``(0, 2, "value")`` for the value of
    the third condition of the first group; ``()`` means the whole structure. The message counts from 1.
    """

    def __init__(self, message: str, path: tuple = (), said: Message | None = None):
        super().__init__(message)
        self.message = message
        self.path = tuple(path)
        self.said = said

    def __str__(self) -> str:
        return self.message


# --------------------------------------------------------------------------- validation


def validate_conditions(raw: Any) -> list[list[dict]]:
    """Check and normalise rules as they come from a form or a JSON body.

    Accepts None (no rules), a JSON string, or the decoded list of groups. Returns a new structure:
    ``param`` and ``op`` lower-cased, ``value`` stripped (regexes are kept as written), ``exclude``
    a bool defaulting to False. Raises `ConditionError` naming the first problem.
    """
    if raw is None:
        return []
    if isinstance(raw, (str, bytes)):
        try:
            raw = json.loads(raw) if raw.strip() else []
        except ValueError as exc:
            raise ConditionError(f"The rules are not valid JSON: {exc}", said=NOT_JSON()) from None
        except RecursionError:  # `[[[[…` thousands deep from the admin's rules textarea
            raise ConditionError("The rules are not valid JSON: nested too deeply.", said=NOT_JSON()) from None
    if not isinstance(raw, (list, tuple)):
        raise ConditionError("The rules must be a list of condition groups.", said=NOT_A_LIST())
    if len(raw) > MAX_GROUPS:
        raise ConditionError(f"Too many condition groups: {len(raw)} (at most {MAX_GROUPS}).",
                             said=TOO_MANY_GROUPS(n=len(raw), max=MAX_GROUPS))

    cleaned: list[list[dict]] = []
    for gi, group in enumerate(raw):
        where_group = f"Group {gi + 1}"
        if not isinstance(group, (list, tuple)):
            raise ConditionError(f"{where_group}: must be a list of conditions.", (gi,), GROUP_NOT_A_LIST(g=gi + 1))
        if len(group) > MAX_CONDITIONS_PER_GROUP:
            raise ConditionError(
                f"{where_group}: too many conditions: {len(group)} (at most {MAX_CONDITIONS_PER_GROUP}).", (gi,),
                TOO_MANY_CONDITIONS(g=gi + 1, n=len(group), max=MAX_CONDITIONS_PER_GROUP),
            )
        cleaned.append([_validate_condition(cond, gi, ci) for ci, cond in enumerate(group)])
    return cleaned


def _validate_condition(cond: Any, gi: int, ci: int) -> dict:
    where = f"Group {gi + 1}, condition {ci + 1}"
    at = {"g": gi + 1, "c": ci + 1}
    if not isinstance(cond, Mapping):
        raise ConditionError(f"{where}: must be an object with param, op and value.", (gi, ci), NOT_AN_OBJECT(**at))
    unknown = sorted(str(k) for k in cond.keys() if k not in _CONDITION_KEYS)
    if unknown:
        raise ConditionError(
            f"{where}: unknown field {', '.join(map(repr, unknown))} (expected param, op, value, exclude).",
            (gi, ci, unknown[0]), UNKNOWN_FIELD(**at, field=", ".join(map(repr, unknown))),
        )

    param = cond.get("param")
    if not isinstance(param, str) or not param.strip():
        raise ConditionError(f"{where}: the parameter is missing.", (gi, ci, "param"), NO_PARAM(**at))
    param = param.strip().lower()
    if param not in CONDITION_PARAMS:
        raise ConditionError(
            f"{where}: unknown parameter {param!r} (one of: {', '.join(CONDITION_PARAMS)}).", (gi, ci, "param"),
            UNKNOWN_PARAM(**at, p=repr(param)),
        )

    op = cond.get("op")
    if not isinstance(op, str) or not op.strip():
        raise ConditionError(f"{where}: the operator is missing (eq, contains or regex).", (gi, ci, "op"), NO_OP(**at))
    op = op.strip().lower()
    if op not in CONDITION_OPS:
        raise ConditionError(f"{where}: unknown operator {op!r} (eq, contains or regex).", (gi, ci, "op"),
                             UNKNOWN_OP(**at, op=repr(op)))

    value = cond.get("value")
    if not isinstance(value, str):
        raise ConditionError(f"{where}: the value must be a string.", (gi, ci, "value"), VALUE_NOT_TEXT(**at))
    if not value.strip():
        raise ConditionError(f"{where}: the value is empty.", (gi, ci, "value"), NO_VALUE(**at))
    if op == "regex":
        if len(value) > MAX_REGEX_LENGTH:
            raise ConditionError(
                f"{where}: the regular expression is too long: {len(value)} characters "
                f"(at most {MAX_REGEX_LENGTH}).",
                (gi, ci, "value"), REGEX_TOO_LONG(**at, n=len(value), max=MAX_REGEX_LENGTH),
            )
        try:
            compile_regex(value)
        except UnsupportedRegex as exc:
            raise ConditionError(
                f"{where}: the regular expression uses {exc.construct}, which conditions do not support "
                f"(they use RE2 syntax, as Google Analytics filters do).",
                (gi, ci, "value"), REGEX_UNSUPPORTED(**at, construct=Message(CONSTRUCT, exc.construct)),
            ) from None
        except re2.error as exc:
            problem, fragment = regex_problem(_re2_reason(exc))
            raise ConditionError(
                f"{where}: the regular expression does not compile: {_re2_reason(exc)}.", (gi, ci, "value"),
                REGEX_INVALID(**at, problem=problem, fragment=fragment) if fragment else REGEX_INVALID_HERE(**at, problem=problem),
            ) from None
    else:
        value = value.strip()
        if len(value) > MAX_VALUE_LENGTH:
            raise ConditionError(
                f"{where}: the value is too long: {len(value)} characters (at most {MAX_VALUE_LENGTH}).",
                (gi, ci, "value"), VALUE_TOO_LONG(**at, n=len(value), max=MAX_VALUE_LENGTH),
            )

    exclude = cond.get("exclude", False)
    if exclude is None:
        exclude = False
    if not isinstance(exclude, bool):
        raise ConditionError(f"{where}: exclude must be true or false.", (gi, ci, "exclude"), BAD_EXCLUDE(**at))

    return {"param": param, "op": op, "value": value, "exclude": exclude}


# --------------------------------------------------------------------------- matching


def matches(conditions: Any, params: Mapping[str, Any]) -> bool:
    """Whether a session with these parameters satisfies the rules (see the module docstring).

    Tolerates stored rules that were never validated: a malformed condition, an unknown operator or
    a regex that does not compile or is unsafe simply does not hold (and so, with exclude, its
    negation does).
    """
    if not isinstance(conditions, (list, tuple)):
        return False
    for group in conditions:
        if not isinstance(group, (list, tuple)) or not group:
            continue  # an empty group is ignored
        if all(_condition_holds(cond, params) for cond in group):
            return True
    return False


def first_match(rules: Iterable[tuple[Hashable, Any, Any]], params: Mapping[str, Any]):
    """The id of the first rule set that matches: lowest priority number first, ties by id.

    `rules` yields ``(id, priority, conditions)``; a None priority sorts as the default 100.
    """
    ordered = sorted(rules, key=lambda r: (100 if r[1] is None else r[1], r[0]))
    for rule_id, _priority, conditions in ordered:
        if matches(conditions, params):
            return rule_id
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value)
    return value.strip()


def _condition_holds(cond: Any, params: Mapping[str, Any]) -> bool:
    if not isinstance(cond, Mapping):
        return False
    result = _evaluate(cond, params)
    return (not result) if cond.get("exclude") is True else result


def _evaluate(cond: Mapping, params: Mapping[str, Any]) -> bool:
    param = cond.get("param")
    op = cond.get("op")
    value = cond.get("value")
    if not isinstance(param, str) or not isinstance(op, str) or not isinstance(value, str):
        return False
    param = param.strip().lower()
    if param not in CONDITION_PARAMS:
        return False
    op = op.strip().lower()
    actual = _text(params.get(param))
    if op == "eq":
        return actual.casefold() == value.strip().casefold()
    if op == "contains":
        needle = value.strip().casefold()
        return bool(needle) and needle in actual.casefold()
    if op == "regex":
        compiled = _compiled(value)
        if compiled is None:
            return False
        subject = actual[:REGEX_INPUT_LIMIT].replace("\r", " ").replace("\n", " ")
        return compiled.search(subject) is not None
    return False


# What RE2 refuses that Python's `re` (and so many a marketer's habit) has, by the start of RE2's
# error text. The names are msgids: the admin shows them translated (web/admin/messages.py).
_UNSUPPORTED = (
    ("invalid perl operator: (?=", N_("a lookahead (?=…)")),
    ("invalid perl operator: (?!", N_("a negative lookahead (?!…)")),
    ("invalid perl operator: (?<=", N_("a lookbehind (?<=…)")),
    ("invalid perl operator: (?<!", N_("a negative lookbehind (?<!…)")),
    ("invalid perl operator: (?>", N_("an atomic group (?>…)")),
    ("invalid perl operator: (?(", N_("a conditional (?(…)…)")),
    ("invalid perl operator: (?#", N_("a comment (?#…)")),
    ("invalid escape sequence: \\k", N_("a backreference \\k<name>")),
)


class UnsupportedRegex(ValueError):
    """A valid Perl/Python construct RE2 has no linear-time way to run. `construct` is a msgid."""

    def __init__(self, construct: str):
        super().__init__(construct)
        self.construct = construct


def _re2_reason(exc: Exception) -> str:
    reason = exc.args[0] if exc.args else exc
    return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)


def _options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # a refused pattern is a form error, not a line on stderr
    return options


def compile_regex(pattern: str):
    """The RE2 program for a condition's pattern (case-insensitive).

    Raises `UnsupportedRegex` naming the construct RE2 refuses, or `re2.error` for any other mistake.
    """
    try:
        return re2.compile(pattern, _options())
    except re2.error as exc:
        reason = _re2_reason(exc)
        if reason.startswith("invalid perl operator: (?P") and "(?P=" in pattern:
            raise UnsupportedRegex(N_("a backreference (?P=name)")) from None
        for prefix, construct in _UNSUPPORTED:
            if reason.startswith(prefix):
                raise UnsupportedRegex(construct) from None
        if reason.startswith("invalid escape sequence: \\") and reason[len("invalid escape sequence: \\"):][:1].isdigit():
            raise UnsupportedRegex(N_("a backreference \\1")) from None
        if reason.startswith("bad repetition operator: ") and reason.endswith("+"):
            raise UnsupportedRegex(N_("a possessive quantifier (a++, a*+)")) from None
        raise


@lru_cache(maxsize=2048)
def _compiled(pattern: str):
    """The compiled search pattern, or None when it is too long or RE2 refuses it (stored rules are
    not trusted to have been validated)."""
    if not pattern.strip() or len(pattern) > MAX_REGEX_LENGTH:
        return None
    try:
        return compile_regex(pattern)
    except (re2.error, ValueError):
        return None
