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
  `re.search` with IGNORECASE over the first `REGEX_INPUT_LIMIT` characters;
* ``exclude`` — negates the condition ("utm_source is not yandex").

A missing or None parameter is the empty string. An empty list of groups matches nothing (a campaign
without rules never takes sessions); an empty group is ignored.

Regexes are the marketer's and the matched text is the visitor's, so a careless or hostile pattern
must not stall session creation. Python's `re` cannot be interrupted, hence three guards:

1. validation rejects the shapes that backtrack exponentially or with a high polynomial degree —
   a quantified group whose body is itself an ambiguous quantifier (``(a+)+``, ``(\\w+\\s?)*``) and
   two overlapping unbounded quantifiers side by side (``.*.*``, ``\\w+\\w*``); a possessive
   quantifier (``a++``) or an atomic group (``(?>…)``) is the way out the error message suggests;
2. `matches` applies the same check, so rules that reached the database some other way are treated
   as non-matching instead of being run;
3. a leading or trailing ``.*`` (redundant for a search) is dropped before compiling, and only the
   first `REGEX_INPUT_LIMIT` characters of the value are searched.
"""
from __future__ import annotations

import json
import re
import string
from functools import lru_cache
from typing import Any, Hashable, Iterable, Mapping

try:  # CPython's regex parser; only used to inspect patterns for catastrophic backtracking.
    from re import _constants as _sre_c
    from re import _parser as _sre_parse
except ImportError:  # pragma: no cover - other Python versions / implementations
    try:
        import sre_constants as _sre_c  # type: ignore[no-redef]
        import sre_parse as _sre_parse  # type: ignore[no-redef]
    except ImportError:
        _sre_c = _sre_parse = None

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


class ConditionError(ValueError):
    """The rules are not valid. `message` is for people; `path` locates the problem.

    `path` is a tuple of 0-based indices and a field name, e.g. ``(0, 2, "value")`` for the value of
    the third condition of the first group; ``()`` means the whole structure. The message counts from 1.
    """

    def __init__(self, message: str, path: tuple = ()):
        super().__init__(message)
        self.message = message
        self.path = tuple(path)

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
            raise ConditionError(f"The rules are not valid JSON: {exc}") from None
        except RecursionError:  # `[[[[…` thousands deep from the admin's rules textarea
            raise ConditionError("The rules are not valid JSON: nested too deeply.") from None
    if not isinstance(raw, (list, tuple)):
        raise ConditionError("The rules must be a list of condition groups.")
    if len(raw) > MAX_GROUPS:
        raise ConditionError(f"Too many condition groups: {len(raw)} (at most {MAX_GROUPS}).")

    cleaned: list[list[dict]] = []
    for gi, group in enumerate(raw):
        where_group = f"Group {gi + 1}"
        if not isinstance(group, (list, tuple)):
            raise ConditionError(f"{where_group}: must be a list of conditions.", (gi,))
        if len(group) > MAX_CONDITIONS_PER_GROUP:
            raise ConditionError(
                f"{where_group}: too many conditions: {len(group)} (at most {MAX_CONDITIONS_PER_GROUP}).", (gi,)
            )
        cleaned.append([_validate_condition(cond, gi, ci) for ci, cond in enumerate(group)])
    return cleaned


def _validate_condition(cond: Any, gi: int, ci: int) -> dict:
    where = f"Group {gi + 1}, condition {ci + 1}"
    if not isinstance(cond, Mapping):
        raise ConditionError(f"{where}: must be an object with param, op and value.", (gi, ci))
    unknown = sorted(str(k) for k in cond.keys() if k not in _CONDITION_KEYS)
    if unknown:
        raise ConditionError(
            f"{where}: unknown field {', '.join(map(repr, unknown))} (expected param, op, value, exclude).",
            (gi, ci, unknown[0]),
        )

    param = cond.get("param")
    if not isinstance(param, str) or not param.strip():
        raise ConditionError(f"{where}: the parameter is missing.", (gi, ci, "param"))
    param = param.strip().lower()
    if param not in CONDITION_PARAMS:
        raise ConditionError(
            f"{where}: unknown parameter {param!r} (one of: {', '.join(CONDITION_PARAMS)}).", (gi, ci, "param")
        )

    op = cond.get("op")
    if not isinstance(op, str) or not op.strip():
        raise ConditionError(f"{where}: the operator is missing (eq, contains or regex).", (gi, ci, "op"))
    op = op.strip().lower()
    if op not in CONDITION_OPS:
        raise ConditionError(f"{where}: unknown operator {op!r} (eq, contains or regex).", (gi, ci, "op"))

    value = cond.get("value")
    if not isinstance(value, str):
        raise ConditionError(f"{where}: the value must be a string.", (gi, ci, "value"))
    if not value.strip():
        raise ConditionError(f"{where}: the value is empty.", (gi, ci, "value"))
    if op == "regex":
        if len(value) > MAX_REGEX_LENGTH:
            raise ConditionError(
                f"{where}: the regular expression is too long: {len(value)} characters "
                f"(at most {MAX_REGEX_LENGTH}).",
                (gi, ci, "value"),
            )
        try:
            re.compile(value, re.IGNORECASE)
        except (re.error, RecursionError, OverflowError, ValueError) as exc:
            raise ConditionError(
                f"{where}: the regular expression does not compile: {exc}.", (gi, ci, "value")
            ) from None
        problem = regex_risk(value)
        if problem:
            raise ConditionError(f"{where}: the regular expression {problem}", (gi, ci, "value"))
    else:
        value = value.strip()
        if len(value) > MAX_VALUE_LENGTH:
            raise ConditionError(
                f"{where}: the value is too long: {len(value)} characters (at most {MAX_VALUE_LENGTH}).",
                (gi, ci, "value"),
            )

    exclude = cond.get("exclude", False)
    if exclude is None:
        exclude = False
    if not isinstance(exclude, bool):
        raise ConditionError(f"{where}: exclude must be true or false.", (gi, ci, "exclude"))

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


@lru_cache(maxsize=2048)
def _compiled(pattern: str) -> re.Pattern | None:
    """The compiled search pattern, or None when it is too long, invalid or unsafe."""
    if not pattern.strip() or len(pattern) > MAX_REGEX_LENGTH:
        return None
    try:
        re.compile(pattern, re.IGNORECASE)
    except (re.error, RecursionError, OverflowError, ValueError):
        return None
    if regex_risk(pattern):
        return None
    try:
        return re.compile(_strip_redundant_dot_star(pattern), re.IGNORECASE)
    except (re.error, RecursionError, OverflowError, ValueError):  # pragma: no cover - defensive
        return re.compile(pattern, re.IGNORECASE)


def _strip_redundant_dot_star(pattern: str) -> str:
    """Drop a leading ``^.*``/``.*`` and a trailing ``.*``/``.*$``: the same truth value for a search
    over one line, without the quadratic scan (``.*foo.*`` is how many marketers write "contains").
    """
    p = pattern
    while True:
        for prefix in ("^.*?", "^.*", ".*?", ".*"):
            if p.startswith(prefix) and not p[len(prefix):].startswith(("+", "*", "?", "{")):
                p = p[len(prefix):]
                break
        else:
            break
    while True:
        for suffix in (".*?$", ".*$", ".*?", ".*"):
            if p.endswith(suffix) and _unescaped_at(p, len(p) - len(suffix)):
                head = p[: len(p) - len(suffix)]
                if head.endswith("(?") or head.endswith("["):
                    break
                p = head
                break
        else:
            break
    return p


def _unescaped_at(p: str, index: int) -> bool:
    """Whether the character at `index` is not escaped by an odd run of backslashes. (A ``.*`` that
    ends a valid pattern cannot be inside a character class: that would end with ``]``.)"""
    backslashes = 0
    i = index - 1
    while i >= 0 and p[i] == "\\":
        backslashes += 1
        i -= 1
    return backslashes % 2 == 0


# --------------------------------------------------------------------------- catastrophic backtracking

_SAMPLE_CHARS = (
    string.printable
    + "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"
    + "éüßçñ\u00a0\u2014\u00ab\u00bb0١"
)
_UNKNOWN = None  # a repeat body that is not a single character class


def regex_risk(pattern: str) -> str | None:
    """Why the pattern risks catastrophic backtracking, as the end of a sentence, or None.

    Best effort over CPython's own parse tree; on an interpreter without it, no check is made.
    """
    if _sre_parse is None:  # pragma: no cover
        return None
    try:
        tree = _sre_parse.parse(pattern, re.IGNORECASE)
    except Exception:  # noqa: BLE001 - compile errors are reported elsewhere
        return None
    try:
        return _check_sequence(list(tree))
    except RecursionError:  # pragma: no cover - absurdly deep nesting
        return "is nested too deeply."


_NESTED_MSG = (
    "repeats a group that itself contains a repetition ({}), which can take forever on some "
    "addresses. Simplify it, or make the inner repetition possessive (a++) or atomic ((?>...))."
)
_ADJACENT_MSG = (
    "has two repetitions next to each other that can match the same characters ({}), which is very "
    "slow on long addresses. Keep one of them."
)


def _is_repeat(op) -> bool:
    return op in (_sre_c.MAX_REPEAT, _sre_c.MIN_REPEAT)


def _check_sequence(items: list) -> str | None:
    """Check one sequence and, recursively, everything inside it."""
    # Rule 2: adjacent overlapping unbounded repeats in this sequence (through plain groups).
    open_sets: list[frozenset] = []
    for op, av in _flatten(items):
        if _is_repeat(op) or op == _sre_c.POSSESSIVE_REPEAT:
            lo, hi, body = av
            chars = _single_char_set(body)
            if op != _sre_c.POSSESSIVE_REPEAT and hi == _sre_c.MAXREPEAT and chars is not _UNKNOWN:
                for other in open_sets:
                    if chars & other:
                        return _ADJACENT_MSG.format("like .*.*")
                open_sets.append(chars)
                continue
            if lo == 0:
                continue  # optional: does not separate the repeats around it
            open_sets = []
        elif op in (_sre_c.AT, _sre_c.ASSERT, _sre_c.ASSERT_NOT):
            continue  # zero width
        else:
            open_sets = []

    # Rule 1 and recursion into sub-sequences.
    for op, av in items:
        if _is_repeat(op):
            lo, hi, body = av
            if hi >= 2:
                inner = _inner_unbounded_repeats(body)
                if inner and not _has_separator(body, inner):
                    return _NESTED_MSG.format("like (a+)+")
            problem = _check_sequence(list(body))
        elif op == _sre_c.POSSESSIVE_REPEAT:
            problem = _check_sequence(list(av[2]))
        elif op == _sre_c.SUBPATTERN:
            problem = _check_sequence(list(av[3]))
        elif op == _sre_c.ATOMIC_GROUP:
            problem = _check_sequence(list(av))
        elif op in (_sre_c.ASSERT, _sre_c.ASSERT_NOT):
            problem = _check_sequence(list(av[1]))
        elif op == _sre_c.BRANCH:
            problem = None
            for branch in av[1]:
                problem = _check_sequence(list(branch))
                if problem:
                    break
        elif op == _sre_c.GROUPREF_EXISTS:
            problem = None
            for branch in av[1:]:
                if branch is not None:
                    problem = _check_sequence(list(branch))
                    if problem:
                        break
        else:
            problem = None
        if problem:
            return problem
    return None


def _flatten(items):
    """The items of a sequence with plain (non-repeated) groups opened up."""
    for op, av in items:
        if op == _sre_c.SUBPATTERN:
            yield from _flatten(list(av[3]))
        else:
            yield op, av


def _inner_unbounded_repeats(items) -> list:
    """Variable-length backtracking repeats inside `items` (``a+``, ``a*``, ``a{1,3}``, ``a?``), as
    the character sets they eat; atomic groups and possessive repeats are not looked into."""
    found = []
    for op, av in items:
        if _is_repeat(op):
            lo, hi, body = av
            if hi > lo:
                found.append(_single_char_set(body))
            found.extend(_inner_unbounded_repeats(body))
        elif op == _sre_c.SUBPATTERN:
            found.extend(_inner_unbounded_repeats(av[3]))
        elif op == _sre_c.BRANCH:
            for branch in av[1]:
                found.extend(_inner_unbounded_repeats(branch))
            if len(av[1]) > 1 and any(_inner_unbounded_repeats(b) for b in av[1]):
                found.append(_UNKNOWN)
        elif op == _sre_c.GROUPREF_EXISTS:
            for branch in av[1:]:
                if branch is not None:
                    found.extend(_inner_unbounded_repeats(branch))
    return found


def _has_separator(body, inner_sets: list) -> bool:
    """Whether the repeated body has a mandatory character none of its inner repeats can eat,
    which pins down where one iteration ends (``(\\w+\\.)+`` is fine, ``(\\w+\\s?)+`` is not)."""
    if any(s is _UNKNOWN for s in inner_sets):
        return False
    eaten = frozenset().union(*inner_sets)
    for op, av in _flatten(list(body)):
        if op in (_sre_c.LITERAL, _sre_c.NOT_LITERAL, _sre_c.IN, _sre_c.ANY):
            chars = _single_char_set([(op, av)])
            if chars is not _UNKNOWN and chars and not (chars & eaten):
                return True
        elif _is_repeat(op) or op == _sre_c.POSSESSIVE_REPEAT:
            lo, hi, sub = av
            if lo >= 1 and hi != _sre_c.MAXREPEAT:
                chars = _single_char_set(sub)
                if chars is not _UNKNOWN and chars and not (chars & eaten):
                    return True
    return False


def _single_char_set(body) -> frozenset | None:
    """The sample characters a one-character body can match (case-insensitively), else None."""
    body = list(body)
    while len(body) == 1 and body[0][0] == _sre_c.SUBPATTERN:
        body = list(body[0][1][3])
    if len(body) != 1:
        return _UNKNOWN
    op, av = body[0]
    if op not in (_sre_c.LITERAL, _sre_c.NOT_LITERAL, _sre_c.IN, _sre_c.ANY):
        return _UNKNOWN
    return frozenset(
        ch
        for ch in _SAMPLE_CHARS
        if any(_char_matches(op, av, variant) for variant in {ch, ch.lower(), ch.upper()} if len(variant) == 1)
    )


def _char_matches(op, av, ch: str) -> bool:
    if op == _sre_c.LITERAL:
        return ch == chr(av) or ch.lower() == chr(av).lower()
    if op == _sre_c.NOT_LITERAL:
        return ch.lower() != chr(av).lower()
    if op == _sre_c.ANY:
        return ch != "\n"
    if op == _sre_c.IN:
        negate = False
        hit = False
        for sub_op, sub_av in av:
            if sub_op == _sre_c.NEGATE:
                negate = True
            elif sub_op == _sre_c.LITERAL:
                hit = hit or ch.lower() == chr(sub_av).lower()
            elif sub_op == _sre_c.RANGE:
                lo, hi = sub_av
                hit = hit or any(lo <= ord(v) <= hi for v in {ch, ch.lower(), ch.upper()} if len(v) == 1)
            elif sub_op == _sre_c.CATEGORY:
                hit = hit or _category_matches(sub_av, ch)
            else:
                hit = True  # something we do not model: assume it overlaps
        return hit != negate
    return True


def _category_matches(category, ch: str) -> bool:
    c = _sre_c
    if category == c.CATEGORY_DIGIT:
        return ch.isdecimal()
    if category == c.CATEGORY_NOT_DIGIT:
        return not ch.isdecimal()
    if category == c.CATEGORY_SPACE:
        return ch.isspace()
    if category == c.CATEGORY_NOT_SPACE:
        return not ch.isspace()
    if category == c.CATEGORY_WORD:
        return ch.isalnum() or ch == "_"
    if category == c.CATEGORY_NOT_WORD:
        return not (ch.isalnum() or ch == "_")
    return True
