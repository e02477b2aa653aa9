"""Words for people, said by core without choosing their language.

core never writes a sentence in Russian or English. It says *what* happened as a `Message`: a
stable `code` (for programs: the API, tests, the database), an English `template` with `%(name)s`
placeholders (the msgid of our .po catalogues) and its `params`. The web layer renders a message in
the reader's language with gettext; the database keeps only `code` + JSON `params`, so the same row
reads in Russian in the admin and in English in an English CSV. (The shape follows Zulip's
`zerver/lib/exceptions.py`: an error code plus a translatable format string plus data fields.)

Adding a message (e.g. a new attribution reason):

    from core.platform.messages import N_, define
    CLICK_FOUND = define("attribution.click", N_("Click %(click)s on the site: %(target)s"))
    ...
    return Attribution(kind="click", reason=CLICK_FOUND(click=click.id, target=describe(...)))

then append the msgid to both web/translations/*/messages.po (Russian msgstr, English empty) and
run `pybabel compile -d web/translations`. `N_` only marks the text for pybabel's extractor
(`-k N_`); the template is translated when rendered, never when defined.

A param may itself be a `Message` (translated too) or a list of messages (said one after another,
joined by "; "); everything else is shown as it is. `render(message, translations)` takes any object
with a `gettext(msgid)` method (babel's `Translations`, flask-babel's `get_translations()`); without
one it says the English. A stored code that is no longer registered renders its `text` param (the
original words kept by migration 0009) or else the code itself, so nothing stored is ever lost.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from core.platform.text import N_

__all__ = ["N_", "Message", "MessageKind", "define", "registry", "render", "legacy", "LEGACY_CODE"]


class Translations(Protocol):
    def gettext(self, message: str) -> str: ...


_REGISTRY: dict[str, "MessageKind"] = {}
LEGACY_CODE = "legacy"  # words stored before codes existed (migration 0009); shown as they were


@dataclass(frozen=True)
class Message:
    code: str
    template: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict:
        """`{"code", "params"}` with nested messages as such dicts too: what the database keeps."""
        return {"code": self.code, "params": {k: _param_to_json(v) for k, v in self.params.items()}}

    @classmethod
    def from_json(cls, code: str | None, params: dict | None) -> Message | None:
        if not code:
            return None
        params = {k: _param_from_json(v) for k, v in (params or {}).items()}
        kind = _REGISTRY.get(code)
        return cls(code, kind.template if kind else "", params)

    def render(self, translations: Translations | None = None) -> str:
        return render(self, translations)

    def mentions(self, code: str) -> bool:
        """Whether this message or one inside its params (a message, or a list of them, at any depth:
        the tree `render` walks, e.g. the notes of an attribution reason) has `code`."""
        return self.code == code or any(_mentions(value, code) for value in self.params.values())

    def __str__(self) -> str:  # logs and exceptions: the English
        return render(self)


class MessageKind:
    """A registered code with its template; calling it with params makes a `Message`."""

    def __init__(self, code: str, template: str, sentence: bool = False, literal: bool = False):
        self.code, self.template, self.sentence, self.literal = code, template, sentence, literal

    def __call__(self, **params: Any) -> Message:
        return Message(self.code, self.template, params)

    def __repr__(self) -> str:
        return f"MessageKind({self.code!r})"


def define(code: str, template: str, *, sentence: bool = False, literal: bool = False) -> MessageKind:
    """Registers `code` once; the template is an English msgid marked with `N_`. A `sentence` starts
    with a param (e.g. notes in lower case): its first letter is raised after rendering, in the
    reader's language, and nothing else is touched, so names keep their capitals. A `literal` (a brand
    name such as «Telegram») is the same in every language: not marked, never looked up."""
    known = _REGISTRY.get(code)
    if known is not None and (known.template, known.sentence, known.literal) != (template, sentence, literal):
        raise ValueError(f"message code {code!r} is already defined with another template")
    kind = _REGISTRY[code] = MessageKind(code, template, sentence, literal)
    return kind


def registry() -> dict[str, str]:
    """code -> English template of every defined message (what the catalogues must translate)."""
    return {code: kind.template for code, kind in _REGISTRY.items()}


LEGACY = define(LEGACY_CODE, "%(text)s", literal=True)


def legacy(text: str) -> Message:
    """Words written before there were codes; shown unchanged in every language."""
    return LEGACY(text=text)


def render(message: Message | None, translations: Translations | None = None) -> str:
    if message is None:
        return ""
    kind = _REGISTRY.get(message.code)
    template = message.template or (kind.template if kind else "")
    if not template:  # a code no longer registered: the words it was stored with, else the code
        return str(message.params.get("text") or message.code)
    literal = kind is not None and kind.literal
    said = translations.gettext(template) if translations is not None and not literal else template
    if message.params:
        values = {k: _render_param(v, translations) for k, v in message.params.items()}
        try:
            said = said % values
        except (KeyError, ValueError, TypeError):  # a catalogue entry with a bad placeholder: the English
            said = template % values
    if kind is not None and kind.sentence:
        said = said[:1].upper() + said[1:]
    return said


def _render_param(value: Any, translations: Translations | None) -> Any:
    if isinstance(value, Message):
        return render(value, translations)
    if isinstance(value, (list, tuple)):
        return "; ".join(str(_render_param(v, translations)) for v in value)
    return "" if value is None else value


def _mentions(value: Any, code: str) -> bool:
    if isinstance(value, Message):
        return value.mentions(code)
    if isinstance(value, (list, tuple)):
        return any(_mentions(v, code) for v in value)
    return False


def _param_to_json(value: Any) -> Any:
    if isinstance(value, Message):
        return value.to_json()
    if isinstance(value, (list, tuple)):
        return [_param_to_json(v) for v in value]
    return value


def _param_from_json(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"code", "params"}:
        return Message.from_json(value["code"], value["params"])
    if isinstance(value, list):
        return [_param_from_json(v) for v in value]
    return value
