"""Request JSON that cannot crash a handler: nesting too deep for Python is bad input, not a 500.

`json.loads` raises RecursionError (not ValueError) on `[[[[…]]]]` a few thousand levels deep, and a
document a little shallower than that parses but then overflows the stack of any code that walks it
recursively (the Data API's NUL and number checks). So every JSON body is parsed here, and a document
nested deeper than `MAX_DEPTH` levels is refused as invalid JSON — no real payload of ours comes close.
Installed as the app's JSON provider, so `request.get_json()` everywhere gets the same rule."""
from __future__ import annotations

import json

from flask.json.provider import DefaultJSONProvider

MAX_DEPTH = 64


class JsonTooDeep(ValueError):
    def __init__(self):
        super().__init__(f"the JSON is nested deeper than {MAX_DEPTH} levels")


def nesting_depth(value) -> int:
    """Depth of lists and objects in a parsed document, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                break
            stack.extend((child, depth + 1) for child in item if isinstance(child, (list, dict)))
    return deepest


def loads(raw):
    try:
        data = json.loads(raw)
    except RecursionError:
        raise JsonTooDeep() from None
    if nesting_depth(data) > MAX_DEPTH:
        raise JsonTooDeep()
    return data


class SafeJSONProvider(DefaultJSONProvider):
    def loads(self, s, **kwargs):
        return loads(s) if not kwargs else super().loads(s, **kwargs)
